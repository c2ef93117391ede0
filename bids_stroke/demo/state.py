"""What a demo dataset was made with, so that re-running the same command reuses it.

:func:`~bids_stroke.demo.dataset.make_demo_dataset` writes, last, ``.bids_stroke_demo.json`` at
the dataset root (a dot file: BIDS validators and pybids ignore it): the generator options
(the real lesion masks by name and sha256) and the sha256 of every file it wrote.
:func:`reuse_problem` says why an existing folder cannot be reused for a set of options, or
``None`` when it holds exactly that dataset, complete and unmodified (a run killed half-way
never wrote the state file; an edited or deleted file changes a digest).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bids_stroke.core.atomic import atomic_write_text
from bids_stroke.core.digest import file_sha256
from bids_stroke.model.bundled import DEMO_DATASET_MARKER

STATE_FILE = DEMO_DATASET_MARKER
_GENERATOR = "bids_stroke demo"

__all__ = ["STATE_FILE", "demo_options", "describe", "reuse_problem", "write_state"]


def demo_options(
    *,
    n_subjects: int,
    seed: int,
    resolution_mm: float,
    layout: str,
    sessions: bool | None,
    subject_offset: int,
    lesion_masks: Sequence[str | Path] | None,
) -> dict[str, Any]:
    """The options that determine a demo dataset's bytes, normalised (JSON-able)."""
    if sessions is None:
        sessions = layout == "atlas"
    masks = None
    if lesion_masks is not None:
        paths = sorted((Path(p).expanduser() for p in lesion_masks), key=lambda p: (p.name, str(p)))
        masks = [{"name": p.name, "sha256": file_sha256(p)} for p in paths]
    return {
        "n_subjects": int(n_subjects),
        "seed": int(seed),
        "resolution_mm": float(resolution_mm),
        "layout": str(layout),
        "sessions": bool(sessions),
        "subject_offset": int(subject_offset),
        "lesion_masks": masks,
    }


def describe(options: dict[str, Any]) -> str:
    """``6 subjects, seed 0, 1 mm, atlas layout`` (plus real masks when used)."""
    text = (f"{options['n_subjects']} subjects, seed {options['seed']}, "
            f"{options['resolution_mm']:g} mm, {options['layout']} layout")
    if options.get("lesion_masks"):
        text += f", {len(options['lesion_masks'])} real lesion masks"
    return text


def write_state(root: Path, options: dict[str, Any], files: Sequence[Path], version: str) -> Path:
    """Record ``options`` and the digests of ``files`` (atomically, as the last write)."""
    state = {
        "Generator": _GENERATOR,
        "Version": version,
        "Options": options,
        "Files": {p.relative_to(root).as_posix(): file_sha256(p) for p in sorted(files)},
    }
    return atomic_write_text(root / STATE_FILE, json.dumps(state, indent=1) + "\n")


def _read_state(root: Path) -> dict[str, Any] | None:
    try:
        state = json.loads((root / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or state.get("Generator") != _GENERATOR:
        return None
    return state


def _option_difference(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    for key, value in new.items():
        if old.get(key) != value:
            if key == "lesion_masks":
                return "other lesion masks"
            return f"{key.replace('_', '-')} {old.get(key)!r} instead of {value!r}"
    return None


def reuse_problem(root: str | Path, options: dict[str, Any]) -> str | None:
    """Why ``root`` is not the demo dataset of ``options`` (one phrase), or None if it is."""
    root = Path(root)
    state = _read_state(root)
    if state is None:
        return f"no {STATE_FILE} (not a complete bids_stroke demo dataset)"
    difference = _option_difference(dict(state.get("Options") or {}), options)
    if difference is not None:
        return f"made with {difference}"
    files = state.get("Files")
    if not isinstance(files, dict) or not files:
        return f"{STATE_FILE} lists no files"
    for rel, digest in sorted(files.items()):
        path = root / rel
        if not path.is_file():
            return f"{rel} is missing"
        if file_sha256(path) != digest:
            return f"{rel} was modified"
    return None
