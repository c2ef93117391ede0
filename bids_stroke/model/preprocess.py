"""Preprocessing shared *identically* by training and inference.

* :func:`normalize_intensity` - robust clipping at percentiles (default 0.5/99.5) computed
  inside a region of interest (brain mask; the non-zero voxels when no mask is given), then a
  z-score (default) or min-max scaling over the ROI.  Voxels outside the ROI are set to 0 after
  normalisation so that background is identical whatever its original value.
* :func:`pad_to_multiple` / :func:`crop_back` - symmetric zero padding so that every spatial
  size is a multiple of the network divisor, and its exact inverse.

The settings are described by :class:`PreprocessConfig`, stored inside checkpoints.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

__all__ = [
    "PadSpec",
    "PreprocessConfig",
    "crop_back",
    "default_roi",
    "normalize_intensity",
    "pad_to_multiple",
    "preprocess_volume",
]

PadSpec = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class PreprocessConfig:
    """Intensity-normalisation settings.

    Attributes:
        method: ``'zscore'`` (inside the ROI) or ``'minmax'`` (ROI range mapped to [0, 1]).
        clip_percentiles: lower/upper percentiles (inside the ROI) to clip at first, or
            ``None`` to disable clipping.
        mask_background: set voxels outside the ROI to 0 after normalisation.
    """

    method: str = "zscore"
    clip_percentiles: tuple[float, float] | None = (0.5, 99.5)
    mask_background: bool = True

    def __post_init__(self) -> None:
        if self.method not in ("zscore", "minmax"):
            raise ValueError(f"method must be 'zscore' or 'minmax', got {self.method!r}")
        if self.clip_percentiles is not None:
            lo, hi = (float(v) for v in self.clip_percentiles)
            if not 0.0 <= lo < hi <= 100.0:
                raise ValueError(f"invalid clip_percentiles {self.clip_percentiles}")
            object.__setattr__(self, "clip_percentiles", (lo, hi))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable representation (stored in checkpoints)."""
        d = asdict(self)
        if d["clip_percentiles"] is not None:
            d["clip_percentiles"] = list(d["clip_percentiles"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreprocessConfig:
        """Rebuild from :meth:`to_dict`; unknown keys are rejected."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown PreprocessConfig keys: {sorted(unknown)}")
        d = dict(d)
        if d.get("clip_percentiles") is not None:
            d["clip_percentiles"] = tuple(d["clip_percentiles"])
        return cls(**d)


def default_roi(data: np.ndarray) -> np.ndarray:
    """ROI used when no brain mask is given: finite non-zero voxels (all voxels if none)."""
    roi = np.isfinite(data) & (data != 0)
    if not roi.any():
        roi = np.isfinite(data)
    return roi


def normalize_intensity(
    data: np.ndarray,
    brain_mask: np.ndarray | None = None,
    config: PreprocessConfig | None = None,
) -> np.ndarray:
    """Normalise intensities inside ``brain_mask`` (see module docstring).

    Args:
        data: 3D image.
        brain_mask: boolean/binary ROI of the same shape, or ``None`` for :func:`default_roi`.
        config: settings (default :class:`PreprocessConfig`).

    Returns:
        float32 array of the same shape; non-finite inputs become 0.
    """
    cfg = config or PreprocessConfig()
    x = np.asarray(data, dtype=np.float32)
    if brain_mask is None:
        roi = default_roi(x)
    else:
        roi = np.asarray(brain_mask).astype(bool) & np.isfinite(x)
        if roi.shape != x.shape:
            raise ValueError(f"brain mask shape {roi.shape} != image shape {x.shape}")
        if not roi.any():
            roi = default_roi(x)
    x = np.where(np.isfinite(x), x, 0.0).astype(np.float32)
    vals = x[roi]
    if vals.size == 0:
        return np.zeros_like(x)
    if cfg.clip_percentiles is not None:
        lo, hi = np.percentile(vals, cfg.clip_percentiles)
        x = np.clip(x, lo, hi)
        vals = np.clip(vals, lo, hi)
    if cfg.method == "zscore":
        mu, sd = float(vals.mean()), float(vals.std())
        out = (x - mu) / (sd if sd > 1e-8 else 1.0)
    else:
        lo, hi = float(vals.min()), float(vals.max())
        out = (x - lo) / (hi - lo if hi - lo > 1e-8 else 1.0)
    if cfg.mask_background:
        out = np.where(roi, out, 0.0)
    return out.astype(np.float32, copy=False)


def pad_to_multiple(
    x: np.ndarray, multiple: int | tuple[int, ...], value: float = 0.0
) -> tuple[np.ndarray, PadSpec]:
    """Pad the last ``len(multiple)`` (default: 3) axes so each is a multiple of ``multiple``.

    Padding is split symmetrically (the extra voxel goes after).  E.g. ``197x233x189`` with
    ``multiple=16`` becomes ``208x240x192``.

    Returns:
        ``(padded, pad_spec)`` where ``pad_spec`` is one ``(before, after)`` pair per axis of
        ``x`` (leading axes get ``(0, 0)``), suitable for :func:`crop_back`.
    """
    nsp = 3 if isinstance(multiple, int) else len(multiple)
    mult = (multiple,) * nsp if isinstance(multiple, int) else tuple(multiple)
    if x.ndim < nsp:
        raise ValueError(f"array has {x.ndim} dims, need at least {nsp}")
    spec: list[tuple[int, int]] = [(0, 0)] * (x.ndim - nsp)
    for size, m in zip(x.shape[-nsp:], mult, strict=True):
        if m < 1:
            raise ValueError("multiple must be >= 1")
        total = (-size) % m
        spec.append((total // 2, total - total // 2))
    if all(p == (0, 0) for p in spec):
        return x, tuple(spec)
    return np.pad(x, spec, mode="constant", constant_values=value), tuple(spec)


def crop_back(x: np.ndarray, pad_spec: PadSpec) -> np.ndarray:
    """Exact inverse of :func:`pad_to_multiple` (applied to the trailing axes of ``x``)."""
    lead = x.ndim - len(pad_spec)
    if lead < 0:
        raise ValueError("pad_spec has more axes than the array")
    sl: list[slice] = [slice(None)] * lead
    for (before, after), size in zip(pad_spec, x.shape[lead:], strict=True):
        sl.append(slice(before, size - after))
    return x[tuple(sl)]


def preprocess_volume(
    data: np.ndarray,
    brain_mask: np.ndarray | None,
    config: PreprocessConfig | None,
    multiple: int,
) -> tuple[np.ndarray, PadSpec]:
    """Normalise then pad: what the network sees.  Returns ``(padded, pad_spec)``."""
    norm = normalize_intensity(data, brain_mask, config)
    return pad_to_multiple(norm, multiple)
