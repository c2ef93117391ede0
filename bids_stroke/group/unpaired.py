"""Unpaired comparisons of datasets (e.g. ATLAS vs ISLES'22), under the same or different
conditions.

* **Brunner-Munzel** decides ``significant``: it tests ``p = P(A < B) + P(A = B) / 2 = 1/2``
  and stays valid when the two groups differ in spread (Brunner & Munzel 2000). Its statistic
  is positive when B tends to be larger (SciPy's and R's convention). With 10 or more values
  in each group the t approximation with Satterthwaite degrees of freedom is used
  (:func:`scipy.stats.brunnermunzel`); with fewer in either group the *studentised
  permutation* test (Neubert & Brunner 2007), which keeps its level for small samples: the
  same statistic recomputed for every split of the pooled values into groups of the two sizes
  (all splits when there are at most ``n_perm``, otherwise ``n_perm`` seeded random ones; p
  = (1 + splits at least as extreme) / (1 + splits)). A split without within-group rank
  variance has ``|T| = inf`` when its estimate differs from 1/2 and ``T = 0`` otherwise, so
  complete separation is a valid, most extreme outcome instead of an undefined one; larger
  groups whose t approximation is undefined for that reason use the permutation test too.
* **Its interval.** Cliff's delta ``P(A > B) - P(A < B) = 1 - 2 p`` with the interval that
  inverts the Brunner-Munzel test: ``p +- t_{df} se`` (permutation: the permutation quantiles
  of the statistic), at ``1 - alpha`` (unadjusted: excludes 0 exactly when the raw
  Brunner-Munzel p < alpha in the t version) and Bonferroni-adjusted over the metric's family.
  Cliff's delta also keeps a percentile-bootstrap CI (each dataset resampled on its own).
* **Mann-Whitney U** (Wilcoxon rank-sum) is reported beside it, with R's
  ``wilcox.test(paired = FALSE)`` rule (exact when both groups have fewer than 50 values and
  no ties, else the normal approximation with continuity and tie corrections); ``U`` is the
  statistic of the first group (R's ``W``). The Hodges-Lehmann shift ``A - B`` carries the
  Mann-Whitney inversion interval (R's ``conf.int = TRUE``).
* **Ties.** Pooled values are compared after rounding to ``digits_rank`` significant digits
  (R's ``digits.rank``, default 7).
* **Multiple comparisons.** One family per metric: all compared condition and dataset pairs.
  Holm and BH adjusted p for both tests; ``significant`` uses the Holm-adjusted
  Brunner-Munzel p, ``significant_uncorrected`` the raw one.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from bids_stroke.core.settings import GroupSettings
from bids_stroke.group.bootstrap import CliffsDelta, bootstrap_units, evaluate
from bids_stroke.group.corrections import benjamini_hochberg, holm, significance_flags
from bids_stroke.group.hodges_lehmann import DEFAULT_DIGITS_RANK, rank_sum_shift
from bids_stroke.group.paired import FAMILIES, family_sizes, unit_matrix
from bids_stroke.group.rmath import signif

__all__ = [
    "BM_PERMUTATION_BELOW",
    "DATASET_COLUMNS",
    "N_PERM",
    "brunner_munzel",
    "brunner_munzel_permutation",
    "choose_mann_whitney_method",
    "cliffs_delta",
    "compare_datasets",
    "comparison_pairs",
    "default_pairs",
    "mann_whitney",
]

#: the studentised permutation Brunner-Munzel test is used when a group has fewer values
BM_PERMUTATION_BELOW = 10
#: splits of the permutation test (all of them when there are no more)
N_PERM = 10_000

DATASET_COLUMNS = [
    "metric", "dataset_a", "desc_a", "dataset_b", "desc_b", "family", "n_a", "n_b",
    "median_a", "median_b", "bm_statistic", "bm_df", "p_bm", "bm_method", "p_bm_holm",
    "p_bm_fdr_bh", "cliffs_delta", "delta_bm_ci_low_unadjusted", "delta_bm_ci_high_unadjusted",
    "delta_bm_ci_low_bonferroni", "delta_bm_ci_high_bonferroni", "delta_ci_low_unadjusted",
    "delta_ci_high_unadjusted", "U", "p_mwu", "mwu_method", "p_mwu_holm", "p_mwu_fdr_bh",
    "hl_shift", "hl_ci_low_unadjusted", "hl_ci_high_unadjusted", "hl_method", "digits_rank",
    "alpha", "significant_uncorrected", "significant",
]


def _finite(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    finite: np.ndarray = x[np.isfinite(x)]
    return finite


def choose_mann_whitney_method(a: np.ndarray, b: np.ndarray,
                               digits_rank: int | None = DEFAULT_DIGITS_RANK) -> str:
    """``exact`` if both groups have < 50 values and the pooled values (rounded to
    ``digits_rank`` significant digits) have no ties (R's rule), else ``asymptotic``."""
    a, b = _finite(a), _finite(b)
    pooled = signif(np.concatenate([a, b]), digits_rank)
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


def mann_whitney(a: np.ndarray, b: np.ndarray, *,
                 digits_rank: int | None = DEFAULT_DIGITS_RANK) -> dict[str, float | int | str]:
    """Two-sided Mann-Whitney U test of the finite values of ``a`` and ``b`` (ranks of the
    values rounded to ``digits_rank`` significant digits)."""
    a, b = _finite(a), _finite(b)
    out: dict[str, float | int | str] = {"n_a": int(a.size), "n_b": int(b.size)}
    if a.size == 0 or b.size == 0:
        return {**out, "U": np.nan, "p_mwu": np.nan, "mwu_method": "not enough values"}
    ra, rb = signif(a, digits_rank), signif(b, digits_rank)
    if np.unique(np.concatenate([ra, rb])).size == 1:
        return {**out, "U": a.size * b.size / 2.0, "p_mwu": 1.0, "mwu_method": "all values equal"}
    method = choose_mann_whitney_method(a, b, digits_rank)
    res = stats.mannwhitneyu(ra, rb, alternative="two-sided", use_continuity=True, method=method)
    return {**out, "U": float(res.statistic), "p_mwu": float(res.pvalue), "mwu_method": method}


def _bm_parts(r: np.ndarray, r1: np.ndarray, r2: np.ndarray, n1: int,
              n2: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Relative effect, its standard error and the Satterthwaite df along the last axis.

    ``r``: pooled ranks (group 1 first), ``r1``, ``r2``: within-group ranks.
    """
    m1, m2 = r[..., :n1].mean(-1), r[..., n1:].mean(-1)
    v1 = np.sum((r[..., :n1] - r1 - m1[..., None] + (n1 + 1) / 2) ** 2, -1) / (n1 - 1)
    v2 = np.sum((r[..., n1:] - r2 - m2[..., None] + (n2 + 1) / 2) ** 2, -1) / (n2 - 1)
    p_hat = (m2 - (n2 + 1) / 2) / n1
    spread = n1 * v1 + n2 * v2
    se = np.sqrt(spread) / (n1 * n2)
    with np.errstate(invalid="ignore", divide="ignore"):
        df = spread**2 / ((n1 * v1) ** 2 / (n1 - 1) + (n2 * v2) ** 2 / (n2 - 1))
    return p_hat, se, df


def _studentised(p_hat: np.ndarray, se: np.ndarray) -> np.ndarray:
    """``(p - 1/2) / se``: +-inf without rank variance when p != 1/2, 0 when p = 1/2."""
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (p_hat - 0.5) / se
        return np.where(se > 0, t, np.where(p_hat == 0.5, 0.0, np.sign(p_hat - 0.5) * np.inf))


def _delta_interval(p_hat: float, se: float, lo_q: float, hi_q: float) -> tuple[float, float]:
    """Cliff's delta ``1 - 2 p`` limits from ``p - hi_q se .. p - lo_q se`` (in [-1, 1])."""
    if not (math.isfinite(se) and math.isfinite(lo_q) and math.isfinite(hi_q)):
        return float("nan"), float("nan")
    p_lo, p_hi = p_hat - hi_q * se, p_hat - lo_q * se
    return float(max(-1.0, 1 - 2 * p_hi)), float(min(1.0, 1 - 2 * p_lo))


def brunner_munzel(a: np.ndarray, b: np.ndarray, *,
                   digits_rank: int | None = DEFAULT_DIGITS_RANK,
                   levels: Sequence[float] = ()) -> dict[str, Any]:
    """Two-sided Brunner-Munzel test (t approximation): statistic, df, p (NaN if undefined)
    and, under ``intervals``, the Cliff's delta interval that inverts it at each of
    ``levels``."""
    a, b = signif(_finite(a), digits_rank), signif(_finite(b), digits_rank)
    nan = float("nan")
    out: dict[str, Any] = {"bm_statistic": nan, "bm_df": nan, "p_bm": nan, "bm_method": "t",
                           "intervals": {level: (nan, nan) for level in levels}}
    if a.size < 2 or b.size < 2:
        return {**out, "bm_method": "not enough values"}
    n1, n2 = a.size, b.size
    r = stats.rankdata(np.concatenate([a, b]))
    p_hat, se, df = (float(v) for v in _bm_parts(r, stats.rankdata(a), stats.rankdata(b),
                                                 n1, n2))
    if not se > 0:
        return {**out, "bm_method": "no rank variance"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.brunnermunzel(a, b, alternative="two-sided", distribution="t")
    out.update(bm_statistic=float(res.statistic), bm_df=df, p_bm=float(res.pvalue))
    for level in levels:
        q = float(stats.t.ppf(1 - (1 - level) / 2, df))
        out["intervals"][level] = _delta_interval(p_hat, se, -q, q)
    return out


def _splits(n: int, n1: int, n_perm: int, seed: int | Sequence[int]) -> np.ndarray:
    """``(k, n)`` orders of the pooled values whose first ``n1`` entries form group 1, the
    observed split first: every split when there are at most ``n_perm``, else ``n_perm``
    seeded random ones after the observed one."""
    if math.comb(n, n1) <= n_perm:
        firsts = np.array(list(combinations(range(n), n1)), dtype=np.int64).reshape(-1, n1)
        member = np.zeros((firsts.shape[0], n), bool)
        np.put_along_axis(member, firsts, True, axis=1)
        return np.argsort(~member, axis=1, kind="stable")  # lexicographic: observed first
    rng = np.random.default_rng(seed)
    perms = rng.permuted(np.tile(np.arange(n), (n_perm, 1)), axis=1)
    return np.vstack([np.arange(n)[None, :], perms])


def brunner_munzel_permutation(
    a: np.ndarray, b: np.ndarray, *, n_perm: int = N_PERM, seed: int | Sequence[int] = 0,
    digits_rank: int | None = DEFAULT_DIGITS_RANK, levels: Sequence[float] = (),
) -> dict[str, Any]:
    """Studentised permutation Brunner-Munzel test (Neubert & Brunner 2007), two-sided.

    Over every split (at most ``n_perm``): p = share of splits with ``|T*| >= |T|``; over
    ``n_perm`` random splits: p = (1 + such splits) / (1 + n_perm). The Cliff's delta interval
    of each of ``levels`` uses the permutation quantiles of ``T*`` (``intervals``).
    """
    a, b = signif(_finite(a), digits_rank), signif(_finite(b), digits_rank)
    nan = float("nan")
    out: dict[str, Any] = {"bm_statistic": nan, "bm_df": nan, "p_bm": nan,
                           "intervals": {level: (nan, nan) for level in levels}}
    if a.size < 2 or b.size < 2:
        return {**out, "bm_method": "not enough values"}
    n1, n2 = a.size, b.size
    pooled = np.concatenate([a, b])
    n = pooled.size
    exhaustive = math.comb(n, n1) <= n_perm
    order = _splits(n, n1, n_perm, seed)
    rp = stats.rankdata(pooled)[order]  # pooled ranks in each split's order: group 1 first
    p_hat, se, df = _bm_parts(rp, stats.rankdata(rp[:, :n1], axis=1),
                              stats.rankdata(rp[:, n1:], axis=1), n1, n2)
    t = _studentised(p_hat, se)
    t_obs = float(t[0])
    ref = t if exhaustive else t[1:]
    extreme = int(np.sum(np.abs(ref) >= abs(t_obs) * (1 - 1e-12)))  # equal splits: rounding
    p = extreme / ref.size if exhaustive else (1 + extreme) / (1 + ref.size)
    out.update(bm_statistic=t_obs, bm_df=float(df[0]), p_bm=float(p),
               bm_method=f"permutation ({'all ' if exhaustive else ''}{ref.size} splits)")
    for level in levels:
        lo_q, hi_q = np.quantile(ref, [(1 - level) / 2, 1 - (1 - level) / 2])
        out["intervals"][level] = _delta_interval(float(p_hat[0]), float(se[0]), float(lo_q),
                                                  float(hi_q))
    return out


def _adjust(out: pd.DataFrame, alpha: float) -> pd.DataFrame:
    for col in ("p_mwu_holm", "p_mwu_fdr_bh", "p_bm_holm", "p_bm_fdr_bh"):
        out[col] = np.nan
    for _, idx in out.groupby("metric", sort=False).groups.items():
        out.loc[idx, "p_mwu_holm"] = holm(out.loc[idx, "p_mwu"].to_numpy(float))
        out.loc[idx, "p_mwu_fdr_bh"] = benjamini_hochberg(out.loc[idx, "p_mwu"].to_numpy(float))
        out.loc[idx, "p_bm_holm"] = holm(out.loc[idx, "p_bm"].to_numpy(float))
        out.loc[idx, "p_bm_fdr_bh"] = benjamini_hochberg(out.loc[idx, "p_bm"].to_numpy(float))
    out["alpha"] = alpha

    out["significant_uncorrected"] = significance_flags(out["p_bm"], alpha)
    out["significant"] = significance_flags(out["p_bm_holm"], alpha)
    return out


Pair = tuple[tuple[str, str], tuple[str, str]]


def default_pairs(datasets: Sequence[str], conditions: Sequence[str],
                  present: Mapping[str, set[str]]) -> list[Pair]:
    """Every pair of datasets under every condition both have (condition-major order)."""
    return [((da, c), (db, c)) for c in conditions for da, db in combinations(datasets, 2)
            if c in present[da] and c in present[db]]


def comparison_pairs(
    datasets: Sequence[str], conditions: Sequence[str], present: Mapping[str, set[str]], *,
    selection: Mapping[str, Sequence[str]] | None = None,
    pairs: Sequence[tuple[str, str]] | None = None,
) -> list[Pair]:
    """The (dataset, condition) pairs to compare.

    ``pairs`` (``[("ISLES:native", "ATLAS:crude2"), ...]``) are taken as given (unknown
    datasets or conditions raise ``ValueError``). Otherwise, when some datasets list their
    conditions (``selection``, from ``LABEL=DIR:cond,...``): for every pair of datasets,
    each listed condition of one against each condition of the other (a dataset without a list
    takes part with all its conditions). Otherwise every pair of datasets under every
    condition both have. Conditions are in ``conditions`` order.
    """
    if pairs:
        out = []
        for left, right in pairs:
            sides = []
            for side in (left, right):
                ds, _, cond = side.partition(":")
                if ds not in present:
                    raise ValueError(f"group.pairs: {side}: no dataset {ds!r} (compared: "
                                     f"{', '.join(datasets)})")
                if cond not in present[ds]:
                    raise ValueError(f"group.pairs: {side}: dataset {ds} has no condition "
                                     f"{cond!r} (it has {', '.join(sorted(present[ds]))})")
                sides.append((ds, cond))
            out.append((sides[0], sides[1]))
        return out
    selection = {k: tuple(v) for k, v in (selection or {}).items()}
    for ds, conds in selection.items():
        missing = [c for c in conds if c not in present.get(ds, set())]
        if missing:
            raise ValueError(f"--compare {ds}: no condition {missing[0]!r} in that dataset "
                             f"(it has {', '.join(sorted(present.get(ds, set())))})")
    if not selection:
        return default_pairs(datasets, conditions, present)

    def conds_of(ds: str) -> list[str]:
        return [c for c in conditions if c in present[ds]
                and (ds not in selection or c in selection[ds])]

    return [((da, ca), (db, cb)) for da, db in combinations(datasets, 2)
            if da in selection or db in selection
            for ca in conds_of(da) for cb in conds_of(db)] + [
        pair for da, db in combinations(datasets, 2) if da not in selection
        and db not in selection for pair in default_pairs([da, db], conditions, present)]


def compare_datasets(
    table: pd.DataFrame, metrics: Sequence[str], conditions: Sequence[str],
    datasets: Sequence[str], *, alpha: float = GroupSettings.alpha,
    n_boot: int = GroupSettings.n_boot, seed: int = 0,
    pairs: Sequence[Pair] | None = None, primary: str | None = None,
    digits_rank: int | None = DEFAULT_DIGITS_RANK, n_perm: int = N_PERM,
) -> pd.DataFrame:
    """Compared (dataset, condition) pairs for every metric.

    ``table`` has one row per unit (participant or image) and condition with a ``dataset``
    column. ``pairs`` lists ``((dataset_a, desc_a), (dataset_b, desc_b))``; by default every
    pair of datasets under every condition they share. Pairs without values on both sides are
    skipped. ``primary``'s family is ``confirmatory``, the others ``exploratory``.
    """
    mats = {ds: unit_matrix(table[table["dataset"] == ds], metrics, conditions)
            for ds in datasets}
    present = {ds: set(table.loc[table["dataset"] == ds, "desc"]) for ds in datasets}
    pairs = default_pairs(datasets, conditions, present) if pairs is None else list(pairs)
    col = {c: j for j, c in enumerate(conditions)}
    sizes = [next(iter(mats[ds].values())).shape[0] if metrics else 0 for ds in datasets]
    pos = {ds: i for i, ds in enumerate(datasets)}
    rows, deltas, values = [], [], []
    for metric in metrics:
        for (da, ca), (db, cb) in pairs:
            if ca not in col or cb not in col:
                continue
            a, b = mats[da][metric][:, col[ca]], mats[db][metric][:, col[cb]]
            if not (np.isfinite(a).any() and np.isfinite(b).any()):
                continue
            fa, fb = _finite(a), _finite(b)
            hl = rank_sum_shift(fa, fb, conf_level=1 - alpha, digits_rank=digits_rank)
            rows.append({"metric": metric, "dataset_a": da, "desc_a": ca, "dataset_b": db,
                         "desc_b": cb, "median_a": float(np.median(fa)),
                         "median_b": float(np.median(fb)),
                         **mann_whitney(fa, fb, digits_rank=digits_rank),
                         "cliffs_delta": cliffs_delta(fa, fb), "hl_shift": hl.estimate,
                         "hl_ci_low_unadjusted": hl.ci_low, "hl_ci_high_unadjusted": hl.ci_high,
                         "hl_method": hl.method})
            values.append((fa, fb))
            deltas.append((pos[da], pos[db], CliffsDelta(a, b)))
    if not rows:
        return pd.DataFrame(columns=DATASET_COLUMNS)
    out = pd.DataFrame(rows)
    # the Brunner-Munzel test needs the family size for its Bonferroni interval: p first
    bm = [_brunner_munzel(fa, fb, alpha, 1, digits_rank, n_perm, [seed, i])
          for i, (fa, fb) in enumerate(values)]
    out["p_bm"] = [r["p_bm"] for r in bm]
    m = family_sizes(out["p_bm"], out["metric"])
    bm = [_brunner_munzel(fa, fb, alpha, int(k), digits_rank, n_perm, [seed, i])
          for i, ((fa, fb), k) in enumerate(zip(values, m, strict=True))]
    for key in ("bm_statistic", "bm_df", "p_bm", "bm_method", "delta_bm_ci_low_unadjusted",
                "delta_bm_ci_high_unadjusted", "delta_bm_ci_low_bonferroni",
                "delta_bm_ci_high_bonferroni"):
        out[key] = [r[key] for r in bm]
    stats_ = [lambda *c, ia=ia, ib=ib, s=s: s(c[ia], c[ib]) for ia, ib, s in deltas]
    ci = bootstrap_units(sizes, lambda *c: evaluate(stats_, *c), len(deltas), n_boot=n_boot,
                         seed=seed)
    out["delta_ci_low_unadjusted"], out["delta_ci_high_unadjusted"] = ci[:, 0], ci[:, 1]
    out["family"] = np.where(out["metric"] == primary, FAMILIES[0], FAMILIES[1])
    out["digits_rank"] = "exact" if digits_rank is None else str(digits_rank)
    return _adjust(out, alpha)[DATASET_COLUMNS]


def _brunner_munzel(a: np.ndarray, b: np.ndarray, alpha: float, family: int,
                    digits_rank: int | None, n_perm: int,
                    seed: Sequence[int]) -> dict[str, Any]:
    """Brunner-Munzel (t or permutation, by group size) with its delta intervals at
    ``1 - alpha`` and ``1 - alpha / family``."""
    levels = (1 - alpha, 1 - alpha / max(family, 1))
    small = min(_finite(a).size, _finite(b).size) < BM_PERMUTATION_BELOW
    res = None if small else brunner_munzel(a, b, digits_rank=digits_rank, levels=levels)
    if res is None or res["bm_method"] == "no rank variance":  # e.g. complete separation
        res = brunner_munzel_permutation(a, b, n_perm=n_perm, seed=seed,
                                         digits_rank=digits_rank, levels=levels)
    intervals = res.pop("intervals")
    (ulo, uhi), (blo, bhi) = intervals[levels[0]], intervals[levels[1]]
    res.update(delta_bm_ci_low_unadjusted=ulo, delta_bm_ci_high_unadjusted=uhi,
               delta_bm_ci_low_bonferroni=blo, delta_bm_ci_high_bonferroni=bhi)
    return res
