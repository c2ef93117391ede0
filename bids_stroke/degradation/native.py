"""``native``: the image as provided."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bids_stroke.degradation.base import Condition, fail
from bids_stroke.degradation.volume import as_volume, check_zooms

__all__ = ["Native"]


@dataclass(frozen=True)
class Native(Condition):
    """The image as provided (the reference condition of most studies)."""

    kind = "native"
    form = "native"
    changes_sampling = False

    @classmethod
    def parse(cls, spec: str, args: list[str]) -> Native:
        if args:
            raise fail(spec, "native takes no arguments")
        return cls()

    @classmethod
    def from_strength(cls, value: float) -> Native:
        return cls()

    @property
    def spec(self) -> str:
        return "native"

    @property
    def label(self) -> str:
        return "native"

    @property
    def description(self) -> str:
        return "Native resolution: the image is used as provided."

    @property
    def params(self) -> dict[str, Any]:
        return {}

    def phrase(self, size: str | None) -> str:
        return "native"

    def apply(self, data: np.ndarray, zooms: Sequence[float]) -> np.ndarray:
        check_zooms(zooms)
        return as_volume(data).copy()
