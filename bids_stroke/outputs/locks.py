"""File locks (``fcntl.flock``): one per subject in OUT, one per work folder, one per dataset.

A lock is held by an open file description, so it is released by the kernel when its holder
dies (``kill -9`` included) and it is shared by nothing else: unlike host+PID guessing it works
across PID namespaces (containers) on one machine. On network filesystems ``flock`` works where
the NFS client maps it to NLM/NFSv4 locks (Linux >= 2.6.12); see the README.

The lock file holds one JSON line describing the holder (host, pid, run, since) so that a
refused run can say who holds it. It is opened with ``O_NOFOLLOW`` and must be a regular file
with one link (:func:`bids_stroke.outputs.state_files.open_fixed`): a link planted in its place is
refused (:class:`~bids_stroke.outputs.state_files.UnsafeStateError`), never followed nor truncated.
Pure module (no nipype).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bids_stroke.outputs.state_files import UnsafeStateError, open_fixed

__all__ = ["FileLock", "LockBusyError", "holder_of", "is_locked"]


class LockBusyError(RuntimeError):
    """Another live process holds the lock."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path} is locked by {holder}")
        self.path = path
        self.holder = holder


def holder_of(path: Path) -> str:
    """Human description of the process recorded in a lock file (best effort)."""
    try:
        fd = open_fixed(path, os.O_RDONLY)
        with os.fdopen(fd, "rb") as fh:
            info = json.loads(fh.read(4096).decode() or "{}")
        return (f"run {info.get('run', '?')} (pid {info.get('pid', '?')} on "
                f"{info.get('host', '?')}, since {info.get('since', '?')})")
    except (OSError, ValueError, AttributeError, UnsafeStateError):
        return "another bids_stroke run"


class FileLock:
    """An exclusive ``flock`` on ``path`` (created if needed); re-entrant per object."""

    def __init__(self, path: Path | str, *, run: str = "") -> None:
        self.path = Path(path)
        self.run = run
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, timeout: float = 0.0, poll: float = 0.25) -> FileLock:
        """Take the lock, waiting up to ``timeout`` seconds; :class:`LockBusyError` otherwise."""
        if self._fd is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = open_fixed(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise LockBusyError(self.path, holder_of(self.path)) from None
                time.sleep(poll)
        info = {"host": socket.gethostname(), "pid": os.getpid(), "run": self.run,
                "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __getstate__(self) -> dict[str, Any]:
        # never carry a held descriptor into another process (nipype pickles node inputs)
        return {"path": self.path, "run": self.run, "_fd": None}


def is_locked(path: Path) -> bool:
    """True when a live process holds ``path`` (the check takes and drops the lock); a lock
    file that is not a plain file (a planted link) counts as held: nothing of it is touched."""
    if not Path(path).exists() and not Path(path).is_symlink():
        return False
    probe = FileLock(path)
    try:
        probe.acquire(timeout=0)
    except (LockBusyError, UnsafeStateError):
        return True
    probe.release()
    return False


@contextlib.contextmanager
def locked(path: Path, *, timeout: float = 0.0, run: str = "") -> Iterator[FileLock]:
    """``with locked(p): ...`` — hold ``p`` for the block."""
    lock = FileLock(path, run=run).acquire(timeout=timeout)
    try:
        yield lock
    finally:
        lock.release()
