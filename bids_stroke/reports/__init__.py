"""bids_stroke.reports: self-contained HTML reports (subject level; shared HTML helpers).

``build_subject_report`` is imported lazily (it pulls in nibabel and matplotlib).
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_subject_report"]


def __getattr__(name: str) -> Any:
    if name == "build_subject_report":
        from bids_stroke.reports.subject import build_subject_report

        return build_subject_report
    raise AttributeError(f"module 'bids_stroke.reports' has no attribute {name!r}")
