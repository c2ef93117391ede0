"""Paired comparisons of conditions: Wilcoxon signed-rank tests and their effect sizes.

* **Test.** Two-sided Wilcoxon signed-rank test (:func:`scipy.stats.wilcoxon`) on the units with
  a finite value under *both* conditions (pairwise deletion; the number dropped is reported).
* **Zeros.** ``zero_method="wilcox"`` (default, as R's ``wilcox.test``): zero differences are
  discarded before ranking; ``"pratt"`` ranks them and leaves their ranks out of the sums.
* **p-value method**, chosen explicitly and reported: ``exact`` when n <= 50 without ties or
  zeros; ``permutation`` (exhaustive, exact given the ties) when n <= 13 otherwise;
  ``asymptotic`` (normal approximation with tie and continuity corrections, R's default)
  otherwise.
* **Effect sizes.** Median paired change with a percentile-bootstrap CI, and the matched-pairs
  rank-biserial correlation ``(T+ - T-) / (T+ + T-)`` (Kerby 2014) with a percentile-bootstrap
  CI; both from one bootstrap of the units (:mod:`bids_stroke.group.bootstrap`).
* **Multiple comparisons.** One family per metric: Holm and Benjamini-Hochberg adjusted p.
  ``significant`` uses the Holm-adjusted p at ``alpha``; ``significant_uncorrected`` the raw p
  (the original study's criterion).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from bids_stroke.group.bootstrap import Median, SignedRankBiserial, bootstrap_units, evaluate
from bids_stroke.group.corrections import benjamini_hochberg, holm, significance_flags
from bids_stroke.group.describe import id_columns

__all__ = [
    "DEFAULT_METRICS",
    "WILCOXON_COLUMNS",
    "bootstrap_rank_biserial_ci",
    "choose_wilcoxon_method",
    "pairwise_wilcoxon",
    "rank_biserial",
    "signed_rank_sums",
    "unit_matrix",
    "wilcoxon_signed_rank",
]

DEFAULT_METRICS: tuple[str, ...] = ("dice", "hd95", "lesion_f1", "abs_volume_diff_ml")
_ZERO_METHODS = ("wilcox", "pratt")
WILCOXON_COLUMNS = [
    "metric", "condition_a", "condition_b", "n", "n_dropped", "n_zero", "median_a", "median_b",
    "mean_a", "mean_b", "mean_diff", "median_diff", "median_diff_ci_low", "median_diff_ci_high",
    "t_plus", "t_minus", "W", "p", "method", "zero_method", "p_holm", "p_fdr_bh",
    "rank_biserial", "rb_ci_low", "rb_ci_high", "alpha", "significant_uncorrected",
    "significant",
]


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
    d: np.ndarray, *, n_boot: int = 2000, seed: int | Sequence[int] = 0,
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


def choose_wilcoxon_method(d: np.ndarray, zero_method: str = "wilcox") -> str:
    """``exact``, ``permutation`` or ``asymptotic`` for differences ``d`` (see module doc).

    ``n`` counts all pairs, zeros included (SciPy's ``method="auto"`` rule, made explicit).
    """
    _check_zero_method(zero_method)
    d = np.asarray(d, dtype=float)
    n = d.size
    if n > 50:
        return "asymptotic"
    a = np.abs(d[d != 0]) if zero_method == "wilcox" else np.abs(d)
    has_ties = np.unique(a).size < a.size
    if not has_ties and not np.any(d == 0):
        return "exact"
    return "permutation" if n <= 13 else "asymptotic"


def wilcoxon_signed_rank(
    a: np.ndarray, b: np.ndarray, *, zero_method: str = "wilcox", n_boot: int = 2000,
    seed: int | Sequence[int] = 0,
) -> dict[str, float | int | str]:
    """Two-sided Wilcoxon signed-rank test of paired samples ``a`` and ``b`` (d = a - b).

    Pairs with a non-finite value on either side are dropped (``n_dropped``). The rank-biserial
    CI resamples the pairs (``n_boot`` = 0: no CI).
    """
    _check_zero_method(zero_method)
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError("paired samples must have the same shape")
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    d = a - b
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
    tp, tm = signed_rank_sums(d, zero_method)
    out.update(t_plus=tp, t_minus=tm, W=min(tp, tm) if n else nan)
    if n < 2:
        out.update(p=nan, method="not enough pairs", rank_biserial=nan, rb_ci_low=nan,
                   rb_ci_high=nan)
        return out
    if not np.any(d != 0):
        out.update(p=1.0, method="all differences zero", rank_biserial=nan, rb_ci_low=nan,
                   rb_ci_high=nan)
        return out
    method = choose_wilcoxon_method(d, zero_method)
    scipy_method: str | stats.PermutationMethod = (
        stats.PermutationMethod(n_resamples=2**n + 1) if method == "permutation" else method)
    res = stats.wilcoxon(d, zero_method=zero_method, alternative="two-sided",
                         method=scipy_method, correction=method == "asymptotic")
    lo, hi = bootstrap_rank_biserial_ci(d, n_boot=n_boot, seed=seed, zero_method=zero_method)
    out.update(p=float(res.pvalue), method=method, rank_biserial=rank_biserial(d, zero_method),
               rb_ci_low=lo, rb_ci_high=hi)
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


def pairwise_wilcoxon(
    table: pd.DataFrame, metrics: Sequence[str] = DEFAULT_METRICS,
    conditions: Sequence[str] | None = None, *, alpha: float = 0.05, n_boot: int = 2000,
    seed: int = 0, zero_method: str = "wilcox", reference: str | None = None,
    ci_pairs: str = "reference",
) -> pd.DataFrame:
    """Wilcoxon signed-rank tests for every pair of conditions and every metric.

    ``table`` has one row per unit (participant or image) and condition. The CIs of the
    median change and of the rank-biserial correlation come from one bootstrap of the units
    (seed ``seed``) shared by all tests. They are computed for the pairs that involve
    ``reference`` (default: the first condition) - the comparisons the findings report - or,
    with ``ci_pairs="all"``, for every pair (the bootstrap is most of the group level's time on
    large studies). The correction family is one metric.
    """
    _check_zero_method(zero_method)
    if ci_pairs not in ("reference", "all"):
        raise ValueError(f"ci_pairs must be 'reference' or 'all', got {ci_pairs!r}")
    conds = list(pd.unique(table["desc"])) if conditions is None else list(conditions)
    reference = conds[0] if reference is None and conds else reference
    mats = unit_matrix(table, metrics, conds)
    rows, boot_stats, slots = [], [], []
    for metric in metrics:
        mat = mats[metric]
        for (i, ca), (j, cb) in combinations(enumerate(conds), 2):
            res = wilcoxon_signed_rank(mat[:, i], mat[:, j], zero_method=zero_method, n_boot=0)
            rows.append({"metric": metric, "condition_a": ca, "condition_b": cb, **res,
                         "median_diff_ci_low": np.nan, "median_diff_ci_high": np.nan})
            d = mat[:, i] - mat[:, j]
            if not (ci_pairs == "all" or reference in (ca, cb)):
                continue
            if res["method"] not in ("not enough pairs", "all differences zero"):
                boot_stats.append(SignedRankBiserial(d, zero_method))
                slots.append((len(rows) - 1, "rb_ci_low", "rb_ci_high"))
            if res["n"] >= 2:
                boot_stats.append(Median(d))
                slots.append((len(rows) - 1, "median_diff_ci_low", "median_diff_ci_high"))
    if not rows:
        return pd.DataFrame(columns=WILCOXON_COLUMNS)
    n_units = next(iter(mats.values())).shape[0]
    ci = bootstrap_units([n_units], lambda c: evaluate(boot_stats, c), len(boot_stats),
                         n_boot=n_boot, seed=seed)
    for (r, lo, hi), (vlo, vhi) in zip(slots, ci, strict=True):
        rows[r][lo], rows[r][hi] = float(vlo), float(vhi)
    out = pd.DataFrame(rows)
    out["zero_method"] = zero_method
    return _adjust(out, alpha)[WILCOXON_COLUMNS]
