"""Versions of the software a run used (bids_stroke, Python and the libraries), for provenance."""

from __future__ import annotations

import platform

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
