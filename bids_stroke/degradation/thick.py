r"""``thick:T``: a simulated thick-slice acquisition along one axis.

Effective resolution: along the slice axis ``max(zoom, T + G)`` -- the distance between the
centres of consecutive simulated slices (the pitch), which is what the low-resolution stack
actually samples; a gap therefore coarsens the resolution even though the slice profile keeps
FWHM ``T``. Other axes keep their zoom. ``max`` with the native zoom reflects that a slice
thinner than the native voxel cannot improve resolution.

Unless ``axis=x|y|z`` is given, the slice axis is the axis of lowest resolution, i.e. the
largest zoom; ties (within 1e-6 relative) go to the last axis, so an isotropic image is sliced
along ``z`` (axial slices for RAS-like orientations).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bids_stroke.degradation.base import Condition, choice, fail, fmt, num, parse_number
from bids_stroke.degradation.base import parse_options as _parse_options
from bids_stroke.degradation.base import tag as _tag
from bids_stroke.degradation.volume import (
    AXES,
    EPS,
    as_volume,
    check_zooms,
    interp_linear,
    interp_nearest,
    resolve_slice_axis,
)

__all__ = ["FWHM_TO_SIGMA", "Thick", "thick_slice_stack", "thick_slices"]

#: Gaussian sigma = FWHM * FWHM_TO_SIGMA (FWHM = 2 sqrt(2 ln 2) sigma ~= 2.3548 sigma).
FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))

PROFILES = ("gaussian", "boxcar")
INTERPS = ("linear", "nearest")
OPTIONS = ("gap", "profile", "interp", "axis")


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
    kernel: np.ndarray = w / w.sum()
    return kernel


def _thick_setup(
    arr: np.ndarray,
    zooms: Sequence[float],
    thickness_mm: float,
    axis: int | str | None,
    gap_mm: float,
    profile: str,
) -> tuple[int, float, float]:
    """Validate thick-slice arguments; return (axis, width_vox, pitch_vox)."""
    z = check_zooms(zooms)
    ax = resolve_slice_axis(z, axis)
    t = float(thickness_mm)
    g = float(gap_mm)
    if not math.isfinite(t) or t <= 0:
        raise ValueError(f"thickness_mm must be > 0, got {thickness_mm!r}")
    if not math.isfinite(g) or g < 0:
        raise ValueError(f"gap_mm must be >= 0, got {gap_mm!r}")
    if profile not in PROFILES:
        raise ValueError(f"profile must be 'gaussian' or 'boxcar', got {profile!r}")
    d = z[ax]
    n = arr.shape[ax]
    if n < t / d - EPS:
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
    from scipy import ndimage

    arr = as_volume(data)
    ax, width, pitch = _thick_setup(arr, zooms, thickness_mm, axis, gap_mm, profile)
    n = arr.shape[ax]
    out = arr
    if width > 1 + EPS:
        if profile == "gaussian":
            out = ndimage.gaussian_filter1d(
                arr, width * FWHM_TO_SIGMA, axis=ax, mode="nearest", truncate=4.0
            )
        else:
            out = ndimage.correlate1d(arr, _boxcar_kernel(width), axis=ax, mode="nearest")
    n_slices = max(1, math.ceil((n - width) / pitch - EPS) + 1)
    centres = (width - 1.0) / 2.0 + pitch * np.arange(n_slices)
    return interp_linear(out, centres, ax), centres, ax


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
    if interp not in INTERPS:
        raise ValueError(f"interp must be 'linear' or 'nearest', got {interp!r}")
    arr = as_volume(data)
    ax, _, pitch = _thick_setup(arr, zooms, thickness_mm, axis, gap_mm, profile)
    if pitch <= 1 + EPS:
        return arr.copy()
    stack, centres, ax = thick_slice_stack(arr, zooms, thickness_mm, ax, gap_mm, profile)
    u = (np.arange(arr.shape[ax]) - centres[0]) / pitch
    if interp == "linear":
        result = interp_linear(stack, u, ax)
    else:
        result = interp_nearest(stack, u, ax)
    return np.ascontiguousarray(result, dtype=np.float32)


def _mm(spec: str, text: str, what: str) -> float:
    return parse_number(spec, text[:-2] if text.endswith("mm") else text, what)


@dataclass(frozen=True)
class Thick(Condition):
    """``thick:T[:gap=G][:profile=gaussian|boxcar][:interp=linear|nearest][:axis=x|y|z]``."""

    thickness_mm: float = 1.0
    gap_mm: float = 0.0
    profile: str = "gaussian"
    interp: str = "linear"
    axis: str | None = None

    kind = "thick"
    form = ("thick:T[:gap=G][:profile=gaussian|boxcar][:interp=linear|nearest]"
            "[:axis=x|y|z]")
    changes_slice_profile = True

    @classmethod
    def parse(cls, spec: str, args: list[str]) -> Thick:
        if len(args) < 1 or args[0].strip() == "":
            raise fail(spec, "thick needs a slice thickness in mm, e.g. thick:5")
        text = args[0].strip()
        thickness = _mm(spec, text, "thickness")
        if thickness <= 0:
            raise fail(spec, f"thickness {text[:-2] if text.endswith('mm') else text!r} "
                             "must be > 0 mm")
        options = _parse_options(spec, args[1:], OPTIONS)
        gap_text = options.get("gap", "0")
        gap = _mm(spec, gap_text, "gap")
        if gap < 0:
            raise fail(spec, f"gap {gap_text[:-2] if gap_text.endswith('mm') else gap_text!r} "
                             "must be >= 0 mm")
        axis = options.get("axis")
        return cls(
            thickness_mm=thickness,
            gap_mm=gap,
            profile=choice(spec, "profile", options.get("profile", "gaussian"), PROFILES),
            interp=choice(spec, "interp", options.get("interp", "linear"), INTERPS),
            axis=None if axis is None else choice(spec, "axis", axis, AXES),
        )

    @classmethod
    def from_strength(cls, value: float) -> Thick:
        return cls(thickness_mm=float(value))

    @property
    def spec(self) -> str:
        canon = f"thick:{fmt(self.thickness_mm)}"
        if self.gap_mm > 0:
            canon += f":gap={fmt(self.gap_mm)}"
        if self.profile != "gaussian":
            canon += f":profile={self.profile}"
        if self.interp != "linear":
            canon += f":interp={self.interp}"
        if self.axis is not None:
            canon += f":axis={self.axis}"
        return canon

    @property
    def label(self) -> str:
        label = f"thick{_tag(self.thickness_mm)}mm"
        if self.gap_mm > 0:
            label += f"gap{_tag(self.gap_mm)}mm"
        if self.profile != "gaussian":
            label += self.profile
        if self.interp != "linear":
            label += self.interp
        if self.axis is not None:
            label += f"axis{self.axis}"
        return label

    @property
    def description(self) -> str:
        t = fmt(self.thickness_mm)
        where = f"along {self.axis}" if self.axis else "along the lowest-resolution axis"
        gap_text = f" with a {fmt(self.gap_mm)} mm gap" if self.gap_mm > 0 else ""
        return (
            f"Simulated thick-slice acquisition: {t} mm slices ({self.profile} slice "
            f"profile, FWHM {t} mm){gap_text} {where}, resliced to the original "
            f"grid by {self.interp} interpolation."
        )

    @property
    def params(self) -> dict[str, Any]:
        return {
            "thickness_mm": num(self.thickness_mm),
            "gap_mm": num(self.gap_mm),
            "profile": self.profile,
            "interp": self.interp,
            "axis": self.axis,
        }

    def phrase(self, size: str | None) -> str:
        text = f"{self.thickness_mm:g} mm slices"
        return text + (f" with {self.gap_mm:g} mm gaps" if self.gap_mm else "")

    def slice_axis(self, zooms: Sequence[float]) -> int:
        return resolve_slice_axis(zooms, self.axis)

    def coarsest_axis(self, zooms: Sequence[float]) -> int:
        return self.slice_axis(zooms)

    def effective_zooms(self, zooms: Sequence[float]) -> tuple[float, float, float]:
        z = list(check_zooms(zooms))
        ax = self.slice_axis(z)
        z[ax] = max(z[ax], self.thickness_mm + self.gap_mm)
        return (z[0], z[1], z[2])

    def check_fits(self, shape: Sequence[int], zooms: Sequence[float]) -> None:
        z = check_zooms(zooms)
        ax = resolve_slice_axis(z, self.axis)
        n = int(shape[ax])
        t = self.thickness_mm
        if n < t / z[ax] - EPS:
            raise ValueError(
                f"{self.spec}: axis {ax} spans {n * z[ax]:g} mm ({n} voxels "
                f"of {z[ax]:g} mm), thinner than one {t:g} mm slice"
            )

    def apply(self, data: np.ndarray, zooms: Sequence[float]) -> np.ndarray:
        check_zooms(zooms)
        return thick_slices(data, zooms, self.thickness_mm, axis=self.axis,
                            gap_mm=self.gap_mm, profile=self.profile, interp=self.interp)
