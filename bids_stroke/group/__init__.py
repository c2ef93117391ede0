"""bids_stroke.group: group-level statistics, figures and report.

``run_group`` and ``GroupInputError`` are imported lazily so that importing the package does
not pull in matplotlib.
"""

from __future__ import annotations

from typing import Any

__all__ = ["GroupInputError", "run_group"]


def __getattr__(name: str) -> Any:
    if name == "run_group":
        from bids_stroke.group.run import run_group

        return run_group
    if name == "GroupInputError":
        from bids_stroke.group.collect import GroupInputError

        return GroupInputError
    raise AttributeError(f"module 'bids_stroke.group' has no attribute {name!r}")
