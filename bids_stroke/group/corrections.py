"""Multiple-comparison adjustments of one family of p-values.

NaN p-values (tests that could not be run) are not part of the family: they are ignored for the
family size and returned as NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

__all__ = ["benjamini_hochberg", "holm", "significance_flags"]


def _as_pvalues(pvals: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pvals, dtype=float).ravel()
    finite = np.isfinite(p)
    if np.any((p[finite] < 0) | (p[finite] > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    return p, finite


def holm(pvals: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values.

    SciPy has no Holm adjustment, hence this one (checked against statsmodels'
    ``multipletests(method="holm")`` in the tests).

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

    :func:`scipy.stats.false_discovery_control` (``method="bh"``) on the finite p-values.
    """
    p, finite = _as_pvalues(pvals)
    out = np.full(p.shape, np.nan)
    if finite.any():
        out[finite] = stats.false_discovery_control(p[finite], method="bh")
    return out


def significance_flags(pvals: Sequence[float] | np.ndarray, alpha: float) -> np.ndarray:
    """``"yes"`` where p < ``alpha``, ``"no"`` otherwise, ``"n/a"`` for tests not run (NaN)."""
    p = np.asarray(pvals, dtype=float)
    return np.where(np.isnan(p), "n/a", np.where(p < alpha, "yes", "no"))
