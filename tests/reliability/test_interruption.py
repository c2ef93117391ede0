"""kill -9 during a participant run, then resume with the same work directory.

The resumed run must finish with exit 0, give the same outputs as an uninterrupted run (byte for
byte, except ``logs/`` and the run id the HTML reports embed), and must not recompute the nodes
that had finished before the kill (the segmentations are counted as cached).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from .conftest import (
    SUBJECTS,
    assert_out_complete,
    cli_command,
    cli_env,
    output_digests,
    participant_args,
    run_subprocess,
    snapshot,
    wait_for,
)


def _results(work: Path) -> dict[str, int]:
    """Finished nipype nodes: ``result_*.pklz`` files and their mtimes (ns)."""
    return {p.relative_to(work).as_posix(): p.stat().st_mtime_ns
            for p in work.rglob("result_*.pklz")}


def _unet_done(work: Path) -> bool:
    return any(p.parent.name == "unet" for p in work.rglob("result_unet.pklz"))


def test_kill9_then_resume(reference_run: dict, models: dict[str, Path], tmp_path: Path) -> None:
    ref = reference_run
    assert ref["result"].code == 0, ref["result"].stderr[-3000:]
    bids = ref["bids"]  # the same (read-only) input dataset as the uninterrupted run
    before = snapshot(bids)
    out, work = tmp_path / "out", tmp_path / "work"
    argv = participant_args(bids, out, work, models["random"])

    proc = subprocess.Popen(cli_command(argv), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=cli_env(), start_new_session=True)
    try:
        seen = wait_for(lambda: _unet_done(work) or proc.poll() is not None, timeout=240)
        still_running = proc.poll() is None
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=30)
        stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
    assert seen and still_running, f"the run ended before it could be killed:\n{stderr[-3000:]}"
    assert proc.returncode == -signal.SIGKILL
    time.sleep(0.1)
    done_at_kill = _results(work)
    unet_at_kill = [k for k in done_at_kill if k.endswith("/unet/result_unet.pklz")]
    assert unet_at_kill, done_at_kill
    # killed mid-run: no half-written file anywhere in OUT, no complete subject yet
    assert_out_complete(out, expect_subjects=[])

    resumed = run_subprocess(argv)
    assert resumed.code == 0, resumed.stderr[-4000:]
    assert snapshot(bids) == before
    assert_out_complete(out, expect_subjects=SUBJECTS)

    # nodes finished before the kill were reused from the cache, not recomputed: the
    # segmentations are counted as cached, and the node folders a commit keeps (the
    # registration) still hold the results written before the kill (the committed
    # inputs' other folders are pruned)
    summary = next(ln for ln in resumed.stderr.splitlines() if "Progress summary" in ln)
    assert f"({len(unet_at_kill)} cached)" in summary, summary
    after = _results(work)
    kept = [k for k in done_at_kill if k in after]
    assert kept, "no node folder kept after the commit"
    changed = [k for k in kept if after[k] != done_at_kill[k]]
    assert not changed, f"recomputed after resume: {changed}"

    # same outputs as the uninterrupted run in another folder
    got, want = output_digests(out), output_digests(ref["out"])
    assert sorted(got) == sorted(want)
    differing = [k for k in want if got[k] != want[k]]
    assert not differing, f"outputs differ from the uninterrupted run: {differing}"
