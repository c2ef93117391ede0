"""SIGTERM and SIGINT: one interruption for the whole run, never in the middle of a commit.

The entry point runs everything inside :func:`handled`. From then on the first SIGTERM or
SIGINT (SLURM's time limit, ``docker stop``, Ctrl-C):

* raises :class:`Interrupted` in the main thread, unless a commit is in progress
  (:func:`deferred`): then it is raised as soon as the commit has ended;
* is remembered (:func:`received`), so that code which swallows exceptions (nipype turns any
  exception of a node, this one included, into a failed node and goes on) is stopped at the
  next :func:`check` (the runner checks after every node);
* arms a watchdog: if the process is still alive :data:`GRACE_S` seconds later (the main
  thread held in a long C call, e.g. a convolution), the watchdog waits for a commit in
  progress (at most :data:`COMMIT_GRACE_S`), prints the one line, kills the child processes
  and exits with 128 + the signal number.

A commit in a process where :func:`handled` is not active (a nipype worker process, a
library user) is protected too: :func:`deferred` installs its own handler for the block and
delivers a signal that arrived to the previous handler afterwards. Python runs signal
handlers in the main thread only, whichever thread the kernel picked, so this works where
blocking the signal in one thread (``pthread_sigmask``) does not. Pure module (no nipype).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

__all__ = [
    "COMMIT_GRACE_S",
    "GRACE_S",
    "Interrupted",
    "check",
    "deferred",
    "exit_code",
    "handled",
    "message",
    "received",
]

SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: seconds between the signal and the forced exit when the main thread does not get there
GRACE_S = 8.0
#: longest wait for a commit in progress before the forced exit (it is recovered next run)
COMMIT_GRACE_S = 60.0


class Interrupted(BaseException):
    """SIGTERM/SIGINT arrived (``signum`` says which)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _State:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.active = False  # handled() is running
        self.signum: int | None = None  # the first signal received
        self.depth = 0  # nesting of deferred()
        self.pending: int | None = None  # arrived while deferred
        self.hint = ""
        self.announced = False
        self.stop = threading.Event()


_STATE = _State()


def message(signum: int, hint: str = "") -> str:
    """The one line printed on an interruption (after ``bids_stroke: error: ``)."""
    return (f"interrupted ({signal.Signals(signum).name}); re-run the same command to "
            f"resume{hint}")


def exit_code(signum: int) -> int:
    """130 for SIGINT, 143 for SIGTERM (128 + the signal number)."""
    return 128 + int(signum)


def received() -> int | None:
    """The signal that interrupted this run, or ``None``."""
    return _STATE.signum


def check() -> None:
    """Raise :class:`Interrupted` when a signal arrived (outside a commit)."""
    if _STATE.signum is not None and _STATE.depth == 0:
        raise Interrupted(_STATE.signum)


def set_hint(hint: str) -> None:
    """Text the watchdog adds to its line (e.g. which work folder to resume with)."""
    _STATE.hint = hint


def announce(signum: int, hint: str | None = None) -> None:
    """Print the one line (once per run; ``hint``: default :func:`set_hint`'s)."""
    if _STATE.announced:
        return
    _STATE.announced = True
    text = message(signum, _STATE.hint if hint is None else hint)
    with contextlib.suppress(Exception):
        print(f"bids_stroke: error: {text}", file=sys.stderr, flush=True)


def _kill_children() -> None:
    for child in multiprocessing.active_children():
        with contextlib.suppress(Exception):
            child.kill()


def _watchdog(signum: int, stop: threading.Event) -> None:
    if stop.wait(GRACE_S):
        return
    deadline = time.monotonic() + COMMIT_GRACE_S
    while _STATE.depth > 0 and time.monotonic() < deadline:
        if stop.wait(0.1):
            return
    announce(signum)
    _kill_children()
    os._exit(exit_code(signum))


def _handler(signum: int, _frame: Any) -> None:
    first = _STATE.signum is None
    if first:
        _STATE.signum = signum
        threading.Thread(target=_watchdog, args=(signum, _STATE.stop),
                         name="bids_stroke-interrupt", daemon=True).start()
    if _STATE.depth > 0:
        _STATE.pending = _STATE.pending or signum
        return
    if first:
        raise Interrupted(signum)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """SIGTERM/SIGINT become :class:`Interrupted` for the block (the CLI's whole run)."""
    if not _main_thread() or _STATE.active:  # already handled by an enclosing block
        yield
        return
    old = {s: signal.getsignal(s) for s in SIGNALS}
    _STATE.reset()
    _STATE.active = True
    for s in SIGNALS:
        signal.signal(s, _handler)
    try:
        yield
    finally:
        _STATE.stop.set()
        _STATE.active = False
        for s, h in old.items():
            signal.signal(s, h)


def _deferring_handler(signum: int, _frame: Any) -> None:
    _STATE.pending = _STATE.pending or signum


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGTERM/SIGINT until the block ends (a commit is never cut by a signal)."""
    if not _main_thread():
        yield
        return
    if _STATE.active:
        _STATE.depth += 1
        try:
            yield
        finally:
            _STATE.depth -= 1
        if _STATE.depth == 0 and _STATE.pending is not None:
            signum, _STATE.pending = _STATE.pending, None
            raise Interrupted(signum)
        return
    # no run-wide handling here (a worker process): defer with a handler of our own
    old = {s: signal.getsignal(s) for s in SIGNALS}
    _STATE.pending = None
    for s in SIGNALS:
        signal.signal(s, _deferring_handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
        held, _STATE.pending = _STATE.pending, None
        if held is not None:
            signal.raise_signal(held)  # what would have happened without the commit
