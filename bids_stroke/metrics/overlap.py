"""Voxel-wise overlap and volume metrics over a declared voxel grid.

Voxel-wise counts
    ``tp fp fn`` are int64 counts of the masks; ``tn = grid_voxels - tp - fp - fn``. Ratios
    are computed in float64 (MCC's denominator is a product of four counts and would overflow
    int64 on 1 mm whole-brain volumes). A ratio whose denominator is zero is NaN, except
    Dice and Jaccard, which are 1 when both masks are empty (ISLES'22
    ``compute_dice(empty_value=1.0)``).
Declared grid
    True negatives - hence specificity, accuracy, balanced accuracy, MCC - and
    ``pred_fraction_pct`` depend on how many background voxels are counted. ``grid`` is
    ``"native"`` (the masks' own grid) or ``"padded:<m>"``: the grid zero-padded so that every
    axis is a multiple of ``m`` (``size + (-size mod m)``, as
    :func:`bids_stroke.model.preprocess.pad_to_multiple`). The original study padded ATLAS
    v2.0's 197x233x189 grid to 208x240x192 (``padded:16``) and scored on it, so its TN counts
    include 909,351 padding voxels. Padding voxels are background in both masks, so every
    other metric is unchanged.
Volumes
    ``volume_diff_ml = pred - ref`` (signed), ``abs_volume_diff_ml`` as ISLES'22,
    ``abs_volume_diff_voxels`` as the ATLAS R2.0 challenge, ``rel_volume_diff =
    (P - G) / G`` (the original study's Volume Difference, P and G the predicted and
    reference voxel counts) and ``volume_ratio = P / G``; both are NaN when ``G = 0``
    (whatever P: ``0/0`` and ``P/0`` have no finite value). ``pred_fraction_pct =
    100 * P / grid_voxels``, our reading of the study's "Exact One Percentages" column.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

from bids_stroke.metrics.inputs import MetricsInputError

__all__ = ["GRID_COLUMNS", "GRID_NATIVE", "grid_note", "grid_shape", "overlap_metrics",
           "parse_grid", "volume_metrics"]

GRID_NATIVE = "native"
#: The columns whose value depends on the declared grid.
GRID_COLUMNS = ("tn", "specificity", "accuracy", "balanced_accuracy", "mcc", "grid_voxels",
                "pred_fraction_pct")
_PADDED = re.compile(r"padded:(\d+)")


def parse_grid(grid: str) -> int | None:
    """Padding multiple of a grid spec: ``"native"`` -> None, ``"padded:16"`` -> 16.

    Raises
    ------
    MetricsInputError
        For anything else (the message lists the valid forms).
    """
    text = str(grid).strip().lower()
    if text == GRID_NATIVE:
        return None
    match = _PADDED.fullmatch(text)
    if match is None or int(match.group(1)) < 1:
        raise MetricsInputError(
            f"grid must be 'native' or 'padded:<multiple>' with an integer multiple >= 1 "
            f"(e.g. 'padded:16' as the original study), got {grid!r}")
    return int(match.group(1))


def grid_shape(shape: Sequence[int], grid: str = GRID_NATIVE) -> tuple[int, ...]:
    """Shape of the declared grid: ``shape`` itself, or each axis padded up to a multiple.

    ``grid_shape((197, 233, 189), "padded:16") == (208, 240, 192)``.
    """
    multiple = parse_grid(grid)
    if multiple is None:
        return tuple(int(s) for s in shape)
    return tuple(int(s) + (-int(s)) % multiple for s in shape)


def grid_note(grid: str) -> str:
    """One sentence naming the grid of the true negatives (for data dictionaries)."""
    multiple = parse_grid(grid)
    if multiple is None:
        return "Grid used: native (the reference mask's own voxel grid, no padding)."
    example = "x".join(str(s) for s in grid_shape((197, 233, 189), grid))
    return (f"Grid used: padded:{multiple} (the reference grid zero-padded so that every "
            f"axis is a multiple of {multiple}, e.g. 197x233x189 -> {example}; the original "
            "study used padded:16); padding voxels count as true negatives.")


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den != 0 else math.nan


def overlap_metrics(tp: int, fp: int, fn: int, grid_voxels: int) -> dict[str, float | int]:
    """Voxel-wise counts and ratios from TP, FP, FN and the size of the declared grid.

    Returns the keys ``tp fp fn tn dice jaccard precision recall specificity accuracy
    balanced_accuracy mcc grid_voxels pred_fraction_pct``.
    """
    tn = int(grid_voxels) - tp - fp - fn
    if tn < 0:
        raise MetricsInputError(f"grid of {grid_voxels} voxels is smaller than the masks")
    both_empty = tp + fp + fn == 0
    recall = _ratio(tp, tp + fn)
    specificity = _ratio(tn, tn + fp)
    ftp, ffp, ffn, ftn = (float(v) for v in (tp, fp, fn, tn))
    mcc_den = (ftp + ffp) * (ftp + ffn) * (ftn + ffp) * (ftn + ffn)
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "dice": 1.0 if both_empty else 2.0 * tp / (2.0 * tp + fp + fn),
        "jaccard": 1.0 if both_empty else tp / float(tp + fp + fn),
        "precision": _ratio(tp, tp + fp),
        "recall": recall,
        "specificity": specificity,
        "accuracy": _ratio(tp + tn, grid_voxels),
        "balanced_accuracy": 0.5 * (recall + specificity),
        "mcc": (ftp * ftn - ffp * ffn) / math.sqrt(mcc_den) if mcc_den > 0 else math.nan,
        "grid_voxels": int(grid_voxels),
        "pred_fraction_pct": 100.0 * _ratio(tp + fp, grid_voxels),
    }


def volume_metrics(n_ref: int, n_pred: int, spacing: np.ndarray) -> dict[str, float | int]:
    """Lesion volumes (ml) and their differences from voxel counts and the spacing (mm)."""
    voxel_ml = float(np.prod(spacing)) / 1000.0
    return {
        "ref_volume_ml": n_ref * voxel_ml,
        "pred_volume_ml": n_pred * voxel_ml,
        "volume_diff_ml": (n_pred - n_ref) * voxel_ml,
        "abs_volume_diff_ml": abs(n_pred - n_ref) * voxel_ml,
        "abs_volume_diff_voxels": abs(n_pred - n_ref),
        "rel_volume_diff": _ratio(n_pred - n_ref, n_ref),
        "volume_ratio": _ratio(n_pred, n_ref),
    }
