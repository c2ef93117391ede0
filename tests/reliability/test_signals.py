"""Real signals to a real ``bids_stroke`` process: at a spread of moments of a run (discovery,
a node, the start and the middle of a commit, between subjects), then resume.

SIGTERM (SLURM's time limit, sent to the whole job step: the process group) and SIGINT end the
run within seconds with exit 143/130 and one line, start nothing more, leave no process; a
commit in progress completes first (or, under SIGKILL, is finished by the next reader). After
every kill each subject is complete by sha256 or absent; the final resumed run gives the same
bytes as an uninterrupted run. Two real runs on one OUT at once never mix.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from bids_stroke.outputs.commit import committed_images, lock_path, remove_stale_staging
from bids_stroke.outputs.locks import is_locked

from .conftest import (
    ERROR_PREFIX,
    SUBJECTS,
    assert_out_complete,
    cli_command,
    cli_env,
    output_digests,
    participant_args,
    run_subprocess,
    session_processes,
    snapshot,
    wait_for,
)

RESUME = "re-run the same command to resume"


def _manifests(out: Path) -> set[str]:
    return {p.name for p in (out / ".bids_stroke" / "subjects").glob("*.json")}


def _staging(out: Path) -> bool:
    folder = out / ".bids_stroke" / "staging"
    return folder.is_dir() and any(folder.iterdir())


def _run_until(argv: list[str], trigger: Callable[[Path], bool] | str, log: Path,
               delay: float, signum: int) -> tuple[int, str, set[str], float]:
    """Start a run, wait for ``trigger(log)``, wait ``delay`` s, send ``signum`` to its process
    group; returns (exit code, stderr, manifests at the signal, seconds until it ended). A
    ``trigger`` string arms the fault hook instead (``node-<Interface>:TERM``: the process
    signals itself inside that running node, where nipype catches every exception)."""
    env = {**cli_env(), **({"BIDS_STROKE_FAULT": trigger} if isinstance(trigger, str) else {})}
    with log.open("w") as err:
        proc = subprocess.Popen(cli_command(argv), stdout=subprocess.DEVNULL, stderr=err,
                                env=env, start_new_session=True)
    try:
        if isinstance(trigger, str):
            at_signal, t0 = _manifests(Path(argv[1])), time.monotonic()
            code = proc.wait(timeout=240)
            took = 0.0
        else:
            hit = wait_for(lambda: trigger(log) or proc.poll() is not None, timeout=240,
                           interval=0.01)
            time.sleep(delay)
            assert hit and proc.poll() is None, \
                f"the run ended first:\n{log.read_text()[-3000:]}"
            at_signal = _manifests(Path(argv[1]))
            os.killpg(proc.pid, signum)
            t0 = time.monotonic()
            code = proc.wait(timeout=60)
            took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert wait_for(lambda: not session_processes(proc.pid), timeout=20), \
        f"processes left running: {session_processes(proc.pid)}"
    return code, log.read_text(), at_signal, took


def test_signals_at_a_spread_of_moments_then_resume(reference_run: dict, models, tmp_path):
    ref = reference_run
    assert ref["result"].code == 0, ref["result"].stderr[-3000:]
    bids = ref["bids"]
    before = snapshot(bids)
    out, work = tmp_path / "out", tmp_path / "work"
    argv = participant_args(bids, out, work, models["random"])
    log = tmp_path / "stderr.txt"

    def said(text: str) -> Callable[[Path], bool]:
        return lambda path: text in path.read_text()

    kills = [  # (signal, moment, delay after it)
        (signal.SIGINT, said("[bids_stroke] INFO: Model:"), 0.0),  # discovery / input check
        (signal.SIGTERM, "node-SegmentImage:TERM", 0.0),  # inside a node (segmentation)
        (signal.SIGTERM, said("INFO: Progress: 0/"), 0.3),  # the process group, a node
        (signal.SIGKILL, lambda _: _staging(out), 0.0),  # a commit starts
        (signal.SIGTERM, lambda _: _staging(out), 0.05),  # in the middle of a commit
        (signal.SIGKILL, lambda _: len(_manifests(out)) >= 1, 0.2),  # between subjects
    ]
    for number, (signum, moment, delay) in enumerate(kills):
        code, stderr, at_signal, took = _run_until(argv, moment, log, delay, signum)
        where = f"kill {number} ({signal.Signals(signum).name})"
        assert "Traceback" not in stderr, f"{where}:\n{stderr[-3000:]}"
        if signum == signal.SIGKILL:
            assert code == -signal.SIGKILL, where
            # what the next run does first: finish a commit, drop a staging folder
            committed_images(out)
            remove_stale_staging(out, lambda key: not is_locked(lock_path(out, key)))
        else:
            assert code == 128 + signum, f"{where}:\n{stderr[-3000:]}"
            errors = [ln for ln in stderr.splitlines() if ln.startswith(ERROR_PREFIX)]
            assert len(errors) == 1 and "interrupted" in errors[0] and RESUME in errors[0], \
                f"{where}: {errors}"
            assert took < 15, f"{where}: {took:.1f} s to stop"
            assert " failed" not in stderr, f"{where}: an interruption is not a failure"
            # nothing more was started: only a commit already under way may have completed
            assert len(_manifests(out) - at_signal) <= (1 if _staging(out) or delay else 0)
        assert_out_complete(out)  # every subject complete by sha256, or absent
        assert snapshot(bids) == before, where

    resumed = run_subprocess(argv)
    assert resumed.code == 0, resumed.stderr[-4000:]
    assert_out_complete(out, expect_subjects=SUBJECTS)
    got, want = output_digests(out), output_digests(ref["out"])
    assert sorted(got) == sorted(want)
    assert [k for k in want if got[k] != want[k]] == []


def test_sigterm_in_a_commit_completes_it_first(make_bids, tmp_path, models):
    """The fault hook sends SIGTERM right after the first file of a commit moved: the run
    stops with 143 and one line, and that subject is committed whole."""
    bids, out = make_bids(1), tmp_path / "out"
    argv = participant_args(bids, out, tmp_path / "work", models["random"])
    proc = subprocess.run(cli_command(argv), env={**cli_env(), "BIDS_STROKE_FAULT": "move:TERM"},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 143, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith(ERROR_PREFIX)]
    assert len(errors) == 1 and RESUME in errors[0], errors
    assert_out_complete(out, expect_subjects=SUBJECTS[:1])


def test_two_real_runs_on_one_output_folder(reference_run: dict, models, tmp_path):
    """Two ``bids_stroke`` processes started together on one OUT (own work folders): each
    subject is processed by one of them, the other skips it (exit 75) — never a mix."""
    ref = reference_run
    out = tmp_path / "out"
    procs, logs = [], []
    for name in ("a", "b"):
        logs.append(tmp_path / f"{name}.txt")
        with logs[-1].open("w") as err:
            procs.append(subprocess.Popen(
                cli_command(participant_args(ref["bids"], out, tmp_path / f"work-{name}",
                                             models["random"])),
                stdout=subprocess.DEVNULL, stderr=err, env=cli_env()))
    codes = [p.wait(timeout=600) for p in procs]
    texts = [log.read_text() for log in logs]
    assert set(codes) <= {0, 75}, texts
    for code, text in zip(codes, texts, strict=True):
        assert "Traceback" not in text
        if code == 75:
            assert "locked by" in text and "--lock-wait" in text
    assert_out_complete(out, expect_subjects=SUBJECTS)
    got, want = output_digests(out), output_digests(ref["out"])
    assert sorted(got) == sorted(want)
    assert [k for k in want if got[k] != want[k]] == []


WATCHDOG_CHILD = """
import multiprocessing, sys, time
from bids_stroke.core import interrupt
interrupt.GRACE_S = 0.5
with interrupt.handled():
    worker = multiprocessing.get_context("fork").Process(target=time.sleep, args=(120,))
    worker.start()
    print("ready", flush=True)
    while True:  # what nipype does with an exception raised inside a node: goes on
        try:
            time.sleep(0.05)
        except BaseException:
            pass
"""


def test_watchdog_ends_a_run_that_swallows_the_signal(tmp_path):
    """A main thread that never gets back to the run's loop (an exception swallowed, a long C
    call): the watchdog prints the one line, kills the worker processes and exits 143."""
    import sys

    proc = subprocess.Popen([sys.executable, "-c", WATCHDOG_CHILD], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=cli_env(),
                            start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    stderr = proc.stderr.read()
    assert code == 143, stderr
    assert stderr.strip() == f"{ERROR_PREFIX} interrupted (SIGTERM); {RESUME}"
    assert wait_for(lambda: not session_processes(proc.pid), timeout=10), \
        f"processes left running: {session_processes(proc.pid)}"
