r"""Resolution degradations (pure numpy/scipy).

Every function takes a 3-D array and returns a ``float32`` array of the **same
shape** (the degraded image reconstructed on the original grid), so that a
segmentation model always sees the same field of view and the metrics compare
voxel-wise with the native reference.

Conventions
-----------
Voxel ``i`` of an axis is centred at index coordinate ``i`` and covers
``[i - 1/2, i + 1/2)``. A low-resolution voxel ``k`` of factor ``N`` covers the
original voxels ``[kN, kN + N)`` and is centred at

.. math:: c_k = kN + (N - 1)/2,

so the first low-resolution voxel starts at the same edge as the original grid
(as in ``scipy.ndimage.zoom(..., grid_mode=True)``). The low-resolution axis has
``m = ceil(n / N)`` voxels. Coordinates that fall outside ``[0, n - 1]`` (resp.
``[0, m - 1]``) are clamped to the edge (edge replication). All operations are
separable and applied one axis at a time with 1-D interpolation.

Input checks: the array must be 3-D, numeric (bool/int/float; cast to
``float32``) and finite -- NaN/Inf raise :class:`ValueError` (replace them
before degrading, e.g. with ``np.nan_to_num``). An axis shorter than the factor
(or than the slice thickness) raises :class:`ValueError`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.fft
from scipy import ndimage

from bids_stroke.conditions import Condition, parse_condition, resolve_slice_axis

__all__ = [
    "FWHM_TO_SIGMA",
    "apply_condition",
    "check_condition_fits",
    "crude_decimate",
    "degrade_mask",
    "kspace_truncate",
    "linear_resample",
    "thick_slice_stack",
    "thick_slices",
]

#: Gaussian sigma = FWHM * FWHM_TO_SIGMA (FWHM = 2 sqrt(2 ln 2) sigma ~= 2.3548 sigma).
FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))

_EPS = 1e-9


# ----------------------------------------------------------------------------- helpers
def _as_volume(data: np.ndarray, name: str = "data") -> np.ndarray:
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


def _as_factors(factors: float | Sequence[float], *, integer: bool = False) -> tuple[float, ...]:
    if np.isscalar(factors):
        fs = (float(factors),) * 3  # type: ignore[arg-type]
    else:
        fs = tuple(float(f) for f in factors)  # type: ignore[union-attr]
    if len(fs) != 3:
        raise ValueError(f"factors must be a number or three numbers, got {factors!r}")
    for f in fs:
        if not math.isfinite(f) or f < 1:
            raise ValueError(f"factors must be finite and >= 1, got {factors!r}")
        if integer and not f.is_integer():
            raise ValueError(f"crude factors must be integers, got {factors!r}")
    return fs


def _check_length(shape: tuple[int, ...], factors: Sequence[float], what: str) -> None:
    for ax, (n, f) in enumerate(zip(shape, factors, strict=True)):
        if f > 1 and n < f:
            raise ValueError(
                f"{what}: axis {ax} has {n} voxel(s), fewer than the factor {f:g}; "
                "the volume is too small for this condition"
            )


def _check_zooms(zooms: Sequence[float]) -> tuple[float, float, float]:
    z = tuple(float(v) for v in zooms)
    if len(z) != 3 or not all(math.isfinite(v) and v > 0 for v in z):
        raise ValueError(f"zooms must be three positive finite numbers (mm), got {tuple(zooms)!r}")
    return (z[0], z[1], z[2])


def _shape_along(ndim: int, axis: int, n: int) -> tuple[int, ...]:
    shape = [1] * ndim
    shape[axis] = n
    return tuple(shape)


def _interp_linear(arr: np.ndarray, coords: np.ndarray, axis: int) -> np.ndarray:
    """Linear interpolation of ``arr`` at index ``coords`` along ``axis`` (clamped to edge).

    ``out[..., j, ...] = (1 - w_j) arr[..., i_j, ...] + w_j arr[..., i_j + 1, ...]`` with
    ``i_j = floor(c_j)`` and ``w_j = c_j - i_j`` after clamping ``c_j`` to ``[0, n - 1]``.
    """
    n = arr.shape[axis]
    c = np.clip(np.asarray(coords, dtype=np.float64), 0.0, n - 1)
    if n == 1:
        return np.repeat(arr, c.size, axis=axis)
    i0 = np.minimum(np.floor(c).astype(np.intp), n - 2)
    w = (c - i0).astype(np.float32).reshape(_shape_along(arr.ndim, axis, c.size))
    lo = np.take(arr, i0, axis=axis)
    hi = np.take(arr, i0 + 1, axis=axis)
    hi -= lo
    hi *= w
    lo += hi
    return lo


def _interp_nearest(arr: np.ndarray, coords: np.ndarray, axis: int) -> np.ndarray:
    """Nearest-neighbour sampling at index ``coords`` along ``axis`` (ties round up, clamped)."""
    n = arr.shape[axis]
    idx = np.clip(np.floor(np.asarray(coords, dtype=np.float64) + 0.5), 0, n - 1).astype(np.intp)
    return np.take(arr, idx, axis=axis)


# ----------------------------------------------------------------------------- crude
def crude_decimate(data: np.ndarray, factors: int | Sequence[int]) -> np.ndarray:
    r"""Crude reduction: keep every N-th voxel and repeat it N times (no smoothing).

    Along each axis with factor :math:`N`,

    .. math:: y_i = x_{N \lfloor i / N \rfloor},

    i.e. ``np.repeat(x[::N], N)[:n]``: decimation (``x[::N]``) followed by
    nearest-neighbour upsampling, cropped back to the original length (the
    repeated axis has ``N ceil(n/N) >= n`` voxels, so only cropping is needed).
    This reproduces the "crude" resolution reduction, including its aliasing.

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
    arr = _as_volume(data)
    fs = _as_factors(factors, integer=True)
    _check_length(arr.shape, fs, "crude_decimate")
    out = arr
    for axis, f in enumerate(fs):
        n_f = int(f)
        if n_f == 1:
            continue
        idx = (np.arange(arr.shape[axis]) // n_f) * n_f
        out = np.take(out, idx, axis=axis)
    return out.copy() if out is arr else out


# ----------------------------------------------------------------------------- linear
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
    arr = _as_volume(data)
    fs = _as_factors(factors)
    _check_length(arr.shape, fs, "linear_resample")
    out = arr
    for axis, f in enumerate(fs):
        if f == 1:
            continue
        n = arr.shape[axis]
        m = max(1, math.ceil(n / f - _EPS))
        offset = (f - 1.0) / 2.0
        low = _interp_linear(out, np.arange(m) * f + offset, axis)
        out = _interp_linear(low, (np.arange(n) - offset) / f, axis)
    return out.copy() if out is arr else out


# ----------------------------------------------------------------------------- thick
def _boxcar_kernel(width_vox: float) -> np.ndarray:
    """Boxcar of width ``width_vox`` voxels integrated over each voxel (exact partial ends).

    ``w_j = |[j - 1/2, j + 1/2] ∩ [-W/2, W/2]|`` normalised to sum 1; the kernel is
    a trapezoid whose FWHM is exactly ``W`` for ``W >= 1``.
    """
    half = width_vox / 2.0
    r = math.ceil(half + 0.5)
    j = np.arange(-r, r + 1, dtype=np.float64)
    w = np.clip(np.minimum(j + 0.5, half) - np.maximum(j - 0.5, -half), 0.0, None)
    w = w[w > 0]
    return w / w.sum()


def _thick_setup(
    arr: np.ndarray,
    zooms: Sequence[float],
    thickness_mm: float,
    axis: int | str | None,
    gap_mm: float,
    profile: str,
) -> tuple[int, float, float]:
    """Validate thick-slice arguments; return (axis, width_vox, pitch_vox)."""
    z = _check_zooms(zooms)
    ax = resolve_slice_axis(z, axis)
    t = float(thickness_mm)
    g = float(gap_mm)
    if not math.isfinite(t) or t <= 0:
        raise ValueError(f"thickness_mm must be > 0, got {thickness_mm!r}")
    if not math.isfinite(g) or g < 0:
        raise ValueError(f"gap_mm must be >= 0, got {gap_mm!r}")
    if profile not in ("gaussian", "boxcar"):
        raise ValueError(f"profile must be 'gaussian' or 'boxcar', got {profile!r}")
    d = z[ax]
    n = arr.shape[ax]
    if n < t / d - _EPS:
        raise ValueError(
            f"thick_slices: axis {ax} spans {n * d:g} mm ({n} voxels of {d:g} mm), "
            f"thinner than one {t:g} mm slice"
        )
    return ax, t / d, (t + g) / d


def thick_slice_stack(
    data: np.ndarray,
    zooms: Sequence[float],
    thickness_mm: float,
    axis: int | str | None = None,
    gap_mm: float = 0.0,
    profile: str = "gaussian",
) -> tuple[np.ndarray, np.ndarray, int]:
    r"""The simulated low-resolution slice stack (steps 1-2 of :func:`thick_slices`).

    Returns
    -------
    stack : ndarray, float32
        Same shape as ``data`` except ``K`` slices along the slice axis.
    centres : ndarray, float64, shape (K,)
        Slice centres in voxel-index coordinates of the input axis
        (:math:`s_k = (W - 1)/2 + k p`, before clamping to ``[0, n-1]``).
    axis : int
        The slice axis used.
    """
    arr = _as_volume(data)
    ax, width, pitch = _thick_setup(arr, zooms, thickness_mm, axis, gap_mm, profile)
    n = arr.shape[ax]
    out = arr
    if width > 1 + _EPS:
        if profile == "gaussian":
            out = ndimage.gaussian_filter1d(
                arr, width * FWHM_TO_SIGMA, axis=ax, mode="nearest", truncate=4.0
            )
        else:
            out = ndimage.correlate1d(arr, _boxcar_kernel(width), axis=ax, mode="nearest")
    n_slices = max(1, math.ceil((n - width) / pitch - _EPS) + 1)
    centres = (width - 1.0) / 2.0 + pitch * np.arange(n_slices)
    return _interp_linear(out, centres, ax), centres, ax


def thick_slices(
    data: np.ndarray,
    zooms: Sequence[float],
    thickness_mm: float,
    axis: int | str | None = None,
    gap_mm: float = 0.0,
    profile: str = "gaussian",
    interp: str = "linear",
) -> np.ndarray:
    r"""Simulate a clinical thick-slice acquisition along one axis.

    With slice axis zoom :math:`d` (mm), thickness :math:`T` and gap :math:`G`:

    1. **slice profile**: convolve along the axis with a profile of FWHM :math:`T`:
       a Gaussian with :math:`\sigma = T / (2\sqrt{2\ln 2}) / d` voxels
       (``gaussian_filter1d``, edge mode ``nearest``) or a boxcar of width
       :math:`W = T/d` voxels integrated over each voxel (a trapezoid whose FWHM is
       exactly :math:`W`);
    2. **sampling**: slice centres every :math:`p = (T + G)/d` voxels at
       :math:`s_k = (W - 1)/2 + k p`, :math:`k = 0..K-1`, ``K = ceil((n - W)/p) + 1``
       (the first slice starts at the first voxel's edge, the last covers the
       end of the field of view), read by linear interpolation
       (:func:`thick_slice_stack`);
    3. **reslicing** back to the original grid: voxel :math:`i` reads slice
       coordinate :math:`u_i = (i - s_0)/p` by linear (default) or nearest
       interpolation, clamped to the first/last slice.

    The profile is applied to the native image as if it were the object, so the
    slice sensitivity profile measured on the input grid (response of a slice
    to a point moved through it) has FWHM :math:`T`; the native voxel's own
    blur (about :math:`d`) would add in quadrature in a real scanner. If
    :math:`T \le d` the native voxel is already at least as thick as the
    requested slice: no convolution is applied, and with :math:`T + G \le d` no
    resampling either, so the result is the identity. Between slice centres the
    linear reslicing adds interpolation blur (shift-variant, as in real data).

    Parameters
    ----------
    data : ndarray, shape (X, Y, Z)
    zooms : sequence of 3 float
        Voxel size (mm); anisotropic voxels are supported.
    thickness_mm : float
        Slice thickness (FWHM of the slice profile), > 0.
    axis : {None, 0, 1, 2, 'x', 'y', 'z'}
        Slice axis; ``None`` = largest zoom, ties -> last axis (z).
    gap_mm : float
        Gap between slices (>= 0).
    profile : {'gaussian', 'boxcar'}
    interp : {'linear', 'nearest'}
        Reslicing interpolation.

    Returns
    -------
    ndarray, float32, same shape
    """
    if interp not in ("linear", "nearest"):
        raise ValueError(f"interp must be 'linear' or 'nearest', got {interp!r}")
    arr = _as_volume(data)
    ax, _, pitch = _thick_setup(arr, zooms, thickness_mm, axis, gap_mm, profile)
    if pitch <= 1 + _EPS:
        return arr.copy()
    stack, centres, ax = thick_slice_stack(arr, zooms, thickness_mm, ax, gap_mm, profile)
    u = (np.arange(arr.shape[ax]) - centres[0]) / pitch
    if interp == "linear":
        result = _interp_linear(stack, u, ax)
    else:
        result = _interp_nearest(stack, u, ax)
    return np.ascontiguousarray(result, dtype=np.float32)


# ----------------------------------------------------------------------------- k-space
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
    w = np.where(f < fc - _EPS, 1.0, np.where(np.abs(f - fc) <= _EPS, 0.5, 0.0))
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
    arr = _as_volume(data)
    fs = _as_factors(factors)
    if window not in (None, "none", "tukey", "hamming"):
        raise ValueError(f"window must be None, 'tukey' or 'hamming', got {window!r}")
    win = None if window in (None, "none") else window
    _check_length(arr.shape, fs, "kspace_truncate")
    axes = [a for a, f in enumerate(fs) if f > 1]
    if not axes:
        return arr.copy()
    spec = scipy.fft.rfftn(arr, axes=axes, workers=1)
    for a in axes:
        w = _band_weights(arr.shape[a], fs[a], win, half=(a == axes[-1]))
        spec *= w.astype(np.float32).reshape(_shape_along(3, a, w.size))
    out = scipy.fft.irfftn(spec, s=[arr.shape[a] for a in axes], axes=axes, workers=1)
    return np.ascontiguousarray(out.real, dtype=np.float32)


# ----------------------------------------------------------------------------- dispatch
def check_condition_fits(condition: Condition | str, shape: Sequence[int],
                         zooms: Sequence[float]) -> None:
    """Raise ``ValueError`` (the reason) when ``condition`` cannot apply to a volume of this
    shape and voxel size — the same rules :func:`apply_condition` enforces, without data, so
    impossible conditions (``crude:1e9``, ``kspace:1000``) are refused before any work."""
    cond = parse_condition(condition)
    z = _check_zooms(zooms)
    shape3 = tuple(int(n) for n in shape[:3])
    if cond.kind in ("crude", "linear", "kspace"):
        _check_length(shape3, cond.factors, cond.spec)
    elif cond.kind == "thick":
        ax = resolve_slice_axis(z, cond.params["axis"])
        t = float(cond.params["thickness_mm"])
        if shape3[ax] < t / z[ax] - _EPS:
            raise ValueError(
                f"{cond.spec}: axis {ax} spans {shape3[ax] * z[ax]:g} mm ({shape3[ax]} voxels "
                f"of {z[ax]:g} mm), thinner than one {t:g} mm slice"
            )


def apply_condition(
    data: np.ndarray, zooms: Sequence[float], condition: Condition | str
) -> np.ndarray:
    """Degrade a volume according to a condition (spec string or :class:`Condition`).

    Parameters
    ----------
    data : ndarray, shape (X, Y, Z)
    zooms : sequence of 3 float
        Voxel size (mm), used by ``thick``.
    condition : Condition or str

    Returns
    -------
    ndarray, float32, same shape
    """
    cond = parse_condition(condition)
    _check_zooms(zooms)
    p = cond.params
    if cond.kind == "native":
        return _as_volume(data).copy()
    if cond.kind == "crude":
        return crude_decimate(data, [int(f) for f in cond.factors])
    if cond.kind == "linear":
        return linear_resample(data, cond.factors)
    if cond.kind == "thick":
        return thick_slices(
            data,
            zooms,
            float(p["thickness_mm"]),
            axis=p["axis"],
            gap_mm=float(p["gap_mm"]),
            profile=p["profile"],
            interp=p["interp"],
        )
    if cond.kind == "kspace":
        return kspace_truncate(data, cond.factors, window=p["window"])
    raise ValueError(f"unsupported condition kind {cond.kind!r}")  # pragma: no cover


def degrade_mask(
    mask: np.ndarray, zooms: Sequence[float], condition: Condition | str
) -> np.ndarray:
    """Degrade a binary mask by the same geometry as the image, threshold at 0.5.

    Nonzero voxels are lesion. The binary mask (0/1, float32) goes through
    :func:`apply_condition` and voxels with value ``>= 0.5`` are kept (partial
    volume at least one half). Intended for optional analyses only; the
    reference for metrics stays the native mask.

    Returns
    -------
    ndarray, uint8, same shape
    """
    m = _as_volume(mask, "mask")
    binary = (m != 0).astype(np.float32)
    degraded = apply_condition(binary, zooms, condition)
    return (degraded >= 0.5).astype(np.uint8)
