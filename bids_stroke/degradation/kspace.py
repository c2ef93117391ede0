r"""``kspace:N``: keep the central 1/N of k-space along each axis (zero-filled reconstruction).

The effective resolution is ``zoom_i * factor_i``: the sampling interval whose Nyquist
frequency equals the k-space cut-off.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bids_stroke.degradation.base import FactorCondition, axes_phrase, choice
from bids_stroke.degradation.volume import (
    EPS,
    as_factors,
    as_volume,
    check_length,
    check_zooms,
    shape_along,
)

__all__ = ["KSpace", "kspace_truncate"]

WINDOWS = ("none", "tukey", "hamming")


def _band_weights(n: int, factor: float, window: str | None, *, half: bool) -> np.ndarray:
    r"""Weights over the FFT frequencies of one axis (unshifted order).

    Integer frequencies :math:`f` (``fftfreq(n) * n``, or ``rfftfreq`` if ``half``),
    cut-off :math:`f_c = n / (2N)`: weight 1 for :math:`|f| < f_c`, 1/2 at
    :math:`|f| = f_c` (the Nyquist frequency of an ``n/N``-sample acquisition,
    split symmetrically so that the output stays real), 0 above; times the window
    :math:`w(|f|/f_c)`: Hamming :math:`0.54 + 0.46\cos(\pi r)`, or Tukey
    (:math:`\alpha = 0.5`): 1 for :math:`r \le 1/2`, else
    :math:`\tfrac12[1 + \cos(2\pi(r - 1/2))]`.
    """
    f = np.abs(np.fft.rfftfreq(n) * n if half else np.fft.fftfreq(n) * n)
    fc = n / (2.0 * factor)
    w = np.where(f < fc - EPS, 1.0, np.where(np.abs(f - fc) <= EPS, 0.5, 0.0))
    if window is not None:
        r = np.clip(f / fc, 0.0, 1.0)
        if window == "hamming":
            w = w * (0.54 + 0.46 * np.cos(np.pi * r))
        elif window == "tukey":
            alpha = 0.5
            taper = 0.5 * (1.0 + np.cos(np.pi * (r - (1.0 - alpha)) / alpha))
            w = w * np.where(r <= 1.0 - alpha, 1.0, taper)
        else:
            raise ValueError(f"window must be None, 'tukey' or 'hamming', got {window!r}")
    return w


def kspace_truncate(
    data: np.ndarray,
    factors: float | Sequence[float],
    window: str | None = None,
) -> np.ndarray:
    r"""Keep the central ``1/N`` of k-space along each axis (zero-filled reconstruction).

    With :math:`F` the discrete Fourier transform and per-axis weights
    :math:`H_a(f)` (see below),

    .. math:: y = \operatorname{Re} F^{-1}\big[ H_x H_y H_z \cdot F x \big].

    Along an axis of length :math:`n` and factor :math:`N > 1`, frequencies
    :math:`|f| < n/(2N)` (cycles per field of view) are kept, the cut-off
    :math:`|f| = n/(2N)` itself gets weight 1/2 (it is the Nyquist frequency of a
    ``n/N``-sample acquisition) and higher frequencies are zeroed -- this is
    ``fftshift(fftn(x))`` with the central ``n/N`` lines kept, computed with the
    unshifted real FFT (equivalent, faster). An optional ``window``
    (``'tukey'``, alpha = 0.5, or ``'hamming'``) tapers the kept band against
    Gibbs ringing. Axes with factor 1 are neither truncated nor windowed, so
    ``factors=1`` is the identity. Computed in single precision.

    Parameters
    ----------
    data : ndarray, shape (X, Y, Z)
    factors : float or sequence of 3 float
        Factors >= 1 per axis.
    window : {None, 'tukey', 'hamming'}

    Returns
    -------
    ndarray, float32, same shape
    """
    import scipy.fft

    arr = as_volume(data)
    fs = as_factors(factors)
    if window not in (None, "none", "tukey", "hamming"):
        raise ValueError(f"window must be None, 'tukey' or 'hamming', got {window!r}")
    win = None if window in (None, "none") else window
    check_length(arr.shape, fs, "kspace_truncate")
    axes = [a for a, f in enumerate(fs) if f > 1]
    if not axes:
        return arr.copy()
    spec = scipy.fft.rfftn(arr, axes=axes, workers=1)
    for a in axes:
        w = _band_weights(arr.shape[a], fs[a], win, half=(a == axes[-1]))
        spec *= w.astype(np.float32).reshape(shape_along(3, a, w.size))
    out = scipy.fft.irfftn(spec, s=[arr.shape[a] for a in axes], axes=axes, workers=1)
    return np.ascontiguousarray(out.real, dtype=np.float32)


@dataclass(frozen=True)
class KSpace(FactorCondition):
    """``kspace:N[:window=tukey|hamming]``: central 1/N of k-space kept."""

    window: str | None = None

    kind = "kspace"
    form = "kspace:N[:window=tukey|hamming]"
    options = ("window",)

    @classmethod
    def parse(cls, spec: str, args: list[str]) -> KSpace:
        factors, options = cls.parse_factor_args(spec, args)
        window = choice(spec, "window", options.get("window", "none"), WINDOWS)
        return cls(factors, None if window == "none" else window)

    @property
    def spec(self) -> str:
        return f"kspace:{self.factor_text}" + (f":window={self.window}" if self.window else "")

    @property
    def label(self) -> str:
        return f"kspace{self.factor_tag}{self.window or ''}"

    @property
    def description(self) -> str:
        wtext = f"with a {self.window} window" if self.window else "without window"
        return (f"k-space truncation keeping the central 1/N of k-space for "
                f"{axes_phrase(self.factors)} {wtext}, as in a lower-resolution acquisition "
                "reconstructed on the original grid.")

    @property
    def params(self) -> dict[str, Any]:
        return {**super().params, "window": self.window}

    def phrase(self, size: str | None) -> str:
        extra = f" ({self.window} window)" if self.window else ""
        return self.sized_phrase("k-space", size) + extra

    def apply(self, data: np.ndarray, zooms: Sequence[float]) -> np.ndarray:
        check_zooms(zooms)
        return kspace_truncate(data, self.factors, window=self.window)
