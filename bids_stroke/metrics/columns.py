"""Column names of the metrics tables and their BIDS data-dictionary entries."""

from __future__ import annotations

__all__ = ["LESION_TABLE_COLUMNS", "METRIC_COLUMNS", "METRIC_DESCRIPTIONS"]

#: Keys of :func:`bids_stroke.metrics.compute_metrics`, in table order. New columns are
#: only ever appended, so that older tables remain a prefix of newer ones.
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
    "grid_voxels",
    "pred_fraction_pct",
)

#: Keys of each row of :func:`bids_stroke.metrics.lesion_table`.
LESION_TABLE_COLUMNS: tuple[str, ...] = (
    "lesion_id",
    "volume_ml",
    "volume_voxels",
    "detected",
    "overlap_fraction",
)


def _entry(long_name: str, description: str, units: str | None = None) -> dict[str, str]:
    entry = {"LongName": long_name, "Description": description}
    if units is not None:
        entry["Units"] = units
    return entry


_GRID = ("over the declared grid of grid_voxels voxels (the reference mask's grid, or that "
         "grid zero-padded; the subject-level data dictionary names which)")

METRIC_DESCRIPTIONS: dict[str, dict[str, str]] = {
    "tp": _entry("True positive voxels", "Voxels labelled lesion in both reference and "
                 "prediction.", "voxels"),
    "fp": _entry("False positive voxels", "Voxels labelled lesion in the prediction only.",
                 "voxels"),
    "fn": _entry("False negative voxels", "Voxels labelled lesion in the reference only.",
                 "voxels"),
    "tn": _entry("True negative voxels", f"Voxels labelled background in both masks, {_GRID}:"
                 " grid_voxels - TP - FP - FN.", "voxels"),
    "dice": _entry("Dice similarity coefficient", "2TP / (2TP + FP + FN); 1 when both "
                   "masks are empty (as ISLES'22)."),
    "jaccard": _entry("Jaccard index", "TP / (TP + FP + FN); 1 when both masks are empty."),
    "precision": _entry("Voxel-wise precision", "TP / (TP + FP); n/a when the prediction "
                        "is empty."),
    "recall": _entry("Voxel-wise recall (sensitivity)", "TP / (TP + FN); n/a when the "
                     "reference is empty."),
    "specificity": _entry("Voxel-wise specificity", f"TN / (TN + FP) {_GRID}."),
    "accuracy": _entry("Voxel-wise accuracy", f"(TP + TN) / grid_voxels {_GRID}."),
    "balanced_accuracy": _entry("Balanced accuracy", "(recall + specificity) / 2; n/a when "
                                "recall is undefined."),
    "mcc": _entry("Matthews correlation coefficient", "(TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)"
                  f"(TN+FP)(TN+FN)) {_GRID}; n/a when any factor is zero."),
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
    "rel_volume_diff": _entry("Relative volume difference", "(P - G) / G with P the "
                              "predicted and G the reference lesion voxel count (the "
                              "original study's Volume Difference): signed, 0 for equal "
                              "volumes, -1 for an empty prediction. n/a when the reference "
                              "is empty (G = 0), whatever the prediction."),
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
    "grid_voxels": _entry("Voxels of the declared grid", "Number of voxels over which TN, "
                          "specificity, accuracy, balanced accuracy, MCC and "
                          "pred_fraction_pct are computed: the reference mask's grid, or that "
                          "grid zero-padded (the subject-level data dictionary names which).",
                          "voxels"),
    "pred_fraction_pct": _entry("Predicted lesion fraction", "100 * (TP + FP) / grid_voxels:"
                                " predicted lesion voxels as a percentage of all voxels of "
                                "the declared grid. This is our reading of the original "
                                "study's 'Exact One Percentages' column (the share of "
                                "voxels predicted exactly 1); it depends on the grid.",
                                "%"),
}
