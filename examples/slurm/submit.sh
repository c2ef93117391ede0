#!/bin/bash
# Submit the whole bids_stroke study to SLURM as three chained jobs:
#   1. prepare.sbatch           once: validation, pybids database, dataset-level files
#   2. participant_array.sbatch one array task per participant (--dependency=afterok:<1>)
#   3. group.sbatch             --dependency=afterany:<2>: runs however the array ended,
#                               names the failed/missing participants, exits 1 if any
#
# usage: examples/slurm/submit.sh BIDS_DIR OUT_DIR [PARTICIPANTS_FILE]
#   PARTICIPANTS_FILE  one label per line; default: every sub-* directory in BIDS_DIR,
#                      written to OUT_DIR/logs/participants.txt
# environment: SIF, WORK_ROOT, KEEP_WORK, BIDS_STROKE_ARGS, BIDS_STROKE_GROUP_ARGS,
#   APPTAINER_ARGS, OMP_NTHREADS, BIDS_DATABASE_DIR (see participant_array.sbatch);
#   MAX_PARALLEL (array tasks at once, default 20); SBATCH_EXTRA (all three jobs, e.g.
#   "--account=proj --partition=cpu"); BIDS_STROKE_GPU=1 (one GPU per array task:
#   --gres=gpu:1, plus SBATCH_GPU_EXTRA for the array, e.g. "--partition=gpu").
# Needs the output directory on a filesystem shared by all nodes.
set -euo pipefail

if [ $# -lt 2 ]; then
    sed -n '2,18p' "$0" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
BIDS_DIR=$(cd "$1" && pwd)
mkdir -p "$2"
OUT_DIR=$(cd "$2" && pwd)
log_dir="${OUT_DIR}/logs"
mkdir -p "$log_dir"
BIDS_DATABASE_DIR=${BIDS_DATABASE_DIR:-${log_dir}/bids_db}

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
export BIDS_DIR OUT_DIR PARTICIPANTS_FILE BIDS_DATABASE_DIR

# shellcheck disable=SC2206  # SBATCH_EXTRA is meant to be word-split
extra=(${SBATCH_EXTRA:-})
array_extra=()
if [ "${BIDS_STROKE_GPU:-0}" = "1" ]; then
    # shellcheck disable=SC2206  # SBATCH_GPU_EXTRA is meant to be word-split
    array_extra=(--gres=gpu:1 ${SBATCH_GPU_EXTRA:-})
    export BIDS_STROKE_GPU
fi

# --parsable prints "jobid" or "jobid;cluster"
submit() {
    local id
    id=$(sbatch --parsable "${extra[@]}" "$@") || return 1
    id=${id%%;*}
    if [ -z "$id" ]; then
        echo "sbatch printed no job id for $*" >&2
        return 1
    fi
    echo "$id"
}

prepare_job_id=$(submit --output="${log_dir}/%x_%j.log" "${here}/prepare.sbatch")

array_job_id=$(submit "${array_extra[@]}" \
    --dependency="afterok:${prepare_job_id}" --kill-on-invalid-dep=yes \
    --array="1-${n}%${MAX_PARALLEL:-20}" \
    --output="${log_dir}/%x_%A_%a.log" \
    "${here}/participant_array.sbatch")

# afterany: the group job runs even when tasks failed (or the array was cancelled), reports
# who is missing and exits non-zero; afterok would leave it pending forever.
group_job_id=$(submit --dependency="afterany:${array_job_id}" \
    --output="${log_dir}/%x_%j.log" \
    "${here}/group.sbatch")

echo "prepare job ${prepare_job_id}, participant array job ${array_job_id} (${n} tasks)," \
     "group job ${group_job_id}"
echo "logs: ${log_dir}"
