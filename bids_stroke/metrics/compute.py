"""``compute_metrics``: every metric of one prediction against the reference mask.

All computations are restricted to the bounding box of the union of both masks (plus a
one-voxel margin, clipped to the array). This is exact: outside that box both masks are
background, so erosions, connected components and nearest-surface distances are unchanged,
and ``tn`` is completed from the size of the declared grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from bids_stroke.core.settings import MetricsSettings
from bids_stroke.metrics.columns import METRIC_COLUMNS
from bids_stroke.metrics.distance import distance_metrics
from bids_stroke.metrics.inputs import MetricsInputError, prepare, union_crop
from bids_stroke.metrics.lesionwise import lesion_metrics
from bids_stroke.metrics.overlap import GRID_NATIVE, grid_shape, overlap_metrics, volume_metrics

__all__ = ["compute_metrics"]


def compute_metrics(reference: np.ndarray, prediction: np.ndarray, spacing: Sequence[float],
                    *, connectivity: int = MetricsSettings.connectivity,
                    tolerance_mm: float = MetricsSettings.tolerance_mm,
                    threshold: float | None = None, grid: str = GRID_NATIVE
                    ) -> dict[str, float | int]:
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
        Binarise both inputs as ``value >= threshold``.
    grid : str
        Grid over which true negatives are counted: ``"native"`` (the masks' grid) or
        ``"padded:<m>"`` (each axis zero-padded up to a multiple of ``m``; the original
        study used ``"padded:16"``, the default study's ``MetricsSettings.grid``). Two masks
        alone are scored on their own grid: padding is a study's choice, not the masks'.
        Affects ``tn``, ``specificity``, ``accuracy``, ``balanced_accuracy``, ``mcc``,
        ``grid_voxels`` and ``pred_fraction_pct`` only.

    Returns
    -------
    dict
        Keys exactly :data:`~bids_stroke.metrics.METRIC_COLUMNS` in that order; counts are
        ``int``, the rest ``float`` (NaN when undefined, see the submodules' docstrings).

    Raises
    ------
    MetricsInputError
        Non-binary input without ``threshold``, shape mismatch, bad spacing, connectivity,
        tolerance or grid.
    """
    ref, pred, sp = prepare(reference, prediction, spacing, threshold, connectivity)
    if not (np.isfinite(tolerance_mm) and tolerance_mm >= 0):
        raise MetricsInputError(f"tolerance_mm must be >= 0, got {tolerance_mm!r}")
    grid_voxels = math.prod(grid_shape(ref.shape, grid))
    ref_c, pred_c = union_crop(ref, pred)

    tp = int(np.count_nonzero(ref_c & pred_c))
    n_ref = int(np.count_nonzero(ref_c))
    n_pred = int(np.count_nonzero(pred_c))
    out: dict[str, float | int] = {
        **overlap_metrics(tp, n_pred - tp, n_ref - tp, grid_voxels),
        **volume_metrics(n_ref, n_pred, sp),
        **distance_metrics(ref_c, pred_c, sp, tolerance_mm),
        **lesion_metrics(ref_c, pred_c, connectivity),
    }
    return {key: out[key] for key in METRIC_COLUMNS}
