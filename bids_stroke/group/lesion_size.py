"""Does the change under a condition depend on lesion size? A robust line instead of strata.

For every condition against the reference, the paired change of a metric (``condition -
reference``, per unit) is regressed on ``log10`` of the unit's reference lesion volume (ml)
with the Theil-Sen estimator: the slope is the median of all pairwise slopes (Sen 1968),
robust to outlying units, and its interval inverts Kendall's tau test of the slope
(:func:`scipy.stats.theilslopes`, ``method="separate"``). The slope is the change per tenfold
larger lesion. Units without a lesion (volume 0) cannot be placed on the log axis and are
counted in ``n_dropped``. The intervals are unadjusted (exploratory).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from bids_stroke.core.settings import GroupSettings
from bids_stroke.group.paired import unit_matrix

__all__ = ["LESION_SIZE_COLUMNS", "size_regression"]

LESION_SIZE_COLUMNS = [
    "metric", "condition_a", "condition_b", "n", "n_dropped", "slope_per_log10_ml", "ci_low",
    "ci_high", "conf_level", "intercept", "method",
]


def size_regression(table: pd.DataFrame, metric: str, conditions: Sequence[str], *,
                    alpha: float = GroupSettings.alpha,
                    volume: str = "ref_volume_ml") -> pd.DataFrame:
    """Theil-Sen slope of ``metric``'s change from ``conditions[0]`` on log10 lesion volume,
    one row per other condition (see the module doc)."""
    if len(conditions) < 2 or metric not in table.columns:
        return pd.DataFrame(columns=LESION_SIZE_COLUMNS)
    mats = unit_matrix(table, [metric, volume], conditions)
    with np.errstate(invalid="ignore", divide="ignore"), \
            pd.option_context("mode.chained_assignment", None):
        vol = np.nanmean(np.where(np.isfinite(mats[volume]), mats[volume], np.nan), axis=1) \
            if mats[volume].size else np.zeros(0)
        x = np.log10(np.where(vol > 0, vol, np.nan))
    rows = []
    for j, cond in enumerate(conditions[1:], start=1):
        y = mats[metric][:, j] - mats[metric][:, 0]
        paired = np.isfinite(y)
        ok = paired & np.isfinite(x)
        n = int(ok.sum())
        row = {"metric": metric, "condition_a": conditions[0], "condition_b": cond, "n": n,
               "n_dropped": int(paired.sum() - n), "conf_level": 1 - alpha,
               "method": "Theil-Sen, Kendall tau interval"}
        if n < 3 or np.ptp(x[ok]) == 0:
            nan = float("nan")
            row.update(slope_per_log10_ml=nan, ci_low=nan, ci_high=nan, intercept=nan,
                       method="not enough units")
        else:
            res = stats.theilslopes(y[ok], x[ok], alpha=1 - alpha, method="separate")
            row.update(slope_per_log10_ml=float(res.slope), ci_low=float(res.low_slope),
                       ci_high=float(res.high_slope), intercept=float(res.intercept))
        rows.append(row)
    return pd.DataFrame(rows, columns=LESION_SIZE_COLUMNS)
