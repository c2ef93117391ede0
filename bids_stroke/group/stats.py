"""Group-level statistics for paired (subjects x conditions) segmentation metrics.

All functions here are pure: they take arrays / data frames and return new ones.

Design choices (documented once, reported in the group report):

* **Paired test.** Every pair of conditions is compared with the Wilcoxon signed-rank test
  (:func:`scipy.stats.wilcoxon`, two-sided) on the subjects that have a finite value of the
  metric under *both* conditions (pairwise deletion; the number dropped is reported).
* **Zeros.** ``zero_method="wilcox"`` (default, as in Wilcoxon 1945 and R's ``wilcox.test``):
  zero differences are discarded before ranking. ``"pratt"`` (Pratt 1959) ranks the zeros and
  then drops their ranks from the sums; it is available as an option.
* **p-value method.** Chosen explicitly and reported in the ``method`` column, mirroring
  SciPy's ``method="auto"``: ``exact`` (exact null distribution) when n <= 50 and there are no
  ties and no zeros; ``permutation`` (exhaustive, hence exact conditional on ties/zeros) when
  n <= 13 otherwise; ``asymptotic`` (normal approximation with tie correction and continuity
  correction) in all other cases.
* **Effect size.** Matched-pairs rank-biserial correlation r = (T+ - T-) / (T+ + T-)
  (Kerby 2014), computed on the same ranks as the test, with a seeded percentile-bootstrap 95%
  CI (pairs resampled with replacement; fully vectorised, no Python loop over resamples).
* **Multiple comparisons.** One family per metric = all condition pairs for that metric.
  Holm (1979) step-down FWER and Benjamini-Hochberg (1995) FDR adjusted p-values are both
  reported; ``significant`` uses the Holm-adjusted p at ``alpha``.
* **Omnibus.** Friedman test per metric on complete cases (subjects with a finite value for
  every condition) with Kendall's W = chi2 / (n (k - 1)).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from itertools import combinations, pairwise

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "DEFAULT_METRICS",
    "DEFAULT_SIZE_BINS_ML",
    "ID_COLUMNS",
    "benjamini_hochberg",
    "bootstrap_rank_biserial_ci",
    "choose_wilcoxon_method",
    "friedman_chi2",
    "friedman_table",
    "friedman_test",
    "holm",
    "id_columns",
    "lesion_detection_by_size",
    "pairwise_wilcoxon",
    "rank_biserial",
    "signed_rank_sums",
    "size_bin_labels",
    "size_bin_summary",
    "summarize",
    "to_wide",
    "wilcoxon_signed_rank",
]

DEFAULT_METRICS: tuple[str, ...] = ("dice", "hd95", "lesion_f1", "abs_volume_diff_ml")
DEFAULT_SIZE_BINS_ML: tuple[float, ...] = (1.0, 10.0, 50.0)
ID_COLUMNS: tuple[str, ...] = ("participant_id", "session_id", "image_id")


def id_columns(table: pd.DataFrame) -> list[str]:
    """The identifier columns present in ``table`` (``image_id`` tells runs/acquisitions of
    one subject-session apart; frames built by hand may lack it)."""
    return [c for c in ID_COLUMNS if c in table.columns]
_ZERO_METHODS = ("wilcox", "pratt")
_BOOT_CHUNK = 64  # resamples per vectorised block (keeps the working set in cache)


# --------------------------------------------------------------------------------------------
# Multiple-comparison corrections
# --------------------------------------------------------------------------------------------
def _as_pvalues(pvals: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pvals, dtype=float).ravel()
    finite = np.isfinite(p)
    if np.any((p[finite] < 0) | (p[finite] > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    return p, finite


def holm(pvals: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values.

    Parameters
    ----------
    pvals : array-like of float
        Raw p-values of one family. NaN entries are ignored (not counted in the family size)
        and returned as NaN.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values in the input order, ``min(1, max_{j<=i} (m - j + 1) p_(j))``.
    """
    p, finite = _as_pvalues(pvals)
    out = np.full(p.shape, np.nan)
    q = p[finite]
    m = q.size
    if m == 0:
        return out
    order = np.argsort(q, kind="stable")
    adj = np.maximum.accumulate((m - np.arange(m)) * q[order])
    res = np.empty(m)
    res[order] = np.minimum(adj, 1.0)
    out[finite] = res
    return out


def benjamini_hochberg(pvals: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg (1995) false-discovery-rate adjusted p-values.

    Parameters
    ----------
    pvals : array-like of float
        Raw p-values of one family. NaN entries are ignored and returned as NaN.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values in the input order, ``min(1, min_{j>=i} m p_(j) / j)``.
    """
    p, finite = _as_pvalues(pvals)
    out = np.full(p.shape, np.nan)
    q = p[finite]
    m = q.size
    if m == 0:
        return out
    order = np.argsort(q, kind="stable")
    scaled = q[order] * m / np.arange(1, m + 1)
    adj = np.minimum.accumulate(scaled[::-1])[::-1]
    res = np.empty(m)
    res[order] = np.minimum(adj, 1.0)
    out[finite] = res
    return out


# --------------------------------------------------------------------------------------------
# Wilcoxon signed-rank + rank-biserial effect size
# --------------------------------------------------------------------------------------------
def _check_zero_method(zero_method: str) -> None:
    if zero_method not in _ZERO_METHODS:
        raise ValueError(f"zero_method must be one of {_ZERO_METHODS}, got {zero_method!r}")


def signed_rank_sums(d: np.ndarray, zero_method: str = "wilcox") -> tuple[float, float]:
    """Sums of the ranks of |d| for positive (T+) and negative (T-) differences.

    Parameters
    ----------
    d : numpy.ndarray
        Finite paired differences.
    zero_method : {"wilcox", "pratt"}
        ``wilcox`` drops zeros before ranking; ``pratt`` ranks them but excludes their ranks.

    Returns
    -------
    tuple of float
        ``(T+, T-)`` with average ranks for ties.
    """
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

    Positive values mean the first condition (``d = a - b``) tends to be larger.
    Returns NaN when there is no non-zero difference.
    """
    tp, tm = signed_rank_sums(d, zero_method)
    tot = tp + tm
    return float((tp - tm) / tot) if tot > 0 else float("nan")


def bootstrap_rank_biserial_ci(
    d: np.ndarray,
    *,
    n_boot: int = 2000,
    seed: int | Sequence[int] | np.random.SeedSequence = 0,
    zero_method: str = "wilcox",
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the rank-biserial correlation.

    Pairs (differences) are resampled with replacement ``n_boot`` times. The ranks of every
    resample are obtained without sorting it: the differences are sorted by |d| once, each
    resample is represented by the multiplicity of every sorted observation, and the average
    rank of a tie group is ``cumulative count - (group count - 1) / 2``. Resamples are
    processed in blocks of 64 (memory O(64 n)); within a block everything is vectorised.

    Parameters
    ----------
    d : numpy.ndarray
        Finite paired differences.
    n_boot : int
        Number of bootstrap resamples (0 disables the CI: returns NaNs).
    seed : int, sequence of int or SeedSequence
        Seed of :func:`numpy.random.default_rng`.
    zero_method : {"wilcox", "pratt"}
        Zero handling, as for the test.
    level : float
        Confidence level.

    Returns
    -------
    tuple of float
        ``(low, high)``; NaN when undefined (fewer than 2 pairs, or no non-zero difference).
    """
    _check_zero_method(zero_method)
    d = np.asarray(d, dtype=float)
    d = d[np.isfinite(d)]
    n = d.size
    if n_boot <= 0 or n < 2 or not np.any(d != 0):
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    a = np.abs(d)
    order = np.argsort(a, kind="stable")
    ds, a = d[order], a[order]
    sign = np.sign(ds)
    zero = ds == 0
    ends = np.flatnonzero(np.r_[a[1:] != a[:-1], True])  # last index of each tie group
    has_ties = ends.size < n
    gid = np.repeat(np.arange(ends.size), np.diff(np.r_[-1, ends]))
    r = np.empty(n_boot)
    chunk = _BOOT_CHUNK
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        pos = rng.integers(0, n, size=(b, n), dtype=np.int32)
        pos += (np.arange(b, dtype=np.int32) * n)[:, None]
        counts = np.bincount(pos.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)
        if zero_method == "wilcox":
            counts[:, zero] = 0.0
        cum = np.cumsum(counts, axis=1)
        cs = counts * sign
        if has_ties:  # average rank of a tie group = cumulative count - (group count - 1) / 2
            cum_end = cum[:, ends]
            c_g = np.diff(cum_end, axis=1, prepend=0.0)
            t_diff = np.einsum("ij,ij->i", cs, (cum_end - (c_g - 1.0) / 2.0)[:, gid])
        else:  # sum_i c_i s_i (cum_i - (c_i - 1) / 2)
            t_diff = np.einsum("ij,ij->i", cs, cum) - 0.5 * (
                np.einsum("ij,ij->i", cs, counts) - cs.sum(axis=1))
        m = counts.sum(axis=1)
        t_tot = m * (m + 1.0) / 2.0  # sum of all ranks; zeros' ranks removed for pratt
        if zero_method == "pratt":
            z = counts[:, zero].sum(axis=1)
            t_tot -= z * (z + 1.0) / 2.0
        with np.errstate(invalid="ignore", divide="ignore"):
            r[start:start + b] = t_diff / t_tot
    r = r[np.isfinite(r)]
    if r.size == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(r, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def choose_wilcoxon_method(d: np.ndarray, zero_method: str = "wilcox") -> str:
    """Return the p-value method used for differences ``d``: exact, permutation or asymptotic.

    Mirrors SciPy's ``method="auto"`` but is made explicit so the report states it:
    ``exact`` if n <= 50 with no zeros and no ties; ``permutation`` (exhaustive) if n <= 13
    otherwise; ``asymptotic`` (normal approximation, tie and continuity corrected) otherwise.
    ``n`` counts all pairs, zeros included.
    """
    _check_zero_method(zero_method)
    d = np.asarray(d, dtype=float)
    n = d.size
    n_zero = int(np.sum(d == 0))
    if n > 50:
        return "asymptotic"
    a = np.abs(d[d != 0]) if zero_method == "wilcox" else np.abs(d)
    has_ties = np.unique(a).size < a.size
    if not has_ties and n_zero == 0:
        return "exact"
    if n <= 13:
        return "permutation"
    return "asymptotic"


def wilcoxon_signed_rank(
    a: np.ndarray,
    b: np.ndarray,
    *,
    zero_method: str = "wilcox",
    n_boot: int = 2000,
    seed: int | Sequence[int] = 0,
) -> dict[str, float | int | str]:
    """Two-sided Wilcoxon signed-rank test of paired samples ``a`` and ``b`` (d = a - b).

    Pairs with a non-finite value on either side are dropped (``n_dropped``).

    Returns
    -------
    dict
        ``n`` (pairs used), ``n_dropped``, ``n_zero``, ``mean_a``, ``mean_b``,
        ``mean_diff``, ``median_diff``, ``t_plus``, ``t_minus``, ``W`` (= min(T+, T-), SciPy's
        two-sided statistic), ``p`` (two-sided), ``method``, ``rank_biserial``,
        ``rb_ci_low``, ``rb_ci_high``.
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
        "n": n,
        "n_dropped": int(ok.size - n),
        "n_zero": int(np.sum(d == 0)),
        "mean_a": float(a.mean()) if n else nan,
        "mean_b": float(b.mean()) if n else nan,
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
    scipy_method: str | stats.PermutationMethod
    if method == "permutation":
        scipy_method = stats.PermutationMethod(n_resamples=2**n + 1)
    else:
        scipy_method = method
    # continuity correction for the normal approximation, as documented (and R's default)
    res = stats.wilcoxon(d, zero_method=zero_method, alternative="two-sided",
                         method=scipy_method, correction=method == "asymptotic")
    lo, hi = bootstrap_rank_biserial_ci(d, n_boot=n_boot, seed=seed, zero_method=zero_method)
    out.update(p=float(res.pvalue), method=method, rank_biserial=rank_biserial(d, zero_method),
               rb_ci_low=lo, rb_ci_high=hi)
    return out


# --------------------------------------------------------------------------------------------
# Friedman omnibus
# --------------------------------------------------------------------------------------------
def friedman_chi2(matrix: np.ndarray) -> float:
    """Tie-corrected Friedman statistic of a complete (n x k) matrix, vectorised over rows.

    Same formula as :func:`scipy.stats.friedmanchisquare` (which loops over rows):
    ``(12 / (n k (k + 1)) sum_j R_j^2 - 3 n (k + 1)) / C`` with
    ``C = 1 - sum (t^3 - t) / (n k (k^2 - 1))`` over the tie groups of every row.
    """
    m = np.asarray(matrix, dtype=float)
    n, k = m.shape
    ranks = stats.rankdata(m, axis=1)
    rank_sums = ranks.sum(axis=0)
    # sum over tie groups of (t^3 - t) == sum over elements of (t^2 - 1)
    t = (m[:, :, None] == m[:, None, :]).sum(axis=2)
    ties = float((t.astype(float) ** 2 - 1.0).sum())
    c = 1.0 - ties / (n * k * (k * k - 1.0))
    chi2 = (12.0 / (n * k * (k + 1.0)) * float(np.sum(rank_sums**2)) - 3.0 * n * (k + 1.0))
    return float(chi2 / c)


def friedman_test(matrix: np.ndarray) -> dict[str, float | int]:
    """Friedman test on a (subjects x conditions) matrix, complete cases only.

    Rows with any non-finite value are dropped (``n_dropped``). Kendall's coefficient of
    concordance is ``W = chi2 / (n (k - 1))`` (tie-corrected chi2, as in SciPy).

    Returns
    -------
    dict
        ``n``, ``n_dropped``, ``k``, ``chi2``, ``df``, ``p``, ``kendall_w``.
    """
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2:
        raise ValueError("matrix must be 2-D (subjects x conditions)")
    ok = np.all(np.isfinite(m), axis=1)
    m = m[ok]
    n, k = m.shape
    nan = float("nan")
    out: dict[str, float | int] = {"n": int(n), "n_dropped": int((~ok).sum()), "k": int(k),
                                   "df": int(k - 1), "chi2": nan, "p": nan, "kendall_w": nan}
    if k < 3 or n < 2:
        return out
    if np.all(m == m[:, :1]):  # every subject identical across conditions: no evidence
        out.update(chi2=0.0, p=1.0, kendall_w=0.0)
        return out
    chi2 = friedman_chi2(m)
    p = float(stats.chi2.sf(chi2, k - 1))
    out.update(chi2=float(chi2), p=float(p), kendall_w=float(chi2 / (n * (k - 1))))
    return out


# --------------------------------------------------------------------------------------------
# Data-frame level helpers
# --------------------------------------------------------------------------------------------
def to_wide(table: pd.DataFrame, metric: str, conditions: Sequence[str]) -> pd.DataFrame:
    """Pivot one metric to a (participant_id, session_id) x condition frame (NaN if missing).

    ``table`` has one row per subject/session/condition with a ``desc`` column (the condition
    label) and one column per metric. Duplicated subject/condition rows raise ``ValueError``.
    """
    keys = [*id_columns(table), "desc"]
    if table.duplicated(keys).any():
        dup = table.loc[table.duplicated(keys), keys].iloc[0].tolist()
        raise ValueError(f"duplicated subject/session/condition row: {dup}")
    wide = table.pivot(index=id_columns(table), columns="desc", values=metric)
    return wide.reindex(columns=list(conditions)).astype(float)


def _pair_seed(seed: int, metric: str, a: str, b: str) -> list[int]:
    return [int(seed), zlib.crc32(f"{metric}|{a}|{b}".encode())]


def pairwise_wilcoxon(
    table: pd.DataFrame,
    metrics: Sequence[str] = DEFAULT_METRICS,
    conditions: Sequence[str] | None = None,
    *,
    alpha: float = 0.05,
    n_boot: int = 2000,
    seed: int = 0,
    zero_method: str = "wilcox",
) -> pd.DataFrame:
    """Wilcoxon signed-rank tests for every pair of conditions and every metric.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per subject/session/condition (``participant_id``, ``session_id``, ``desc``
        and metric columns).
    metrics : sequence of str
        Metric columns to test.
    conditions : sequence of str, optional
        Condition labels (``desc``) in display order; default: order of first appearance.
    alpha : float
        Significance level applied to the Holm-adjusted p-value.
    n_boot, seed : int
        Bootstrap resamples and base seed for the rank-biserial CI. Each test uses the seed
        ``[seed, crc32(metric|a|b)]`` so results do not depend on which other tests run.
    zero_method : {"wilcox", "pratt"}
        Treatment of zero differences.

    Returns
    -------
    pandas.DataFrame
        One row per (metric, condition_a, condition_b); correction family = one metric.
    """
    conds = list(pd.unique(table["desc"])) if conditions is None else list(conditions)
    rows = []
    for metric in metrics:
        wide = to_wide(table, metric, conds)
        for ca, cb in combinations(conds, 2):
            res = wilcoxon_signed_rank(wide[ca].to_numpy(), wide[cb].to_numpy(),
                                       zero_method=zero_method, n_boot=n_boot,
                                       seed=_pair_seed(seed, metric, ca, cb))
            rows.append({"metric": metric, "condition_a": ca, "condition_b": cb, **res})
    cols = ["metric", "condition_a", "condition_b", "n", "n_dropped", "n_zero", "mean_a",
            "mean_b", "mean_diff", "median_diff", "t_plus", "t_minus", "W", "p", "method",
            "zero_method", "p_holm", "p_fdr_bh", "rank_biserial", "rb_ci_low", "rb_ci_high",
            "alpha", "significant"]
    out = pd.DataFrame(rows)
    if out.empty:
        return pd.DataFrame(columns=cols)
    out["zero_method"] = zero_method
    out["p_holm"] = np.nan
    out["p_fdr_bh"] = np.nan
    for _, idx in out.groupby("metric", sort=False).groups.items():
        p = out.loc[idx, "p"].to_numpy(dtype=float)
        out.loc[idx, "p_holm"] = holm(p)
        out.loc[idx, "p_fdr_bh"] = benjamini_hochberg(p)
    out["alpha"] = alpha
    out["significant"] = np.where(out["p_holm"].isna(), "n/a",
                                  np.where(out["p_holm"] < alpha, "yes", "no"))
    return out[cols]


def friedman_table(
    table: pd.DataFrame,
    metrics: Sequence[str] = DEFAULT_METRICS,
    conditions: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Friedman omnibus test (complete cases) + Kendall's W for each metric."""
    conds = list(pd.unique(table["desc"])) if conditions is None else list(conditions)
    rows = []
    for metric in metrics:
        res = friedman_test(to_wide(table, metric, conds).to_numpy())
        rows.append({"metric": metric, **res})
    cols = ["metric", "n", "n_dropped", "k", "chi2", "df", "p", "kendall_w"]
    return pd.DataFrame(rows, columns=cols)


_SUMMARY_STATS = ("n", "mean", "std", "min", "q1", "median", "q3", "iqr", "max")


def summarize(
    table: pd.DataFrame,
    metrics: Sequence[str],
    by: Sequence[str] = ("desc",),
) -> pd.DataFrame:
    """Descriptive statistics per group and metric (non-finite values ignored).

    Returns one row per (``by`` groups..., metric) with ``n, mean, std`` (ddof=1), ``min, q1,
    median, q3, iqr, max``. Group order follows first appearance.
    """
    by = list(by)
    long = table[[*by, *metrics]].melt(id_vars=by, value_vars=list(metrics),
                                        var_name="metric", value_name="value")
    long["value"] = pd.to_numeric(long["value"], errors="coerce").replace([np.inf, -np.inf],
                                                                          np.nan)
    g = long.groupby([*by, "metric"], sort=False, observed=True)["value"]
    out = pd.DataFrame({
        "n": g.count(),
        "mean": g.mean(),
        "std": g.std(ddof=1),
        "min": g.min(),
        "q1": g.quantile(0.25),
        "median": g.median(),
        "q3": g.quantile(0.75),
        "max": g.max(),
    })
    out["iqr"] = out["q3"] - out["q1"]
    out = out.reset_index()
    out["n"] = out["n"].astype(int)
    return out[[*by, "metric", *_SUMMARY_STATS]]


def size_bin_labels(edges_ml: Sequence[float]) -> list[str]:
    """Labels of lesion-volume bins for inner edges, e.g. (1, 10, 50) -> <1, 1-10, 10-50, >50."""
    e = [float(x) for x in edges_ml]
    if any(b <= a for a, b in pairwise(e)) or not e or e[0] <= 0:
        raise ValueError(f"size-bin edges must be positive and increasing, got {edges_ml!r}")

    def fmt(x: float) -> str:
        return f"{x:g}"

    labels = [f"<{fmt(e[0])} ml"]
    labels += [f"{fmt(a)}-{fmt(b)} ml" for a, b in pairwise(e)]
    labels.append(f">={fmt(e[-1])} ml")
    return labels


def _bin_volumes(volumes: pd.Series, edges_ml: Sequence[float]) -> pd.Categorical:
    labels = size_bin_labels(edges_ml)
    edges = [-np.inf, *[float(x) for x in edges_ml], np.inf]
    return pd.cut(volumes.astype(float), bins=edges, labels=labels, right=False)


def size_bin_summary(
    table: pd.DataFrame,
    metrics: Sequence[str],
    edges_ml: Sequence[float] = DEFAULT_SIZE_BINS_ML,
    volume_column: str = "ref_volume_ml",
) -> pd.DataFrame:
    """Summaries per reference lesion-volume bin x condition x metric.

    Bins are left-closed ``[a, b)`` on ``volume_column`` (total reference lesion volume of the
    subject). Empty bins are omitted.
    """
    t = table.copy()
    t["size_bin"] = _bin_volumes(t[volume_column], edges_ml)
    t = t[t["size_bin"].notna()]
    out = summarize(t, metrics, by=("size_bin", "desc"))
    out["size_bin"] = out["size_bin"].astype(str)
    order = {lab: i for i, lab in enumerate(size_bin_labels(edges_ml))}
    out = out[out["n"] > 0].copy()
    out["_o"] = out["size_bin"].map(order)
    return out.sort_values("_o", kind="stable").drop(columns="_o").reset_index(drop=True)


def lesion_detection_by_size(
    lesions: pd.DataFrame,
    edges_ml: Sequence[float] = DEFAULT_SIZE_BINS_ML,
    conditions: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per-lesion detection rate by individual lesion volume bin and condition.

    ``lesions`` has one row per (subject, condition, reference lesion) with ``volume_ml`` and
    ``detected`` (0/1). The 95% CI is the Wilson score interval.
    """
    cols = ["desc", "size_bin", "n_lesions", "n_detected", "detection_rate", "ci_low",
            "ci_high", "mean_overlap_fraction"]
    if lesions is None or lesions.empty:
        return pd.DataFrame(columns=cols)
    t = lesions.copy()
    t["size_bin"] = _bin_volumes(t["volume_ml"], edges_ml)
    t["detected"] = pd.to_numeric(t["detected"], errors="coerce")
    t = t[t["size_bin"].notna() & t["detected"].notna()]
    g = t.groupby(["desc", "size_bin"], sort=False, observed=True)
    out = pd.DataFrame({"n_lesions": g["detected"].count(), "n_detected": g["detected"].sum(),
                        "mean_overlap_fraction": g["overlap_fraction"].mean()}).reset_index()
    n = out["n_lesions"].to_numpy(float)
    k = out["n_detected"].to_numpy(float)
    z = stats.norm.ppf(0.975)
    with np.errstate(invalid="ignore", divide="ignore"):
        phat = k / n
        denom = 1 + z**2 / n
        centre = (phat + z**2 / (2 * n)) / denom
        half = z * np.sqrt(phat * (1 - phat) / n + z**2 / (4 * n**2)) / denom
    out["detection_rate"] = phat
    out["ci_low"] = np.clip(centre - half, 0, 1)
    out["ci_high"] = np.clip(centre + half, 0, 1)
    out["n_lesions"] = out["n_lesions"].astype(int)
    out["n_detected"] = out["n_detected"].astype(int)
    out["size_bin"] = out["size_bin"].astype(str)
    conds = list(pd.unique(t["desc"])) if conditions is None else list(conditions)
    corder = {c: i for i, c in enumerate(conds)}
    border = {lab: i for i, lab in enumerate(size_bin_labels(edges_ml))}
    out["_c"] = out["desc"].map(corder)
    out["_b"] = out["size_bin"].map(border)
    out = out.sort_values(["_c", "_b"], kind="stable").drop(columns=["_c", "_b"])
    return out[cols].reset_index(drop=True)
