"""Group level: collect per-image metrics, run the statistics, write the tables and the report.

Outputs (root of OUT; each TSV has a JSON data dictionary sidecar):

* ``group_segmetrics.tsv`` - every per-image metric row of OUT (one row per image and
  condition, all metric columns).
* ``group_desc-summary_segmetrics.tsv`` - n, mean, SD, min, quartiles, IQR, max per condition
  and metric (per statistical unit); ``group_desc-means_segmetrics.tsv`` - means with
  percentile-bootstrap CIs of the tested metrics (and by lesion volume for the resolution
  figure); ``group_desc-sizebins_segmetrics.tsv`` - summaries per lesion-volume bin;
  ``group_desc-lesiondetection_segmetrics.tsv`` - per-lesion detection (when lesion TSVs exist).
* ``group_desc-wilcoxon_stats.tsv`` and ``group_desc-friedman_stats.tsv`` - paired tests.
* With datasets to compare: ``group_desc-datasets_segmetrics.tsv`` (their rows, with a
  ``dataset`` column) and ``group_desc-datasets_stats.tsv`` (unpaired tests).
* ``figures/group_*.png`` and the self-contained ``group_report.html``.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bids_stroke.bundled_model import DEMO_MODEL_WARNING
from bids_stroke.citation import citation_lines
from bids_stroke.group import study, writers
from bids_stroke.group.collect import (
    BUNDLED_MODEL_LABEL,
    METRIC_COLUMNS,
    SEGMETRICS_GLOB,
    GroupInputError,
    find_files,
    parse_compare,
    read_datasets,
    read_lesions,
    read_segmetrics,
    run_warnings,
    segmentation_models,
    template_sources,
)
from bids_stroke.group.describe import (
    DEFAULT_SIZE_BINS_ML,
    GROUP_UNITS,
    aggregate_units,
    bin_volumes,
    condition_means,
    lesion_detection_by_size,
    size_bin_labels,
    size_bin_summary,
    summarize,
)
from bids_stroke.group.findings import dataset_findings, paired_findings, unit_sentence
from bids_stroke.group.methods import methods_text
from bids_stroke.group.omnibus import friedman_table
from bids_stroke.group.paired import DEFAULT_METRICS, pairwise_wilcoxon, unit_matrix
from bids_stroke.group.report import ReportParts, render_report
from bids_stroke.group.unpaired import compare_datasets

__all__ = ["GroupInputError", "run_group"]

LOGGER = logging.getLogger("bids_stroke.group")
RESOLUTION_METRIC = "dice"


def _check_options(metrics: Sequence[str], alpha: float, unit: str, zero_method: str,
                   error_bars: str, size_bins_ml: Sequence[float]) -> None:
    unknown = [m for m in metrics if m not in METRIC_COLUMNS]
    if unknown or not metrics:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {', '.join(METRIC_COLUMNS)}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if unit not in GROUP_UNITS:
        raise ValueError(f"group unit must be one of {GROUP_UNITS}, got {unit!r}")
    if zero_method not in ("wilcox", "pratt"):
        raise ValueError(f"zero_method must be 'wilcox' or 'pratt', got {zero_method!r}")
    if error_bars not in ("ci95", "sd"):
        raise ValueError(f"error_bars must be 'ci95' or 'sd', got {error_bars!r}")
    size_bin_labels(size_bins_ml)  # validates the edges


def _usable_metrics(metrics: Sequence[str], tables: Iterable[pd.DataFrame]) -> tuple[list[str],
                                                                                      list[str]]:
    """Requested metrics with at least one value, and notes on those left out."""
    tables = list(tables)
    keep, notes = [], []
    for m in metrics:
        if any(t[m].notna().any() for t in tables):
            keep.append(m)
            continue
        absent = any(m in t.attrs.get("absent_columns", []) for t in tables)
        why = ("is not in these outputs (written by an older bids_stroke; re-run the "
               "participant level to get it)" if absent else "has no defined value")
        notes.append(f"Metric {m} {why}: it is left out of the tests.")
        LOGGER.warning("group level: metric %s %s", m, why)
    return keep, notes


def _within_dataset(
    seg: pd.DataFrame, lesions: pd.DataFrame | None, *, metrics: Sequence[str],
    metric_cols: Sequence[str], conditions: Sequence[str], unit: str, alpha: float,
    n_boot: int, seed: int, zero_method: str, size_bins_ml: Sequence[float],
) -> dict[str, pd.DataFrame | None]:
    units = aggregate_units(seg, metric_cols, unit)
    mats = unit_matrix(units, [*dict.fromkeys([*metrics, RESOLUTION_METRIC,
                                               "ref_volume_ml"])], conditions)
    shown = [*dict.fromkeys([*metrics, RESOLUTION_METRIC])]
    means = condition_means({m: mats[m] for m in shown}, conditions, n_boot=n_boot, seed=seed)
    volume = np.nanmean(mats["ref_volume_ml"], axis=1) if mats["ref_volume_ml"].size else \
        np.zeros(0)
    bins = bin_volumes(pd.Series(volume), size_bins_ml).astype(str).to_numpy()
    strata = {lab: bins == lab for lab in size_bin_labels(size_bins_ml) if np.any(bins == lab)}
    if strata:
        by_size = condition_means({RESOLUTION_METRIC: mats[RESOLUTION_METRIC]}, conditions,
                                  strata, n_boot=n_boot, seed=seed)
        means = pd.concat([means, by_size], ignore_index=True)
    return {
        "units": units,
        "summary": summarize(units, metric_cols, by=("desc",)),
        "means": means,
        "sizebins": size_bin_summary(units, metric_cols, size_bins_ml),
        "detection": (lesion_detection_by_size(lesions, size_bins_ml, conditions)
                      if lesions is not None else None),
        "wilcoxon": pairwise_wilcoxon(units, metrics, conditions, alpha=alpha, n_boot=n_boot,
                                      seed=seed, zero_method=zero_method,
                                      reference=conditions[0]),
        "friedman": friedman_table(units, metrics, conditions),
    }


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
    unit: str = "participant",
    compare: Mapping[str, str | os.PathLike[str]] | Sequence[str] | None = None,
    conditions: Sequence[str] | None = None,
) -> Path:
    """Run the group-level analysis of a bids_stroke output directory.

    Parameters
    ----------
    output_dir : path
        The BIDS-App output directory: its participant-level metrics are analysed (paired
        tests between conditions) and every group output is written there.
    metrics : sequence of str, optional
        Metrics to test and plot (default ``dice, hd95, lesion_f1, abs_volume_diff_ml``).
        Summaries cover every metric column. Metrics without any value (e.g. a column that
        older outputs lack) are left out with a note.
    alpha : float
        Significance level (applied to the raw and to the Holm-adjusted p).
    n_boot, seed : int
        Bootstrap resamples and seed of every confidence interval.
    participant_label : str or iterable of str, optional
        Restrict to these participants (with or without ``sub-``).
    zero_method : {"wilcox", "pratt"}
        Treatment of zero paired differences.
    size_bins_ml : sequence of float
        Inner edges of the lesion-volume bins in ml.
    error_bars : {"ci95", "sd"}
        Error bars of the bar chart (bootstrap CI of the mean, or SD clipped to the range).
    unit : {"participant", "image"}
        Statistical unit: participants (images of one participant averaged per condition) or
        images (sessions/runs as independent units).
    compare : mapping LABEL -> directory, or ``["LABEL=DIR", ...]``, optional
        Output directories of several datasets, compared per condition with unpaired tests.
        ``output_dir`` may hold no participant outputs of its own in that case.
    conditions : sequence of str, optional
        The study's condition specs, giving the display order (native always first).

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
    _check_options(metrics, alpha, unit, zero_method, error_bars, size_bins_ml)
    datasets = parse_compare(compare)
    # every manifest read and every table checksum verified once for the whole group run
    from bids_stroke.commit import committed_subjects

    states = committed_subjects(root) if root.is_dir() else None
    own = (not datasets) or (states is not None and bool(
        find_files(root, SEGMETRICS_GLOB, participant_label, states=states)))
    seg = read_segmetrics(root, participant_label, states=states) if own else None
    lesions = read_lesions(root, participant_label, states=states) if own else None
    ds_rows = read_datasets(datasets, participant_label) if datasets else None
    frames = [t for t in (seg, ds_rows) if t is not None]
    tested, notes = _usable_metrics(metrics, frames)
    if not tested:
        raise ValueError(f"none of the metrics {metrics} has a value in the outputs")
    descriptions = study.read_descriptions([root, *datasets.values()])
    conds = study.order_conditions(frames, conditions)
    specs = dict(zip(pd.concat([t["desc"] for t in frames]),
                     pd.concat([t["condition"] for t in frames]), strict=True))
    geometry = study.geometries(frames, specs)
    metric_cols = [c for c in METRIC_COLUMNS if c in frames[0].columns]

    within = None
    if seg is not None:
        within = _within_dataset(seg, lesions, metrics=tested, metric_cols=metric_cols,
                                 conditions=conds, unit=unit, alpha=alpha, n_boot=n_boot,
                                 seed=seed, zero_method=zero_method, size_bins_ml=size_bins_ml)
    ds_units = ds_stats = None
    if ds_rows is not None:
        ds_units = aggregate_units(ds_rows, metric_cols, unit)
        ds_conds = [c for c in conds if c in set(ds_units["desc"])]
        ds_stats = compare_datasets(ds_units, tested, ds_conds, list(datasets), alpha=alpha,
                                    n_boot=n_boot, seed=seed)

    # everything is written into a staging folder, then committed at once (bids_stroke.commit)
    from bids_stroke.commit import GROUP_KEY, commit_group, group_staging, lock_path, recover
    from bids_stroke.locks import FileLock

    run_uuid = time.strftime("%Y%m%d-%H%M%S")
    root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_path(root, GROUP_KEY), run=f"group {run_uuid}").acquire(timeout=600)
    try:
        recover(root, GROUP_KEY)
        stage = group_staging(root, run_uuid)
        try:
            report = _write_outputs(
                stage, out_dir=root, seg=seg, within=within, ds_rows=ds_rows,
                ds_stats=ds_stats, metric_cols=metric_cols, ds_units=ds_units, tested=tested,
                conds=conds, geometry=geometry, datasets=datasets, seed=seed,
                error_bars=error_bars, size_bins_ml=size_bins_ml, specs=specs, unit=unit,
                alpha=alpha, descriptions=descriptions, n_boot=n_boot,
                zero_method=zero_method, notes=notes, frames=frames, metrics=metrics,
                participant_label=participant_label, t0=t0, states=states)
            commit_group(root, stage, run_uuid)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
    finally:
        lock.release()
    return root / report.relative_to(stage)


def _participants(out_dir: Path, within, tested: Sequence[str], conds: Sequence[str],
                  states, participant_label) -> dict:
    """The report's participants section: every unit with its subject reports (from the
    manifests) and the outlying paired changes of the tested metrics."""
    if within is None:
        return {}
    from bids_stroke.group.participants import (
        paired_outliers,
        participant_table,
        subject_reports,
    )

    units = within["units"]
    reports = subject_reports(m for m in (s.manifest for s in states or ())
                              if m is not None)
    outliers = paired_outliers(units, tested, conds)
    metric = RESOLUTION_METRIC if RESOLUTION_METRIC in units.columns else tested[0]
    table, keys, links = participant_table(units, conds, metric, reports, outliers)
    return {"participants": table, "participant_units": keys, "participant_links": links,
            "outliers": outliers}


def _write_outputs(root: Path, *, out_dir: Path, seg, within, ds_rows, ds_stats, metric_cols,
                   ds_units, tested, conds, geometry, datasets, seed, error_bars,
                   size_bins_ml, specs, unit,
                   alpha, descriptions, n_boot, zero_method, notes, frames, metrics,
                   participant_label, t0, states) -> Path:
    """Tables, figures and the report of the group level, written under ``root``."""
    outputs = writers.write_tables(root, seg=seg, within=within, ds_rows=ds_rows,
                                 ds_stats=ds_stats, metric_cols=metric_cols)
    figures, fig_paths = writers.make_figures(
        root, within=within, ds_units=ds_units, metrics=tested, conditions=conds,
        geometry=geometry, datasets=list(datasets), seed=seed, error_bars=error_bars,
        size_bins_ml=size_bins_ml, resolution_metric=RESOLUTION_METRIC)
    outputs += fig_paths

    source = seg if seg is not None else ds_rows
    sizes = study.sample_sizes(source)
    phrases = {c: study.phrase(specs.get(c, c), geometry.get(c)) for c in conds}
    findings = [unit_sentence(unit, sizes["participants"], sizes["images"], sizes["multi"])]
    if within is not None:
        findings += paired_findings(within["wilcoxon"], conds[0], phrases, alpha,
                                    unit="participants" if unit == "participant" else "images")
    if ds_stats is not None:
        findings += dataset_findings(ds_stats, phrases, alpha)
    versions = study.versions()
    models = (segmentation_models(out_dir, participant_label, states=states)
              if seg is not None else [])
    warned = (run_warnings(states, participant_label)
              if seg is not None and states is not None else {})
    cautions = [f"Participant level ({n} image(s)): {w}." for w, n in warned.items()]
    if (any(m.startswith(BUNDLED_MODEL_LABEL) for m in models)
            and DEMO_MODEL_WARNING not in warned):
        cautions.append("Predictions of the bundled demo model, trained on synthetic phantoms: "
                        "its numbers describe bids_stroke's demo data only, never real lesions "
                        "(run the participant level with --model for a real study).")
    methods = methods_text(
        n_participants=sizes["participants"], n_sessions=sizes["sessions"], conditions=conds,
        descriptions=descriptions, specs=specs, metrics=tested, alpha=alpha, n_boot=n_boot,
        seed=seed, zero_method=zero_method, edges_ml=size_bins_ml, versions=versions,
        unit=unit, datasets=list(datasets), paired=within is not None,
        methods_used=(within["wilcoxon"]["method"].value_counts(sort=False).to_dict()
                      if within is not None else None),
        models=models)
    report = root / "group_report.html"
    people = _participants(out_dir, within, tested, conds, states, participant_label)
    if people:
        from bids_stroke.group.participants import OUTLIER_DICTIONARY

        outputs.append(writers.write_table(people["outliers"],
                                           root / "group_desc-outliers_segmetrics.tsv",
                                           OUTLIER_DICTIONARY))
    template = ""
    if seg is not None and states is not None:
        from bids_stroke.templates.standin import describe_source

        sources = template_sources(out_dir, states, participant_label)
        template = "; ".join(describe_source("MNI152NLin2009aSym", src)
                             + (f" ({n} of {sum(sources.values())} images)"
                                if len(sources) > 1 else "") for src, n in sources.items())
    settings = {
        "output_dir": str(out_dir), "metrics": ", ".join(metrics), "alpha": alpha,
        "n_boot": n_boot, "seed": seed, "zero_method": zero_method, "unit": unit,
        "compare": ", ".join(f"{k}={v}" for k, v in datasets.items()) or "none",
        "size_bins_ml": ", ".join(f"{e:g}" for e in size_bins_ml), "error_bars": error_bars,
        "participant_label": ("all" if participant_label is None else " ".join(
            [participant_label] if isinstance(participant_label, str)
            else list(participant_label))),
        "segmentation": "; ".join(models) or "n/a",
        "n_metric_rows": sum(len(t) for t in frames),
        "runtime_s": f"{time.perf_counter() - t0:.2f}",
    }
    def shown(key: str) -> pd.DataFrame | None:
        table = within.get(key) if within is not None else None
        return table[table["metric"].isin(tested)] if table is not None and key in (
            "summary", "sizebins") else table

    parts = ReportParts(
        findings=findings, notes=notes, conditions=study.condition_table(
            frames, conds, descriptions, specs, geometry),
        methods=methods, metrics=tested, summary=shown("summary"), wilcoxon=shown("wilcoxon"),
        friedman=shown("friedman"), sizebins=shown("sizebins"), detection=shown("detection"),
        datasets=ds_stats, figures=figures, versions=versions,
        outputs=[*(p.relative_to(root).as_posix() for p in outputs), report.name],
        settings=settings, warnings=cautions, **people, template=template,
        citation=citation_lines())
    writers.atomic_write_text(report, render_report(parts))
    return report
