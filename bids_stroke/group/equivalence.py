"""Equivalence and non-inferiority verdicts: does a condition keep a metric within a margin
of the reference condition?

For every condition against the reference (the first condition, ``native``), per metric with
a margin: the paired Hodges-Lehmann change ``condition - reference`` with the signed-rank
inversion interval at level ``1 - 2 alpha`` (two one-sided tests at ``alpha``, Schuirmann
1987), exactly R's ``wilcox.test(b, a, paired = TRUE, conf.int = TRUE)``
(:mod:`bids_stroke.group.hodges_lehmann`). The primary metric's comparisons are the
confirmatory family: their level is Bonferroni-adjusted, ``1 - 2 alpha / m`` over its ``m``
comparisons, so the verdicts hold simultaneously; other metrics are exploratory (unadjusted).

The verdict follows from the interval and the margin ``M`` alone (:func:`verdict`), with
strict inequalities:

============= =========================== ==========================
verdict       higher is better             lower is better
============= =========================== ==========================
equivalent    ``-M < low`` and ``high < M`` (both directions)
non-inferior  ``low > -M`` (not equivalent) ``high < M`` (not equivalent)
inferior      ``high < -M``                 ``low > M``
inconclusive  otherwise                     otherwise
============= =========================== ==========================

Metrics without a direction (signed volume differences, volumes) are ``equivalent``,
``different`` (the interval entirely beyond one margin) or ``inconclusive``.

**Participants needed** (``n_needed``, for verdicts short of equivalence): the number of units
that would make the same analysis reach equivalence with 80% power if the true change were the
observed estimate and the spread the observed one (normal approximation of two one-sided
tests, divided by the signed-rank test's efficiency 3/pi under normality):
``n = (pi / 3) (z_{1 - a} + z_{1 - b})^2 s^2 / (M - |est|)^2`` with ``a`` the one-sided level of
the interval, ``s`` the SD of the paired changes, ``z_{1-b}`` the 80% power quantile
(``z_{1 - b/2}`` when the estimate is 0). Infinite when ``|est| >= M``: no sample size shows
equivalence if the true change is that large.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from bids_stroke.core.settings import GroupSettings
from bids_stroke.group.hodges_lehmann import DEFAULT_DIGITS_RANK, signed_rank_shift
from bids_stroke.group.labels import metric_direction
from bids_stroke.group.paired import FAMILIES, unit_matrix
from bids_stroke.group.rmath import qnorm

__all__ = [
    "DEFAULT_MARGINS",
    "DEFAULT_PRIMARY",
    "DIRECTION_WORDS",
    "EQUIVALENCE_COLUMNS",
    "POWER",
    "VERDICTS",
    "equivalence_table",
    "participants_needed",
    "verdict",
]

#: the default primary metric and margin: a starting point to change, not a clinical truth
DEFAULT_PRIMARY = GroupSettings.primary
DEFAULT_MARGINS: dict[str, float] = dict(GroupSettings.margins)
#: verdicts of metrics with a direction, and the extra one of metrics without
VERDICTS = ("equivalent", "non-inferior", "inferior", "inconclusive", "different")
DIRECTION_WORDS = {1: "higher is better", -1: "lower is better", 0: "no direction"}
#: power of the sample-size estimate
POWER = 0.8
EQUIVALENCE_COLUMNS = [
    "metric", "direction", "condition_a", "condition_b", "family", "family_size", "n",
    "margin", "hl_estimate", "ci_low", "ci_high", "conf_level", "ci_adjustment", "verdict",
    "sd_change", "n_needed", "method", "digits_rank",
]


def verdict(ci_low: float, ci_high: float, margin: float, direction: int) -> str:
    """The verdict of an interval of ``condition - reference`` against ``+-margin``.

    ``direction``: +1 higher is better, -1 lower is better, 0 none. ``n/a`` without an
    interval.
    """
    if not (math.isfinite(ci_low) and math.isfinite(ci_high)) or not margin > 0:
        return "n/a"
    if -margin < ci_low and ci_high < margin:
        return "equivalent"
    if direction > 0:
        if ci_low > -margin:
            return "non-inferior"
        if ci_high < -margin:
            return "inferior"
    elif direction < 0:
        if ci_high < margin:
            return "non-inferior"
        if ci_low > margin:
            return "inferior"
    elif ci_low > margin or ci_high < -margin:
        return "different"
    return "inconclusive"


def participants_needed(sd: float, estimate: float, margin: float, alpha_one_sided: float,
                        power: float = POWER) -> float:
    """Units needed to show equivalence (see the module doc); inf when ``|estimate| >=
    margin``, NaN without a spread."""
    if not (math.isfinite(sd) and sd > 0 and math.isfinite(estimate)):
        return float("nan")
    gap = margin - abs(estimate)
    if gap <= 0:
        return float("inf")
    z_beta = qnorm(1 - (1 - power) / 2) if estimate == 0 else qnorm(power)
    n = (math.pi / 3) * (qnorm(1 - alpha_one_sided) + z_beta) ** 2 * sd**2 / gap**2
    return float(max(math.ceil(n), 2))


def equivalence_table(
    table: pd.DataFrame, margins: Mapping[str, float], conditions: Sequence[str], *,
    alpha: float = GroupSettings.alpha, primary: str | None = None,
    digits_rank: int | None = DEFAULT_DIGITS_RANK,
) -> pd.DataFrame:
    """Verdicts of every condition against ``conditions[0]`` for every metric of ``margins``
    (primary first, then in the mapping's order).

    ``table`` has one row per unit and condition (``desc``); the change is ``condition -
    reference`` on the units with both values.
    """
    metrics = [m for m in margins if m in table.columns]
    metrics = ([primary] if primary in metrics else []) + [m for m in metrics if m != primary]
    if len(conditions) < 2 or not metrics:
        return pd.DataFrame(columns=EQUIVALENCE_COLUMNS)
    mats = unit_matrix(table, metrics, conditions)
    reference = conditions[0]
    rows = []
    for metric in metrics:
        mat = mats[metric]
        changes = [mat[:, j] - mat[:, 0] for j in range(1, len(conditions))]
        confirmatory = metric == primary
        size = sum(int(np.isfinite(d).sum() >= 2) for d in changes) if confirmatory else 1
        level = 1 - 2 * alpha / max(size, 1)
        margin = float(margins[metric])
        direction = metric_direction(metric)
        for cond, d in zip(conditions[1:], changes, strict=True):
            d = d[np.isfinite(d)]
            est = signed_rank_shift(d, conf_level=level, digits_rank=digits_rank) \
                if d.size >= 2 else None
            sd = float(np.std(d, ddof=1)) if d.size >= 2 else float("nan")
            lo, hi = (est.ci_low, est.ci_high) if est else (float("nan"), float("nan"))
            v = verdict(lo, hi, margin, direction)
            achieved = est.conf_level if est else level
            needed = (participants_needed(sd, est.estimate, margin, (1 - achieved) / 2)
                      if est and v not in ("equivalent", "n/a") else float("nan"))
            rows.append({
                "metric": metric, "direction": DIRECTION_WORDS[direction],
                "condition_a": reference, "condition_b": cond,
                "family": FAMILIES[0] if confirmatory else FAMILIES[1],
                "family_size": size, "n": int(d.size), "margin": margin,
                "hl_estimate": est.estimate if est else float("nan"), "ci_low": lo,
                "ci_high": hi, "conf_level": achieved,
                "ci_adjustment": "bonferroni" if confirmatory else "unadjusted",
                "verdict": v, "sd_change": sd, "n_needed": needed,
                "method": f"signed-rank {est.method}" if est else "not enough pairs",
                "digits_rank": "exact" if digits_rank is None else str(digits_rank),
            })
    return pd.DataFrame(rows, columns=EQUIVALENCE_COLUMNS)
