"""Environment failures: a full disk, a quota, a read-only or forbidden folder, a file-size limit.

None of them is a bug of bids_stroke or a fault of the data: the run stops with one line
naming the folder and the fix, and exit 73 (README "Exit codes"), wherever the failed write
was (OUT, its staging folder, the work folder). They are recognised on the exception itself
(:func:`environment_error`) or, for a nipype node, in the text of its crash file or error
(:func:`environment_error_in_text`). Pure module (no nipype).
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ENV_ERRNOS", "EnvironmentFailure", "environment_error",
           "environment_error_in_text", "fix_for"]

#: errno -> what to do about it
ENV_ERRNOS: dict[int, str] = {
    errno.ENOSPC: "free space there or choose another folder, then re-run",
    errno.EDQUOT: "free space or ask for a larger quota, then re-run",
    errno.EROFS: "the file system is read-only: choose a writable folder, then re-run",
    errno.EACCES: "fix its permissions or choose another folder, then re-run",
    errno.EPERM: "fix its permissions or choose another folder, then re-run",
    errno.EFBIG: "a file reached the file-size limit (ulimit -f): raise it, then re-run",
}
_ERRNO_TEXT = re.compile(r"\[Errno (\d+)\] ([^:'\n]+?)(?:: '([^'\n]+)'(?: -> '([^'\n]+)')?)?$",
                         re.MULTILINE)


def fix_for(code: int | None) -> str:
    """The fix of an environment failure (a generic one for other codes)."""
    return ENV_ERRNOS.get(code or 0, "free space or fix permissions, then re-run")


@dataclass(frozen=True)
class EnvironmentFailure:
    """One failed write: its errno, the system's words for it and the file (if known)."""

    errno: int
    strerror: str
    filename: str | None = None

    def folder(self, roots: Iterable[Path | str | None]) -> Path | None:
        """The deepest of ``roots`` holding the file (else the file's folder)."""
        if self.filename is None:
            return None
        path = Path(os.path.abspath(self.filename))
        known = sorted((Path(os.path.abspath(r)) for r in roots if r), key=lambda r: -len(
            r.parts))
        return next((r for r in known if path.is_relative_to(r)), path.parent)

    def is_write_in(self, roots: Iterable[Path | str | None]) -> bool:
        """False for a permission error on a file outside ``roots`` (an input bids_stroke
        may not read is not a failed write); True otherwise."""
        if self.errno not in (errno.EACCES, errno.EPERM) or self.filename is None:
            return True
        path = Path(os.path.abspath(self.filename))
        return any(path.is_relative_to(os.path.abspath(r)) for r in roots if r)

    def message(self, roots: Iterable[Path | str | None], fallback: str) -> str:
        """``cannot write into FOLDER (No space left on device: FILE): FIX``."""
        folder = self.folder(roots)
        where = str(folder) if folder is not None else fallback
        what = f"{self.strerror}: {self.filename}" if self.filename else self.strerror
        return f"cannot write into {where} ({what}): {fix_for(self.errno)}"


def environment_error(exc: BaseException | None) -> EnvironmentFailure | None:
    """The environment failure ``exc`` is (or was caused by), else ``None``."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in ENV_ERRNOS:
            name = exc.filename2 if exc.filename2 is not None else exc.filename
            return EnvironmentFailure(exc.errno, exc.strerror or os.strerror(exc.errno),
                                      None if name is None else os.fsdecode(name))
        exc = exc.__cause__ or exc.__context__
    return None


_WORKING_DIR = re.compile(r"^Working directory: (.+)$", re.MULTILINE)


def environment_error_in_text(text: str) -> EnvironmentFailure | None:
    """The first environment failure an error message or crash file reports (a write that
    names no file: in the node's working directory, which a nipype crash file names)."""
    found = [EnvironmentFailure(int(m.group(1)), m.group(2).strip(), m.group(4) or m.group(3))
             for m in _ERRNO_TEXT.finditer(text or "") if int(m.group(1)) in ENV_ERRNOS]
    named = [f for f in found if f.filename is not None]  # a chained error that names it
    if named or not found:
        return named[0] if named else None
    cwd = _WORKING_DIR.search(text)
    first = found[0]
    return first if cwd is None else EnvironmentFailure(first.errno, first.strerror,
                                                        cwd.group(1).strip())
