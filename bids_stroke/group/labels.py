"""Names and natural ranges of the metric columns, for figures, sentences and tables."""

from __future__ import annotations

__all__ = ["METRIC_BOUNDS", "METRIC_DIRECTIONS", "METRIC_LABELS", "METRIC_SHORT",
           "metric_direction", "metric_label", "metric_short"]

METRIC_LABELS: dict[str, str] = {
    "dice": "Dice coefficient",
    "jaccard": "Jaccard index",
    "precision": "Precision",
    "recall": "Recall (sensitivity)",
    "specificity": "Specificity",
    "accuracy": "Accuracy",
    "balanced_accuracy": "Balanced accuracy",
    "mcc": "Matthews correlation coefficient",
    "hd": "Hausdorff distance (mm)",
    "hd95": "95th percentile Hausdorff distance (mm)",
    "assd": "Average symmetric surface distance (mm)",
    "surface_dice": "Surface Dice",
    "lesion_f1": "Lesion-wise F1",
    "detection_rate": "Lesion detection rate",
    "abs_volume_diff_ml": "Absolute volume difference (ml)",
    "volume_diff_ml": "Volume difference (ml)",
    "rel_volume_diff": "Relative volume difference (P - G) / G",
    "ref_volume_ml": "Reference volume (ml)",
    "pred_volume_ml": "Predicted volume (ml)",
    "pred_fraction_pct": "Predicted lesion voxels (% of all voxels)",
}

METRIC_SHORT: dict[str, str] = {
    "dice": "Dice", "jaccard": "Jaccard", "precision": "Precision", "recall": "Recall",
    "specificity": "Specificity", "accuracy": "Accuracy", "hd95": "HD95", "hd": "HD",
    "assd": "ASSD", "lesion_f1": "Lesion-wise F1", "abs_volume_diff_ml":
    "Absolute volume difference", "rel_volume_diff": "Relative volume difference",
    "pred_fraction_pct": "Predicted lesion fraction (%)", "mcc": "MCC",
}

#: closed natural range of bounded metrics (error bars are clipped to it)
METRIC_BOUNDS: dict[str, tuple[float, float]] = {
    **{m: (0.0, 1.0) for m in ("dice", "jaccard", "precision", "recall", "specificity",
                               "accuracy", "balanced_accuracy", "surface_dice", "lesion_f1",
                               "detection_rate")},
    "mcc": (-1.0, 1.0),
    "pred_fraction_pct": (0.0, 100.0),
    **{m: (0.0, float("inf")) for m in ("hd", "hd95", "assd", "abs_volume_diff_ml",
                                         "ref_volume_ml", "pred_volume_ml")},
    "rel_volume_diff": (-1.0, float("inf")),
}


#: which way a metric improves: +1 higher is better, -1 lower is better, 0 neither (signed
#: differences, volumes, counts that describe rather than score). Every column of the
#: participant-level metric tables has an entry (tests/test_equivalence.py checks it).
METRIC_DIRECTIONS: dict[str, int] = {
    **{m: 1 for m in ("dice", "jaccard", "precision", "recall", "specificity", "accuracy",
                      "balanced_accuracy", "mcc", "surface_dice", "lesion_f1",
                      "detection_rate", "tp", "tn", "lesion_tp")},
    **{m: -1 for m in ("fp", "fn", "abs_volume_diff_ml", "abs_volume_diff_voxels", "hd",
                       "hd95", "assd", "abs_lesion_count_diff", "lesion_fp", "lesion_fn",
                       "distances_undefined")},
    **{m: 0 for m in ("ref_volume_ml", "pred_volume_ml", "volume_diff_ml", "rel_volume_diff",
                      "volume_ratio", "ref_lesion_count", "pred_lesion_count", "grid_voxels",
                      "pred_fraction_pct")},
}


def metric_direction(metric: str) -> int:
    """+1 (higher is better), -1 (lower is better) or 0 (no direction; unknown metrics)."""
    return METRIC_DIRECTIONS.get(metric, 0)


def metric_label(metric: str) -> str:
    """Readable axis label of a metric column."""
    return METRIC_LABELS.get(metric, metric.replace("_", " "))


def metric_short(metric: str) -> str:
    """Short name of a metric for sentences (``Dice``, ``HD95``)."""
    return METRIC_SHORT.get(metric, metric.replace("_", " "))
