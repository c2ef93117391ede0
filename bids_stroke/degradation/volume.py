"""Shared helpers of the degradations: input checks, slice axis, 1-D interpolation (numpy).

Voxel ``i`` of an axis is centred at index coordinate ``i`` and covers ``[i - 1/2, i + 1/2)``;
coordinates outside ``[0, n - 1]`` are clamped to the edge (edge replication).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "EPS",
    "as_factors",
    "as_volume",
    "check_length",
    "check_zooms",
    "interp_linear",
    "interp_nearest",
    "resolve_slice_axis",
    "shape_along",
]

EPS = 1e-9
AXES = ("x", "y", "z")


def as_volume(data: np.ndarray, name: str = "data") -> np.ndarray:
    """Validate a 3-D finite numeric array and return it as C-contiguous float32."""
    arr = np.asarray(data)
    if arr.ndim != 3:
        raise ValueError(
            f"{name} must be a 3-D volume, got a {arr.ndim}-D array of shape {arr.shape}"
        )
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be real numeric (bool/int/float), got dtype {arr.dtype}")
    if min(arr.shape) < 1:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    out = np.ascontiguousarray(arr, dtype=np.float32)
    if arr.dtype.kind == "f" and not np.isfinite(out).all():
        n_bad = int(np.count_nonzero(~np.isfinite(out)))
        raise ValueError(
            f"{name} contains {n_bad} NaN/Inf voxel(s) (or values beyond float32 range); "
            "replace them (e.g. np.nan_to_num) before degrading"
        )
    return out


def as_factors(factors: float | Sequence[float], *, integer: bool = False) -> tuple[float, ...]:
    """Three per-axis factors >= 1 from a number or a sequence of three."""
    fs: tuple[float, ...]
    if isinstance(factors, Sequence | np.ndarray):
        fs = tuple(float(f) for f in factors)
    else:
        fs = (float(factors),) * 3
    if len(fs) != 3:
        raise ValueError(f"factors must be a number or three numbers, got {factors!r}")
    for f in fs:
        if not math.isfinite(f) or f < 1:
            raise ValueError(f"factors must be finite and >= 1, got {factors!r}")
        if integer and not f.is_integer():
            raise ValueError(f"crude factors must be integers, got {factors!r}")
    return fs


def check_length(shape: tuple[int, ...], factors: Sequence[float], what: str) -> None:
    """Refuse an axis shorter than its factor (the volume is too small for the condition)."""
    for ax, (n, f) in enumerate(zip(shape, factors, strict=True)):
        if f > 1 and n < f:
            raise ValueError(
                f"{what}: axis {ax} has {n} voxel(s), fewer than the factor {f:g}; "
                "the volume is too small for this condition"
            )


def check_zooms(zooms: Sequence[float]) -> tuple[float, float, float]:
    """Three positive finite voxel sizes (mm)."""
    z = tuple(float(v) for v in zooms)
    if len(z) != 3 or not all(math.isfinite(v) and v > 0 for v in z):
        raise ValueError(f"zooms must be three positive finite numbers (mm), got {tuple(zooms)!r}")
    return (z[0], z[1], z[2])


def resolve_slice_axis(zooms: Sequence[float], axis: int | str | None = None) -> int:
    """Return the slice axis index (0, 1 or 2).

    Parameters
    ----------
    zooms : sequence of float
        Voxel size in mm along (x, y, z).
    axis : {None, 0, 1, 2, 'x', 'y', 'z'}
        Explicit axis. ``None`` picks the axis of lowest resolution (largest
        zoom); ties within 1e-6 relative go to the last such axis (``z`` for
        isotropic voxels).
    """
    z = check_zooms(zooms)
    if axis is None:
        top = max(z)
        return max(i for i, v in enumerate(z) if v >= top * (1 - 1e-6))
    if isinstance(axis, str):
        if axis not in AXES:
            raise ValueError(f"axis must be one of x, y, z, got {axis!r}")
        return AXES.index(axis)
    if int(axis) not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis!r}")
    return int(axis)


def shape_along(ndim: int, axis: int, n: int) -> tuple[int, ...]:
    """A broadcastable shape with ``n`` along ``axis`` and 1 elsewhere."""
    shape = [1] * ndim
    shape[axis] = n
    return tuple(shape)


def interp_linear(arr: np.ndarray, coords: np.ndarray, axis: int) -> np.ndarray:
    """Linear interpolation of ``arr`` at index ``coords`` along ``axis`` (clamped to edge).

    ``out[..., j, ...] = (1 - w_j) arr[..., i_j, ...] + w_j arr[..., i_j + 1, ...]`` with
    ``i_j = floor(c_j)`` and ``w_j = c_j - i_j`` after clamping ``c_j`` to ``[0, n - 1]``.
    """
    n = arr.shape[axis]
    c = np.clip(np.asarray(coords, dtype=np.float64), 0.0, n - 1)
    if n == 1:
        return np.repeat(arr, c.size, axis=axis)
    i0 = np.minimum(np.floor(c).astype(np.intp), n - 2)
    w = (c - i0).astype(np.float32).reshape(shape_along(arr.ndim, axis, c.size))
    lo: np.ndarray = np.take(arr, i0, axis=axis)
    hi = np.take(arr, i0 + 1, axis=axis)
    hi -= lo
    hi *= w
    lo += hi
    return lo


def interp_nearest(arr: np.ndarray, coords: np.ndarray, axis: int) -> np.ndarray:
    """Nearest-neighbour sampling at index ``coords`` along ``axis`` (ties round up, clamped)."""
    n = arr.shape[axis]
    idx = np.clip(np.floor(np.asarray(coords, dtype=np.float64) + 0.5), 0, n - 1).astype(np.intp)
    return np.take(arr, idx, axis=axis)
