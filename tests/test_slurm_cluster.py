"""examples/slurm/submit.sh on a real one-node SLURM cluster (slow, root only).

A 3-subject 2 mm demo dataset with one subject's image corrupted goes through the whole
recipe -- prepare job, participant array, group job -- on munged + slurmctld + slurmd started
on localhost (tests/slurm_localhost.py), with the venv's ``bids_stroke`` (no container).
Checks: two subjects complete, the corrupted one is recorded as failed, the group job ran
anyway, named the failed subject, wrote the group report and exited non-zero; no daemon or job
process is left afterwards. Debian's ``slurm-wlm`` and ``munge`` are installed with apt when
missing (``.ci/run`` installs them first).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from slurm_localhost import APT_PACKAGES, LocalSlurm, missing_binaries

ROOT = Path(__file__).resolve().parents[1]
SUBMIT = ROOT / "examples" / "slurm" / "submit.sh"
BIN = Path(sys.executable).parent
#: the whole submission (demo excluded) must end within this many seconds
QUEUE_TIMEOUT_S = 1200


def _ensure_slurm() -> None:
    """Install slurm-wlm + munge with apt when missing; skip when that is impossible."""
    if not missing_binaries():
        return
    if os.geteuid() != 0:
        pytest.skip(f"SLURM binaries missing ({', '.join(missing_binaries())}) and not root: "
                    f"apt-get install {' '.join(APT_PACKAGES)} (as root) to run this test")
    if shutil.which("apt-get") is None:
        pytest.skip(f"SLURM binaries missing ({', '.join(missing_binaries())}) and no apt-get")
    proc = subprocess.run(["apt-get", "install", "-y", "-q", *APT_PACKAGES],
                          env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0 or missing_binaries():
        pytest.skip(f"apt-get install {' '.join(APT_PACKAGES)} failed: {proc.stderr[-500:]}")


def _corrupt_image(bids: Path, subject: str) -> Path:
    (image,) = bids.glob(f"{subject}/**/*_T1w.nii.gz")
    image.write_bytes(b"\x1f\x8b not a NIfTI: truncated on purpose by the SLURM test")
    return image


@pytest.mark.slow
def test_submit_sh_on_a_real_slurm_cluster(tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("a local SLURM cluster (slurmd, munged) needs root")
    _ensure_slurm()
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    bids, out = tmp_path / "bids", tmp_path / "out"
    demo = subprocess.run(
        [str(BIN / "bids_stroke"), "demo", str(bids), "--n-subjects", "3", "--resolution", "2",
         "--seed", "0"], capture_output=True, text=True, timeout=600)
    assert demo.returncode == 0, demo.stderr[-3000:]
    subjects = sorted(p.name for p in bids.glob("sub-*") if p.is_dir())
    assert len(subjects) == 3, subjects
    broken = subjects[1]
    _corrupt_image(bids, broken)
    timings["demo"] = time.monotonic() - t0

    cluster = LocalSlurm(tmp_path / "slurm", cpus=2, memory_mb=8192)
    t1 = time.monotonic()
    try:
        cluster.start()
        timings["cluster_start"] = time.monotonic() - t1
        env = cluster.env | {
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",  # the venv's bids_stroke
            # one CPU and 2 GB per task (a 2 mm subject peaks below 1 GB): two tasks at once
            "SBATCH_EXTRA": "--cpus-per-task=1 --mem=2G --time=00:20:00",
            "MAX_PARALLEL": "2",
            "BIDS_STROKE_ARGS": "--conditions native crude:2 --seed 0",
            "WORK_ROOT": str(tmp_path / "scratch"),
            "TMPDIR": str(tmp_path / "tmp"),
        }
        (tmp_path / "tmp").mkdir()
        submit = subprocess.run(["bash", str(SUBMIT), str(bids), str(out)], env=env,
                                cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert submit.returncode == 0, submit.stdout + submit.stderr
        ids = re.search(r"prepare job (\d+), participant array job (\d+) \(3 tasks\), "
                        r"group job (\d+)", submit.stdout)
        assert ids, submit.stdout
        prepare_id, array_id, group_id = ids.groups()
        t2 = time.monotonic()
        finished = cluster.wait_jobs(QUEUE_TIMEOUT_S)
        timings["queue"] = time.monotonic() - t2
        group = cluster.job_info(group_id)
        prepare = cluster.job_info(prepare_id)
        logs = {p.name: p.read_text(errors="replace") for p in (out / "logs").glob("*.log")}
        assert finished, f"jobs still queued after {QUEUE_TIMEOUT_S} s:\n{cluster.logs()}"
    finally:
        left = cluster.stop()
    assert left == [], f"processes left running after the cluster stopped: {left}"
    everything = "\n".join(f"--- {k}\n{v[-3000:]}" for k, v in sorted(logs.items()))

    assert prepare.get("JobState") == "COMPLETED", everything
    assert (out / "dataset_description.json").is_file() and (out / "descriptions.tsv").is_file()
    assert list((out / "logs" / "bids_db").rglob("*.sqlite")), "prepare built the database"

    # two subjects complete, the corrupted one failed (preflight: exit 65) and says so
    complete = [s for s in subjects if list((out / s).rglob("*_segmetrics.tsv"))]
    assert complete == [s for s in subjects if s != broken], everything
    status = (out / "logs" / "participants_status.tsv").read_text().splitlines()
    assert f"{broken}\tfailed\t65\t{array_id}_2" in status, status
    assert sum(line.split("\t")[1] == "complete" for line in status[1:]) == 2
    task_logs = [k for k in logs if k.startswith("bids_stroke_participant_")]
    assert len(task_logs) == 3, sorted(logs)

    # the group job ran anyway, named the failed subject, and exited non-zero
    (group_log,) = [v for k, v in logs.items() if k.startswith(f"bids_stroke_group_{group_id}")]
    assert f"FAILED  {broken} (exit 65" in group_log, group_log
    assert "3 participant(s): 2 complete, 1 failed, 0 missing" in group_log
    assert (out / "group_report.html").is_file(), group_log
    assert group.get("JobState") == "FAILED" and group.get("ExitCode") == "1:0", group

    timings["total"] = time.monotonic() - t0
    print("\nreal SLURM run: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
