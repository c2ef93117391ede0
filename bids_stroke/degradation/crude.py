r"""``crude:N``: keep every N-th voxel and repeat it N times (no smoothing).

Along each axis with factor :math:`N`,

.. math:: y_i = x_{N \lfloor i / N \rfloor},

i.e. ``np.repeat(x[::N], N)[:n]``: decimation (``x[::N]``) followed by nearest-neighbour
upsampling, cropped back to the original length. This reproduces the original study's "crude"
resolution reduction, including its aliasing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bids_stroke.degradation.base import FactorCondition, axes_phrase
from bids_stroke.degradation.volume import as_factors, as_volume, check_length, check_zooms

__all__ = ["Crude", "crude_decimate"]


def crude_decimate(data: np.ndarray, factors: int | Sequence[int]) -> np.ndarray:
    r"""Crude reduction: keep every N-th voxel and repeat it N times (no smoothing).

    Along each axis with factor :math:`N`, :math:`y_i = x_{N \lfloor i / N \rfloor}`
    (the repeated axis has ``N ceil(n/N) >= n`` voxels, so only cropping is needed).

    Parameters
    ----------
    data : ndarray, shape (X, Y, Z)
        Input volume (bool/int/float, finite).
    factors : int or sequence of 3 int
        Integer factors >= 1 per axis.

    Returns
    -------
    ndarray, float32, same shape
    """
    arr = as_volume(data)
    fs = as_factors(factors, integer=True)
    check_length(arr.shape, fs, "crude_decimate")
    out = arr
    for axis, f in enumerate(fs):
        n_f = int(f)
        if n_f == 1:
            continue
        idx = (np.arange(arr.shape[axis]) // n_f) * n_f
        out = np.take(out, idx, axis=axis)
    return out.copy() if out is arr else out


@dataclass(frozen=True)
class Crude(FactorCondition):
    """Every N-th voxel kept and repeated back to the original grid."""

    kind = "crude"
    form = "crude:N"
    integer = True

    @property
    def description(self) -> str:
        return (f"Crude reduction by {axes_phrase(self.factors)}: every N-th voxel is kept and "
                "repeated (nearest neighbour) back to the original grid, without smoothing.")

    def apply(self, data: np.ndarray, zooms: Sequence[float]) -> np.ndarray:
        check_zooms(zooms)
        return crude_decimate(data, [int(f) for f in self.factors])
