"""The group level's findings in plain words, one sentence per comparison.

Each sentence carries the numbers a reviewer needs to check it: medians, the median paired
change with its bootstrap CI, raw and Holm-adjusted p, and n. Direction words (``fell`` /
``rose``) are used only when the Holm-adjusted p is below alpha; otherwise the sentence says the
difference was not significant (and whether it was significant without correction).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from bids_stroke.group.labels import metric_short

__all__ = ["dataset_findings", "fmt_num", "fmt_p", "paired_findings", "unit_sentence"]

MINUS = "\u2212"


def fmt_num(x: float, signed: bool = False) -> str:
    """3 significant digits, Unicode minus, ``n/a`` for NaN."""
    if x is None or not math.isfinite(float(x)):
        return "n/a"
    x = float(x)
    text = f"{abs(x):.3g}"
    if "e" in text:
        text = f"{abs(x):.2e}"
    sign = MINUS if x < 0 and float(text.split("e")[0]) != 0 else ("+" if signed and x > 0 else "")
    return sign + text


def fmt_p(p: float) -> str:
    """``p = 0.012``, ``p < 0.001`` (the leading ``p`` is left to the caller)."""
    if p is None or not math.isfinite(float(p)):
        return "= n/a"
    return "< 0.001" if p < 0.001 else f"= {float(p):.2g}" if p < 0.1 else f"= {float(p):.2f}"


def _ci(lo: float, hi: float) -> str:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "95% CI n/a"
    return f"95% CI {fmt_num(lo)} to {fmt_num(hi)}"


def _significance(p: float, p_holm: float, alpha: float) -> str:
    if math.isfinite(p_holm) and p_holm < alpha:
        return "significant"
    if math.isfinite(p) and p < alpha:
        return "uncorrected only"
    return "no"


def paired_findings(
    wilcoxon: pd.DataFrame, reference: str, phrases: Mapping[str, str], alpha: float,
    unit: str = "participants",
) -> list[str]:
    """One sentence per metric and condition compared with ``reference``.

    ``wilcoxon`` is :func:`bids_stroke.group.paired.pairwise_wilcoxon`'s table; ``phrases``
    maps a condition label to its words (``linear 2 mm``).
    """
    out = []
    rows = wilcoxon[(wilcoxon["condition_a"] == reference) | (wilcoxon["condition_b"] == reference)]
    for r in rows.itertuples(index=False):
        ref_first = r.condition_a == reference
        other = r.condition_b if ref_first else r.condition_a
        m_ref, m_other = (r.median_a, r.median_b) if ref_first else (r.median_b, r.median_a)
        sgn = -1.0 if ref_first else 1.0  # change = other - reference
        change = sgn * r.median_diff
        lo, hi = sorted((sgn * r.median_diff_ci_low, sgn * r.median_diff_ci_high))
        name = metric_short(r.metric)
        where = phrases.get(other, other)
        where = where if where == other else f"{where} ({other})"
        nums = (f"median paired change {fmt_num(change, signed=True)}, {_ci(lo, hi)}; "
                f"p {fmt_p(r.p)}, Holm p {fmt_p(r.p_holm)}, n = {r.n} {unit}")
        if r.n < 2 or not math.isfinite(r.p):
            out.append(f"{name}: {reference} and {where} could not be compared "
                       f"({r.n} {unit} with a value under both).")
            continue
        sig = _significance(r.p, r.p_holm, alpha)
        if sig == "significant":
            diff = change if change != 0 else m_other - m_ref
            verb = "fell" if diff < 0 else "rose" if diff > 0 else "changed"
            out.append(f"{name} {verb} from {fmt_num(m_ref)} at {reference} to "
                       f"{fmt_num(m_other)} with {where}: {nums}.")
        else:
            tail = (f"; significant at p < {alpha:g} without correction only" if
                    sig == "uncorrected only" else "")
            out.append(f"{name} did not differ significantly between {reference} (median "
                       f"{fmt_num(m_ref)}) and {where} (median {fmt_num(m_other)}): "
                       f"{nums}{tail}.")
    return out


def dataset_findings(table: pd.DataFrame, phrases: Mapping[str, str], alpha: float) -> list[str]:
    """One sentence per metric, condition and pair of datasets."""
    out = []
    for r in table.itertuples(index=False):
        name = metric_short(r.metric)
        where = phrases.get(r.desc, r.desc)
        a = f"{r.dataset_a} (median {fmt_num(r.median_a)}, n = {r.n_a})"
        b = f"{r.dataset_b} (median {fmt_num(r.median_b)}, n = {r.n_b})"
        nums = (f"Cliff's delta {fmt_num(r.cliffs_delta, signed=True)}, "
                f"{_ci(r.delta_ci_low, r.delta_ci_high)}; Mann-Whitney p {fmt_p(r.p_mwu)}, "
                f"Holm p {fmt_p(r.p_mwu_holm)}; Brunner-Munzel p {fmt_p(r.p_bm)}")
        sig = _significance(r.p_mwu, r.p_mwu_holm, alpha)
        if sig == "significant":
            verb = "higher" if r.cliffs_delta > 0 else "lower"
            out.append(f"With {where}, {name} was {verb} in {a} than in {b}: {nums}.")
        else:
            tail = (f"; significant at p < {alpha:g} without correction only"
                    if sig == "uncorrected only" else "")
            out.append(f"With {where}, {name} did not differ significantly between {a} and "
                       f"{b}: {nums}{tail}.")
    return out


def unit_sentence(unit: str, n_participants: int, n_images: int, n_multi: int) -> str:
    """Which statistical unit the tests used, and how many participants were averaged."""
    if unit == "participant":
        if n_multi:
            return (f"Statistics use one value per participant: the metrics of the {n_multi} "
                    f"participant(s) with several images (sessions or runs) were averaged per "
                    f"condition before testing ({n_images} images of {n_participants} "
                    f"participants).")
        return (f"Statistics use one value per participant ({n_participants} participants, "
                f"one image each).")
    extra = (f" {n_multi} participant(s) contribute several images, which are treated as "
             f"independent (pseudo-replication; use --group-unit participant to average them)."
             if n_multi else "")
    return f"Statistics use one value per image ({n_images} images of {n_participants} " \
           f"participants).{extra}"
