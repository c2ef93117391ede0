"""Resolution degradations: the condition spec language and the simulations it names.

A *condition* is the independent variable of every study run by ``bids_stroke``. It is written
as a short spec string, used by the CLI ``--conditions`` option and by ``pipelines/*.yml``::

    native                      the image as provided
    crude:N | crude:AxBxC       keep every N-th voxel, repeat it N times (integer N >= 1)
    linear:N | linear:AxBxC     linear downsampling by N then linear upsampling (N >= 1)
    thick:T[:gap=G][:profile=gaussian|boxcar][:interp=linear|nearest][:axis=x|y|z]
                                T mm thick slices every T+G mm along the slice axis
    kspace:N[:window=tukey|hamming] | kspace:AxBxC[...]
                                keep the central 1/N of k-space along each axis

Each kind is one class (a frozen dataclass subclass of :class:`Condition`) in its own module,
with its mathematics beside it: :mod:`.native`, :mod:`.crude`, :mod:`.linear`, :mod:`.thick`,
:mod:`.kspace`; :data:`KINDS` registers them. A parsed condition has a canonical ``spec``
(defaults omitted, equal per-axis factors collapsed, e.g. ``crude:2x2x2`` -> ``crude:2``), a
unique alphanumeric BIDS ``desc`` ``label`` (``crude2``, ``crude2x2x4``, ``thick2p5mm``,
``thick5mmgap1mmboxcar``, ``kspace2tukey``, ...), a one-sentence ``description``, a
JSON-serialisable ``params`` dict, its effective voxel size
(:meth:`Condition.effective_zooms`) and :meth:`Condition.apply`.

Conventions of every degradation
--------------------------------
Every function takes a 3-D array and returns a ``float32`` array of the **same shape** (the
degraded image reconstructed on the original grid), so that a segmentation model always sees
the same field of view and the metrics compare voxel-wise with the native reference.

Voxel ``i`` of an axis is centred at index coordinate ``i`` and covers ``[i - 1/2, i + 1/2)``.
A low-resolution voxel ``k`` of factor ``N`` covers the original voxels ``[kN, kN + N)`` and is
centred at ``c_k = kN + (N - 1)/2``, so the first low-resolution voxel starts at the same edge
as the original grid (as in ``scipy.ndimage.zoom(..., grid_mode=True)``). The low-resolution
axis has ``m = ceil(n / N)`` voxels. Coordinates outside ``[0, n - 1]`` (resp. ``[0, m - 1]``)
are clamped to the edge. All operations are separable and applied one axis at a time.

Input checks: the array must be 3-D, numeric (bool/int/float; cast to ``float32``) and finite
-- NaN/Inf raise :class:`ValueError`. An axis shorter than the factor (or than the slice
thickness) raises :class:`ValueError`.

Effective resolution convention
-------------------------------
``effective_zooms(zooms)`` returns the voxel spacing (mm) of the simulated *acquisition*:
``native`` the zooms themselves; ``crude``/``linear``/``kspace`` with factors ``(a, b, c)``
``zoom_i * factor_i``; ``thick:T:gap=G`` ``max(zoom, T + G)`` along the slice axis (see
:mod:`.thick`). ``effective_resolution_mm(zooms)`` is the cube root of the effective voxel
volume.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from bids_stroke.degradation.base import VALID_FORMS, Condition, ConditionError, fail
from bids_stroke.degradation.crude import Crude, crude_decimate
from bids_stroke.degradation.kspace import KSpace, kspace_truncate
from bids_stroke.degradation.linear import Linear, linear_resample
from bids_stroke.degradation.native import Native
from bids_stroke.degradation.thick import (
    FWHM_TO_SIGMA,
    Thick,
    thick_slice_stack,
    thick_slices,
)
from bids_stroke.degradation.volume import as_volume, resolve_slice_axis

__all__ = [
    "FWHM_TO_SIGMA",
    "KINDS",
    "VALID_FORMS",
    "Condition",
    "ConditionError",
    "Crude",
    "KSpace",
    "Linear",
    "Native",
    "Thick",
    "apply_condition",
    "check_condition_fits",
    "crude_decimate",
    "degrade_mask",
    "kspace_truncate",
    "linear_resample",
    "parse_condition",
    "parse_conditions",
    "resolve_slice_axis",
    "thick_slice_stack",
    "thick_slices",
]

#: every condition kind, by the first word of its spec
KINDS: Mapping[str, type[Condition]] = {
    cls.kind: cls for cls in (Native, Crude, Linear, Thick, KSpace)
}


def parse_condition(spec: str | Condition) -> Condition:
    """Parse one condition spec (case-insensitive, surrounding spaces ignored).

    Parameters
    ----------
    spec : str or Condition
        E.g. ``"native"``, ``"crude:2"``, ``"linear:1x1x3"``, ``"thick:5:gap=1"``,
        ``"kspace:2:window=tukey"``. A :class:`Condition` is returned unchanged.

    Raises
    ------
    ConditionError
        With a one-line message naming the bad spec and the valid forms.
    """
    if isinstance(spec, Condition):
        return spec
    if not isinstance(spec, str):
        raise ConditionError(
            f"invalid condition {spec!r}: expected a string; valid forms: {VALID_FORMS}"
        )
    text = spec.strip().lower()
    if not text:
        raise fail(spec, "empty spec")
    kind, *args = (p.strip() for p in text.split(":"))
    cls = KINDS.get(kind)
    if cls is None:
        raise ConditionError(f"unknown condition {spec!r}; valid kinds: {VALID_FORMS}")
    return cls.parse(spec, args)


def parse_conditions(specs: Sequence[str | Condition] | str) -> list[Condition]:
    """Parse several specs, keeping order and rejecting duplicates.

    A single string may hold comma- or whitespace-separated specs. Raises
    :class:`ConditionError` if a spec is invalid, the list is empty, or two specs share a label
    (e.g. ``crude:2`` and ``crude:2x2x2``).
    """
    if isinstance(specs, str):
        specs = [s for s in specs.replace(",", " ").split() if s]
    conditions: list[Condition] = []
    seen: dict[str, str] = {}
    for spec in specs:
        cond = parse_condition(spec)
        if cond.label in seen:
            raise ConditionError(
                f"duplicate condition {str(spec)!r}: same label {cond.label!r} as "
                f"{seen[cond.label]!r}; give each condition once"
            )
        seen[cond.label] = str(spec)
        conditions.append(cond)
    if not conditions:
        raise ConditionError(f"no conditions given; valid forms: {VALID_FORMS}")
    return conditions


def check_condition_fits(condition: Condition | str, shape: Sequence[int],
                         zooms: Sequence[float]) -> None:
    """Raise ``ValueError`` (the reason) when ``condition`` cannot apply to a volume of this
    shape and voxel size — the same rules :func:`apply_condition` enforces, without data, so
    impossible conditions (``crude:1e9``, ``kspace:1000``) are refused before any work."""
    parse_condition(condition).check_fits(shape, zooms)


def apply_condition(
    data: np.ndarray, zooms: Sequence[float], condition: Condition | str
) -> np.ndarray:
    """Degrade a volume according to a condition (spec string or :class:`Condition`).

    Returns a ``float32`` array of the shape of ``data``; ``zooms`` (mm) are used by
    ``thick``.
    """
    return parse_condition(condition).apply(data, zooms)


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
    m = as_volume(mask, "mask")
    binary = (m != 0).astype(np.float32)
    degraded = apply_condition(binary, zooms, condition)
    return (degraded >= 0.5).astype(np.uint8)
