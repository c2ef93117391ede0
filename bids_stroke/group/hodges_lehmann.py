"""Hodges-Lehmann estimates with the confidence intervals that invert the rank tests.

The paired estimate is the median of the Walsh averages of the differences (the pseudomedian;
Hodges & Lehmann 1963), its interval the set of shifts the signed-rank test does not reject
(Bauer 1972); the unpaired estimate is the median of all differences between the groups, its
interval the shifts the rank-sum (Mann-Whitney) test does not reject. Both follow R's
``wilcox.test(..., conf.int = TRUE)`` (stats 4.2) rule for rule, so the numbers equal R's:

* **exact** (paired: fewer than 50 non-zero differences, no ties, no zero; unpaired: both
  groups under 50 values, no ties): order statistics of the Walsh averages / differences at
  the exact null quantiles (``qsignrank``, ``qwilcox``). When the requested level cannot be
  reached with so few values, R's achieved level is reported (``conf_level``).
* **asymptotic** (otherwise): the shifts where the normal approximation of the test
  statistic, with tie and continuity corrections, crosses the normal quantiles, found with
  R's root finder (:func:`bids_stroke.group.rmath.zeroin`, tolerance ``tol_root``); the
  estimate is the shift where the uncorrected statistic is zero. Zero differences are dropped
  before the interval is computed, as R does.

**Ties** are detected after rounding to ``digits_rank`` significant digits (R's
``digits.rank``; ``None`` = exact float comparison, R's default), so differences that are equal
in decimal (0.9993 - 0.9991 and 0.9995 - 0.9993) tie although they differ in binary.

The conventions are R's: the paired estimate is of ``d`` as given (``wilcox.test(b, a, paired
= TRUE)`` with ``d = b - a``), the unpaired one of ``x - y``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bids_stroke.core.settings import GroupSettings
from bids_stroke.group.rmath import (
    psignrank,
    pwilcox,
    qnorm,
    qsignrank,
    qwilcox,
    signif,
    zeroin,
)

__all__ = ["DEFAULT_DIGITS_RANK", "ShiftEstimate", "rank_sum_shift", "signed_rank_shift",
           "signed_rank_shifts"]

#: significant digits kept before ranking: decimal-equal values tie (R's ``digits.rank``)
DEFAULT_DIGITS_RANK = GroupSettings.digits_rank
#: R's default ``tol.root`` of ``wilcox.test``
TOL_ROOT = 1e-4


@dataclass(frozen=True)
class ShiftEstimate:
    """A Hodges-Lehmann estimate and its test-inversion interval.

    ``conf_level`` is the level the interval has (the requested one, or R's achieved level
    when the requested one is out of reach); ``method`` is ``exact``, ``asymptotic`` or why
    there is no estimate.
    """

    estimate: float
    ci_low: float
    ci_high: float
    conf_level: float
    method: str
    n: int

    @classmethod
    def missing(cls, why: str, n: int, conf_level: float) -> ShiftEstimate:
        nan = float("nan")
        return cls(nan, nan, nan, conf_level, why, n)


def _ratio(num: float, den: float) -> float:
    """``num / den`` with IEEE semantics (R divides by zero without error)."""
    if den != 0.0:
        return num / den
    return math.nan if num == 0.0 or math.isnan(num) else math.copysign(math.inf, num)


def _sign(x: float) -> float:
    return 0.0 if x == 0 else math.copysign(1.0, x)


def _average_ranks(values: np.ndarray) -> tuple[np.ndarray, float]:
    """Average ranks of ``values`` (R's ``rank``) and ``sum(t^3 - t)`` over their tie groups
    (R: ``sum(NTIES^3 - NTIES)``), from one sort."""
    order = np.argsort(values, kind="stable")
    v = values[order]
    starts = np.flatnonzero(np.r_[True, v[1:] != v[:-1]])
    sizes = np.diff(np.r_[starts, v.size])
    ranks = np.empty(v.size)
    ranks[order] = np.repeat(starts + (sizes + 1) / 2.0, sizes)  # mean of start+1..start+t
    t = sizes.astype(float)
    return ranks, float(np.sum(t**3 - t))


def _median(values: np.ndarray) -> float:
    v = np.sort(values)
    half = v.size // 2
    return float(v[half]) if v.size % 2 else float((v[half - 1] + v[half]) / 2)


def _check_level(conf_level: float) -> None:
    if not 0.0 < conf_level < 1.0:
        raise ValueError(f"conf_level must be in (0, 1), got {conf_level!r}")


def signed_rank_shift(
    d: np.ndarray, *, conf_level: float = 0.95, digits_rank: int | None = DEFAULT_DIGITS_RANK,
    correct: bool = True, tol_root: float = TOL_ROOT,
) -> ShiftEstimate:
    """Hodges-Lehmann estimate of the paired differences ``d`` with the two-sided
    signed-rank interval (R's ``wilcox.test(d, conf.int = TRUE, conf.level = ...)``).

    Non-finite differences are ignored.
    """
    return signed_rank_shifts(d, (conf_level,), digits_rank=digits_rank, correct=correct,
                              tol_root=tol_root)[0]


def signed_rank_shifts(
    d: np.ndarray, conf_levels: Sequence[float], *,
    digits_rank: int | None = DEFAULT_DIGITS_RANK, correct: bool = True,
    tol_root: float = TOL_ROOT,
) -> list[ShiftEstimate]:
    """:func:`signed_rank_shift` at several levels, sharing the work (same numbers)."""
    for level in conf_levels:
        _check_level(level)
    d = np.asarray(d, dtype=float)
    x = d[np.isfinite(d)]
    zeroes = bool(np.any(x == 0))
    x = x[x != 0]
    n = int(x.size)
    if n == 0:
        why = "all differences zero" if zeroes else "no pairs"
        return [ShiftEstimate.missing(why, n, level) for level in conf_levels]
    ranks = signif(np.abs(x), digits_rank)
    ties = np.unique(ranks).size != ranks.size
    if n < 50 and not ties and not zeroes:
        walsh = np.add.outer(x, x)[np.triu_indices(n)]
        walsh = np.sort(walsh) / 2
        estimate = _median(walsh)
        out = []
        for conf_level in conf_levels:
            alpha = 1 - conf_level
            qu = qsignrank(alpha / 2, n) or 1
            ql = n * (n + 1) // 2 - qu
            achieved = 2 * psignrank(qu - 1, n)
            level = conf_level
            if achieved - alpha > alpha / 2:  # out of reach with so few pairs: R's level
                level = 1 - float(signif(achieved, 2)[0])
            out.append(ShiftEstimate(estimate, float(walsh[qu - 1]), float(walsh[ql]), level,
                                     "exact", n))
        return out

    def w_stat(shift: float, corrected: bool) -> float:
        xd = x - shift
        xd = xd[xd != 0]
        nx = xd.size
        dr, tie_term = _average_ranks(np.abs(signif(xd, digits_rank)))
        zd = float(np.sum(dr[xd > 0])) - nx * (nx + 1) / 4
        sigma = math.sqrt(nx * (nx + 1) * (2 * nx + 1) / 24 - tie_term / 48)
        corr = _sign(zd) * 0.5 if corrected else 0.0
        return _ratio(zd - corr, sigma)

    return _asymptotic(_cached(lambda s: w_stat(s, correct)), _cached(lambda s: w_stat(s, False)),
                       float(x.min()), float(x.max()), conf_levels, tol_root, n, x,
                       paired=True)


def rank_sum_shift(
    x: np.ndarray, y: np.ndarray, *, conf_level: float = 0.95,
    digits_rank: int | None = DEFAULT_DIGITS_RANK, correct: bool = True,
    tol_root: float = TOL_ROOT,
) -> ShiftEstimate:
    """Hodges-Lehmann shift ``x - y`` of two independent samples with the two-sided
    Mann-Whitney interval (R's ``wilcox.test(x, y, conf.int = TRUE, conf.level = ...)``).

    Non-finite values are ignored.
    """
    _check_level(conf_level)
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    nx, ny = int(x.size), int(y.size)
    if nx == 0 or ny == 0:
        return ShiftEstimate.missing("not enough values", nx + ny, conf_level)
    pooled = signif(np.concatenate([x, y]), digits_rank)
    ties = np.unique(pooled).size != pooled.size
    alpha = 1 - conf_level
    if nx < 50 and ny < 50 and not ties:
        diffs = np.sort(np.subtract.outer(x, y).ravel())
        qu = qwilcox(alpha / 2, nx, ny) or 1
        ql = nx * ny - qu
        achieved = 2 * pwilcox(qu - 1, nx, ny)
        level = conf_level if achieved - alpha <= alpha / 2 else 1 - achieved
        return ShiftEstimate(_median(diffs), float(diffs[qu - 1]), float(diffs[ql]), level,
                             "exact", nx + ny)
    fx, fy = float(nx), float(ny)

    def w_stat(shift: float, corrected: bool) -> float:
        dr, tie_term = _average_ranks(signif(np.concatenate([x - shift, y]), digits_rank))
        dz = float(np.sum(dr[:nx])) - fx * (fx + 1) / 2 - fx * fy / 2
        corr = _sign(dz) * 0.5 if corrected else 0.0
        sigma = math.sqrt((fx * fy / 12) * ((fx + fy + 1)
                                           - tie_term / ((fx + fy) * (fx + fy - 1))))
        return _ratio(dz - corr, sigma)

    lo_end = float(x.min() - y.max())
    hi_end = float(x.max() - y.min())
    return _asymptotic(_cached(lambda s: w_stat(s, correct)), _cached(lambda s: w_stat(s, False)),
                       lo_end, hi_end, (conf_level,), tol_root, nx + ny, None,
                       paired=False)[0]


def _cached(f: Callable[[float], float]) -> Callable[[float], float]:
    """``f`` remembering its values (the roots of several levels revisit shifts)."""
    memo: dict[float, float] = {}

    def g(shift: float) -> float:
        if shift not in memo:
            memo[shift] = f(shift)
        return memo[shift]

    return g


def _uniroot(f: Callable[[float], float], lower: float, upper: float, f_lower: float,
             f_upper: float, tol: float) -> float:
    """R's ``uniroot`` checks, then :func:`zeroin` (NaN where R stops with an error)."""
    if not lower < upper or math.isnan(f_lower) or math.isnan(f_upper):
        return math.nan
    if _sign(f_lower) * _sign(f_upper) > 0:
        return math.nan
    return zeroin(f, lower, upper, f_lower, f_upper, tol)


def _asymptotic(w_corr: Callable[[float], float], w_plain: Callable[[float], float],
                mumin: float, mumax: float, conf_levels: Sequence[float], tol: float, n: int,
                x: np.ndarray | None, *, paired: bool) -> list[ShiftEstimate]:
    """The normal-approximation intervals and the estimate (R's asymptotic branches)."""
    w_min = w_corr(mumin)
    w_max = w_corr(mumax) if (not paired or math.isfinite(w_min)) else math.nan
    if paired and not math.isfinite(w_max):  # every difference tied or zero
        nan = math.nan
        return [ShiftEstimate((mumin + mumax) / 2, nan, nan, 0.0, "all differences tied", n)
                for _ in conf_levels]
    est = _uniroot(w_plain, mumin, mumax, w_plain(mumin), w_plain(mumax), tol)

    def root(zq: float) -> float:
        f_lower, f_upper = w_min - zq, w_max - zq
        if not paired:  # R returns the sample limits in extreme cases
            if f_lower <= 0:
                return mumin
            if f_upper >= 0:
                return mumax
        return _uniroot(lambda s: w_corr(s) - zq, mumin, mumax, f_lower, f_upper, tol)

    out = []
    for conf_level in conf_levels:
        alpha, level = 1 - conf_level, conf_level
        if paired:
            while True:  # widen until the sample limits bracket both quantiles
                if (w_min - qnorm(alpha / 2, False) < 0) or (w_max - qnorm(alpha / 2) > 0):
                    alpha *= 2
                else:
                    break
            if alpha >= 1 or 1 - conf_level < alpha * 0.75:
                level = 1 - min(1.0, alpha)
        if paired and alpha >= 1:
            assert x is not None
            lo = hi = _median(x)
        else:
            lo, hi = root(qnorm(alpha / 2, False)), root(qnorm(alpha / 2))
        out.append(ShiftEstimate(est, lo, hi, level, "asymptotic", n))
    return out
