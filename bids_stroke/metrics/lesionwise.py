"""Lesion-wise detection: connected components, lesion F1, detection rate, lesion table.

Lesions are connected components (``scipy.ndimage.label``) with ``connectivity`` 26
(default, as ISLES'22 ``eval_utils.py``, which uses ``cc3d`` with 26-connectivity), 18 or 6
(``scipy.ndimage.label``'s default structure, as used by the ATLAS R2.0 evaluation code's
``simple_lesion_count_difference``). A reference lesion is a true positive when it overlaps
at least one predicted voxel, otherwise a false negative; a predicted component is a false
positive when it touches no reference voxel. ``lesion_f1 = 2 TP / (2 TP + FP + FN)``,
identical to ISLES'22 ``compute_lesion_f1_score`` (``tp / (tp + (fp + fn) / 2)``,
``empty_value=1`` when both masks are empty). The ATLAS R2.0 code additionally reports a
"lesion count by weighted assignment" (Hungarian matching on per-lesion precision); that
score is not implemented here. ``detection_rate = lesion_tp / ref_lesion_count`` (NaN
without reference lesions).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from bids_stroke.core.settings import MetricsSettings
from bids_stroke.metrics.inputs import CONNECTIVITY_RANK, prepare, union_crop

__all__ = ["lesion_metrics", "lesion_stats", "lesion_table"]


def _label(mask: np.ndarray, connectivity: int) -> tuple[np.ndarray, int]:
    structure = ndimage.generate_binary_structure(3, CONNECTIVITY_RANK[connectivity])
    labels, n = ndimage.label(mask, structure=structure)
    return labels, int(n)


def lesion_stats(ref_c: np.ndarray, pred_c: np.ndarray, connectivity: int
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


def lesion_metrics(ref_c: np.ndarray, pred_c: np.ndarray, connectivity: int
                   ) -> dict[str, float | int]:
    """Lesion counts, lesion-wise TP/FP/FN, lesion F1 and detection rate."""
    sizes, overlaps, pred_count, lesion_fp = lesion_stats(ref_c, pred_c, connectivity)
    ref_count = int(sizes.size)
    lesion_tp = int(np.count_nonzero(overlaps))
    lesion_fn = ref_count - lesion_tp
    f1_den = 2 * lesion_tp + lesion_fp + lesion_fn
    return {
        "ref_lesion_count": ref_count,
        "pred_lesion_count": pred_count,
        "abs_lesion_count_diff": abs(pred_count - ref_count),
        "lesion_tp": lesion_tp,
        "lesion_fp": lesion_fp,
        "lesion_fn": lesion_fn,
        "lesion_f1": 1.0 if f1_den == 0 else 2.0 * lesion_tp / f1_den,
        "detection_rate": lesion_tp / ref_count if ref_count else math.nan,
    }


def lesion_table(reference: np.ndarray, prediction: np.ndarray, spacing: Sequence[float],
                 *, connectivity: int = MetricsSettings.connectivity,
                 threshold: float | None = None
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
        Binarise both inputs as ``value >= threshold``.

    Returns
    -------
    list of dict
        One entry per reference lesion, ordered by ``lesion_id`` (1-based, the raster
        order of ``scipy.ndimage.label`` on the array), with keys ``lesion_id``,
        ``volume_ml``, ``volume_voxels``, ``detected`` (overlaps any predicted voxel) and
        ``overlap_fraction`` (fraction of the lesion's voxels that are predicted).
    """
    ref, pred, sp = prepare(reference, prediction, spacing, threshold, connectivity)
    ref_c, pred_c = union_crop(ref, pred)
    sizes, overlaps, _, _ = lesion_stats(ref_c, pred_c, connectivity)
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
