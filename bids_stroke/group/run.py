"""Group level: collect per-subject metrics from OUT, run the statistics, write the report.

Outputs (root of OUT; each TSV has a JSON data dictionary sidecar):

* ``group_segmetrics.tsv`` - long format, one row per subject/session/condition/metric.
* ``group_desc-summary_segmetrics.tsv`` - n, mean, std, min, q1, median, q3, IQR, max per
  condition and metric.
* ``group_desc-sizebins_segmetrics.tsv`` - the same per reference lesion-volume bin.
* ``group_desc-lesiondetection_segmetrics.tsv`` - per-lesion detection rate by lesion volume
  (only when ``*_label-L_lesions.tsv`` files exist).
* ``group_desc-wilcoxon_stats.tsv`` - pairwise Wilcoxon signed-rank tests.
* ``group_desc-friedman_stats.tsv`` - Friedman omnibus tests.
* ``figures/group_*.png`` and the self-contained ``group_report.html``.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bids_stroke.__about__ import __version__
from bids_stroke.group import plots
from bids_stroke.group.collect import (
    METRIC_COLUMNS,
    GroupInputError,
    read_lesions,
    read_segmetrics,
    segmentation_models,
)
from bids_stroke.group.stats import (
    DEFAULT_METRICS,
    DEFAULT_SIZE_BINS_ML,
    friedman_table,
    id_columns,
    lesion_detection_by_size,
    pairwise_wilcoxon,
    size_bin_labels,
    size_bin_summary,
    summarize,
)
from bids_stroke.reports import html as H

__all__ = ["GroupInputError", "run_group"]

_ID_COLS = ["participant_id", "session_id", "desc", "condition", "effective_resolution_mm"]

COLUMN_DICTIONARY: dict[str, dict[str, str]] = {
    "participant_id": {"LongName": "Participant", "Description": "BIDS participant label."},
    "session_id": {"LongName": "Session",
                   "Description": "BIDS session label (n/a when the dataset has none)."},
    "image_id": {"LongName": "Input image",
                 "Description": "sub-X[_ses-Y][_acq-..][_run-..] of the segmented image "
                                "(tells runs/acquisitions of one session apart)."},
    "desc": {"LongName": "Condition label",
             "Description": "BIDS desc entity of the resolution condition."},
    "condition": {"LongName": "Condition specification",
                  "Description": "Canonical specification of the degradation (e.g. crude:2)."},
    "effective_resolution_mm": {"LongName": "Effective resolution",
                                "Description": "Cube root of the effective voxel volume.",
                                "Units": "mm"},
    "metric": {"LongName": "Metric", "Description": "Segmentation metric name."},
    "value": {"LongName": "Value", "Description": "Metric value (n/a when undefined)."},
    "size_bin": {"LongName": "Lesion-volume bin",
                 "Description": "Left-closed bin [a, b) of the lesion volume in ml."},
    "n": {"LongName": "Number of observations",
          "Description": "Subjects (or pairs / complete cases) with a finite value."},
    "mean": {"LongName": "Mean", "Description": "Arithmetic mean."},
    "std": {"LongName": "Standard deviation", "Description": "Sample SD (ddof = 1)."},
    "min": {"LongName": "Minimum", "Description": "Minimum."},
    "q1": {"LongName": "First quartile",
           "Description": "25th percentile (linear interpolation)."},
    "median": {"LongName": "Median", "Description": "Median."},
    "q3": {"LongName": "Third quartile",
           "Description": "75th percentile (linear interpolation)."},
    "iqr": {"LongName": "Interquartile range", "Description": "q3 - q1."},
    "max": {"LongName": "Maximum", "Description": "Maximum."},
    "condition_a": {"LongName": "Condition A", "Description": "First condition (d = A - B)."},
    "condition_b": {"LongName": "Condition B", "Description": "Second condition."},
    "n_dropped": {"LongName": "Subjects dropped",
                  "Description": "Subjects without a finite value in every compared "
                                 "condition (pairwise / complete-case deletion)."},
    "n_zero": {"LongName": "Zero differences",
               "Description": "Pairs with A - B = 0 (discarded by zero_method wilcox)."},
    "mean_a": {"LongName": "Mean A", "Description": "Mean of A over the pairs used."},
    "mean_b": {"LongName": "Mean B", "Description": "Mean of B over the pairs used."},
    "mean_diff": {"LongName": "Mean difference", "Description": "Mean of A - B."},
    "median_diff": {"LongName": "Median difference", "Description": "Median of A - B."},
    "t_plus": {"LongName": "T+", "Description": "Sum of ranks of positive differences."},
    "t_minus": {"LongName": "T-", "Description": "Sum of ranks of negative differences."},
    "W": {"LongName": "Wilcoxon W",
          "Description": "Two-sided signed-rank statistic min(T+, T-) (SciPy convention)."},
    "p": {"LongName": "p-value", "Description": "Two-sided unadjusted p-value."},
    "method": {"LongName": "p-value method",
               "Description": "exact (exact null distribution; n <= 50, no ties or zeros), "
                              "permutation (exhaustive, n <= 13 with ties/zeros) or asymptotic "
                              "(normal approximation with tie and continuity corrections)."},
    "zero_method": {"LongName": "Zero handling",
                    "Description": "wilcox: zero differences discarded; pratt: ranked, then "
                                   "excluded from the rank sums."},
    "p_holm": {"LongName": "Holm-adjusted p",
               "Description": "Holm step-down adjustment; family = all condition pairs of "
                              "one metric."},
    "p_fdr_bh": {"LongName": "BH-adjusted p",
                 "Description": "Benjamini-Hochberg FDR adjustment; family = all condition "
                                "pairs of one metric."},
    "rank_biserial": {"LongName": "Matched-pairs rank-biserial correlation",
                      "Description": "(T+ - T-) / (T+ + T-); positive: A tends to be larger."},
    "rb_ci_low": {"LongName": "Rank-biserial 95% CI low",
                  "Description": "Seeded percentile bootstrap (pairs resampled)."},
    "rb_ci_high": {"LongName": "Rank-biserial 95% CI high",
                   "Description": "Seeded percentile bootstrap (pairs resampled)."},
    "alpha": {"LongName": "Significance level", "Description": "Applied to p_holm."},
    "significant": {"LongName": "Significant",
                    "Description": "yes when p_holm < alpha.",
                    "Levels": {"yes": "p_holm < alpha", "no": "p_holm >= alpha",
                               "n/a": "test not possible"}},
    "k": {"LongName": "Number of conditions", "Description": "Conditions compared."},
    "chi2": {"LongName": "Friedman chi-square",
             "Description": "Tie-corrected Friedman statistic (scipy.stats.friedmanchisquare)."},
    "df": {"LongName": "Degrees of freedom", "Description": "k - 1."},
    "kendall_w": {"LongName": "Kendall's W",
                  "Description": "Coefficient of concordance chi2 / (n (k - 1))."},
    "n_lesions": {"LongName": "Reference lesions", "Description": "Lesions in the bin."},
    "n_detected": {"LongName": "Detected lesions",
                   "Description": "Reference lesions overlapped by the prediction."},
    "detection_rate": {"LongName": "Detection rate", "Description": "n_detected / n_lesions."},
    "ci_low": {"LongName": "Detection rate 95% CI low", "Description": "Wilson score."},
    "ci_high": {"LongName": "Detection rate 95% CI high", "Description": "Wilson score."},
    "mean_overlap_fraction": {"LongName": "Mean overlap fraction",
                              "Description": "Mean fraction of each lesion's voxels predicted."},
}


# --------------------------------------------------------------------------------------------
def _metric_descriptions() -> dict[str, dict[str, str]]:
    try:  # the metrics module owns the authoritative descriptions
        from bids_stroke.metrics import METRIC_DESCRIPTIONS

        return {k: dict(v) for k, v in METRIC_DESCRIPTIONS.items()}
    except Exception:  # pragma: no cover - metrics module unavailable or broken
        return {m: {"LongName": plots.metric_label(m), "Description": plots.metric_label(m)}
                for m in METRIC_COLUMNS}


def _write_tsv(df: pd.DataFrame, path: Path, sidecar: Mapping[str, Any]) -> Path:
    H.atomic_write_text(path, df.to_csv(sep="\t", index=False, na_rep="n/a",
                                        lineterminator="\n"))
    side = {c: sidecar.get(c, COLUMN_DICTIONARY.get(c, {"Description": c})) for c in df.columns}
    H.atomic_write_text(path.with_suffix(".json"), json.dumps(side, indent=2) + "\n")
    return path


def _read_descriptions(root: Path) -> dict[str, str]:
    f = root / "descriptions.tsv"
    if not f.is_file():
        return {}
    try:
        d = pd.read_csv(f, sep="\t", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return {}
    if {"desc_id", "description"} <= set(d.columns):  # BIDS: desc_id values are desc-<label>
        labels = d["desc_id"].str.removeprefix("desc-")
        return dict(zip(labels, d["description"], strict=True))
    if not {"desc", "description"} <= set(d.columns):
        return {}
    return dict(zip(d["desc"], d["description"], strict=True))


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "bids_stroke": __version__}
    for pkg in ("numpy", "scipy", "pandas", "matplotlib", "statsmodels"):
        if pkg == "statsmodels" and pkg not in sys.modules:
            continue
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:  # pragma: no cover
            continue
    return out


def _condition_order(seg: pd.DataFrame, descriptions: Mapping[str, str]) -> list[str]:
    present = list(pd.unique(seg["desc"]))
    ordered = [d for d in descriptions if d in present]
    return ordered + [d for d in present if d not in ordered]


def methods_text(
    *, n_participants: int, n_sessions: int, conditions: Sequence[str],
    descriptions: Mapping[str, str], specs: Mapping[str, str], metrics: Sequence[str],
    alpha: float, n_boot: int, seed: int, zero_method: str, edges_ml: Sequence[float],
    versions: Mapping[str, str], methods_used: Mapping[str, int] | None = None,
    models: Sequence[str] = (),
) -> list[str]:
    """Methods paragraphs (plain text, escaped at rendering) generated from the settings."""
    conds = "; ".join(
        f"{c} ({specs.get(c, c)}{': ' + descriptions[c] if descriptions.get(c) else ''})"
        for c in conditions)
    zero_txt = ("zero differences were discarded before ranking (Wilcoxon's method)"
                if zero_method == "wilcox" else
                "zero differences were ranked and then excluded from the rank sums (Pratt's "
                "method)")
    vers = ", ".join(f"{k} {v}" for k, v in versions.items())
    used = ("" if not methods_used else " p-value methods used in this run: "
            + ", ".join(f"{m} ({n} test{'s' if n != 1 else ''})"
                        for m, n in methods_used.items()) + ".")
    return [
        f"Segmentation metrics of {n_participants} participant(s) ({n_sessions} "
        f"participant-session(s)) were compared across {len(conditions)} resolution "
        f"condition(s): {conds}."
        + (f" Lesions were segmented by {'; '.join(models)}." if models else ""),
        f"For each metric ({', '.join(metrics)}), every pair of conditions was compared with a "
        f"two-sided Wilcoxon signed-rank test (scipy.stats.wilcoxon) on the subjects with a "
        f"defined value in both conditions (pairwise deletion; undefined values such as a "
        f"95th percentile Hausdorff distance without lesion were dropped and counted); "
        f"{zero_txt}. p-values were exact when n <= 50 without ties or zeros, from an "
        f"exhaustive permutation distribution when n <= 13 with ties or zeros, and from the "
        f"normal approximation with tie and continuity corrections otherwise.{used} "
        f"Effect sizes are "
        f"matched-pairs rank-biserial correlations with percentile-bootstrap 95% confidence "
        f"intervals ({n_boot} resamples of the pairs, seed {seed}).",
        f"p-values were adjusted for multiple comparisons within each metric across all "
        f"{len(conditions) * (len(conditions) - 1) // 2} condition pairs with Holm's step-down "
        f"procedure (family-wise error, used for significance at alpha = {alpha:g}) and with "
        f"the Benjamini-Hochberg procedure (false discovery rate, reported). A Friedman test "
        f"with Kendall's W was run per metric on complete cases.",
        f"Results were stratified by the subject's total reference lesion volume (bins "
        f"{', '.join(size_bin_labels(edges_ml))}); per-lesion detection rates by individual "
        f"lesion volume use Wilson 95% intervals. Software: {vers}.",
    ]


def _long_table(seg: pd.DataFrame, metric_cols: Sequence[str]) -> pd.DataFrame:
    cols = [c for c in (*_ID_COLS[:2], "image_id", *_ID_COLS[2:]) if c in seg.columns]
    ids = seg[cols]
    k = len(metric_cols)
    vals = seg[list(metric_cols)].to_numpy(dtype=float)
    long = pd.DataFrame({c: np.repeat(ids[c].to_numpy(), k) for c in cols})
    long["metric"] = np.tile(np.asarray(metric_cols, dtype=object), len(seg))
    long["value"] = vals.ravel()
    return long


def run_group(
    output_dir: str | os.PathLike[str],
    *,
    metrics: Sequence[str] | None = None,
    alpha: float = 0.05,
    n_boot: int = 2000,
    seed: int = 0,
    participant_label: str | Iterable[str] | None = None,
    zero_method: str = "wilcox",
    size_bins_ml: Sequence[float] = DEFAULT_SIZE_BINS_ML,
    error_bars: str = "ci95",
) -> Path:
    """Run the group-level analysis of a bids_stroke output directory.

    Parameters
    ----------
    output_dir : path
        The BIDS-App output directory (only it is read).
    metrics : sequence of str, optional
        Metrics to test and plot (default ``dice, hd95, lesion_f1, abs_volume_diff_ml``).
        Summaries cover every metric column.
    alpha : float
        Significance level (Holm-adjusted p).
    n_boot, seed : int
        Bootstrap resamples and seed of the rank-biserial confidence intervals.
    participant_label : str or iterable of str, optional
        Restrict to these participants (with or without ``sub-``).
    zero_method : {"wilcox", "pratt"}
        Treatment of zero paired differences.
    size_bins_ml : sequence of float
        Inner edges of the lesion-volume bins in ml.
    error_bars : {"ci95", "sd"}
        Error bars of the bar chart.

    Returns
    -------
    pathlib.Path
        ``OUT/group_report.html``.

    Raises
    ------
    GroupInputError
        When no (usable) ``*_label-L_segmetrics.tsv`` is found.
    ValueError
        For an unknown metric or invalid option.
    """
    t0 = time.perf_counter()
    root = Path(output_dir)
    metrics = list(DEFAULT_METRICS if metrics is None else metrics)
    unknown = [m for m in metrics if m not in METRIC_COLUMNS]
    if unknown or not metrics:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {', '.join(METRIC_COLUMNS)}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    size_bin_labels(size_bins_ml)  # validates the edges

    seg = read_segmetrics(root, participant_label)
    lesions = read_lesions(root, participant_label)
    descriptions = _read_descriptions(root)
    conditions = _condition_order(seg, descriptions)
    specs = dict(zip(seg["desc"], seg["condition"], strict=True))
    metric_cols = [c for c in METRIC_COLUMNS if c in seg.columns]
    versions = _versions()
    models = segmentation_models(root, participant_label)

    long = _long_table(seg, metric_cols)
    summary = summarize(seg, metric_cols, by=("desc",))
    sizebins = size_bin_summary(seg, metric_cols, size_bins_ml)
    detection = lesion_detection_by_size(lesions, size_bins_ml, conditions) \
        if lesions is not None else None
    wil = pairwise_wilcoxon(seg, metrics, conditions, alpha=alpha, n_boot=n_boot, seed=seed,
                            zero_method=zero_method)
    fri = friedman_table(seg, metrics, conditions)

    mdesc = _metric_descriptions()
    metric_side = {"metric": {**COLUMN_DICTIONARY["metric"],
                              "Levels": {m: mdesc.get(m, {}).get("Description", m)
                                         for m in metric_cols}}}
    outputs = [
        _write_tsv(long, root / "group_segmetrics.tsv", metric_side),
        _write_tsv(summary, root / "group_desc-summary_segmetrics.tsv", metric_side),
        _write_tsv(sizebins, root / "group_desc-sizebins_segmetrics.tsv", metric_side),
        _write_tsv(wil, root / "group_desc-wilcoxon_stats.tsv", metric_side),
        _write_tsv(fri, root / "group_desc-friedman_stats.tsv", metric_side),
    ]
    if detection is not None:
        outputs.append(_write_tsv(detection, root / "group_desc-lesiondetection_segmetrics.tsv",
                                  {}))

    # ---------------- figures
    fig_specs = [
        ("bars", "Mean metrics per condition",
         lambda: plots.plot_metric_bars(seg, metrics, conditions, error=error_bars)),
        ("distributions", "Distribution per condition",
         lambda: plots.plot_metric_distributions(seg, metrics, conditions, seed=seed)),
        ("paired", "Paired values per subject",
         lambda: plots.plot_paired_lines(seg, metrics, conditions)),
        ("dice-vs-resolution", "Dice vs effective resolution by lesion size",
         lambda: plots.plot_dice_vs_resolution(seg, conditions, edges_ml=size_bins_ml)),
        ("bland-altman", "Bland-Altman of predicted vs reference lesion volume",
         lambda: plots.plot_bland_altman(seg, conditions)),
    ]
    figures: list[tuple[str, str, bytes]] = []
    for name, title, make in fig_specs:
        png = H.fig_to_png(make())
        path = H.atomic_write_bytes(root / "figures" / f"group_{name}.png", png)
        outputs.append(path)
        figures.append((path.name, title, png))

    # ---------------- report
    n_part = int(seg["participant_id"].nunique())
    n_sess = len(seg.drop_duplicates(id_columns(seg)))
    methods = methods_text(n_participants=n_part, n_sessions=n_sess, conditions=conditions,
                           descriptions=descriptions, specs=specs, metrics=metrics, alpha=alpha,
                           n_boot=n_boot, seed=seed, zero_method=zero_method,
                           edges_ml=size_bins_ml, versions=versions,
                           methods_used=wil["method"].value_counts(sort=False).to_dict(),
                           models=models)
    cond_tab = (seg.groupby("desc", sort=False)
                .agg(condition=("condition", "first"),
                     effective_resolution_mm=("effective_resolution_mm", "median"),
                     n=("participant_id", "size"))
                .reindex(conditions).reset_index())
    cond_tab.insert(2, "description", [descriptions.get(c, "") for c in conditions])
    report = root / "group_report.html"
    html_text = _render_report(
        conditions=cond_tab, methods=methods, metrics=metrics,
        summary=summary[summary["metric"].isin(metrics)],
        sizebins=sizebins[sizebins["metric"].isin(metrics)], detection=detection,
        wilcoxon=wil, friedman=fri, figures=figures, versions=versions,
        outputs=[*(p.relative_to(root).as_posix() for p in outputs), report.name],
        settings={"output_dir": str(root), "metrics": ", ".join(metrics), "alpha": alpha,
                  "n_boot": n_boot, "seed": seed, "zero_method": zero_method,
                  "size_bins_ml": ", ".join(f"{e:g}" for e in size_bins_ml),
                  "error_bars": error_bars,
                  "participant_label": ("all" if participant_label is None else
                                        " ".join([participant_label]
                                                 if isinstance(participant_label, str)
                                                 else list(participant_label))),
                  "segmentation": "; ".join(models) or "n/a",
                  "n_metric_rows": len(seg), "runtime_s": f"{time.perf_counter() - t0:.2f}"},
    )
    H.atomic_write_text(report, html_text)
    return report


def _render_report(
    *, conditions: pd.DataFrame, methods: Sequence[str], metrics: Sequence[str],
    summary: pd.DataFrame, sizebins: pd.DataFrame, detection: pd.DataFrame | None,
    wilcoxon: pd.DataFrame, friedman: pd.DataFrame, figures: Sequence[tuple[str, str, bytes]],
    versions: Mapping[str, str], outputs: Sequence[str], settings: Mapping[str, Any],
) -> str:
    parts = [H.nav([("overview", "Overview"), ("methods", "Methods"), ("summary", "Summary"),
                    ("figures", "Figures"), ("tests", "Tests"), ("sizebins", "Lesion size"),
                    ("provenance", "Provenance")])]
    parts.append(H.section("Overview", H.table_html(
        conditions, caption="Conditions (effective resolution: median over subjects)"),
        anchor="overview"))
    parts.append(H.section("Methods", "".join(H.paragraph(p) for p in methods),
                           anchor="methods"))
    tabs = []
    for i, m in enumerate(metrics, start=1):
        tabs.append(H.table_html(summary[summary["metric"] == m].drop(columns="metric"),
                                 caption=f"Table {i}. {plots.metric_label(m)} per condition",
                                 table_id=f"summary-{m}"))
    parts.append(H.section("Summary per condition", "".join(tabs), anchor="summary"))
    figs = "".join(H.img_tag(png, alt=title, caption=f"{title} ({name})")
                   for name, title, png in figures)
    parts.append(H.section("Figures", figs, anchor="figures"))
    wil_cols = ["metric", "condition_a", "condition_b", "n", "n_dropped", "n_zero", "mean_a",
                "mean_b", "median_diff", "W", "p", "method", "p_holm", "p_fdr_bh",
                "rank_biserial", "rb_ci_low", "rb_ci_high", "significant"]
    tests = (H.table_html(friedman, caption="Friedman omnibus test per metric (complete cases)",
                          table_id="friedman")
             + H.table_html(wilcoxon[wil_cols], caption="Pairwise Wilcoxon signed-rank tests "
                            "(Holm / BH adjusted within each metric)", table_id="wilcoxon"))
    parts.append(H.section("Statistical tests", tests, anchor="tests"))
    size = H.table_html(sizebins, caption="Summaries by total reference lesion volume",
                        table_id="sizebins")
    if detection is not None:
        size += H.table_html(detection, caption="Per-lesion detection rate by lesion volume",
                             table_id="lesiondetection")
    else:
        size += H.paragraph("No *_label-L_lesions.tsv files: per-lesion detection rates are "
                            "not available.", cls="note")
    parts.append(H.section("Lesion-size stratification", size, anchor="sizebins"))
    prov = (H.kv_table(settings, caption="Settings") + H.kv_table(versions, caption="Software")
            + H.paragraph("Files written:") + H.bullet_list(outputs))
    parts.append(H.section("Provenance", prov, anchor="provenance"))
    return H.page("bids_stroke group report", "".join(parts))
