"""Per-axis resolution of each condition, for plots and sentences a reader can check.

The metric tables store ``effective_resolution_mm``, the cube root of the effective voxel
volume: ``thick:5`` on a 1 mm grid is 1.71 mm there, while a reader expects 5 mm slices. The
per-axis effective voxel size comes from the condition itself
(:meth:`bids_stroke.degradation.Condition.effective_zooms`) applied to the grid it was simulated
on. That grid (the template grid, or the image grid of an input already in template space) is
taken to be isotropic, and its spacing ``s`` is recovered from the stored value:
``effective_resolution_mm(spec, (s, s, s))`` is increasing in ``s``, so it is inverted by
bisection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bids_stroke.degradation import Condition, ConditionError, parse_condition

__all__ = ["ConditionGeometry", "condition_geometry", "condition_phrase", "grid_spacing"]


@dataclass(frozen=True)
class ConditionGeometry:
    """Effective voxel size of a condition: per axis, in-plane and through-plane (mm)."""

    zooms: tuple[float, float, float]
    slice_axis: int

    @property
    def through_plane_mm(self) -> float:
        """Spacing along the slice axis (slice thickness + gap for ``thick``)."""
        return self.zooms[self.slice_axis]

    @property
    def in_plane_mm(self) -> float:
        """Largest spacing of the two in-plane axes."""
        return max(z for i, z in enumerate(self.zooms) if i != self.slice_axis)

    def voxel_text(self) -> str:
        """``2 mm`` (isotropic) or ``1 x 1 x 5 mm``."""
        z = [f"{v:.3g}" for v in self.zooms]
        return f"{z[0]} mm" if len(set(z)) == 1 else f"{z[0]} x {z[1]} x {z[2]} mm"


def _grid_spacing(cond: Condition, effective_mm: float) -> float:
    def eff(s: float) -> float:
        return cond.effective_resolution_mm((s, s, s))

    lo, hi = 1e-6, max(effective_mm, 1e-6)
    if eff(hi) <= effective_mm:  # only when the condition does not coarsen the grid
        return hi
    for _ in range(80):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if eff(mid) < effective_mm else (lo, mid)
    return (lo + hi) / 2


def _usable(spec: str, effective_resolution_mm: float) -> Condition | None:
    """The condition of ``spec`` when it parses and its stored effective resolution is a
    positive number, else None."""
    try:
        cond = parse_condition(spec)
    except ConditionError:
        return None
    if not (math.isfinite(effective_resolution_mm) and effective_resolution_mm > 0):
        return None
    return cond


def grid_spacing(spec: str, effective_resolution_mm: float) -> float | None:
    """Spacing (mm) of the isotropic grid condition ``spec`` was simulated on, from its stored
    effective resolution (None when the spec or the value is unusable)."""
    cond = _usable(spec, effective_resolution_mm)
    return None if cond is None else _grid_spacing(cond, float(effective_resolution_mm))


def condition_geometry(spec: str, effective_resolution_mm: float) -> ConditionGeometry | None:
    """Per-axis effective zooms of condition ``spec`` given its stored effective resolution.

    Returns None when the spec cannot be parsed or the resolution is not a positive number.
    """
    cond = _usable(spec, effective_resolution_mm)
    if cond is None:
        return None
    s = _grid_spacing(cond, float(effective_resolution_mm))
    grid = (s, s, s)
    zooms = tuple(round(z, 4) for z in cond.effective_zooms(grid))
    return ConditionGeometry(zooms=(zooms[0], zooms[1], zooms[2]),
                             slice_axis=cond.coarsest_axis(grid))


def condition_phrase(spec: str, geometry: ConditionGeometry | None) -> str:
    """Words for a condition in a sentence: ``native``, ``linear 2 mm``, ``5 mm slices``..."""
    try:
        cond = parse_condition(spec)
    except ConditionError:
        return spec
    return cond.phrase(geometry.voxel_text() if geometry is not None else None)
