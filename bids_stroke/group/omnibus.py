"""Friedman omnibus test across all conditions, with Kendall's W."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from bids_stroke.group.paired import DEFAULT_METRICS, unit_matrix

__all__ = ["FRIEDMAN_COLUMNS", "friedman_chi2", "friedman_table", "friedman_test"]

FRIEDMAN_COLUMNS = ["metric", "n", "n_dropped", "k", "chi2", "df", "p", "kendall_w"]


def friedman_chi2(matrix: np.ndarray) -> float:
    """Tie-corrected Friedman statistic of a complete (n x k) matrix, vectorised over rows.

    Same formula as :func:`scipy.stats.friedmanchisquare` (which loops over rows):
    ``(12 / (n k (k + 1)) sum_j R_j^2 - 3 n (k + 1)) / C`` with
    ``C = 1 - sum (t^3 - t) / (n k (k^2 - 1))`` over the tie groups of every row.
    """
    m = np.asarray(matrix, dtype=float)
    n, k = m.shape
    rank_sums = stats.rankdata(m, axis=1).sum(axis=0)
    # sum over tie groups of (t^3 - t) == sum over elements of (t^2 - 1)
    t = (m[:, :, None] == m[:, None, :]).sum(axis=2)
    ties = float((t.astype(float) ** 2 - 1.0).sum())
    c = 1.0 - ties / (n * k * (k * k - 1.0))
    chi2 = 12.0 / (n * k * (k + 1.0)) * float(np.sum(rank_sums**2)) - 3.0 * n * (k + 1.0)
    return float(chi2 / c)


def friedman_test(matrix: np.ndarray) -> dict[str, float | int]:
    """Friedman test on a (units x conditions) matrix, complete cases only.

    Rows with a non-finite value are dropped (``n_dropped``). Kendall's coefficient of
    concordance ``W = chi2 / (n (k - 1))`` (tie-corrected chi2, as in SciPy).
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
    if np.all(m == m[:, :1]):  # every unit identical across conditions: no evidence
        out.update(chi2=0.0, p=1.0, kendall_w=0.0)
        return out
    chi2 = friedman_chi2(m)
    out.update(chi2=chi2, p=float(stats.chi2.sf(chi2, k - 1)), kendall_w=chi2 / (n * (k - 1)))
    return out


def friedman_table(
    table: pd.DataFrame, metrics: Sequence[str] = DEFAULT_METRICS,
    conditions: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Friedman omnibus test (complete cases) and Kendall's W for each metric."""
    conds = list(pd.unique(table["desc"])) if conditions is None else list(conditions)
    mats = unit_matrix(table, metrics, conds)
    rows = [{"metric": m, **friedman_test(mats[m])} for m in metrics]
    return pd.DataFrame(rows, columns=FRIEDMAN_COLUMNS)
