"""The self-contained HTML group report (static: no script, images embedded).

Findings come first, in words - the primary metric's verdicts first - then the verdict table,
the conditions and the generated methods text. Test tables put the significance columns right
after the comparison they belong to, so they are on screen without scrolling; the print style
sheet lets every table grow to its full width on a landscape page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from bids_stroke.group.findings import fmt_distinct, fmt_level, fmt_num
from bids_stroke.group.labels import metric_label
from bids_stroke.group.methods import MethodsDocument, section_html
from bids_stroke.reports import html as H

__all__ = ["GROUP_CSS", "ReportParts", "render_report"]

GROUP_CSS = """
.findings li{margin:.35em 0}
.findings li.primary{font-weight:600}
.references li{font-size:.9em;margin:.2em 0}
td,th{white-space:nowrap}
td.t,th.t{white-space:normal}
@media print{
@page{size:A4 landscape;margin:10mm}
body{max-width:none;padding:0;font-size:9pt}
nav{display:none}
.scroll{overflow:visible}
table{font-size:7pt}
tr,figure{break-inside:avoid}
figure img{max-width:100%}
}
"""

#: main test table: identification, then significance, then effect sizes
_MAIN_COLUMNS = {
    "metric": "metric", "family": "family", "condition_a": "A", "condition_b": "B", "n": "n",
    "p": "p", "p_holm": "p (Holm)", "p_fdr_bh": "p (BH)", "significant_uncorrected":
    "p < alpha", "significant": "Holm p < alpha", "median_a": "median A",
    "median_b": "median B", "hl_change": "HL change B - A",
    "ci_unadjusted": "CI unadjusted", "ci_bonferroni": "CI Bonferroni (simultaneous)",
}
_DETAIL_COLUMNS = ["metric", "condition_a", "condition_b", "n_dropped", "n_zero", "mean_a",
                   "mean_b", "mean_diff", "median_diff", "t_plus", "t_minus", "W", "method",
                   "hl_method", "hl_conf_level_unadjusted", "hl_conf_level_bonferroni",
                   "rank_biserial", "rb_ci_low_unadjusted", "rb_ci_high_unadjusted"]
_DATASET_MAIN = {
    "metric": "metric", "family": "family", "dataset_a": "A", "desc_a": "condition A",
    "dataset_b": "B", "desc_b": "condition B", "n_a": "n A", "n_b": "n B",
    "p_bm": "Brunner-Munzel p", "p_bm_holm": "p (Holm)", "significant_uncorrected":
    "p < alpha", "significant": "Holm p < alpha", "bm_method": "BM method",
    "median_a": "median A", "median_b": "median B", "cliffs_delta": "Cliff's delta",
    "delta_bm_ci": "CI unadjusted (BM)", "delta_bm_ci_bonferroni": "CI Bonferroni (BM)",
    "delta_ci": "bootstrap CI", "p_mwu": "Mann-Whitney p", "hl_shift": "HL shift A - B",
    "hl_ci": "CI unadjusted (MW)",
}
_VERDICT_COLUMNS = {
    "metric": "metric", "family": "family", "condition_b": "condition", "n": "n",
    "margin": "margin", "hl_estimate": "HL change", "ci": "CI", "conf_level": "level",
    "ci_adjustment": "adjustment", "verdict": "verdict", "n_needed": "units needed",
}


@dataclass
class ReportParts:
    """Everything the report shows (tables are the ones written as TSV)."""

    findings: Sequence[str]
    notes: Sequence[str]
    conditions: pd.DataFrame
    methods: MethodsDocument
    metrics: Sequence[str]
    summary: pd.DataFrame | None
    wilcoxon: pd.DataFrame | None
    friedman: pd.DataFrame | None
    sizebins: pd.DataFrame | None
    detection: pd.DataFrame | None
    datasets: pd.DataFrame | None
    figures: Sequence[tuple[str, str, bytes]]
    versions: Mapping[str, str]
    outputs: Sequence[str]
    settings: Mapping[str, Any] = field(default_factory=dict)
    #: cautions a reader must see before the findings (shown highlighted at their top)
    warnings: Sequence[str] = ()
    #: equivalence verdicts (group_desc-equivalence_stats.tsv)
    equivalence: pd.DataFrame | None = None
    #: the primary metric's change against log lesion volume (Theil-Sen)
    lesionsize: pd.DataFrame | None = None
    primary: str | None = None
    phrases: Mapping[str, str] = field(default_factory=dict)
    title: str = "bids_stroke group report"
    #: what the numbers were scored against, when it is not only the lesion mask (shown first)
    reference: Sequence[str] = ()
    #: one row per unit (:func:`bids_stroke.group.participants.participant_table`), the
    #: unit of each row, each unit's subject reports (paths relative to OUT) and the
    #: flagged paired changes
    participants: pd.DataFrame | None = None
    participant_units: Sequence[str] = ()
    participant_links: Mapping[str, Sequence[str]] = field(default_factory=dict)
    outliers: pd.DataFrame | None = None
    #: where the template came from (the participant level's line), and how to cite
    template: str = ""
    citation: Sequence[str] = ()


def _ci_text(lo: float, hi: float) -> str:
    if pd.isna(lo) or pd.isna(hi):
        return "n/a"
    a, b = fmt_distinct(lo, hi)
    return f"{a} to {b}"


def _cis(t: pd.DataFrame, low: str, high: str) -> list[str]:
    return [_ci_text(lo, hi) for lo, hi in zip(t[low], t[high], strict=True)]


def main_tests_table(wilcoxon: pd.DataFrame) -> pd.DataFrame:
    """The on-screen test table: significance next to the comparison, then effect sizes."""
    t = wilcoxon.copy()
    t["ci_unadjusted"] = _cis(t, "hl_ci_low_unadjusted", "hl_ci_high_unadjusted")
    t["ci_bonferroni"] = _cis(t, "hl_ci_low_bonferroni", "hl_ci_high_bonferroni")
    return t[list(_MAIN_COLUMNS)].rename(columns=_MAIN_COLUMNS)


def dataset_table(datasets: pd.DataFrame) -> pd.DataFrame:
    """The on-screen dataset comparison table."""
    t = datasets.copy()
    t["delta_ci"] = _cis(t, "delta_ci_low_unadjusted", "delta_ci_high_unadjusted")
    t["delta_bm_ci"] = _cis(t, "delta_bm_ci_low_unadjusted", "delta_bm_ci_high_unadjusted")
    t["delta_bm_ci_bonferroni"] = _cis(t, "delta_bm_ci_low_bonferroni",
                                       "delta_bm_ci_high_bonferroni")
    t["hl_ci"] = _cis(t, "hl_ci_low_unadjusted", "hl_ci_high_unadjusted")
    return t[list(_DATASET_MAIN)].rename(columns=_DATASET_MAIN)


def verdict_table(equivalence: pd.DataFrame, phrases: Mapping[str, str]) -> pd.DataFrame:
    """The on-screen verdict table (one row per metric with a margin and condition)."""
    t = equivalence.copy()
    t["condition_b"] = [phrases.get(c, c) for c in t["condition_b"]]
    t["ci"] = _cis(t, "ci_low", "ci_high")
    t["conf_level"] = [fmt_level(v) for v in t["conf_level"]]
    t["hl_estimate"] = [fmt_num(v, signed=True) for v in t["hl_estimate"]]
    t["ci_adjustment"] = [f"Bonferroni, {k} comparisons" if a == "bonferroni" else a
                          for a, k in zip(t["ci_adjustment"], t["family_size"], strict=True)]
    t["n_needed"] = ["" if pd.isna(v) else "no n (beyond margin)" if v == float("inf")
                     else f"{int(v)}" for v in t["n_needed"]]
    return t[list(_VERDICT_COLUMNS)].rename(columns=_VERDICT_COLUMNS)


def _list(items: Sequence[str], primary_count: int = 0) -> str:
    marked = ' class="primary"'
    return '<ul class="findings">' + "".join(
        f"<li{marked if k < primary_count else ''}>{H.escape(i)}</li>"
        for k, i in enumerate(items)) + "</ul>"


def _tests_section(p: ReportParts) -> str:
    body = ""
    if p.wilcoxon is not None and len(p.wilcoxon):
        body += H.table_html(main_tests_table(p.wilcoxon), table_id="wilcoxon",
                             caption="Pairwise Wilcoxon signed-rank tests: raw p, Holm and "
                                     "Benjamini-Hochberg adjusted p (family: the condition "
                                     "pairs of one metric; the primary metric's family is "
                                     "confirmatory, the others exploratory), both "
                                     "significance criteria, and the Hodges-Lehmann change "
                                     "with its signed-rank intervals (unadjusted: matches the "
                                     "raw p; Bonferroni: simultaneous over the family)")
        body += H.table_html(p.wilcoxon[_DETAIL_COLUMNS], table_id="wilcoxon-details",
                             caption="Wilcoxon details: rank sums, p-value and interval "
                                     "methods, levels, and matched-pairs rank-biserial "
                                     "correlation (bootstrap CI, unadjusted)")
    if p.friedman is not None and len(p.friedman):
        body += H.table_html(p.friedman, table_id="friedman",
                             caption="Friedman omnibus test per metric (complete cases)")
    return body or H.paragraph("No within-dataset tests (one condition or no data).",
                               cls="note")


#: outlying paired changes listed in the report (all of them are in the TSV)
MAX_OUTLIERS_SHOWN = 100
_OUTLIER_COLUMNS = {"image_id": "unit", "metric": "metric", "condition_a": "A",
                    "condition_b": "B", "value_a": "value A", "value_b": "value B",
                    "change": "change B - A", "fence": "fence crossed", "side": "side"}


def _unit_cell(unit: str, reports: Sequence[str]) -> str:
    """The unit's name, linked to its subject report (to each, when it has several)."""
    if len(reports) == 1:
        return H.link(unit, reports[0])
    return H.escape(unit) + (" (" + H.links(reports) + ")" if reports else "")


def _participants_section(p: ReportParts, participants: pd.DataFrame) -> str:
    """Every unit (``participants``: ``p.participants``, there) with links to its subject
    reports, then the outlying paired changes."""
    from bids_stroke.group.participants import FENCE_K, MIN_UNITS

    units = list(p.participant_units)
    table = participants.copy()
    table.insert(0, "unit", [_unit_cell(u, p.participant_links.get(u, ())) for u in units])
    body = H.paragraph(
        f"{len(table)} unit(s), each linked to its subject report(s): overlays per condition "
        "and every metric. A paired change (a condition's value minus the reference "
        f"condition's) is an outlier when it lies below Q1 - {FENCE_K:g} IQR or above Q3 + "
        f"{FENCE_K:g} IQR of that change across the units (per metric and condition, with at "
        f"least {MIN_UNITS} units).", cls="note")
    out = p.outliers
    if out is not None and len(out):
        shown = out[list(_OUTLIER_COLUMNS)].rename(columns=_OUTLIER_COLUMNS)
        shown["unit"] = [_unit_cell(u, p.participant_links.get(u, ())) for u in shown["unit"]]
        shown["metric"] = [metric_label(m) for m in shown["metric"]]
        shown["side"] = [f"below Q1 - {FENCE_K:g} IQR" if s == "below" else
                         f"above Q3 + {FENCE_K:g} IQR" for s in shown["side"]]
        body += H.table_html(shown, table_id="outliers", html_columns=["unit"],
                             max_rows=MAX_OUTLIERS_SHOWN,
                             caption=f"Outlying paired changes ({len(shown)}, most extreme "
                                     "first; all in group_desc-outliers_segmetrics.tsv): the "
                                     "unit and its values under both conditions")
    elif out is not None:
        body += H.paragraph("No paired change is an outlier.", cls="note")
    body += H.table_html(table, table_id="participants", html_columns=["unit"],
                         caption="Every unit: its subject report(s) and values")
    return body


def render_report(p: ReportParts) -> str:
    """The complete HTML document."""
    nav = [("reference", "Reference")] if p.reference else []
    nav += [("findings", "Findings"), ("verdicts", "Verdicts"), ("overview", "Conditions"),
            ("methods", "Methods"), ("summary", "Summary"), ("tests", "Tests")]
    if p.participants is not None:
        nav.append(("participants", "Participants"))
    if p.datasets is not None:
        nav.append(("datasets", "Datasets"))
    nav += [("figures", "Figures"), ("sizebins", "Lesion size"), ("provenance", "Provenance")]
    parts = [H.nav(nav)]
    notes = "".join(H.paragraph(n, cls="note") for n in p.notes)
    if p.reference:
        parts.append(H.section("Reference", "".join(H.paragraph(t) for t in p.reference),
                               anchor="reference"))
    n_primary = (int((p.equivalence["metric"] == p.primary).sum())
                 if p.equivalence is not None else 0)
    parts.append(H.section("Findings", H.warnings_box(p.warnings)
                           + _list(p.findings, n_primary) + notes, anchor="findings"))
    if p.equivalence is not None and len(p.equivalence):
        verdicts = H.table_html(verdict_table(p.equivalence, p.phrases), table_id="verdicts",
                                caption="Equivalence verdicts against the reference condition: "
                                        "Hodges-Lehmann change with its signed-rank interval "
                                        "and the margin (confirmatory: the primary metric, "
                                        "Bonferroni-adjusted; exploratory: unadjusted)")
    else:
        verdicts = H.paragraph("No verdicts: the study has one condition or no metric with a "
                               "margin.", cls="note")
    parts.append(H.section("Verdicts", verdicts, anchor="verdicts"))
    parts.append(H.section("Conditions", H.table_html(
        p.conditions, caption="Conditions in study order; voxel size and spacings are the "
                              "effective resolution of the simulated acquisition")
        + (H.paragraph(f"Template {p.template}.", cls="note") if p.template else ""),
        anchor="overview"))
    parts.append(H.section("Methods", H.paragraph(
        "Generated from this run's settings; the same text is in group_methods.md and "
        "group_methods.html beside this report, ready to adapt for a paper.", cls="note")
        + section_html(p.methods), anchor="methods"))
    tabs = ""
    if p.summary is not None:
        for i, m in enumerate(p.metrics, start=1):
            tabs += H.table_html(p.summary[p.summary["metric"] == m].drop(columns="metric"),
                                 caption=f"Table {i}. {metric_label(m)} per condition",
                                 table_id=f"summary-{m}")
    parts.append(H.section("Summary per condition", tabs, anchor="summary"))
    parts.append(H.section("Statistical tests", _tests_section(p), anchor="tests"))
    if p.participants is not None:
        parts.append(H.section("Participants", _participants_section(p, p.participants),
                               anchor="participants"))
    if p.datasets is not None:
        body = (H.table_html(dataset_table(p.datasets), table_id="datasets",
                             caption="Datasets compared: Brunner-Munzel test (decides; "
                                     "studentised permutation version with fewer than 10 "
                                     "values in a group), Cliff's delta with the interval "
                                     "inverting it and a bootstrap CI, Mann-Whitney U and "
                                     "the Hodges-Lehmann shift with its interval")
                if len(p.datasets) else
                H.paragraph("The datasets share no condition with values.", cls="note"))
        parts.append(H.section("Dataset comparison", body, anchor="datasets"))
    figs = "".join(H.img_tag(png, alt=title, caption=f"{title} ({name})")
                   for name, title, png in p.figures)
    parts.append(H.section("Figures", figs, anchor="figures"))
    size = ""
    if p.lesionsize is not None and len(p.lesionsize):
        size += H.table_html(p.lesionsize, table_id="lesionsize",
                             caption="Change from the reference against log10 lesion volume: "
                                     "Theil-Sen slope per tenfold larger lesion with its Kendall "
                                     "interval (exploratory, unadjusted)")
    if p.sizebins is not None:
        size += H.table_html(p.sizebins, caption="Summaries by total reference lesion volume",
                             table_id="sizebins")
    if p.detection is not None:
        size += H.table_html(p.detection, caption="Per-lesion detection rate by lesion volume "
                             "(every lesion of every image; 95% CI by a participant-level "
                             "cluster bootstrap)", table_id="lesiondetection")
    else:
        size += H.paragraph("No *_label-L_lesions.tsv files: per-lesion detection rates are "
                            "not available.", cls="note")
    parts.append(H.section("Lesion-size stratification", size, anchor="sizebins"))
    prov = (H.kv_table(p.settings, caption="Settings") + H.kv_table(p.versions,
                                                                    caption="Software")
            + H.paragraph("Files written:") + H.bullet_list(p.outputs)
            + "".join(H.paragraph(line) for line in p.citation))
    parts.append(H.section("Provenance", prov, anchor="provenance"))
    return H.page(p.title, "".join(parts), extra_css=GROUP_CSS)
