r"""``linear:N``: linear downsampling by N, then linear interpolation back to the grid.

Conventions (see :mod:`bids_stroke.degradation`): a low-resolution voxel ``k`` of factor
``N`` covers the original voxels ``[kN, kN + N)`` and is centred at
:math:`c_k = kN + (N - 1)/2`; the low-resolution axis has ``m = ceil(n / N)`` voxels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bids_stroke.degradation.base import FactorCondition, axes_phrase
from bids_stroke.degradation.volume import (
    EPS,
    as_factors,
    as_volume,
    check_length,
    check_zooms,
    interp_linear,
)

__all__ = ["Linear", "linear_resample"]


def linear_resample(data: np.ndarray, factors: float | Sequence[float]) -> np.ndarray:
    r"""Linear downsampling by ``factors`` then linear upsampling to the original grid.

    Along each axis with factor :math:`N` (real, >= 1) and length :math:`n`:

    1. down: ``m = ceil(n / N)`` samples at :math:`c_k = kN + (N-1)/2`
       (linear interpolation, clamped to ``[0, n-1]``); for ``N = 2`` this is the
       mean of voxel pairs, for odd ``N`` it picks the central voxel (no
       anti-aliasing prefilter, like ``scipy.ndimage.zoom(order=1)``);
    2. up: voxel :math:`i` is read at low-resolution coordinate
       :math:`u_i = (i - (N-1)/2) / N` (linear, clamped to ``[0, m-1]``).

    ``N = 1`` is the identity; constants stay constant and linear ramps stay
    ramps away from the borders.

    Parameters
    ----------
    data : ndarray, shape (X, Y, Z)
    factors : float or sequence of 3 float
        Factors >= 1 per axis.

    Returns
    -------
    ndarray, float32, same shape
    """
    arr = as_volume(data)
    fs = as_factors(factors)
    check_length(arr.shape, fs, "linear_resample")
    out = arr
    for axis, f in enumerate(fs):
        if f == 1:
            continue
        n = arr.shape[axis]
        m = max(1, math.ceil(n / f - EPS))
        offset = (f - 1.0) / 2.0
        low = interp_linear(out, np.arange(m) * f + offset, axis)
        out = interp_linear(low, (np.arange(n) - offset) / f, axis)
    return out.copy() if out is arr else out


@dataclass(frozen=True)
class Linear(FactorCondition):
    """Linear down/up sampling by per-axis factors."""

    kind = "linear"
    form = "linear:N"

    @property
    def description(self) -> str:
        return (f"Linear downsampling by {axes_phrase(self.factors)}, then linear interpolation "
                "back to the original grid.")

    def apply(self, data: np.ndarray, zooms: Sequence[float]) -> np.ndarray:
        check_zooms(zooms)
        return linear_resample(data, self.factors)
