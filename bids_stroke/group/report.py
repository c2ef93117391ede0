"""The self-contained HTML group report (static: no script, images embedded).

Findings come first, in words. Test tables put the significance columns right after the
comparison they belong to, so they are on screen without scrolling; the print style sheet lets
every table grow to its full width on a landscape page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from bids_stroke.group.findings import fmt_num
from bids_stroke.group.labels import metric_label
from bids_stroke.reports import html as H

__all__ = ["GROUP_CSS", "ReportParts", "render_report"]

GROUP_CSS = """
.findings li{margin:.35em 0}
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
    "metric": "metric", "condition_a": "A", "condition_b": "B", "n": "n", "p": "p",
    "p_holm": "p (Holm)", "p_fdr_bh": "p (BH)", "significant_uncorrected": "p < alpha",
    "significant": "Holm p < alpha", "median_a": "median A", "median_b": "median B",
    "change": "median change B - A", "change_ci": "95% CI",
}
_DETAIL_COLUMNS = ["metric", "condition_a", "condition_b", "n_dropped", "n_zero", "mean_a",
                   "mean_b", "mean_diff", "t_plus", "t_minus", "W", "method", "rank_biserial",
                   "rb_ci_low", "rb_ci_high"]
_DATASET_MAIN = {
    "metric": "metric", "desc": "condition", "dataset_a": "A", "dataset_b": "B", "n_a": "n A",
    "n_b": "n B", "p_mwu": "Mann-Whitney p", "p_mwu_holm": "p (Holm)",
    "significant_uncorrected": "p < alpha", "significant": "Holm p < alpha",
    "p_bm": "Brunner-Munzel p", "p_bm_holm": "BM p (Holm)", "median_a": "median A",
    "median_b": "median B", "cliffs_delta": "Cliff's delta", "delta_ci": "95% CI",
}


@dataclass
class ReportParts:
    """Everything the report shows (tables are the ones written as TSV)."""

    findings: Sequence[str]
    notes: Sequence[str]
    conditions: pd.DataFrame
    methods: Sequence[str]
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
    return "n/a" if pd.isna(lo) or pd.isna(hi) else f"{fmt_num(lo)} to {fmt_num(hi)}"


def main_tests_table(wilcoxon: pd.DataFrame) -> pd.DataFrame:
    """The on-screen test table: significance next to the comparison, then effect sizes."""
    t = wilcoxon.copy()
    t["change"] = -t["median_diff"]
    t["change_ci"] = [_ci_text(-hi, -lo) for lo, hi in
                      zip(t["median_diff_ci_low"], t["median_diff_ci_high"], strict=True)]
    return t[list(_MAIN_COLUMNS)].rename(columns=_MAIN_COLUMNS)


def dataset_table(datasets: pd.DataFrame) -> pd.DataFrame:
    """The on-screen dataset comparison table."""
    t = datasets.copy()
    t["delta_ci"] = [_ci_text(lo, hi) for lo, hi in
                     zip(t["delta_ci_low"], t["delta_ci_high"], strict=True)]
    return t[list(_DATASET_MAIN)].rename(columns=_DATASET_MAIN)


def _list(items: Sequence[str]) -> str:
    return '<ul class="findings">' + "".join(f"<li>{H.escape(i)}</li>" for i in items) + "</ul>"


def _tests_section(p: ReportParts) -> str:
    body = ""
    if p.wilcoxon is not None and len(p.wilcoxon):
        body += H.table_html(main_tests_table(p.wilcoxon), table_id="wilcoxon",
                             caption="Pairwise Wilcoxon signed-rank tests: raw p, Holm and "
                                     "Benjamini-Hochberg adjusted p (family: the condition "
                                     "pairs of one metric) and both significance criteria")
        body += H.table_html(p.wilcoxon[_DETAIL_COLUMNS], table_id="wilcoxon-details",
                             caption="Wilcoxon details: rank sums, p-value method and "
                                     "matched-pairs rank-biserial correlation (bootstrap CI)")
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


def _participants_section(p: ReportParts) -> str:
    """Every unit with links to its subject reports, then the outlying paired changes."""
    from bids_stroke.group.participants import FENCE_K, MIN_UNITS

    units = list(p.participant_units)
    table = p.participants.copy()
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
    nav = [("findings", "Findings"), ("overview", "Conditions"), ("methods", "Methods"),
           ("summary", "Summary"), ("tests", "Tests")]
    if p.participants is not None:
        nav.append(("participants", "Participants"))
    if p.datasets is not None:
        nav.append(("datasets", "Datasets"))
    nav += [("figures", "Figures"), ("sizebins", "Lesion size"), ("provenance", "Provenance")]
    parts = [H.nav(nav)]
    notes = "".join(H.paragraph(n, cls="note") for n in p.notes)
    parts.append(H.section("Findings", H.warnings_box(p.warnings) + _list(p.findings) + notes,
                           anchor="findings"))
    parts.append(H.section("Conditions", H.table_html(
        p.conditions, caption="Conditions in study order; voxel size and spacings are the "
                              "effective resolution of the simulated acquisition")
        + (H.paragraph(f"Template {p.template}.", cls="note") if p.template else ""),
        anchor="overview"))
    parts.append(H.section("Methods", "".join(H.paragraph(t) for t in p.methods),
                           anchor="methods"))
    tabs = ""
    if p.summary is not None:
        for i, m in enumerate(p.metrics, start=1):
            tabs += H.table_html(p.summary[p.summary["metric"] == m].drop(columns="metric"),
                                 caption=f"Table {i}. {metric_label(m)} per condition",
                                 table_id=f"summary-{m}")
    parts.append(H.section("Summary per condition", tabs, anchor="summary"))
    parts.append(H.section("Statistical tests", _tests_section(p), anchor="tests"))
    if p.participants is not None:
        parts.append(H.section("Participants", _participants_section(p),
                               anchor="participants"))
    if p.datasets is not None:
        body = (H.table_html(dataset_table(p.datasets), table_id="datasets",
                             caption="Datasets compared per condition: Mann-Whitney U and "
                                     "Brunner-Munzel tests, Cliff's delta (bootstrap CI)")
                if len(p.datasets) else
                H.paragraph("The datasets share no condition with values.", cls="note"))
        parts.append(H.section("Dataset comparison", body, anchor="datasets"))
    figs = "".join(H.img_tag(png, alt=title, caption=f"{title} ({name})")
                   for name, title, png in p.figures)
    parts.append(H.section("Figures", figs, anchor="figures"))
    size = ""
    if p.sizebins is not None:
        size += H.table_html(p.sizebins, caption="Summaries by total reference lesion volume",
                             table_id="sizebins")
    if p.detection is not None:
        size += H.table_html(p.detection, caption="Per-lesion detection rate by lesion volume "
                             "(per lesion of every image; Wilson 95% CI)",
                             table_id="lesiondetection")
    else:
        size += H.paragraph("No *_label-L_lesions.tsv files: per-lesion detection rates are "
                            "not available.", cls="note")
    parts.append(H.section("Lesion-size stratification", size, anchor="sizebins"))
    prov = (H.kv_table(p.settings, caption="Settings") + H.kv_table(p.versions,
                                                                    caption="Software")
            + H.paragraph("Files written:") + H.bullet_list(p.outputs)
            + "".join(H.paragraph(line) for line in p.citation))
    parts.append(H.section("Provenance", prov, anchor="provenance"))
    return H.page("bids_stroke group report", "".join(parts), extra_css=GROUP_CSS)
