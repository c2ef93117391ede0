"""The check shared by the model's frozen records (:class:`~bids_stroke.model.unet.UNetConfig`,
:class:`~bids_stroke.model.preprocess.PreprocessConfig`, :class:`~bids_stroke.model.spec.
ModelSpec`, :class:`~bids_stroke.model.request.ModelRequest`) when one is rebuilt from a
mapping (a checkpoint, a sidecar, a node input): a key the record does not know is refused,
never dropped."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

__all__ = ["refuse_unknown_keys"]


def refuse_unknown_keys(cls: type, d: Mapping[str, Any],
                        error: type[Exception] = ValueError) -> None:
    """Raise ``error`` naming the keys of ``d`` that are not fields of the dataclass ``cls``."""
    unknown = set(d) - {f.name for f in fields(cls)}
    if unknown:
        raise error(f"unknown {cls.__name__} keys: {sorted(unknown)}")
