"""Segmentation metrics comparing a predicted lesion mask with a reference mask.

Everything here is pure numpy/scipy and deterministic. The reference is the
native-grid manual lesion mask, the prediction a binary mask on the *same* voxel
grid; ``spacing`` is the voxel size in millimetres (from the affine).

Conventions
-----------
Binarisation
    Without ``threshold`` the inputs must already be binary (boolean, or only the
    values 0 and 1); anything else raises :class:`MetricsInputError`. With
    ``threshold`` a voxel is foreground when its value is strictly greater than
    ``threshold`` (applied to both masks). NaN or infinite values are rejected.
Voxel-wise counts
    ``tp fp fn tn`` are int64 counts over the whole array; ratios are computed in
    float64 (MCC's denominator is a product of four counts and would overflow int64
    on 1 mm whole-brain volumes). A ratio whose denominator is zero is NaN, except
    Dice and Jaccard, which are 1 when both masks are empty (ISLES'22
    ``compute_dice(empty_value=1.0)``).
Surfaces
    The surface of a mask is the set of its voxels removed by one binary erosion
    with the 6-neighbourhood (face-connected) structuring element
    ``scipy.ndimage.generate_binary_structure(3, 1)``, voxels outside the array
    counting as background. This is medpy's default (``connectivity=1``). Distances
    are Euclidean in mm, computed with
    ``scipy.ndimage.distance_transform_edt(sampling=spacing)`` from every surface
    voxel of one mask to the nearest surface voxel of the other (for crops larger
    than :data:`EDT_MAX_VOXELS`, by an exact k-d tree nearest-neighbour query
    instead). Let ``D`` be the pooled set of both directed distance sets (one value
    per surface voxel of either mask). Then ``hd = max(D)``,
    ``hd95 = numpy.percentile(D, 95)`` (linear interpolation) and ``assd = mean(D)``.
    These are exactly ``medpy.metric.binary.hd``, ``hd95`` and ``assd`` of medpy 0.5
    (tested to 1e-6), which pool both directed sets (medpy's ``assd`` is the mean of
    the concatenated sets, not the mean of the two directed means). This HD95 differs
    from the ``max`` of the two directed 95th percentiles (DeepMind surface-distance,
    MONAI ``compute_hausdorff_distance(directed=False)``) when one surface is much
    larger than the other.
    ``surface_dice`` is the normalised surface Dice of Nikolov et al. (2021) at
    ``tolerance_mm`` counted in surface voxels, i.e.
    ``(#{d_pred <= tol} + #{d_ref <= tol}) / (|S_pred| + |S_ref|)`` (as MONAI's
    ``compute_surface_dice`` without sub-voxels). When either mask is empty all four
    are NaN and ``distances_undefined`` is 1 (otherwise 0).
Lesions
    Lesions are connected components (``scipy.ndimage.label``) with ``connectivity``
    26 (default, as ISLES'22 ``eval_utils.py``, which uses ``cc3d`` with
    26-connectivity), 18 or 6 (``scipy.ndimage.label``'s default structure, as used by
    the ATLAS R2.0 evaluation code's ``simple_lesion_count_difference``). A reference
    lesion is a true positive when it overlaps at least one predicted voxel, otherwise
    a false negative; a predicted component is a false positive when it touches no
    reference voxel. ``lesion_f1 = 2 TP / (2 TP + FP + FN)``, identical to ISLES'22
    ``compute_lesion_f1_score`` (``tp / (tp + (fp + fn) / 2)``, ``empty_value=1`` when
    both masks are empty). The ATLAS R2.0 code additionally reports a "lesion count by
    weighted assignment" (Hungarian matching on per-lesion precision); that score is
    not implemented here.
    ``detection_rate = lesion_tp / ref_lesion_count`` (NaN without reference lesions).
Volumes
    ``volume_diff_ml = pred - ref`` (signed), ``abs_volume_diff_ml`` as ISLES'22,
    ``abs_volume_diff_voxels`` as the ATLAS R2.0 challenge, ``rel_volume_diff =
    (pred - ref) / ref`` and ``volume_ratio = pred / ref`` (NaN when the reference is
    empty).

Speed
-----
All computations are restricted to the bounding box of the union of both masks
(plus a one-voxel margin, clipped to the array). This is exact: outside that box
both masks are background, so erosions, connected components and nearest-surface
distances are unchanged, and ``tn`` is completed with the voxel count outside the box.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

__all__ = [
    "METRIC_COLUMNS",
    "METRIC_DESCRIPTIONS",
    "MetricsInputError",
    "binarize",
    "check_same_grid",
    "compute_metrics",
    "lesion_table",
    "load_mask_image",
    "load_pair",
    "spacing_from_affine",
    "surface_distances",
]

METRIC_COLUMNS: tuple[str, ...] = (
    "tp",
    "fp",
    "fn",
    "tn",
    "dice",
    "jaccard",
    "precision",
    "recall",
    "specificity",
    "accuracy",
    "balanced_accuracy",
    "mcc",
    "ref_volume_ml",
    "pred_volume_ml",
    "volume_diff_ml",
    "abs_volume_diff_ml",
    "abs_volume_diff_voxels",
    "rel_volume_diff",
    "volume_ratio",
    "hd",
    "hd95",
    "assd",
    "surface_dice",
    "distances_undefined",
    "ref_lesion_count",
    "pred_lesion_count",
    "abs_lesion_count_diff",
    "lesion_tp",
    "lesion_fp",
    "lesion_fn",
    "lesion_f1",
    "detection_rate",
)

LESION_TABLE_COLUMNS: tuple[str, ...] = (
    "lesion_id",
    "volume_ml",
    "volume_voxels",
    "detected",
    "overlap_fraction",
)

_CONNECTIVITY_RANK = {6: 1, 18: 2, 26: 3}
_SURFACE_STRUCTURE = ndimage.generate_binary_structure(3, 1)
#: Largest cropped grid (voxels) on which surface distances use distance transforms;
#: above it an exact k-d tree on the surface voxels is faster (see ``_directed_distances``).
EDT_MAX_VOXELS = 1_000_000
#: Slack (mm) added to ``tolerance_mm`` so that distances equal to the tolerance up to
#: floating-point rounding (e.g. ``3 * 0.1``) count as within tolerance.
_TOLERANCE_SLACK_MM = 1e-9


class MetricsInputError(ValueError):
    """Invalid input to the metrics (non-binary mask, shape or grid mismatch, ...)."""


def _entry(long_name: str, description: str, units: str | None = None) -> dict[str, str]:
    entry = {"LongName": long_name, "Description": description}
    if units is not None:
        entry["Units"] = units
    return entry


METRIC_DESCRIPTIONS: dict[str, dict[str, str]] = {
    "tp": _entry("True positive voxels", "Voxels labelled lesion in both reference and "
                 "prediction.", "voxels"),
    "fp": _entry("False positive voxels", "Voxels labelled lesion in the prediction only.",
                 "voxels"),
    "fn": _entry("False negative voxels", "Voxels labelled lesion in the reference only.",
                 "voxels"),
    "tn": _entry("True negative voxels", "Voxels labelled background in both masks "
                 "(whole image grid).", "voxels"),
    "dice": _entry("Dice similarity coefficient", "2TP / (2TP + FP + FN); 1 when both "
                   "masks are empty (as ISLES'22)."),
    "jaccard": _entry("Jaccard index", "TP / (TP + FP + FN); 1 when both masks are empty."),
    "precision": _entry("Voxel-wise precision", "TP / (TP + FP); n/a when the prediction "
                        "is empty."),
    "recall": _entry("Voxel-wise recall (sensitivity)", "TP / (TP + FN); n/a when the "
                     "reference is empty."),
    "specificity": _entry("Voxel-wise specificity", "TN / (TN + FP) over the whole image "
                          "grid."),
    "accuracy": _entry("Voxel-wise accuracy", "(TP + TN) / number of voxels."),
    "balanced_accuracy": _entry("Balanced accuracy", "(recall + specificity) / 2; n/a when "
                                "recall is undefined."),
    "mcc": _entry("Matthews correlation coefficient", "(TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)"
                  "(TN+FP)(TN+FN)); n/a when any factor is zero."),
    "ref_volume_ml": _entry("Reference lesion volume", "Number of reference lesion voxels "
                            "times the voxel volume.", "ml"),
    "pred_volume_ml": _entry("Predicted lesion volume", "Number of predicted lesion voxels "
                             "times the voxel volume.", "ml"),
    "volume_diff_ml": _entry("Signed volume difference", "Predicted minus reference lesion "
                             "volume.", "ml"),
    "abs_volume_diff_ml": _entry("Absolute volume difference", "|predicted - reference| "
                                 "lesion volume (ISLES'22).", "ml"),
    "abs_volume_diff_voxels": _entry("Absolute volume difference in voxels",
                                     "|predicted - reference| lesion voxel count (ATLAS "
                                     "R2.0 challenge).", "voxels"),
    "rel_volume_diff": _entry("Relative volume difference", "(predicted - reference) / "
                              "reference volume; n/a when the reference is empty."),
    "volume_ratio": _entry("Volume ratio", "Predicted / reference volume; n/a when the "
                           "reference is empty."),
    "hd": _entry("Hausdorff distance", "Maximum of the pooled surface-to-surface distances "
                 "(both directions); surfaces are mask voxels removed by a 6-neighbourhood "
                 "erosion. n/a when either mask is empty.", "mm"),
    "hd95": _entry("95th percentile Hausdorff distance", "95th percentile (linear "
                   "interpolation) of the pooled surface distances of both directions, as "
                   "medpy.metric.binary.hd95. n/a when either mask is empty.", "mm"),
    "assd": _entry("Average symmetric surface distance", "Mean of the pooled surface "
                   "distances of both directions, as medpy.metric.binary.assd. n/a when "
                   "either mask is empty.", "mm"),
    "surface_dice": _entry("Normalised surface Dice", "Fraction of surface voxels of both "
                           "masks lying within the tolerance (default 2 mm) of the other "
                           "surface (Nikolov et al. 2021). n/a when either mask is empty."),
    "distances_undefined": _entry("Surface distances undefined", "1 when either mask is "
                                  "empty so that hd, hd95, assd and surface_dice are n/a, "
                                  "else 0."),
    "ref_lesion_count": _entry("Reference lesion count", "Connected components of the "
                               "reference mask (26-connectivity unless stated)."),
    "pred_lesion_count": _entry("Predicted lesion count", "Connected components of the "
                                "predicted mask."),
    "abs_lesion_count_diff": _entry("Absolute lesion count difference",
                                    "|predicted - reference| lesion count (ISLES'22)."),
    "lesion_tp": _entry("Detected reference lesions", "Reference lesions overlapping at "
                        "least one predicted voxel."),
    "lesion_fp": _entry("False positive lesions", "Predicted components touching no "
                        "reference voxel."),
    "lesion_fn": _entry("Missed reference lesions", "Reference lesions touching no "
                        "predicted voxel."),
    "lesion_f1": _entry("Lesion-wise F1 score", "2 lesion_tp / (2 lesion_tp + lesion_fp + "
                        "lesion_fn) as ISLES'22; 1 when both masks are empty."),
    "detection_rate": _entry("Lesion detection rate", "lesion_tp / ref_lesion_count; n/a "
                             "when the reference is empty."),
}


# ---------------------------------------------------------------------------------------
# input handling
# ---------------------------------------------------------------------------------------
def binarize(mask: np.ndarray, threshold: float | None = None, *, name: str = "mask"
             ) -> np.ndarray:
    """Return ``mask`` as a boolean array, validating that it is binary.

    Parameters
    ----------
    mask : numpy.ndarray
        Input mask.
    threshold : float, optional
        When given, foreground is ``mask > threshold``. When None, ``mask`` must contain
        only 0 and 1 (or be boolean).
    name : str
        Name used in error messages.

    Returns
    -------
    numpy.ndarray
        Boolean array of the same shape.

    Raises
    ------
    MetricsInputError
        If the mask has non-finite values, or is not binary and no threshold is given.
    """
    arr = np.asarray(mask)
    if arr.dtype == np.bool_:
        return arr
    if arr.dtype.kind not in "biuf":
        raise MetricsInputError(f"{name} has unsupported dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise MetricsInputError(f"{name} contains NaN or infinite values")
    if threshold is not None:
        return arr > threshold
    nonzero = arr != 0
    if not np.all(arr[nonzero] == 1):
        vals = np.unique(arr[nonzero])
        raise MetricsInputError(
            f"{name} is not binary (non-zero values other than 1, e.g. "
            f"{', '.join(f'{v:g}' for v in vals[:3])}); pass threshold=<value> to binarise "
            "it (foreground = value > threshold)"
        )
    return nonzero


def _check_spacing(spacing: Sequence[float], ndim: int) -> np.ndarray:
    sp = np.asarray(spacing, dtype=np.float64).ravel()
    if sp.size != ndim or not np.all(np.isfinite(sp)) or np.any(sp <= 0):
        raise MetricsInputError(
            f"spacing must be {ndim} positive finite voxel sizes in mm, got {list(spacing)}"
        )
    return sp


def _prepare(reference: np.ndarray, prediction: np.ndarray, spacing: Sequence[float],
             threshold: float | None, connectivity: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ref = binarize(reference, threshold, name="reference")
    pred = binarize(prediction, threshold, name="prediction")
    if ref.shape != pred.shape:
        raise MetricsInputError(
            f"shape mismatch: reference {ref.shape} vs prediction {pred.shape}; resample "
            "the prediction onto the reference grid first"
        )
    if ref.ndim != 3:
        raise MetricsInputError(f"masks must be 3-D, got {ref.ndim}-D arrays")
    if connectivity not in _CONNECTIVITY_RANK:
        raise MetricsInputError(f"connectivity must be 6, 18 or 26, got {connectivity!r}")
    return ref, pred, _check_spacing(spacing, ref.ndim)


def _union_crop(ref: np.ndarray, pred: np.ndarray, margin: int = 1
                ) -> tuple[np.ndarray, np.ndarray]:
    """Crop both masks to the bounding box of their union plus ``margin`` voxels."""
    union = ref | pred
    slices = []
    for axis in range(union.ndim):
        other = tuple(a for a in range(union.ndim) if a != axis)
        idx = np.flatnonzero(union.any(axis=other))
        if idx.size == 0:  # both empty
            return ref[:0, :0, :0], pred[:0, :0, :0]
        lo = max(int(idx[0]) - margin, 0)
        hi = min(int(idx[-1]) + margin + 1, union.shape[axis])
        slices.append(slice(lo, hi))
    sl = tuple(slices)
    return ref[sl], pred[sl]


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den != 0 else math.nan


# ---------------------------------------------------------------------------------------
# surfaces
# ---------------------------------------------------------------------------------------
def _surface(mask: np.ndarray) -> np.ndarray:
    """Surface voxels: ``mask`` minus its 6-neighbourhood erosion (outside = background)."""
    if not mask.any():
        return mask.copy()
    eroded = ndimage.binary_erosion(mask, structure=_SURFACE_STRUCTURE, border_value=0)
    return mask & ~eroded


def surface_distances(a: np.ndarray, b: np.ndarray, spacing: Sequence[float]
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Directed surface distances between two non-empty boolean masks.

    Parameters
    ----------
    a, b : numpy.ndarray
        Boolean 3-D masks of the same shape, both non-empty.
    spacing : sequence of float
        Voxel size in mm along each axis.

    Returns
    -------
    d_ab, d_ba : numpy.ndarray
        Distances (mm, float64) from every surface voxel of ``a`` to the nearest surface
        voxel of ``b`` (in C order of the surface voxels of ``a``), and vice versa.
    """
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if not a.any() or not b.any():
        raise MetricsInputError("surface distances need two non-empty masks")
    sp = _check_spacing(spacing, a.ndim)
    a_c, b_c = _union_crop(a, b)
    return _directed_distances(_surface(a_c), _surface(b_c), sp)


def _directed_distances(sa: np.ndarray, sb: np.ndarray, sp: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-surface distances ``sa -> sb`` and ``sb -> sa`` (non-empty surfaces).

    Uses ``distance_transform_edt(sampling=sp)`` on the (cropped) grid. When the grid
    exceeds :data:`EDT_MAX_VOXELS` (masks far apart, e.g. a distant false positive), the
    same exact nearest Euclidean distances are obtained from a k-d tree
    (``scipy.spatial.cKDTree``, ``eps=0``) built on the surface voxel coordinates
    scaled by ``sp``; the two agree to floating-point rounding (~1e-15 relative).
    """
    if sa.size <= EDT_MAX_VOXELS:
        d_ab = ndimage.distance_transform_edt(~sb, sampling=sp)[sa]
        d_ba = ndimage.distance_transform_edt(~sa, sampling=sp)[sb]
        return d_ab, d_ba
    pa = np.argwhere(sa) * sp
    pb = np.argwhere(sb) * sp
    d_ab = cKDTree(pb).query(pa, k=1)[0]
    d_ba = cKDTree(pa).query(pb, k=1)[0]
    return np.asarray(d_ab, dtype=np.float64), np.asarray(d_ba, dtype=np.float64)


def _distance_metrics(ref_c: np.ndarray, pred_c: np.ndarray, sp: np.ndarray,
                      tolerance_mm: float) -> dict[str, float | int]:
    nan = math.nan
    if not ref_c.any() or not pred_c.any():
        return {"hd": nan, "hd95": nan, "assd": nan, "surface_dice": nan,
                "distances_undefined": 1}
    d_pred, d_ref = _directed_distances(_surface(pred_c), _surface(ref_c), sp)
    pooled = np.concatenate([d_pred, d_ref])
    tol = float(tolerance_mm) + _TOLERANCE_SLACK_MM
    within = int(np.count_nonzero(pooled <= tol))
    return {
        "hd": float(pooled.max()),
        "hd95": float(np.percentile(pooled, 95)),
        "assd": float(pooled.mean()),
        "surface_dice": within / pooled.size,
        "distances_undefined": 0,
    }


# ---------------------------------------------------------------------------------------
# lesions
# ---------------------------------------------------------------------------------------
def _label(mask: np.ndarray, connectivity: int) -> tuple[np.ndarray, int]:
    structure = ndimage.generate_binary_structure(3, _CONNECTIVITY_RANK[connectivity])
    labels, n = ndimage.label(mask, structure=structure)
    return labels, int(n)


def _lesion_stats(ref_c: np.ndarray, pred_c: np.ndarray, connectivity: int
                  ) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Per reference lesion voxel counts and overlap counts, and the FP component count.

    Returns
    -------
    sizes, overlaps : numpy.ndarray
        int64 arrays of length ``ref_lesion_count`` (index ``k`` is lesion ``k + 1``).
    pred_count, lesion_fp : int
    """
    ref_lab, n_ref = _label(ref_c, connectivity)
    pred_lab, n_pred = _label(pred_c, connectivity)
    sizes = np.bincount(ref_lab.ravel(), minlength=n_ref + 1)[1:].astype(np.int64)
    both = ref_c & pred_c
    overlaps = np.bincount(ref_lab[both], minlength=n_ref + 1)[1:].astype(np.int64)
    pred_hit = np.unique(pred_lab[both])
    lesion_fp = n_pred - int(np.count_nonzero(pred_hit))
    return sizes, overlaps, n_pred, lesion_fp


# ---------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------
def compute_metrics(reference: np.ndarray, prediction: np.ndarray, spacing: Sequence[float],
                    *, connectivity: int = 26, tolerance_mm: float = 2.0,
                    threshold: float | None = None) -> dict[str, float | int]:
    """Compare a predicted lesion mask with the reference mask on the same grid.

    Parameters
    ----------
    reference, prediction : numpy.ndarray
        3-D masks of identical shape. Binary unless ``threshold`` is given.
    spacing : sequence of float
        Voxel size in mm along each array axis.
    connectivity : {26, 18, 6}
        Neighbourhood defining connected lesions (26 as ISLES'22, 6 as ATLAS R2.0).
    tolerance_mm : float
        Tolerance of the normalised surface Dice.
    threshold : float, optional
        Binarise both inputs as ``value > threshold``.

    Returns
    -------
    dict
        Keys exactly :data:`METRIC_COLUMNS` in that order; counts are ``int``, the rest
        ``float`` (NaN when undefined, see the module docstring).

    Raises
    ------
    MetricsInputError
        Non-binary input without ``threshold``, shape mismatch, bad spacing or
        connectivity.
    """
    ref, pred, sp = _prepare(reference, prediction, spacing, threshold, connectivity)
    if not (np.isfinite(tolerance_mm) and tolerance_mm >= 0):
        raise MetricsInputError(f"tolerance_mm must be >= 0, got {tolerance_mm!r}")
    n_total = int(ref.size)
    ref_c, pred_c = _union_crop(ref, pred)

    tp = int(np.count_nonzero(ref_c & pred_c))
    n_ref = int(np.count_nonzero(ref_c))
    n_pred = int(np.count_nonzero(pred_c))
    fp = n_pred - tp
    fn = n_ref - tp
    tn = n_total - tp - fp - fn

    both_empty = n_ref == 0 and n_pred == 0
    dice = 1.0 if both_empty else 2.0 * tp / (2.0 * tp + fp + fn)
    jaccard = 1.0 if both_empty else tp / float(tp + fp + fn)
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    specificity = _ratio(tn, tn + fp)
    accuracy = (tp + tn) / float(n_total)
    balanced_accuracy = 0.5 * (recall + specificity)
    ftp, ffp, ffn, ftn = (float(v) for v in (tp, fp, fn, tn))
    mcc_den = (ftp + ffp) * (ftp + ffn) * (ftn + ffp) * (ftn + ffn)
    mcc = (ftp * ftn - ffp * ffn) / math.sqrt(mcc_den) if mcc_den > 0 else math.nan

    voxel_ml = float(np.prod(sp)) / 1000.0
    ref_ml = n_ref * voxel_ml
    pred_ml = n_pred * voxel_ml

    dist = _distance_metrics(ref_c, pred_c, sp, tolerance_mm)

    sizes, overlaps, pred_count, lesion_fp = _lesion_stats(ref_c, pred_c, connectivity)
    ref_count = int(sizes.size)
    lesion_tp = int(np.count_nonzero(overlaps))
    lesion_fn = ref_count - lesion_tp
    f1_den = 2 * lesion_tp + lesion_fp + lesion_fn
    lesion_f1 = 1.0 if f1_den == 0 else 2.0 * lesion_tp / f1_den

    out: dict[str, float | int] = {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "dice": float(dice),
        "jaccard": float(jaccard),
        "precision": precision,
        "recall": recall,
        "specificity": specificity,
        "accuracy": float(accuracy),
        "balanced_accuracy": float(balanced_accuracy),
        "mcc": float(mcc),
        "ref_volume_ml": ref_ml,
        "pred_volume_ml": pred_ml,
        "volume_diff_ml": (n_pred - n_ref) * voxel_ml,
        "abs_volume_diff_ml": abs(n_pred - n_ref) * voxel_ml,
        "abs_volume_diff_voxels": abs(n_pred - n_ref),
        "rel_volume_diff": _ratio(n_pred - n_ref, n_ref),
        "volume_ratio": _ratio(n_pred, n_ref),
        **dist,
        "ref_lesion_count": ref_count,
        "pred_lesion_count": pred_count,
        "abs_lesion_count_diff": abs(pred_count - ref_count),
        "lesion_tp": lesion_tp,
        "lesion_fp": lesion_fp,
        "lesion_fn": lesion_fn,
        "lesion_f1": float(lesion_f1),
        "detection_rate": _ratio(lesion_tp, ref_count),
    }
    return {key: out[key] for key in METRIC_COLUMNS}


def lesion_table(reference: np.ndarray, prediction: np.ndarray, spacing: Sequence[float],
                 *, connectivity: int = 26, threshold: float | None = None
                 ) -> list[dict[str, float | int | bool]]:
    """Per-reference-lesion detection table.

    Parameters
    ----------
    reference, prediction : numpy.ndarray
        3-D masks of identical shape (binary unless ``threshold`` is given).
    spacing : sequence of float
        Voxel size in mm.
    connectivity : {26, 18, 6}
        Neighbourhood defining connected lesions.
    threshold : float, optional
        Binarise both inputs as ``value > threshold``.

    Returns
    -------
    list of dict
        One entry per reference lesion, ordered by ``lesion_id`` (1-based, the raster
        order of ``scipy.ndimage.label`` on the array), with keys ``lesion_id``,
        ``volume_ml``, ``volume_voxels``, ``detected`` (overlaps any predicted voxel) and
        ``overlap_fraction`` (fraction of the lesion's voxels that are predicted).
    """
    ref, pred, sp = _prepare(reference, prediction, spacing, threshold, connectivity)
    ref_c, pred_c = _union_crop(ref, pred)
    sizes, overlaps, _, _ = _lesion_stats(ref_c, pred_c, connectivity)
    voxel_ml = float(np.prod(sp)) / 1000.0
    return [
        {
            "lesion_id": k + 1,
            "volume_ml": int(size) * voxel_ml,
            "volume_voxels": int(size),
            "detected": bool(ov > 0),
            "overlap_fraction": int(ov) / int(size),
        }
        for k, (size, ov) in enumerate(zip(sizes, overlaps, strict=True))
    ]


def spacing_from_affine(affine: np.ndarray) -> tuple[float, ...]:
    """Voxel size (mm) along each array axis: the column norms of the affine's 3x3 part."""
    aff = np.asarray(affine, dtype=np.float64)
    return tuple(float(v) for v in np.sqrt((aff[:3, :3] ** 2).sum(axis=0)))


def load_mask_image(path: str | PathLike[str]) -> tuple[object, np.ndarray]:
    """Load a NIfTI mask; returns ``(image, data)`` with 3-D data (a single-volume 4-D
    image is squeezed). Raises :class:`MetricsInputError` for other shapes."""
    import nibabel as nib

    img = nib.load(str(path))
    data = np.asanyarray(img.dataobj)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise MetricsInputError(f"{path}: expected a 3-D mask, got shape {data.shape}")
    return img, data


def check_same_grid(ref_path: str | PathLike[str], ref_shape: tuple[int, ...],
                    ref_affine: np.ndarray, pred_path: str | PathLike[str],
                    pred_shape: tuple[int, ...], pred_affine: np.ndarray,
                    atol: float = 1e-3) -> None:
    """Raise :class:`MetricsInputError` unless both images share shape and affine."""
    fix = (
        "Resample the prediction onto the reference grid (nearest neighbour, e.g. "
        "nilearn.image.resample_to_img(pred, ref, interpolation='nearest')); the reference "
        "mask is never resampled silently."
    )
    if tuple(ref_shape) != tuple(pred_shape):
        raise MetricsInputError(
            f"Grid mismatch: reference {Path(ref_path).name} has shape {tuple(ref_shape)} "
            f"but prediction {Path(pred_path).name} has shape {tuple(pred_shape)}. {fix}"
        )
    if not np.allclose(ref_affine, pred_affine, rtol=0, atol=atol):
        diff = float(np.max(np.abs(np.asarray(ref_affine) - np.asarray(pred_affine))))
        raise MetricsInputError(
            f"Grid mismatch: affines of reference {Path(ref_path).name} and prediction "
            f"{Path(pred_path).name} differ by up to {diff:.4g} (atol={atol}). {fix}"
        )


def load_pair(reference_path: str | PathLike[str], prediction_path: str | PathLike[str],
              threshold: float | None = None, atol: float = 1e-3
              ) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """Load a reference and a predicted mask, checking they share one voxel grid.

    Parameters
    ----------
    reference_path, prediction_path : path-like
        NIfTI masks (3-D, or 4-D with a single volume).
    threshold : float, optional
        Binarise both as ``value > threshold``; without it both must be binary.
    atol : float
        Absolute tolerance on the affine comparison (mm).

    Returns
    -------
    reference, prediction : numpy.ndarray
        Boolean arrays.
    spacing : tuple of float
        Voxel size in mm from the reference affine.

    Raises
    ------
    MetricsInputError
        Shapes or affines differ (message names both files and the fix), or a mask is
        not binary and no threshold is given.
    """
    ref_img, ref_data = load_mask_image(reference_path)
    pred_img, pred_data = load_mask_image(prediction_path)
    check_same_grid(reference_path, ref_data.shape, ref_img.affine,
                    prediction_path, pred_data.shape, pred_img.affine, atol=atol)
    ref = binarize(ref_data, threshold, name=f"reference {Path(reference_path).name}")
    pred = binarize(pred_data, threshold, name=f"prediction {Path(prediction_path).name}")
    sp = spacing_from_affine(ref_img.affine)
    return ref, pred, (sp[0], sp[1], sp[2])
