"""Outputs you can trust, end to end: re-runs accumulate, signals stop cleanly,
concurrent runs never mix, a corrupted work folder is recomputed, a commit killed half-way is
finished by the next reader."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import numpy as np

from bids_stroke.outputs.commit import lock_path, read_manifest
from bids_stroke.outputs.locks import FileLock

from .conftest import (
    SUBJECTS,
    assert_error_line,
    assert_no_partial,
    assert_out_complete,
    cli_command,
    cli_env,
    output_digests,
    participant_args,
    read_tsv,
    run_inprocess,
    run_subprocess,
    wait_for,
)

KEY = f"sub-{SUBJECTS[0]}_ses-1"


def _segmetrics(out: Path) -> list[dict[str, str]]:
    (tsv,) = out.glob("sub-*/**/*_segmetrics.tsv")
    return read_tsv(tsv)


def test_rerun_with_other_conditions_accumulates(make_bids, tmp_path, models, capsys):
    bids, out, work = make_bids(1), tmp_path / "out", tmp_path / "work"
    args = participant_args(bids, out, work, models["random"], conditions=("native", "crude:2"))
    assert run_inprocess(args, capsys).code == 0
    crude_mask = next(out.rglob("*_desc-crude2_mask.nii.gz")).read_bytes()
    args = participant_args(bids, out, work, models["random"],
                            conditions=("native", "linear:2"))
    res = run_inprocess(args, capsys)
    assert res.code == 0, res.stderr[-3000:]
    assert [r["desc"] for r in _segmetrics(out)] == ["crude2", "native", "linear2"]
    assert next(out.rglob("*_desc-crude2_mask.nii.gz")).read_bytes() == crude_mask
    manifest = read_manifest(out, KEY)
    assert set(manifest.conditions) == {"native", "crude2", "linear2"}
    # the subject report lists the kept condition's metrics and says why it has no overlay
    report = next(out.glob("sub-*.html")).read_text()
    assert "crude2 (earlier run)" in report and "keeps condition(s) crude2" in report
    group = run_inprocess([bids, out, "group"], capsys)
    assert group.code == 0, group.stderr[-3000:]
    conds = {r["desc"] for r in read_tsv(out / "group_segmetrics.tsv")}
    assert conds == {"native", "crude2", "linear2"}

    # --clean removes what the study no longer lists, and says so
    args = participant_args(bids, out, work, models["random"],
                            conditions=("native", "linear:2"))
    res = run_inprocess([*args, "--clean"], capsys)
    assert res.code == 0
    assert "removed condition crude2" in res.stderr
    assert not list(out.rglob("*_desc-crude2_*"))
    assert [r["desc"] for r in _segmetrics(out)] == ["native", "linear2"]
    assert "earlier run" not in next(out.glob("sub-*.html")).read_text()


def test_other_model_refused_before_any_work(make_bids, tmp_path, models, capsys):
    bids, out, work = make_bids(1), tmp_path / "out", tmp_path / "work"
    assert run_inprocess(participant_args(bids, out, work, models["random"],
                                          conditions=("native", "crude:2")), capsys).code == 0
    before = output_digests(out)
    res = run_inprocess(participant_args(bids, out, work, models["none"],
                                         conditions=("native",)), capsys)
    assert res.code == 64
    assert_error_line(res.stderr, "--clean")
    assert output_digests(out) == before


def _session_processes(sid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == sid:
                    pids.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                continue
    return pids


def _unet_done(work: Path) -> bool:
    return any(work.rglob("result_unet.pklz"))


def test_sigterm_stops_every_worker_and_resumes(make_bids, tmp_path, models):
    bids, out, work = make_bids(2), tmp_path / "out", tmp_path / "work"
    # two worker processes whatever the CPUs (--nprocs runs one process below 4 CPUs)
    plugin = tmp_path / "multiproc.yml"
    plugin.write_text("plugin: MultiProc\nplugin_args: {n_procs: 2, raise_insufficient: false, "
                      "mp_context: forkserver}\n")
    argv = [*participant_args(bids, out, work, models["random"]), "--use-plugin", str(plugin)]
    proc = subprocess.Popen(cli_command(argv), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=cli_env(), start_new_session=True)
    try:
        assert wait_for(lambda: _unet_done(work) or proc.poll() is not None, timeout=240)
        assert proc.poll() is None, "the run ended before the signal"
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    stderr = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    assert code == 143, stderr[-3000:]
    line = assert_error_line(stderr, "interrupted")
    assert "re-run" in line
    assert wait_for(lambda: not _session_processes(proc.pid), timeout=20), \
        f"worker processes left running: {_session_processes(proc.pid)}"
    assert_no_partial(out)
    assert_out_complete(out)  # whatever was committed is complete
    resumed = run_subprocess(argv)
    assert resumed.code == 0, resumed.stderr[-3000:]
    assert_out_complete(out, labels=["native", "crude2"], expect_subjects=SUBJECTS)


def test_concurrent_runs_on_one_subject(make_bids, tmp_path, models, capsys):
    """A subject locked by a live run (here: this test process, e.g. another container on the
    same machine) is skipped with one clear line and exit 75; nothing of it is touched. Once the
    lock is free the same command completes it."""
    bids, out = make_bids(1), tmp_path / "out"
    argv = participant_args(bids, out, tmp_path / "w2", models["random"])
    with FileLock(lock_path(out, KEY), run="other-run"):
        busy = run_subprocess(argv)
        assert busy.code == 75, busy.stderr[-3000:]
        line = assert_error_line(busy.stderr, "locked by")
        assert "other-run" in line and "--lock-wait" in line
        assert read_manifest(out, KEY) is None
        # a second run may wait for the lock instead: it gives up after --lock-wait seconds
        waited = run_subprocess([*argv, "--lock-wait", "1"])
        assert waited.code == 75
    done = run_inprocess(argv, capsys)
    assert done.code == 0, done.stderr[-3000:]
    assert_out_complete(out, expect_subjects=SUBJECTS[:1])


def test_shared_work_folder_refused(make_bids, tmp_path, models, capsys):
    bids, work = make_bids(1), tmp_path / "work"
    work.mkdir()
    with FileLock(work / ".bids_stroke-work.lock", run="other-run"):
        res = run_inprocess(participant_args(bids, tmp_path / "out", work, models["random"]),
                            capsys)
    assert res.code == 75
    assert_error_line(res.stderr, "in use by run other-run")


def test_corrupted_work_folder_is_recomputed(make_bids, tmp_path, models, capsys):
    """The issue's tampering (a probability map truncated, a degraded image zeroed, a result
    file corrupted) and a partial cache (a checksum record deleted with the mask it vouched
    for zeroed): each damaged node and everything downstream of it is recomputed, the run
    succeeds and gives the outputs of an untouched run."""
    import nibabel as nb

    bids, work = make_bids(1), tmp_path / "work"
    ref = tmp_path / "ref"
    assert run_inprocess(participant_args(bids, ref, tmp_path / "ref_work", models["random"]),
                         capsys).code == 0
    # a run killed in its commit leaves every computed node in the work folder (a committed
    # input's node folders are pruned: only an interrupted run is resumed from them)
    out = tmp_path / "out"
    argv = participant_args(bids, out, work, models["random"])
    killed = subprocess.run(cli_command(argv), env={**cli_env(), "BIDS_STROKE_FAULT": "staged"},
                            capture_output=True, timeout=300)
    assert killed.returncode == -9
    wf = next(work.glob("bids_stroke_wf/single_subject_*"))
    prob = next(wf.glob("segment_wf/_condition_native/unet/*_probseg.nii"))
    prob.write_bytes(prob.read_bytes()[:1000])
    degraded = next(wf.glob("degrade_wf/_condition_crude2/degrade/mapflow/_degrade0/*.nii"))
    img = nb.load(str(degraded))
    nb.Nifti1Image(np.zeros(img.shape, np.float32), img.affine).to_filename(str(degraded))
    (wf / "metrics_wf/measure/result_measure.pklz").write_bytes(b"not a gzip file")
    unet = wf / "segment_wf/_condition_crude2/unet"
    (unet / "_outputs.sha256.json").unlink()
    mask = next(unet.glob("*_mask.nii"))
    img = nb.load(str(mask))
    nb.Nifti1Image(np.zeros(img.shape, np.uint8), img.affine, img.header).to_filename(
        str(mask))
    kept = {p: p.stat().st_mtime_ns for p in wf.rglob("result_*.pklz")}
    res = run_inprocess(argv, capsys)
    assert res.code == 0, res.stderr[-3000:]
    assert "recomputing" in res.stderr and "Traceback" not in res.stderr
    assert output_digests(out) == output_digests(ref)
    # equal outputs prove the damaged chain ran again (the zeroed mask and degraded image
    # would change them); once committed, the image's node folders are pruned
    assert kept and not list(wf.glob("segment_wf/**/result_*.pklz"))


def test_commit_killed_half_way_is_finished_by_group(make_bids, tmp_path, models, capsys):
    bids, out, work = make_bids(1), tmp_path / "out", tmp_path / "work"
    assert run_inprocess(participant_args(bids, out, work, models["random"]), capsys).code == 0
    env = {**cli_env(), "BIDS_STROKE_FAULT": "move"}
    argv = participant_args(bids, out, work, models["random"], conditions=("native", "kspace:2"))
    proc = subprocess.run(cli_command(argv), env=env, capture_output=True, timeout=300)
    assert proc.returncode == -9
    group = run_inprocess([bids, out, "group"], capsys)
    assert group.code == 0, group.stderr[-3000:]
    assert {r["desc"] for r in read_tsv(out / "group_segmetrics.tsv")} == {
        "native", "crude2", "kspace2"}
    assert_no_partial(out)
