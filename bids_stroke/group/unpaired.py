"""Unpaired comparisons of datasets (e.g. ATLAS vs ISLES'22) under the same condition.

* **Mann-Whitney U** (Wilcoxon rank-sum), two-sided, with R's ``wilcox.test(paired = FALSE)``
  rule: the exact null distribution when both groups have fewer than 50 values and there are no
  ties; otherwise the normal approximation with continuity and tie corrections. ``U`` is the
  statistic of the first group (R's ``W``).
* **Brunner-Munzel** (:func:`scipy.stats.brunnermunzel`, t approximation with Satterthwaite
  degrees of freedom): valid when the two groups differ in spread. The statistic is positive
  when the second group tends to be larger (SciPy's and R's convention); undefined (NaN) when
  neither group has any within-group rank variance (e.g. complete separation).
* **Effect size.** Cliff's delta ``P(A > B) - P(A < B)`` (ties count half; equals the rank-biserial
  correlation ``2 U / (n_A n_B) - 1``) with a percentile-bootstrap CI: each dataset's units are
  resampled on their own.
* **Multiple comparisons.** One family per metric: all conditions x dataset pairs. Holm and BH
  adjusted p for both tests; ``significant`` uses the Holm-adjusted Mann-Whitney p,
  ``significant_uncorrected`` the raw one.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from bids_stroke.group.bootstrap import CliffsDelta, bootstrap_units, evaluate
from bids_stroke.group.corrections import benjamini_hochberg, holm, significance_flags
from bids_stroke.group.paired import unit_matrix

__all__ = [
    "DATASET_COLUMNS",
    "brunner_munzel",
    "choose_mann_whitney_method",
    "cliffs_delta",
    "compare_datasets",
    "mann_whitney",
]

DATASET_COLUMNS = [
    "metric", "desc", "dataset_a", "dataset_b", "n_a", "n_b", "median_a", "median_b",
    "U", "p_mwu", "mwu_method", "bm_statistic", "bm_df", "p_bm", "cliffs_delta",
    "delta_ci_low", "delta_ci_high", "p_mwu_holm", "p_mwu_fdr_bh", "p_bm_holm", "alpha",
    "significant_uncorrected", "significant",
]


def _finite(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return x[np.isfinite(x)]


def choose_mann_whitney_method(a: np.ndarray, b: np.ndarray) -> str:
    """``exact`` if both groups have < 50 values and the pooled values have no ties (R's rule),
    else ``asymptotic``."""
    a, b = _finite(a), _finite(b)
    pooled = np.concatenate([a, b])
    if a.size < 50 and b.size < 50 and np.unique(pooled).size == pooled.size:
        return "exact"
    return "asymptotic"


def cliffs_delta(a: np.ndarray, b: np.ndarray) -> float:
    """Cliff's delta ``P(A > B) - P(A < B)`` (NaN if a group is empty)."""
    a, b = np.sort(_finite(a)), np.sort(_finite(b))
    if a.size == 0 or b.size == 0:
        return float("nan")
    less = np.searchsorted(b, a, side="left").sum()
    greater = (b.size - np.searchsorted(b, a, side="right")).sum()
    return float((less - greater) / (a.size * b.size))


def mann_whitney(a: np.ndarray, b: np.ndarray) -> dict[str, float | int | str]:
    """Two-sided Mann-Whitney U test of the finite values of ``a`` and ``b``."""
    a, b = _finite(a), _finite(b)
    out: dict[str, float | int | str] = {"n_a": int(a.size), "n_b": int(b.size)}
    if a.size == 0 or b.size == 0:
        return {**out, "U": np.nan, "p_mwu": np.nan, "mwu_method": "not enough values"}
    if np.unique(np.concatenate([a, b])).size == 1:
        return {**out, "U": a.size * b.size / 2.0, "p_mwu": 1.0, "mwu_method": "all values equal"}
    method = choose_mann_whitney_method(a, b)
    res = stats.mannwhitneyu(a, b, alternative="two-sided", use_continuity=True, method=method)
    return {**out, "U": float(res.statistic), "p_mwu": float(res.pvalue), "mwu_method": method}


def brunner_munzel(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Two-sided Brunner-Munzel test (t approximation): statistic, df and p (NaN if undefined)."""
    a, b = _finite(a), _finite(b)
    nan = {"bm_statistic": np.nan, "bm_df": np.nan, "p_bm": np.nan}
    if a.size < 2 or b.size < 2:
        return nan
    n1, n2 = a.size, b.size
    r = stats.rankdata(np.concatenate([a, b]))
    r1, r2 = stats.rankdata(a), stats.rankdata(b)
    m1, m2 = r[:n1].mean(), r[n1:].mean()
    v1 = np.sum((r[:n1] - r1 - m1 + (n1 + 1) / 2) ** 2) / (n1 - 1)
    v2 = np.sum((r[n1:] - r2 - m2 + (n2 + 1) / 2) ** 2) / (n2 - 1)
    if n1 * v1 + n2 * v2 == 0:
        return nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.brunnermunzel(a, b, alternative="two-sided", distribution="t")
    df = (n1 * v1 + n2 * v2) ** 2 / ((n1 * v1) ** 2 / (n1 - 1) + (n2 * v2) ** 2 / (n2 - 1))
    return {"bm_statistic": float(res.statistic), "bm_df": float(df), "p_bm": float(res.pvalue)}


def _adjust(out: pd.DataFrame, alpha: float) -> pd.DataFrame:
    for col in ("p_mwu_holm", "p_mwu_fdr_bh", "p_bm_holm"):
        out[col] = np.nan
    for _, idx in out.groupby("metric", sort=False).groups.items():
        out.loc[idx, "p_mwu_holm"] = holm(out.loc[idx, "p_mwu"].to_numpy(float))
        out.loc[idx, "p_mwu_fdr_bh"] = benjamini_hochberg(out.loc[idx, "p_mwu"].to_numpy(float))
        out.loc[idx, "p_bm_holm"] = holm(out.loc[idx, "p_bm"].to_numpy(float))
    out["alpha"] = alpha

    out["significant_uncorrected"] = significance_flags(out["p_mwu"], alpha)
    out["significant"] = significance_flags(out["p_mwu_holm"], alpha)
    return out


def compare_datasets(
    table: pd.DataFrame, metrics: Sequence[str], conditions: Sequence[str],
    datasets: Sequence[str], *, alpha: float = 0.05, n_boot: int = 2000, seed: int = 0,
) -> pd.DataFrame:
    """Every pair of datasets under every condition they share, for every metric.

    ``table`` has one row per unit (participant or image) and condition with a ``dataset``
    column. Conditions absent from one dataset of a pair are skipped for that pair.
    """
    mats = {ds: unit_matrix(table[table["dataset"] == ds], metrics, conditions)
            for ds in datasets}
    sizes = [next(iter(mats[ds].values())).shape[0] if metrics else 0 for ds in datasets]
    rows, deltas = [], []
    for metric in metrics:
        for j, cond in enumerate(conditions):
            for (ia, da), (ib, db) in combinations(enumerate(datasets), 2):
                a, b = mats[da][metric][:, j], mats[db][metric][:, j]
                if not (np.isfinite(a).any() and np.isfinite(b).any()):
                    continue
                fa, fb = _finite(a), _finite(b)
                rows.append({"metric": metric, "desc": cond, "dataset_a": da, "dataset_b": db,
                             "median_a": float(np.median(fa)), "median_b": float(np.median(fb)),
                             **mann_whitney(fa, fb), **brunner_munzel(fa, fb),
                             "cliffs_delta": cliffs_delta(fa, fb)})
                deltas.append((ia, ib, CliffsDelta(a, b)))
    if not rows:
        return pd.DataFrame(columns=DATASET_COLUMNS)

    stats_ = [lambda *c, ia=ia, ib=ib, s=s: s(c[ia], c[ib]) for ia, ib, s in deltas]
    ci = bootstrap_units(sizes, lambda *c: evaluate(stats_, *c), len(deltas), n_boot=n_boot,
                         seed=seed)
    out = pd.DataFrame(rows)
    out["delta_ci_low"], out["delta_ci_high"] = ci[:, 0], ci[:, 1]
    return _adjust(out, alpha)[DATASET_COLUMNS]
