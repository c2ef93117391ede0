"""Paths and files of folders others can write to (OUT's state folder, the work folder).

On a shared cluster a project folder is writable by colleagues and by other tools' jobs, so
nothing bids_stroke finds there is trusted:

* :func:`open_fixed` opens a file of a fixed name (a lock) with ``O_NOFOLLOW`` and
  ``O_NONBLOCK`` and accepts only a regular file with one link: a symbolic link (or a FIFO,
  a device, a hard link to another file) in its place is refused, never followed, nothing is
  truncated through it;
* :func:`real_dir` creates a state folder, or checks that the existing one is a folder and
  not a link to elsewhere;
* :func:`confined` turns a relative path read from a state file into a path under its root,
  refusing absolute paths, ``..`` and links that lead out of the root.

Every refusal is an :class:`UnsafeStateError` whose message is one line naming the path and
the fix. Pure module (no nipype).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path, PurePosixPath

__all__ = ["UnsafeStateError", "confined", "first_link", "is_plain_relative", "open_fixed",
           "real_dir"]


class UnsafeStateError(RuntimeError):
    """A path in a state folder is not what bids_stroke wrote there (one-line message)."""


def _link_refused(path: Path) -> UnsafeStateError:
    return UnsafeStateError(
        f"{path} is a symbolic link: bids_stroke never writes through a link in its state or "
        "work folder; remove the link (someone or another tool put it there) and re-run")


def open_fixed(path: Path | str, flags: int, mode: int = 0o644) -> int:
    """``os.open`` of a fixed-name file that refuses links, FIFOs, devices and hard links."""
    path = Path(path)
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # the last component is a link
            raise _link_refused(path) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeStateError(f"{path} is not a regular file: remove it and re-run")
        if st.st_nlink > 1:
            raise UnsafeStateError(
                f"{path} has {st.st_nlink} hard links: it may be another file; remove it "
                "and re-run")
    except BaseException:
        os.close(fd)
        raise
    return fd


def real_dir(path: Path | str) -> Path:
    """``mkdir -p path`` that refuses a link (or a file) where the folder should be."""
    path = Path(path)
    if path.is_symlink():
        raise _link_refused(path)
    path.mkdir(parents=True, exist_ok=True)
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):  # replaced between the check and the mkdir
        raise _link_refused(path)
    return path


def is_plain_relative(rel: object) -> bool:
    """A non-empty relative POSIX path without ``.``, ``..``, empty parts or NUL bytes."""
    if not isinstance(rel, str) or not rel or "\x00" in rel or "\\" in rel or len(rel) > 4096:
        return False
    if rel.startswith("/") or rel.endswith("/"):
        return False
    parts = rel.split("/")
    return all(p not in ("", ".", "..") for p in parts) and PurePosixPath(rel).parts == tuple(
        parts)


def confined(root: Path, rel: str, inside: str = "") -> Path:
    """``root / rel`` when ``rel`` is a plain relative path whose folder, links resolved,
    lies in ``root`` (resolved) or in its subfolder ``inside``; :class:`UnsafeStateError`
    otherwise (so a subfolder that is a link to elsewhere is refused too).

    The last component is not resolved: it is the name that is moved, replaced or unlinked
    (never followed) in that folder.
    """
    if not is_plain_relative(rel) or (inside and not is_plain_relative(inside)):
        raise UnsafeStateError(f"{rel!r} is not a plain relative path under {root}")
    path = Path(root) / rel
    fence = Path(root).resolve() / inside if inside else Path(root).resolve()
    if not path.parent.resolve().is_relative_to(fence):
        raise UnsafeStateError(f"{path} leads out of {fence} (through a link?)")
    return path


def first_link(root: Path | str) -> Path | None:
    """The first symbolic link below ``root`` (``root`` itself may be one), or ``None``.

    For a folder whose every file bids_stroke (or nipype, which writes its files by fixed
    names without ``O_NOFOLLOW``) made itself and which holds no link of its own: the work
    folder. A link found there was planted, and writing through it would overwrite its target.
    """
    for here, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            path = Path(here) / name
            if path.is_symlink():
                return path
    return None
