"""Percentile bootstrap of units (participants or images), driven by :func:`scipy.stats.bootstrap`.

SciPy draws the resamples: the data handed to it are the *positions* of the units
(``0 .. n-1``), so every resample arrives as a ``(batch, n)`` array of positions. They are turned
into per-unit resample counts once (``bincount``), and every statistic of the run is computed
from those counts without copying or sorting the resampled values:

* means are ``counts @ values / counts @ has_value`` (one matrix product for all of them),
  rates over clustered items ``counts @ hits / counts @ items`` (:class:`Ratio`);
* signed ranks of pre-sorted ``|d|`` are ``cumulative count - (count - 1) / 2`` (average ranks of
  the copies of one observation, and of a tie group), so the matched-pairs rank-biserial
  correlation of a resample is a few vectorised passes;
* Cliff's delta of two independently resampled groups uses the cumulative counts of one group at
  the positions where the other group's values fall.

One bootstrap call serves every statistic of a table: all comparisons see the same resampled
participants (a participant bootstrap), so their intervals are consistent with each other.
A statistic whose units have missing values uses the resampled units that have a value.
The interval is the percentile interval of the finite bootstrap values (SciPy's
``method="percentile"``; resamples where a statistic is undefined, e.g. a rank-biserial
correlation without any non-zero difference, are left out).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import stats

from bids_stroke.core.settings import GroupSettings

__all__ = [
    "CliffsDelta",
    "Means",
    "Ratio",
    "SignedRankBiserial",
    "bootstrap_units",
    "evaluate",
    "percentile_limits",
]

#: positions per SciPy batch (bounds memory to a few tens of MB whatever the number of units)
BATCH_ELEMENTS = 1_000_000

Statistic = Callable[..., np.ndarray]
Seed = int | Sequence[int] | np.random.SeedSequence | None


def percentile_limits(dist: np.ndarray, level: float = 0.95) -> np.ndarray:
    """``(k, 2)`` percentile interval of each row of a ``(k, B)`` bootstrap distribution.

    Non-finite bootstrap values are ignored; an all-NaN row gives NaN limits. The percentiles
    are SciPy's: ``alpha = (1 - level) / 2`` and ``np.percentile`` at ``100 alpha`` and
    ``100 (1 - alpha)``.
    """
    dist = np.asarray(dist, dtype=float)
    dist = np.where(np.isfinite(dist), dist, np.nan)
    alpha = (1 - level) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
        lo = np.nanpercentile(dist, alpha * 100, axis=-1)
        hi = np.nanpercentile(dist, (1 - alpha) * 100, axis=-1)
    return np.stack([np.atleast_1d(lo), np.atleast_1d(hi)], axis=-1)


#: counts are float32 (half the memory traffic) while every sum the statistics form from them
#: stays an exactly representable half-integer (below 2**23); float64 beyond this many units
FLOAT32_MAX_UNITS = 400_000


def _counts(pos: np.ndarray, n: int, dtype: type) -> np.ndarray:
    """Per-unit counts ``(batch, n)`` of a ``(batch, n)`` array of positions."""
    b = pos.shape[0]
    flat = pos.astype(np.int64, copy=False) + (np.arange(b, dtype=np.int64) * n)[:, None]
    return np.bincount(flat.ravel(), minlength=b * n).reshape(b, n).astype(dtype)


def evaluate(statistics: Sequence[Callable[..., np.ndarray]], *counts: np.ndarray) -> np.ndarray:
    """``(k, batch)`` values of several statistics of the same resamples, in worker threads
    (NumPy releases the GIL in the array passes; each statistic fills its own rows, so the
    result does not depend on scheduling)."""
    if not statistics:
        return np.zeros((0, counts[0].shape[0]))
    workers = min(len(statistics), os.cpu_count() or 1, 8)
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(lambda f: f(*counts), statistics))
    else:
        parts = [f(*counts) for f in statistics]
    return np.vstack([np.atleast_2d(p) for p in parts])


def bootstrap_units(
    sizes: Sequence[int],
    statistic: Statistic,
    n_stats: int,
    *,
    n_boot: int = GroupSettings.n_boot,
    seed: Seed = 0,
    level: float = 0.95,
) -> np.ndarray:
    """Percentile intervals of ``n_stats`` statistics of independently resampled unit groups.

    Parameters
    ----------
    sizes : sequence of int
        Units in each group (one group: participants of a paired design; several groups:
        datasets, each resampled on its own as in a stratified two-sample bootstrap).
    statistic : callable
        ``statistic(*counts) -> (n_stats, batch)``; ``counts[g]`` is the ``(batch, sizes[g])``
        float array (float32 up to :data:`FLOAT32_MAX_UNITS` units) of how often each unit of
        group ``g`` is in each resample. :func:`evaluate` runs a list of statistics.
    n_stats : int
        Number of statistics (rows of the result).
    n_boot : int
        Resamples (0 disables the bootstrap: NaN limits).
    seed : int, sequence of int or SeedSequence
        Seed of :func:`numpy.random.default_rng`, passed to SciPy as ``rng``.
    level : float
        Confidence level.

    Returns
    -------
    numpy.ndarray
        ``(n_stats, 2)`` lower and upper limits (NaN when a group has fewer than 2 units).
    """
    sizes = [int(s) for s in sizes]
    if n_stats == 0 or n_boot <= 0 or min(sizes) < 2:
        return np.full((n_stats, 2), np.nan)
    batch = max(1, min(n_boot, BATCH_ELEMENTS // max(sum(sizes), 1)))
    dtype = np.float32 if sum(sizes) <= FLOAT32_MAX_UNITS else np.float64

    def _stat(*positions: np.ndarray, axis: int = -1) -> np.ndarray:
        counts = [_counts(np.atleast_2d(p), n, dtype)
                  for p, n in zip(positions, sizes, strict=True)]
        return np.asarray(statistic(*counts), dtype=float).reshape(n_stats, -1)

    data = tuple(np.arange(n) for n in sizes)
    res = stats.bootstrap(data, _stat, n_resamples=n_boot, batch=batch, vectorized=True,
                          paired=False, method="percentile", confidence_level=level,
                          rng=np.random.default_rng(seed))
    return percentile_limits(res.bootstrap_distribution, level)


# --------------------------------------------------------------------------------------------
# Statistics of resample counts (each callable maps (batch, n_units) counts to (batch,) values)
# --------------------------------------------------------------------------------------------
class Means:
    """Means of the columns of ``values`` (units x k; NaN = no value) over resampled units.

    One matrix product for all columns: ``(counts @ values) / (counts @ has_value)``.
    """

    def __init__(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=float)
        values = values.reshape(values.shape[0], -1)
        ok = np.isfinite(values)
        self.values = np.where(ok, values, 0.0)
        self.weights = ok.astype(np.float64)

    def __call__(self, counts: np.ndarray) -> np.ndarray:
        """``(k, batch)`` resampled means."""
        return _ratio_of_sums(counts, self.values, self.weights)


class Ratio:
    """Ratios of sums ``sum(counts * numerator) / sum(counts * denominator)`` per column of
    ``(units x k)`` arrays: a rate over clustered items (e.g. detected / all lesions, each
    unit - a participant - resampled with all its items)."""

    def __init__(self, numerator: np.ndarray, denominator: np.ndarray) -> None:
        self.num = np.asarray(numerator, dtype=float)
        self.den = np.asarray(denominator, dtype=float)

    def __call__(self, counts: np.ndarray) -> np.ndarray:
        """``(k, batch)`` resampled ratios (NaN where a resample has no item)."""
        return _ratio_of_sums(counts, self.num, self.den)


def _ratio_of_sums(counts: np.ndarray, num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``(counts @ num) / (counts @ den)`` per resample and column, as ``(k, batch)`` (NaN
    where a resample's denominator is 0)."""
    counts = counts.astype(np.float64, copy=False)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios: np.ndarray = ((counts @ num) / (counts @ den)).T
    return ratios


class SignedRankBiserial:
    """Matched-pairs rank-biserial correlation ``(T+ - T-) / (T+ + T-)`` of paired differences.

    Parameters
    ----------
    d : numpy.ndarray
        Paired differences of the units (NaN = unit without a pair).
    zero_method : {"wilcox", "pratt"}
        ``wilcox``: zero differences are left out before ranking; ``pratt``: ranked, then their
        ranks are left out of the sums.

    With the units sorted by ``|d|`` and ``C`` the cumulative resample counts, the copies of a
    tie group (or of one unit) share the average rank ``C_end - (count - 1) / 2``; ``T+ - T-``
    is the signed sum of count x rank.
    """

    def __init__(self, d: np.ndarray, zero_method: str = "wilcox") -> None:
        d = np.asarray(d, dtype=float)
        units = np.flatnonzero(np.isfinite(d))
        if zero_method == "wilcox":
            units = units[d[units] != 0]
        a = np.abs(d[units])
        order = np.argsort(a, kind="stable")
        self.idx = units[order]
        a = a[order]
        self.sign = np.sign(d[self.idx]).astype(np.float32)
        self.n_zero = int(np.sum(a == 0))  # leading zeros (pratt only)
        self.pratt = zero_method == "pratt"
        last = np.r_[a[1:] != a[:-1], True] if a.size else np.zeros(0, bool)
        self.ends = np.flatnonzero(last)  # last position of each tie group
        self.has_ties = self.ends.size < a.size
        self.gid = np.repeat(np.arange(self.ends.size), np.diff(np.r_[-1, self.ends]))

    def __call__(self, counts: np.ndarray) -> np.ndarray:
        b = counts.shape[0]
        if self.idx.size == 0:
            return np.full(b, np.nan)
        c = counts[:, self.idx]
        cum = np.cumsum(c, axis=1)
        m = cum[:, -1].astype(np.float64)
        if self.has_ties:
            cend = cum[:, self.ends]
            rank = (cend - 0.5 * (np.diff(cend, axis=1, prepend=0) - 1))[:, self.gid]
        else:  # C_i - (c_i - 1) / 2, in place
            rank = cum
            rank -= 0.5 * c
            rank += 0.5
        rank *= c
        rank *= self.sign
        t_diff = rank.sum(axis=1, dtype=np.float64)
        t_tot = m * (m + 1.0) / 2.0
        if self.pratt and self.n_zero:
            z = c[:, :self.n_zero].sum(axis=1, dtype=np.float64)
            t_tot = t_tot - z * (z + 1.0) / 2.0
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(t_tot > 0, t_diff / np.where(t_tot > 0, t_tot, 1.0), np.nan)


class CliffsDelta:
    """Cliff's delta ``P(A > B) - P(A < B)`` of two independently resampled groups.

    Equals the (Glass) rank-biserial correlation ``2 U_A / (n_A n_B) - 1`` of the Mann-Whitney
    test. ``a`` and ``b`` hold the values of the units of each group (NaN = no value).
    """

    def __init__(self, a: np.ndarray, b: np.ndarray) -> None:
        a = np.asarray(a, dtype=float)
        b = np.asarray(b, dtype=float)
        ia = np.flatnonzero(np.isfinite(a))
        ib = np.flatnonzero(np.isfinite(b))
        self.ia = ia[np.argsort(a[ia], kind="stable")]
        self.ib = ib[np.argsort(b[ib], kind="stable")]
        b_sorted = b[self.ib]
        self.lo = np.searchsorted(b_sorted, a[self.ia], side="left")
        self.hi = np.searchsorted(b_sorted, a[self.ia], side="right")

    def __call__(self, counts_a: np.ndarray, counts_b: np.ndarray) -> np.ndarray:
        ca = counts_a[:, self.ia].astype(np.float64)
        cb = counts_b[:, self.ib].astype(np.float64)
        cum = np.concatenate([np.zeros((cb.shape[0], 1)), np.cumsum(cb, axis=1)], axis=1)
        nb = cum[:, -1]
        less = cum[:, self.lo]                   # resampled B values below each A value
        greater = nb[:, None] - cum[:, self.hi]  # ... and above it
        na = ca.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            shift: np.ndarray = np.einsum("ij,ij->i", ca, less - greater) / (na * nb)
        return shift
