#!/bin/bash
# Submit the whole bids_stroke study to SLURM: one array task per participant, then the
# group level once every task has succeeded (--dependency=afterok on the array job).
#
# usage: examples/slurm/submit.sh BIDS_DIR OUT_DIR [PARTICIPANTS_FILE]
#   PARTICIPANTS_FILE  one label per line; default: every sub-* directory in BIDS_DIR,
#                      written to OUT_DIR/logs/participants.txt
# environment: SIF, WORK_ROOT, KEEP_WORK, BIDS_STROKE_ARGS, BIDS_STROKE_GROUP_ARGS,
#   APPTAINER_ARGS, OMP_NTHREADS (see participant_array.sbatch); MAX_PARALLEL (array tasks at
#   once, default 20); SBATCH_EXTRA (e.g. "--account=proj --partition=cpu").
# Needs the output directory on a filesystem shared by all nodes.
set -euo pipefail

if [ $# -lt 2 ]; then
    sed -n '2,12p' "$0" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
BIDS_DIR=$(cd "$1" && pwd)
mkdir -p "$2"
OUT_DIR=$(cd "$2" && pwd)
log_dir="${OUT_DIR}/logs"
mkdir -p "$log_dir"

if [ $# -ge 3 ]; then
    PARTICIPANTS_FILE=$(cd "$(dirname "$3")" && pwd)/$(basename "$3")
else
    PARTICIPANTS_FILE="${log_dir}/participants.txt"
    find "$BIDS_DIR" -mindepth 1 -maxdepth 1 -type d -name 'sub-*' -printf '%f\n' \
        | sort > "$PARTICIPANTS_FILE"
fi
n=$(grep -c -v -E '^[[:space:]]*(#|$)' "$PARTICIPANTS_FILE" || true)
if [ "$n" -lt 1 ]; then
    echo "No participants in ${PARTICIPANTS_FILE}" >&2
    exit 1
fi
export BIDS_DIR OUT_DIR PARTICIPANTS_FILE

# shellcheck disable=SC2206  # SBATCH_EXTRA is meant to be word-split
extra=(${SBATCH_EXTRA:-})

# --parsable prints "jobid" or "jobid;cluster"
array_job_id=$(sbatch --parsable "${extra[@]}" \
    --array="1-${n}%${MAX_PARALLEL:-20}" \
    --output="${log_dir}/%x_%A_%a.log" \
    "${here}/participant_array.sbatch")
array_job_id=${array_job_id%%;*}

group_job_id=$(sbatch --parsable "${extra[@]}" \
    --dependency="afterok:${array_job_id}" \
    --kill-on-invalid-dep=yes \
    --output="${log_dir}/%x_%j.log" \
    "${here}/group.sbatch")
group_job_id=${group_job_id%%;*}

echo "participant array job ${array_job_id} (${n} tasks), group job ${group_job_id}"
echo "logs: ${log_dir}"
