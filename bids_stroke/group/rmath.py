"""The few numerical routines of R that the rank-based confidence intervals need, reproduced
so that the intervals equal R's ``wilcox.test(..., conf.int = TRUE)`` (R 4.2) to the last
digits, not only to the tolerance of a different root finder.

* :func:`signif` - R's ``signif(x, digits)`` (nmath ``fprec``): rounding to significant
  decimal digits, used before ranking so that decimal-equal values tie (``digits.rank``);
* :func:`zeroin` - R's ``uniroot`` core (``R_zeroin2``): Brent's root finder as published by
  Forsythe, Malcolm & Moler (1977), with R's stopping rule and step order. The
  normal-approximation intervals are roots of step functions, so *which* point of a step a root
  finder returns is part of the result: another algorithm returns another point within
  ``tol``;
* :func:`qnorm` - R's normal quantile (Wichura 1988, algorithm AS 241);
* :func:`qsignrank`, :func:`psignrank`, :func:`qwilcox`, :func:`pwilcox` - the exact null
  distributions of the signed-rank and rank-sum statistics (exact counts), with R's quantile
  search and its ``10 * DBL_EPSILON`` fuzz.

Pure functions of NumPy arrays and floats; no R is needed at run time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np

__all__ = ["psignrank", "pwilcox", "qnorm", "qsignrank", "qwilcox", "signif", "zeroin"]

DBL_EPSILON = float(np.finfo(float).eps)
_MAX_DIGITS = 22
_MAX10E = 308  # DBL_MAX_10_EXP


def _pow_di(x: float, n: int) -> float:
    """``x ** n`` for an integer ``n`` by repeated squaring, in R's order (``R_pow_di``)."""
    out = 1.0
    if n == 0:
        return out
    if n < 0:
        n, x = -n, 1.0 / x
    while True:
        if n & 1:
            out *= x
        n >>= 1
        if not n:
            return out
        x *= x


def _signif_one(x: float, dig: int) -> float:
    """One finite, non-zero value rounded to ``dig`` significant digits (R's ``fprec``)."""
    sgn = -1.0 if x < 0 else 1.0
    x = abs(x)
    l10 = math.log10(x)
    e10 = int(dig - 1 - math.floor(l10))
    if abs(l10) < _MAX10E - 2:
        p10 = 1.0
        if e10 > _MAX10E:
            p10 = _pow_di(10.0, e10 - _MAX10E)
            e10 = _MAX10E
        if e10 > 0:
            scale = _pow_di(10.0, e10)
            return sgn * (float(np.rint((x * scale) * p10)) / scale) / p10
        scale = _pow_di(10.0, -e10)
        return sgn * (float(np.rint(x / scale)) * scale)
    # very large or very small magnitudes: R's two-step scaling
    do_round = _MAX10E - l10 >= _pow_di(10.0, -dig)
    e2 = dig + (1 if e10 > 0 else -1) * _MAX_DIGITS
    p10 = _pow_di(10.0, e2)
    x *= p10
    big = _pow_di(10.0, e10 - e2)
    x *= big
    if do_round:
        x += 0.5
    x = math.floor(x) / p10
    return sgn * x / big


#: ``_pow_di(10, k)`` for k = 0 .. 400 (every power :func:`signif` can need)
_POW10 = np.array([_pow_di(10.0, k) for k in range(401)])


def _pow10_di(e: np.ndarray) -> np.ndarray:
    """``10.0 ** e`` for integer arrays ``0 <= e <= 400``, as :func:`_pow_di` computes it."""
    powers: np.ndarray = _POW10[e]
    return powers


def signif(x: np.ndarray | float, digits: int | None) -> np.ndarray:
    """R's ``signif(x, digits)``: ``x`` rounded to ``digits`` significant decimal digits.

    ``digits=None`` (R's ``digits.rank = Inf``) returns ``x`` unchanged. Zeros and non-finite
    values are returned as they are. Digits above 22 leave ``x`` unchanged, below 1 count as 1.
    """
    arr = np.array(x, dtype=float, copy=True, ndmin=1)
    if digits is None:
        return arr
    dig = max(math.floor(float(digits) + 0.5), 1)  # C round(): half away from zero
    if dig > _MAX_DIGITS:
        return arr
    flat = arr.reshape(-1)
    todo = np.flatnonzero(np.isfinite(flat) & (flat != 0))
    if todo.size == 0:
        return arr
    v = np.abs(flat[todo])
    with np.errstate(divide="ignore"):
        l10 = np.log10(v)
    usual = np.abs(l10) < _MAX10E - 2
    e10 = (dig - 1 - np.floor(l10)).astype(np.int64)
    up = usual & (e10 > 0) & (e10 <= _MAX10E)
    down = usual & (e10 <= 0)
    out = v.copy()
    scale = _pow10_di(e10[up])
    out[up] = np.rint(v[up] * scale) / scale
    scale = _pow10_di(-e10[down])
    out[down] = np.rint(v[down] / scale) * scale
    flat[todo] = np.copysign(out, flat[todo])
    for i in todo[~(up | down)]:  # subnormal or huge magnitudes: R's scalar path
        flat[i] = _signif_one(float(flat[i]), dig)
    return arr


def zeroin(f: Callable[[float], float], lower: float, upper: float, f_lower: float,
           f_upper: float, tol: float, maxiter: int = 1000) -> float:
    """A root of ``f`` in ``[lower, upper]`` as R's ``uniroot`` returns it (``R_zeroin2``).

    ``f_lower`` and ``f_upper`` are ``f`` at the ends (of opposite signs or zero). Each step
    takes the inverse quadratic (or linear) interpolation when it falls well inside the
    bracket and shrinks it fast enough, else bisects; the answer is within
    ``4 * DBL_EPSILON * |x| + tol`` of a sign change.
    """
    a, b = float(lower), float(upper)
    fa, fb = float(f_lower), float(f_upper)
    c, fc = a, fa
    if fa == 0.0:
        return a
    if fb == 0.0:
        return b
    for _ in range(maxiter + 1):
        prev_step = b - a
        if abs(fc) < abs(fb):  # b must be the best approximation so far
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2 * DBL_EPSILON * abs(b) + tol / 2
        new_step = (c - b) / 2
        if abs(new_step) <= tol_act or fb == 0.0:
            return b
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):
            cb = c - b
            if a == c:  # two distinct points: linear interpolation
                t1 = fb / fa
                p = cb * t1
                q = 1.0 - t1
            else:  # inverse quadratic interpolation
                q = fa / fc
                t1 = fb / fc
                t2 = fb / fa
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0.0:
                q = -q
            else:
                p = -p
            if p < (0.75 * cb * q - abs(tol_act * q) / 2) and p < abs(prev_step * q / 2):
                new_step = p / q
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0.0 else -tol_act
        a, fa = b, fb
        b += new_step
        fb = float(f(b))
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    return b  # not converged: R warns and returns the last approximation


# ------------------------------------------------------------------------ normal quantile
# Wichura (1988), Algorithm AS 241 (PPND16): rational approximations, relative accuracy 1e-16.
_A = (3.387132872796366608, 133.14166789178437745, 1971.5909503065514427,
      13731.693765509461125, 45921.953931549871457, 67265.770927008700853,
      33430.575583588128105, 2509.0809287301226727)
_B = (1.0, 42.313330701600911252, 687.1870074920579083, 5394.1960214247511077,
      21213.794301586595867, 39307.89580009271061, 28729.085735721942674,
      5226.495278852854561)
_C = (1.42343711074968357734, 4.6303378461565452959, 5.7694972214606914055,
      3.64784832476320460504, 1.27045825245236838258, 0.24178072517745061177,
      0.0227238449892691845833, 7.7454501427834140764e-4)
_D = (1.0, 2.05319162663775882187, 1.6763848301838038494, 0.68976733498510000455,
      0.14810397642748007459, 0.0151986665636164571966, 5.475938084995344946e-4,
      1.05075007164441684324e-9)
_E = (6.6579046435011037772, 5.4637849111641143699, 1.7848265399172913358,
      0.29656057182850489123, 0.026532189526576123093, 0.0012426609473880784386,
      2.71155556874348757815e-5, 2.01033439929228813265e-7)
_F = (1.0, 0.59983220655588793769, 0.13692988092273580531, 0.0148753612908506148525,
      7.868691311456132591e-4, 1.8463183175100546818e-5, 1.4215117583164458887e-7,
      2.04426310338993978564e-15)


def _horner(coef: tuple[float, ...], x: float) -> float:
    out = coef[7]
    for k in range(6, -1, -1):
        out = out * x + coef[k]
    return out


def qnorm(p: float, lower_tail: bool = True) -> float:
    """Standard normal quantile of ``p`` (R's ``qnorm(p, lower.tail = lower_tail)``)."""
    if math.isnan(p) or not 0.0 <= p <= 1.0:
        return math.nan
    if p == 0.0:
        return -math.inf if lower_tail else math.inf
    if p == 1.0:
        return math.inf if lower_tail else -math.inf
    p_ = p if lower_tail else 0.5 - p + 0.5  # the lower-tail probability
    q = p_ - 0.5
    if abs(q) <= 0.425:
        r = 0.180625 - q * q
        return q * _horner(_A, r) / _horner(_B, r)
    # the smaller tail, taken from the argument itself where that is exact
    small = (p if not lower_tail else 0.5 - p + 0.5) if q > 0 else p_
    r = math.sqrt(-math.log(small))
    if r <= 5.0:
        r += -1.6
        val = _horner(_C, r) / _horner(_D, r)
    else:
        r += -5.0
        val = _horner(_E, r) / _horner(_F, r)
    return -val if q < 0.0 else val


# --------------------------------------------------------- exact rank-statistic distributions
@lru_cache(maxsize=64)
def _signrank_counts(n: int) -> tuple[float, ...]:
    """Number of subsets of {1..n} with each rank sum 0..n(n+1)/2, as floats."""
    counts = [1] + [0] * (n * (n + 1) // 2)
    top = 0
    for k in range(1, n + 1):
        top += k
        for s in range(top, k - 1, -1):
            counts[s] += counts[s - k]
    return tuple(float(c) for c in counts)


@lru_cache(maxsize=64)
def _wilcox_counts(m: int, n: int) -> tuple[float, ...]:
    """Number of arrangements with each Mann-Whitney statistic 0..m n, as floats."""
    # generating function prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i), expanded exactly
    size = m * n + 1
    poly = [0] * size
    poly[0] = 1
    for i in range(1, m + 1):
        k = n + i
        for s in range(size - 1, k - 1, -1):  # multiply by (1 - q^k)
            poly[s] -= poly[s - k]
        for s in range(i, size):  # divide by (1 - q^i)
            poly[s] += poly[s - i]
    return tuple(float(c) for c in poly)


def _r_choose(n: int, k: int) -> float:
    return float(math.comb(n, k))


def psignrank(x: float, n: int) -> float:
    """``P(V <= x)`` of the signed-rank statistic of ``n`` pairs (R's ``psignrank``)."""
    x = math.floor(x + 1e-7)
    top = n * (n + 1) / 2
    if x < 0:
        return 0.0
    if x >= top:
        return 1.0
    counts = _signrank_counts(n)
    f = math.exp(-n * math.log(2.0))
    p = 0.0
    if x <= top / 2:
        for i in range(int(x) + 1):
            p += counts[i] * f
        return p
    for i in range(int(top - x)):
        p += counts[i] * f
    return 0.5 - p + 0.5  # R_D_Cval


def qsignrank(p: float, n: int) -> int:
    """Smallest ``q`` with ``P(V <= q) >= p`` of the signed-rank statistic (R's
    ``qsignrank``, with its ``10 * DBL_EPSILON`` fuzz)."""
    top = n * (n + 1) // 2
    if p <= 0.0:
        return 0
    if p >= 1.0:
        return top
    counts = _signrank_counts(n)
    f = math.exp(-n * math.log(2.0))
    acc, q = 0.0, 0
    if p <= 0.5:
        target = p - 10 * DBL_EPSILON
        while True:
            acc += counts[q] * f
            if acc >= target:
                return q
            q += 1
    target = 1 - p + 10 * DBL_EPSILON
    while True:
        acc += counts[q] * f
        if acc > target:
            return top - q
        q += 1


def pwilcox(x: float, m: int, n: int) -> float:
    """``P(W <= x)`` of the rank-sum statistic of samples of ``m`` and ``n`` (R's
    ``pwilcox``)."""
    x = math.floor(x + 1e-7)
    if x < 0:
        return 0.0
    if x >= m * n:
        return 1.0
    counts = _wilcox_counts(m, n)
    c = _r_choose(m + n, n)
    p = 0.0
    if x <= m * n / 2:
        for i in range(int(x) + 1):
            p += counts[i] / c
        return p
    for i in range(int(m * n - x)):
        p += counts[i] / c
    return 0.5 - p + 0.5  # R_D_Cval


def qwilcox(p: float, m: int, n: int) -> int:
    """Smallest ``q`` with ``P(W <= q) >= p`` of the rank-sum statistic (R's ``qwilcox``)."""
    if p <= 0.0:
        return 0
    if p >= 1.0:
        return m * n
    counts = _wilcox_counts(m, n)
    c = _r_choose(m + n, n)
    acc, q = 0.0, 0
    if p <= 0.5:
        target = p - 10 * DBL_EPSILON
        while True:
            acc += counts[q] / c
            if acc >= target:
                return q
            q += 1
    target = 1 - p + 10 * DBL_EPSILON
    while True:
        acc += counts[q] / c
        if acc > target:
            return m * n - q
        q += 1
