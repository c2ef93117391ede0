"""The atomic file writers of bids_stroke: a file that is written or replaced under its final
name goes through them (dataset-level and group-level files of OUT, manifests, reports, state
and status files, models, the demo dataset's state file written last).

Content lands in a temporary file in the destination folder (same filesystem), is flushed and
fsync'ed, and is moved to its final name with ``os.replace``: a reader (or a run killed at any
instant) sees the old file or the new one, never half of one. :func:`atomic_path` serves the
writers that take a file name (torch and ONNX models). Written directly: files staged for a
commit, which then moves them into place (:mod:`bids_stroke.commit`), the files of a nipype
node's work folder, and the training log (appended to). Pure module (no nipype).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

__all__ = [
    "atomic_copy",
    "atomic_path",
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


@contextlib.contextmanager
def _replacing(path: Path, mode: int) -> Iterator[BinaryIO]:
    """A new binary file in ``path``'s folder that replaces ``path`` (flushed, fsync'ed,
    ``mode``) when the block ends; removed when the block fails. An ``OSError`` names
    ``path`` when it names no file (a full disk)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
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


def atomic_write_bytes(path: Path | str, data: bytes, *, mode: int = 0o644) -> Path:
    """Write ``data`` to ``path`` through a temporary file + ``os.replace``."""
    path = Path(path)
    with _replacing(path, mode) as fh:
        fh.write(data)
    return path


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """A temporary file name beside ``path`` (``<name>.tmp``) for a writer that takes a
    name, not a stream (``torch.save``, ``onnx.save``); when the block ends the file is
    fsync'ed and replaces ``path``, when it fails it is removed. The name keeps ``path``'s
    own as its stem: torch names the archive inside a checkpoint after its file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
    with _replacing(dst, 0o644) as out, open(src, "rb") as inp:
        shutil.copyfileobj(inp, out, 1 << 20)
    return dst
