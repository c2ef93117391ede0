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
    """The container the app runs in (docker, apptainer/singularity), or ``None``."""
    tag = os.environ.get("BIDS_STROKE_IMAGE", "")
    if os.environ.get("APPTAINER_CONTAINER") or os.environ.get("SINGULARITY_CONTAINER"):
        return {"Type": "singularity", "Tag": tag}
    if Path("/.dockerenv").exists() or Path("/run/.containerenv").exists():
        return {"Type": "docker", "Tag": tag}
    return None
