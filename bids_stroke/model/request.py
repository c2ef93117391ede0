"""What the participant graph needs to know about the model, decided once in the parent.

:class:`ModelPlan` is a decision record (no torch, no nipype): built by the command line after
the model's checks (:func:`bids_stroke.cli.participant.plan_model`), read by the workflows.
It lives beside the model code rather than in :mod:`bids_stroke.workflows`, so the workflow
modules that only name its type import it from here instead of from each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bids_stroke.settings import TEMPLATE

__all__ = ["ModelPlan"]


@dataclass(frozen=True)
class ModelPlan:
    """What the graph needs to know about the model, decided once in the parent."""

    path: str  # "" = bundled
    channels: tuple[str, ...]  # BIDS suffixes fed to the model, in order
    space: str  # TEMPLATE or "native"
    resolution: int | None  # template grid resolution (template-space models)
    threshold: float
    info: Mapping[str, Any] = field(default_factory=dict)
    reference: str = "T1w"  # BIDS suffix of the image the lesion masks are drawn on
    predict_gb: float | None = None  # the model's estimate for the largest image

    @property
    def native(self) -> bool:
        return self.space != TEMPLATE
