"""The one atomic file writer of bids_stroke.

Content lands in a temporary file in the destination folder (same filesystem), is flushed and
fsync'ed, and is moved to its final name with ``os.replace``: a reader (or a run killed at any
instant) sees the old file or the new one, never half of one. Pure module (no nipype).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_copy",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "fsync_dir",
    "json_text",
]


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _named(exc: OSError, path: Path) -> OSError:
    """``exc`` naming ``path`` when it names no file (``write()`` on a full disk names none,
    and the one-line error must say which folder to free)."""
    if exc.filename is not None or exc.errno is None:
        return exc
    return type(exc)(exc.errno, exc.strerror, str(path))


def _commit_tmp(tmp: str, path: Path, mode: int) -> None:
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def atomic_write_bytes(path: Path | str, data: bytes, *, mode: int = 0o644) -> Path:
    """Write ``data`` to ``path`` through a temporary file + ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        _commit_tmp(tmp, path, mode)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        named = _named(exc, path)
        if named is exc:
            raise
        raise named from exc
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: Path | str, text: str) -> Path:
    """UTF-8 text variant of :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_text_if_changed(path: Path | str, text: str) -> None:
    """:func:`atomic_write_text` unless ``path`` already holds exactly ``text`` (its time
    stamp then stays, so re-runs do not touch dataset-level files)."""
    try:
        if Path(path).read_text(encoding="utf-8") == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write_text(path, text)


def json_text(content: Any) -> str:
    """JSON with sorted keys, two-space indent and a trailing newline (stable bytes)."""
    return json.dumps(content, indent=2, sort_keys=True, default=str) + "\n"


def atomic_write_json(path: Path | str, content: Any) -> Path:
    """:func:`json_text` written atomically."""
    return atomic_write_text(path, json_text(content))


def atomic_copy(src: Path | str, dst: Path | str) -> Path:
    """Copy ``src`` to ``dst`` atomically (temporary file in ``dst``'s folder, fsync'ed)."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        _commit_tmp(tmp, dst, 0o644)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        named = _named(exc, dst)
        if named is exc:
            raise
        raise named from exc
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return dst
