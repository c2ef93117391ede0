"""The one interface every model kind implements: :class:`Segmenter`.

A segmenter is loaded once (:func:`bids_stroke.model.adapters.open_model`) and predicts the
lesion probability of a :class:`ChannelStack` on the stack's own grid.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bids_stroke.model.inference import ModelOutputError, binary_logits
from bids_stroke.model.spec import ModelSpec

__all__ = [
    "ChannelStack",
    "ModelOutputError",
    "Segmenter",
    "binary_logits",
    "synthetic_stack",
]


@dataclass(frozen=True)
class ChannelStack:
    """Co-registered input channels of one image, in the model's channel order.

    Attributes:
        data: float32 array ``(C, X, Y, Z)``.
        affine: 4x4 voxel-to-world matrix of the grid.
        paths: the NIfTI files ``data`` was read from, one per channel, holding exactly
            ``data`` (nnU-Net reads them with its own reader); ``None`` when the data exists
            only in memory.
        brain_mask: boolean ``(X, Y, Z)`` region for intensity normalisation, or ``None``.
    """

    data: np.ndarray
    affine: np.ndarray
    paths: tuple[Path, ...] | None = None
    brain_mask: np.ndarray | None = None

    def __post_init__(self) -> None:
        data = np.asarray(self.data)
        if data.ndim != 4:
            raise ValueError(f"ChannelStack.data must be (C, X, Y, Z), got shape {data.shape}")
        object.__setattr__(self, "data", data.astype(np.float32, copy=False))
        aff = np.asarray(self.affine, dtype=np.float64)
        if aff.shape != (4, 4):
            raise ValueError(f"ChannelStack.affine must be 4x4, got {aff.shape}")
        object.__setattr__(self, "affine", aff)
        if self.paths is not None:
            paths = tuple(Path(p) for p in self.paths)
            if len(paths) != data.shape[0]:
                raise ValueError(f"{len(paths)} paths for {data.shape[0]} channels")
            object.__setattr__(self, "paths", paths)
        if self.brain_mask is not None:
            mask = np.asarray(self.brain_mask).astype(bool)
            if mask.shape != data.shape[1:]:
                raise ValueError(f"brain mask shape {mask.shape} != image shape {data.shape[1:]}")
            object.__setattr__(self, "brain_mask", mask)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Spatial shape ``(X, Y, Z)``."""
        _, x, y, z = self.data.shape  # (C, X, Y, Z): checked on construction
        return int(x), int(y), int(z)

    @property
    def n_channels(self) -> int:
        return int(self.data.shape[0])

    @classmethod
    def from_files(
        cls, paths: Sequence[str | Path], brain_mask: str | Path | None = None
    ) -> ChannelStack:
        """Read co-registered NIfTI files (one per channel, same grid)."""
        from bids_stroke.degradation.nifti import load_nifti

        imgs = [load_nifti(p) for p in paths]
        ref = imgs[0]
        arrays = []
        for p, img in zip(paths, imgs, strict=True):
            arr = np.asarray(img.dataobj, dtype=np.float32)
            if arr.ndim == 4 and arr.shape[-1] == 1:
                arr = arr[..., 0]
            if arr.shape != ref.shape[:3] or not np.allclose(img.affine, ref.affine, atol=1e-4):
                raise ValueError(f"{p} is not on the grid of {paths[0]}; register it first")
            arrays.append(arr)
        mask = None if brain_mask is None else np.asarray(load_nifti(brain_mask).dataobj) > 0
        return cls(np.stack(arrays), ref.affine, tuple(Path(p) for p in paths), mask)


def synthetic_stack(
    n_channels: int, shape: Sequence[int], spacing_mm: float = 1.0, seed: int = 0
) -> ChannelStack:
    """A small deterministic head-like volume (for dry runs): an ellipsoid with noise."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(-1, 1, int(s)) for s in shape], indexing="ij")
    brain = np.asarray(sum(g**2 for g in grids)) < 0.8
    data = np.stack(
        [np.where(brain, 100.0 + 10 * c, 0.0) + rng.normal(0, 5, tuple(shape)) * brain
         for c in range(n_channels)]
    ).astype(np.float32)
    aff = np.diag([spacing_mm, spacing_mm, spacing_mm, 1.0])
    return ChannelStack(data, aff, None, brain)


class Segmenter(abc.ABC):
    """A loaded model. Subclasses set :attr:`spec` and :attr:`info` in ``__init__``."""

    spec: ModelSpec
    info: dict[str, Any]
    #: ``progress(done, total)`` during :meth:`predict`: forward passes of the network (set by
    #: the caller; models whose prediction is one or a few passes never call it)
    progress: Callable[[int, int | None], None] | None = None

    @abc.abstractmethod
    def predict(self, image: ChannelStack) -> np.ndarray:
        """Lesion probability, float32 ``(X, Y, Z)`` on the grid of ``image``."""

    @abc.abstractmethod
    def input_channels(self) -> int | None:
        """Channels the network itself takes (``None`` when it cannot tell before running)."""

    @abc.abstractmethod
    def dry_run(self) -> tuple[tuple[int, int, int], np.ndarray]:
        """Predict on a small synthetic input; returns ``(input shape, probability)``."""

    def estimate_memory_gb(
        self, shape: Sequence[int], spacing_mm: Sequence[float] | None = None
    ) -> float | None:
        """Peak memory to predict an image of spatial ``shape`` (``None``: unknown)."""
        return None

    @property
    def checksum(self) -> str:
        return self.spec.checksum

    def _check_stack(self, image: ChannelStack) -> None:
        if image.n_channels != self.spec.n_channels:
            raise ValueError(
                f"{self.spec.source}: model takes {self.spec.n_channels} channel(s) "
                f"({', '.join(self.spec.channels)}), got {image.n_channels}"
            )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(kind={self.spec.kind!r}, source={self.spec.source!r}, "
            f"channels={list(self.spec.channels)})"
        )
