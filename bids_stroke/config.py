"""Provenance of the software environment (versions, container)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from bids_stroke.__about__ import __version__


def environment_info() -> dict[str, str]:
    """Versions recorded in provenance."""
    info = {"bids_stroke": __version__, "python": platform.python_version()}
    for mod in ("torch", "numpy", "scipy", "nibabel", "nipype", "bids"):
        try:
            module = __import__(mod)
            info[mod] = str(getattr(module, "__version__", "unknown"))
        except ImportError:  # pragma: no cover - all are dependencies
            continue
    return info


def container_info() -> dict[str, str] | None:
    """The bids_stroke image the app runs in, or ``None`` (a venv, even inside some other
    container: only our images set ``BIDS_STROKE_CONTAINER``; Apptainer sets its own)."""
    tag = os.environ.get("BIDS_STROKE_IMAGE", "")
    sif = os.environ.get("APPTAINER_CONTAINER") or os.environ.get("SINGULARITY_CONTAINER")
    if sif:
        return {"Type": "singularity", "Tag": tag or Path(sif).name}
    kind = os.environ.get("BIDS_STROKE_CONTAINER")
    if kind:
        return {"Type": kind, "Tag": tag}
    return None
