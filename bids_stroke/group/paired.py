"""Paired comparisons of conditions: Wilcoxon signed-rank tests, their Hodges-Lehmann
estimates and intervals, and rank-biserial effect sizes.

* **Test.** Two-sided Wilcoxon signed-rank test (:func:`scipy.stats.wilcoxon`) on the units with
  a finite value under *both* conditions (pairwise deletion; the number dropped is reported).
* **Ties.** Differences are compared after rounding to ``digits_rank`` significant digits
  (default 7, R's ``digits.rank``; None = exact float comparison), so differences equal in
  decimal tie although their binary values differ.
* **Zeros.** ``zero_method="wilcox"`` (default, as R's ``wilcox.test``): zero differences are
  discarded before ranking; ``"pratt"`` ranks them and leaves their ranks out of the sums.
* **p-value method**, R's rule, chosen explicitly and reported: ``exact`` with fewer than 50
  non-zero differences and no ties or zeros, else ``asymptotic`` (normal approximation with tie
  and continuity corrections).
* **Estimate and interval that match the test.** The Hodges-Lehmann estimate of the change
  from A to B (``B - A``) with the signed-rank inversion interval, exactly R's
  ``wilcox.test(b, a, paired = TRUE, conf.int = TRUE)`` (:mod:`bids_stroke.group.hodges_lehmann`):
  at ``1 - alpha`` (``unadjusted``: excludes 0 exactly when the raw p < alpha) and at
  ``1 - alpha / m`` (``bonferroni``: simultaneous over the ``m`` tests of the metric's family).
* **Effect size without a test to invert.** The matched-pairs rank-biserial correlation
  ``(T+ - T-) / (T+ + T-)`` (Kerby 2014) with a percentile-bootstrap CI
  (:mod:`bids_stroke.group.bootstrap`).
* **Multiple comparisons.** One family per metric: Holm and Benjamini-Hochberg adjusted p.
  ``significant`` uses the Holm-adjusted p at ``alpha``; ``significant_uncorrected`` the raw p
  (the original study's criterion). The primary metric's family is ``confirmatory``, every
  other metric's ``exploratory``.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from bids_stroke.core.settings import GroupSettings
from bids_stroke.group.bootstrap import SignedRankBiserial, bootstrap_units, evaluate
from bids_stroke.group.corrections import benjamini_hochberg, holm, significance_flags
from bids_stroke.group.describe import id_columns
from bids_stroke.group.hodges_lehmann import DEFAULT_DIGITS_RANK, signed_rank_shifts
from bids_stroke.group.rmath import signif

__all__ = [
    "DEFAULT_METRICS",
    "FAMILIES",
    "WILCOXON_COLUMNS",
    "bootstrap_rank_biserial_ci",
    "choose_wilcoxon_method",
    "family_sizes",
    "pairwise_wilcoxon",
    "rank_biserial",
    "signed_rank_sums",
    "unit_matrix",
    "wilcoxon_signed_rank",
]

DEFAULT_METRICS: tuple[str, ...] = GroupSettings.metrics
_ZERO_METHODS = ("wilcox", "pratt")
WILCOXON_COLUMNS = [
    "metric", "condition_a", "condition_b", "family", "n", "n_dropped", "n_zero", "median_a",
    "median_b", "mean_a", "mean_b", "mean_diff", "median_diff", "hl_change",
    "hl_ci_low_unadjusted", "hl_ci_high_unadjusted", "hl_conf_level_unadjusted",
    "hl_ci_low_bonferroni", "hl_ci_high_bonferroni", "hl_conf_level_bonferroni", "hl_method",
    "t_plus", "t_minus", "W", "p", "method", "zero_method", "digits_rank", "p_holm", "p_fdr_bh",
    "rank_biserial", "rb_ci_low_unadjusted", "rb_ci_high_unadjusted", "alpha",
    "significant_uncorrected", "significant",
]
#: the family of the primary metric's tests, and of every other metric's
FAMILIES = ("confirmatory", "exploratory")


def _check_zero_method(zero_method: str) -> None:
    if zero_method not in _ZERO_METHODS:
        raise ValueError(f"zero_method must be one of {_ZERO_METHODS}, got {zero_method!r}")


def signed_rank_sums(d: np.ndarray, zero_method: str = "wilcox") -> tuple[float, float]:
    """Sums of the (average) ranks of ``|d|`` for positive (T+) and negative (T-) differences."""
    _check_zero_method(zero_method)
    d = np.asarray(d, dtype=float)
    if zero_method == "wilcox":
        d = d[d != 0]
    if d.size == 0:
        return 0.0, 0.0
    r = stats.rankdata(np.abs(d))
    return float(r[d > 0].sum()), float(r[d < 0].sum())


def rank_biserial(d: np.ndarray, zero_method: str = "wilcox") -> float:
    """Matched-pairs rank-biserial correlation ``(T+ - T-) / (T+ + T-)`` (Kerby 2014).

    Positive: the first condition (``d = a - b``) tends to be larger. NaN without a non-zero
    difference.
    """
    tp, tm = signed_rank_sums(d, zero_method)
    tot = tp + tm
    return float((tp - tm) / tot) if tot > 0 else float("nan")


def bootstrap_rank_biserial_ci(
    d: np.ndarray, *, n_boot: int = GroupSettings.n_boot, seed: int | Sequence[int] = 0,
    zero_method: str = "wilcox", level: float = 0.95,
) -> tuple[float, float]:
    """Percentile-bootstrap CI of the rank-biserial correlation (pairs resampled).

    NaN when there are fewer than 2 pairs, no non-zero difference, or ``n_boot`` is 0.
    """
    _check_zero_method(zero_method)
    d = np.asarray(d, dtype=float)
    d = d[np.isfinite(d)]
    if not np.any(d != 0):
        return float("nan"), float("nan")
    stat = SignedRankBiserial(d, zero_method)
    (lo, hi), = bootstrap_units([d.size], lambda c: stat(c)[None], 1, n_boot=n_boot, seed=seed,
                                level=level)
    return float(lo), float(hi)


def choose_wilcoxon_method(d: np.ndarray, zero_method: str = "wilcox",
                           digits_rank: int | None = DEFAULT_DIGITS_RANK) -> str:
    """``exact`` or ``asymptotic`` for differences ``d``: R's ``wilcox.test`` rule.

    Exact with fewer than 50 non-zero differences (all differences with ``pratt``) and
    neither ties (after rounding to ``digits_rank`` significant digits) nor zeros.
    """
    _check_zero_method(zero_method)
    d = signif(np.asarray(d, dtype=float), digits_rank)
    nonzero = d[d != 0]
    n = nonzero.size if zero_method == "wilcox" else d.size
    a = np.abs(nonzero)
    has_ties = np.unique(a).size < a.size
    return "exact" if n < 50 and not has_ties and not np.any(d == 0) else "asymptotic"


def wilcoxon_signed_rank(
    a: np.ndarray, b: np.ndarray, *, zero_method: str = "wilcox",
    n_boot: int = GroupSettings.n_boot, seed: int | Sequence[int] = 0,
    digits_rank: int | None = DEFAULT_DIGITS_RANK,
) -> dict[str, float | int | str]:
    """Two-sided Wilcoxon signed-rank test of paired samples ``a`` and ``b`` (d = a - b).

    Pairs with a non-finite value on either side are dropped (``n_dropped``). Ranks, ties and
    the p-value use ``d`` rounded to ``digits_rank`` significant digits (R's ``digits.rank``);
    means and medians use the values as they are. The rank-biserial CI resamples the pairs
    (``n_boot`` = 0: no CI).
    """
    _check_zero_method(zero_method)
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError("paired samples must have the same shape")
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    d = a - b
    ranked = signif(d, digits_rank)
    n = int(d.size)
    nan = float("nan")
    out: dict[str, float | int | str] = {
        "n": n, "n_dropped": int(ok.size - n), "n_zero": int(np.sum(d == 0)),
        "median_a": float(np.median(a)) if n else nan,
        "median_b": float(np.median(b)) if n else nan,
        "mean_a": float(a.mean()) if n else nan, "mean_b": float(b.mean()) if n else nan,
        "mean_diff": float(d.mean()) if n else nan,
        "median_diff": float(np.median(d)) if n else nan,
    }
    tp, tm = signed_rank_sums(ranked, zero_method)
    out.update(t_plus=tp, t_minus=tm, W=min(tp, tm) if n else nan)
    if n < 2:
        out.update(p=nan, method="not enough pairs", rank_biserial=nan, rb_ci_low_unadjusted=nan,
                   rb_ci_high_unadjusted=nan)
        return out
    if not np.any(d != 0):
        out.update(p=1.0, method="all differences zero", rank_biserial=nan,
                   rb_ci_low_unadjusted=nan, rb_ci_high_unadjusted=nan)
        return out
    method = choose_wilcoxon_method(d, zero_method, digits_rank)
    res = stats.wilcoxon(ranked, zero_method=zero_method, alternative="two-sided",
                         method=method, correction=method == "asymptotic")
    lo, hi = bootstrap_rank_biserial_ci(ranked, n_boot=n_boot, seed=seed,
                                        zero_method=zero_method)
    out.update(p=float(res.pvalue), method=method,
               rank_biserial=rank_biserial(ranked, zero_method), rb_ci_low_unadjusted=lo,
               rb_ci_high_unadjusted=hi)
    return out


def unit_matrix(
    table: pd.DataFrame, metrics: Sequence[str], conditions: Sequence[str],
) -> dict[str, np.ndarray]:
    """``{metric: (units x conditions) array}`` on one common unit axis (NaN = missing).

    ``table`` has one row per unit and condition (``desc``). Duplicated unit/condition rows
    raise ``ValueError``.
    """
    keys = [*id_columns(table), "desc"]
    dup = table.duplicated(keys)
    if dup.any():
        raise ValueError(f"duplicated subject/session/condition row: "
                         f"{table.loc[dup, keys].iloc[0].tolist()}")
    ids = id_columns(table)
    unit_codes, units = pd.MultiIndex.from_frame(table[ids]).factorize(sort=True)
    cond_pos = {c: i for i, c in enumerate(conditions)}
    col = table["desc"].map(cond_pos).to_numpy()
    keep = ~pd.isna(col)
    rows, cols = unit_codes[keep], col[keep].astype(int)
    out = {}
    for m in metrics:
        mat = np.full((len(units), len(conditions)), np.nan)
        mat[rows, cols] = table[m].to_numpy(dtype=float)[keep]
        out[m] = mat
    return out


def _adjust(out: pd.DataFrame, alpha: float) -> pd.DataFrame:
    out["p_holm"] = np.nan
    out["p_fdr_bh"] = np.nan
    for _, idx in out.groupby("metric", sort=False).groups.items():
        p = out.loc[idx, "p"].to_numpy(dtype=float)
        out.loc[idx, "p_holm"] = holm(p)
        out.loc[idx, "p_fdr_bh"] = benjamini_hochberg(p)
    out["alpha"] = alpha

    out["significant_uncorrected"] = significance_flags(out["p"], alpha)
    out["significant"] = significance_flags(out["p_holm"], alpha)
    return out


def family_sizes(p: pd.Series, metric: pd.Series) -> pd.Series:
    """Tests with a p-value in each row's family (one metric's condition pairs)."""
    return np.isfinite(p.astype(float)).groupby(metric, sort=False).transform("sum")


def pairwise_wilcoxon(
    table: pd.DataFrame, metrics: Sequence[str] = DEFAULT_METRICS,
    conditions: Sequence[str] | None = None, *, alpha: float = GroupSettings.alpha,
    n_boot: int = GroupSettings.n_boot, seed: int = 0, zero_method: str = "wilcox",
    reference: str | None = None,
    ci_pairs: str = "reference", primary: str | None = None,
    digits_rank: int | None = DEFAULT_DIGITS_RANK,
) -> pd.DataFrame:
    """Wilcoxon signed-rank tests for every pair of conditions and every metric.

    ``table`` has one row per unit (participant or image) and condition. Every pair gets the
    Hodges-Lehmann change ``B - A`` with its signed-rank intervals (unadjusted and
    Bonferroni over the metric's family). The rank-biserial CIs come from one bootstrap of the
    units (seed ``seed``) shared by all tests, for the pairs that involve ``reference``
    (default: the first condition) - the comparisons the findings report - or, with
    ``ci_pairs="all"``, for every pair. The correction family is one metric; ``primary``'s is
    ``confirmatory``, the others ``exploratory``.
    """
    _check_zero_method(zero_method)
    if ci_pairs not in ("reference", "all"):
        raise ValueError(f"ci_pairs must be 'reference' or 'all', got {ci_pairs!r}")
    conds = list(pd.unique(table["desc"])) if conditions is None else list(conditions)
    reference = conds[0] if reference is None and conds else reference
    mats = unit_matrix(table, metrics, conds)
    rows, boot_stats, slots, diffs = [], [], [], []
    for metric in metrics:
        mat = mats[metric]
        for (i, ca), (j, cb) in combinations(enumerate(conds), 2):
            res = wilcoxon_signed_rank(mat[:, i], mat[:, j], zero_method=zero_method, n_boot=0,
                                       digits_rank=digits_rank)
            rows.append({"metric": metric, "condition_a": ca, "condition_b": cb, **res})
            d = mat[:, i] - mat[:, j]
            diffs.append(mat[:, j] - mat[:, i])
            if not (ci_pairs == "all" or reference in (ca, cb)):
                continue
            if res["method"] not in ("not enough pairs", "all differences zero"):
                boot_stats.append(SignedRankBiserial(signif(d, digits_rank), zero_method))
                slots.append((len(rows) - 1, "rb_ci_low_unadjusted", "rb_ci_high_unadjusted"))
    if not rows:
        return pd.DataFrame(columns=WILCOXON_COLUMNS)
    n_units = next(iter(mats.values())).shape[0]
    ci = bootstrap_units([n_units], lambda c: evaluate(boot_stats, c), len(boot_stats),
                         n_boot=n_boot, seed=seed)
    for (r, lo, hi), (vlo, vhi) in zip(slots, ci, strict=True):
        rows[r][lo], rows[r][hi] = float(vlo), float(vhi)
    out = pd.DataFrame(rows)
    out["zero_method"] = zero_method
    out["digits_rank"] = "exact" if digits_rank is None else str(digits_rank)
    out["family"] = np.where(out["metric"] == primary, FAMILIES[0], FAMILIES[1])
    m = family_sizes(out["p"], out["metric"])
    hl = [_hl_columns(dd, alpha, int(k), digits_rank) for dd, k in zip(diffs, m, strict=True)]
    out = pd.concat([out, pd.DataFrame(hl, index=out.index)], axis=1)
    return _adjust(out, alpha)[WILCOXON_COLUMNS]


def _hl_columns(d: np.ndarray, alpha: float, family: int,
                digits_rank: int | None) -> dict[str, float | str]:
    """Hodges-Lehmann change and its intervals at ``1 - alpha`` and ``1 - alpha / family``
    (NaN with fewer than two pairs)."""
    if np.isfinite(d).sum() < 2:
        nan = float("nan")
        return {"hl_change": nan, "hl_ci_low_unadjusted": nan, "hl_ci_high_unadjusted": nan,
                "hl_conf_level_unadjusted": nan, "hl_method": "not enough pairs",
                "hl_ci_low_bonferroni": nan, "hl_ci_high_bonferroni": nan,
                "hl_conf_level_bonferroni": nan}
    levels = (1 - alpha, 1 - alpha / family) if family > 1 else (1 - alpha,)
    unadj, *rest = signed_rank_shifts(d, levels, digits_rank=digits_rank)
    adj = rest[0] if rest else unadj
    out: dict[str, float | str] = {
        "hl_change": unadj.estimate, "hl_ci_low_unadjusted": unadj.ci_low,
        "hl_ci_high_unadjusted": unadj.ci_high, "hl_conf_level_unadjusted": unadj.conf_level,
        "hl_method": unadj.method}
    out.update(hl_ci_low_bonferroni=adj.ci_low, hl_ci_high_bonferroni=adj.ci_high,
               hl_conf_level_bonferroni=adj.conf_level)
    return out
