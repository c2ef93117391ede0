"""The group level's findings in plain words: the primary metric's verdicts first, then one
line per secondary (exploratory) metric, then the datasets and the statistical unit.

Every sentence carries the numbers a reviewer needs to check it, and no word contradicts a
number: an estimate is stated with the interval it came from and that interval's level and
adjustment; p-values have two significant digits, more when two digits would round them
onto or across alpha (``p = 0.0502``, never ``p = 0.05``); two values said to differ are
printed with enough digits to differ.

All wording lives here. What a metric *is* can be replaced (``name``): the default names the
metric (``Dice``); a mode that scores agreement with another prediction passes its own words
(e.g. ``Dice agreement with the model's native prediction``) and every sentence follows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from bids_stroke.core.settings import GroupSettings
from bids_stroke.group.labels import metric_direction, metric_short

__all__ = [
    "dataset_findings",
    "fmt_distinct",
    "fmt_level",
    "fmt_num",
    "fmt_p",
    "lesion_size_finding",
    "primary_findings",
    "secondary_findings",
    "unit_sentence",
]

MINUS = "\u2212"
PLUSMINUS = "\u00b1"
DASH = "\u2013"
Namer = Callable[[str], str]


def fmt_num(x: float, signed: bool = False, digits: int = 3) -> str:
    """``digits`` significant digits, Unicode minus, ``n/a`` for NaN."""
    if x is None or not math.isfinite(float(x)):
        return "n/a" if x is None or math.isnan(float(x)) else (
            f"{MINUS}inf" if float(x) < 0 else "inf")
    x = float(x)
    text = f"{abs(x):.{digits}g}"
    if "e" in text:
        text = f"{abs(x):.{max(digits - 1, 1)}e}"
    sign = MINUS if x < 0 and float(text.split("e")[0]) != 0 else ("+" if signed and x > 0 else "")
    return sign + text


def fmt_distinct(a: float, b: float, signed: bool = False) -> tuple[str, str]:
    """``a`` and ``b`` with the fewest significant digits (3 to 8) that print them apart when
    they differ (a stated change is never "from 1 to 1")."""
    for digits in range(3, 9):
        ta, tb = fmt_num(a, signed, digits), fmt_num(b, signed, digits)
        if ta != tb or a == b:
            return ta, tb
    return ta, tb


def fmt_p(p: float, alpha: float = GroupSettings.alpha) -> str:
    """``= 0.012``, ``< 0.001``: two significant digits, more when two would put the printed
    value on or across ``alpha`` (the leading ``p`` is left to the caller)."""
    if p is None or not math.isfinite(float(p)):
        return "= n/a"
    p = float(p)
    if p < 0.001 and alpha > 0.001:
        return "< 0.001"
    for digits in range(2, 8):
        text = f"{p:.{digits}g}"
        shown = float(text)
        if (shown < alpha) == (p < alpha) and (shown != alpha or p == alpha):
            break
    if "e" in text:  # positional notation: 0.000012, not 1.2e-05
        text = f"{p:.{digits - 1 - math.floor(math.log10(p))}f}"
    return f"= {text}"


def fmt_level(level: float) -> str:
    """``95%``, ``97.5%``: a confidence level in percent."""
    if not math.isfinite(level):
        return "n/a"
    return f"{float(f'{100 * level:.4g}'):g}%"


def _interval(lo: float, hi: float) -> str:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "n/a"
    a, b = fmt_distinct(lo, hi)
    return f"{a} to {b}"


def _where(cond: str, phrases: Mapping[str, str]) -> str:
    words = phrases.get(cond, cond)
    return words if words == cond else f"{words} ({cond})"


def _ci_words(row: pd.Series) -> str:
    """``98% simultaneous CI -0.05 to 0.02, Bonferroni over 5 comparisons`` / ``90% CI ...``."""
    ci = _interval(row["ci_low"], row["ci_high"])
    level = fmt_level(row["conf_level"])
    k = int(row["family_size"])
    if row["ci_adjustment"] == "bonferroni" and k > 1:
        return f"{level} simultaneous CI {ci}, Bonferroni over {k} comparisons"
    return f"{level} CI {ci}" + ("" if row["ci_adjustment"] == "bonferroni" else ", unadjusted")


def primary_findings(equivalence: pd.DataFrame, primary: str, phrases: Mapping[str, str],
                     unit: str = "participants", name: Namer = metric_short) -> list[str]:
    """One sentence per condition: the primary metric's verdict against the reference.

    ``equivalence`` is :func:`bids_stroke.group.equivalence.equivalence_table`'s table.
    """
    out = []
    rows = equivalence[equivalence["metric"] == primary]
    for _, r in rows.iterrows():
        out.append(_verdict_sentence(r, phrases, unit, name))
    return out


def _clear_direction(r: pd.Series, metric_name: str, ref: str) -> str:
    """`` It was lower than native: the interval excludes 0; ...`` for an inconclusive verdict
    whose interval lies on one side of 0 (the change is shown, only its size against the
    margin is not), so "inconclusive" is not read as "no change"; ``""`` otherwise."""
    low, high = float(r["ci_low"]), float(r["ci_high"])
    if not (high < 0 or low > 0):
        return ""
    way = "lower" if high < 0 else "higher"
    return (f" {metric_name} was {way} than {ref} (the interval excludes 0); only the size "
            "of the change against the margin is unsettled.")


def _verdict_sentence(r: pd.Series, phrases: Mapping[str, str], unit: str,
                      name: Namer) -> str:
    metric, ref = r["metric"], r["condition_a"]
    where = _where(r["condition_b"], phrases)
    margin = fmt_num(r["margin"])
    nums = (f"Hodges{DASH}Lehmann change {fmt_num(r['hl_estimate'], signed=True)}, "
            f"{_ci_words(r)}; n = {int(r['n'])} {unit}")
    worse = "lower" if metric_direction(metric) >= 0 else "higher"
    v = r["verdict"]
    head = f"At {where}, {name(metric)}"
    if v == "equivalent":
        return f"{head} was equivalent to {ref} within {PLUSMINUS}{margin} ({nums})."
    if v == "non-inferior":
        return (f"{head} was non-inferior to {ref}: not {worse} by {margin} or more, "
                f"equivalence within {PLUSMINUS}{margin} not shown ({nums}).")
    if v == "inferior":
        return f"{head} was inferior to {ref}: {worse} by more than {margin} ({nums})."
    if v == "different":
        return f"{head} differed from {ref} by more than {PLUSMINUS}{margin} ({nums})."
    if v == "inconclusive":
        need = r["n_needed"]
        if math.isfinite(need):
            tail = (f" With this spread (SD of the changes {fmt_num(r['sd_change'])}), about "
                    f"{int(need)} {unit} would be needed to show equivalence with 80% power if "
                    f"the true change were {fmt_num(r['hl_estimate'], signed=True)}.")
        elif need == math.inf:
            tail = (f" The estimate lies beyond the margin: no number of {unit} would show "
                    f"equivalence if the true change were this large.")
        else:
            tail = ""
        return (f"{head} was inconclusive against {ref}: neither equivalent within "
                f"{PLUSMINUS}{margin} nor shown {worse} by more than {margin} ({nums})."
                f"{_clear_direction(r, name(metric), ref)}{tail}")
    return f"{head} could not be compared with {ref} ({int(r['n'])} {unit} with both values)."


def secondary_findings(
    wilcoxon: pd.DataFrame, equivalence: pd.DataFrame | None, reference: str,
    phrases: Mapping[str, str], alpha: float, *, primary: str, order: Sequence[str],
    name: Namer = metric_short,
) -> list[str]:
    """At most one line per secondary metric, labelled exploratory: its change from the
    reference under each condition (Hodges-Lehmann, unadjusted interval, Holm p within the
    metric), or its verdicts where it has a margin."""
    out = []
    for metric in order:
        if metric == primary:
            continue
        eq = (equivalence[equivalence["metric"] == metric] if equivalence is not None
              else pd.DataFrame())
        if len(eq):
            parts = [f"{phrases.get(r.condition_b, r.condition_b)} {r.verdict} "
                     f"({fmt_num(r.hl_estimate, signed=True)}, {fmt_level(r.conf_level)} CI "
                     f"{_interval(r.ci_low, r.ci_high)})" for r in eq.itertuples()]
            margin = fmt_num(eq["margin"].iloc[0])
            out.append(f"Exploratory {DASH} {name(metric)} against {reference} within "
                       f"{PLUSMINUS}{margin} (unadjusted): " + "; ".join(parts) + ".")
            continue
        rows = wilcoxon[(wilcoxon["metric"] == metric) & (wilcoxon["condition_a"] == reference)]
        if not len(rows):
            continue
        level = fmt_level(1 - alpha)
        parts = []
        for r in rows.itertuples():
            if not math.isfinite(r.hl_change):
                parts.append(f"{phrases.get(r.condition_b, r.condition_b)} n/a")
                continue
            parts.append(f"{phrases.get(r.condition_b, r.condition_b)} "
                         f"{fmt_num(r.hl_change, signed=True)} "
                         f"({_interval(r.hl_ci_low_unadjusted, r.hl_ci_high_unadjusted)}; "
                         f"Holm p {fmt_p(r.p_holm, alpha)})")
        out.append(f"Exploratory {DASH} {name(metric)}, change from {reference} "
                   f"(Hodges{DASH}Lehmann, {level} CI unadjusted): " + "; ".join(parts) + ".")
    return out


def lesion_size_finding(table: pd.DataFrame, phrases: Mapping[str, str],
                        name: Namer = metric_short) -> list[str]:
    """One exploratory line: how the change from the reference depends on lesion size
    (Theil-Sen slope per tenfold larger lesion, its interval)."""
    rows = table[np.isfinite(table["slope_per_log10_ml"].astype(float))]
    if not len(rows):
        return []
    metric, ref = rows["metric"].iloc[0], rows["condition_a"].iloc[0]
    level = fmt_level(float(rows["conf_level"].iloc[0]))
    parts = [f"{phrases.get(r.condition_b, r.condition_b)} "
             f"{fmt_num(r.slope_per_log10_ml, signed=True)} "
             f"({_interval(r.ci_low, r.ci_high)}, n = {r.n})" for r in rows.itertuples()]
    return [f"Exploratory {DASH} lesion size: the change in {name(metric)} from {ref} per "
            f"tenfold larger lesion (Theil{DASH}Sen slope, {level} CI unadjusted): "
            + "; ".join(parts) + "."]


def _side(dataset: str, desc: str, same: bool, phrases: Mapping[str, str]) -> str:
    return dataset if same else f"{dataset} at {phrases.get(desc, desc)}"


def dataset_findings(table: pd.DataFrame, phrases: Mapping[str, str], alpha: float, *,
                     primary: str, name: Namer = metric_short) -> list[str]:
    """One sentence per primary-metric comparison of datasets, then one exploratory line per
    other metric. Brunner-Munzel (Holm within the metric) decides."""
    out = []
    for r in table[table["metric"] == primary].itertuples(index=False):
        out.append(_dataset_sentence(r, phrases, alpha, name))
    for metric in dict.fromkeys(table["metric"]):
        if metric == primary:
            continue
        parts = []
        for r in table[table["metric"] == metric].itertuples(index=False):
            same = r.desc_a == r.desc_b
            what = (f"{phrases.get(r.desc_a, r.desc_a)} {r.dataset_a} vs {r.dataset_b}" if same
                    else f"{r.dataset_a} {phrases.get(r.desc_a, r.desc_a)} vs {r.dataset_b} "
                         f"{phrases.get(r.desc_b, r.desc_b)}")
            ci = _interval(r.delta_bm_ci_low_unadjusted, r.delta_bm_ci_high_unadjusted)
            parts.append(f"{what} {fmt_num(r.cliffs_delta, signed=True)} ({ci}; Holm p "
                         f"{fmt_p(r.p_bm_holm, alpha)})")
        out.append(f"Exploratory {DASH} {name(metric)}, Cliff's delta between datasets "
                   f"(Brunner{DASH}Munzel {fmt_level(1 - alpha)} CI, unadjusted): "
                   + "; ".join(parts) + ".")
    return out


def _dataset_sentence(r: pd.Series, phrases: Mapping[str, str], alpha: float,
                      name: Namer) -> str:
    same = r.desc_a == r.desc_b
    ma, mb = fmt_distinct(r.median_a, r.median_b)
    a = f"{_side(r.dataset_a, r.desc_a, same, phrases)} (median {ma}, n = {r.n_a})"
    b = f"{_side(r.dataset_b, r.desc_b, same, phrases)} (median {mb}, n = {r.n_b})"
    test = f"Brunner{DASH}Munzel" + ("" if r.bm_method == "t" else f" {r.bm_method}")
    nums = (f"Cliff's delta {fmt_num(r.cliffs_delta, signed=True)}, {fmt_level(1 - alpha)} CI "
            f"{_interval(r.delta_bm_ci_low_unadjusted, r.delta_bm_ci_high_unadjusted)} "
            f"(unadjusted); {test} p {fmt_p(r.p_bm, alpha)}, Holm p {fmt_p(r.p_bm_holm, alpha)}; "
            f"Mann{DASH}Whitney p {fmt_p(r.p_mwu, alpha)}")
    head = f"With {phrases.get(r.desc_a, r.desc_a)}, " if same else ""
    metric = name(r.metric)
    if math.isfinite(r.p_bm_holm) and r.p_bm_holm < alpha:
        verb = "higher" if r.cliffs_delta > 0 else "lower"
        return f"{head}{metric} was {verb} in {a} than in {b}: {nums}."
    tail = (f"; significant at p < {alpha:g} without correction only"
            if math.isfinite(r.p_bm) and r.p_bm < alpha else "")
    return (f"{head}{metric} did not differ significantly between {a} and {b}: {nums}{tail}.")


def _one_dataset(label: str, unit: str, n_participants: int, n_images: int,
                 n_multi: int) -> str:
    prefix = f"{label}: " if label else ""
    if unit == "participant":
        if n_multi:
            return (f"{prefix}{n_participants} participants ({n_images} images; the "
                    f"{n_multi} participant(s) with several images (sessions or runs) were "
                    f"averaged per condition before testing)")
        return f"{prefix}{n_participants} participants, one image each"
    extra = (f"; {n_multi} participant(s) contribute several images, treated as independent "
             f"(pseudo-replication; use --group-unit participant to average them)"
             if n_multi else "")
    return f"{prefix}{n_images} images of {n_participants} participants{extra}"


def unit_sentence(unit: str, sizes: Mapping[str, Mapping[str, int]]) -> str:
    """Which statistical unit the tests used, with each dataset's own counts (``sizes``:
    label -> ``participants``, ``images``, ``multi``; label ``""`` for a single dataset)."""
    what = "participant" if unit == "participant" else "image"
    parts = [_one_dataset(label, unit, s["participants"], s["images"], s["multi"])
             for label, s in sizes.items()]
    if len(parts) == 1 and not next(iter(sizes)):
        return f"Statistics use one value per {what} ({parts[0]})."
    return f"Statistics use one value per {what}: " + "; ".join(parts) + "."
