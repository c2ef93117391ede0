"""Group level: collect per-image metrics, run the statistics, write the tables and the report.

Outputs (root of OUT; each TSV has a JSON data dictionary sidecar):

* ``group_segmetrics.tsv`` - every per-image metric row of OUT (one row per image and
  condition, all metric columns).
* ``group_desc-summary_segmetrics.tsv`` - n, mean, SD, min, quartiles, IQR, max per condition
  and metric (per statistical unit); ``group_desc-means_segmetrics.tsv`` - means with
  percentile-bootstrap CIs of the tested metrics (and by lesion volume for the resolution
  figure); ``group_desc-sizebins_segmetrics.tsv`` - summaries per lesion-volume bin;
  ``group_desc-lesiondetection_segmetrics.tsv`` - per-lesion detection (when lesion TSVs exist).
* ``group_desc-equivalence_stats.tsv`` - equivalence / non-inferiority verdicts of every
  condition against the reference for the metrics with a margin (the primary first).
* ``group_desc-wilcoxon_stats.tsv`` and ``group_desc-friedman_stats.tsv`` - paired tests;
  ``group_desc-lesionsize_stats.tsv`` - the primary metric's change against log lesion volume
  (Theil-Sen slope with its Kendall interval).
* With datasets to compare: ``group_desc-datasets_segmetrics.tsv`` (their rows, with a
  ``dataset`` column) and ``group_desc-datasets_stats.tsv`` (unpaired tests).
* ``figures/group_*.png``, the self-contained ``group_report.html`` and the methods
  boilerplate ``group_methods.md`` / ``group_methods.html``.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bids_stroke.core.atomic import atomic_write_text
from bids_stroke.core.settings import TEMPLATE, GroupSettings
from bids_stroke.degradation import Condition
from bids_stroke.group import study, writers
from bids_stroke.group.collect import (
    BUNDLED_MODEL_LABEL,
    METRIC_COLUMNS,
    SEGMETRICS_GLOB,
    GroupDataError,
    GroupInputError,
    compare_selection,
    find_files,
    model_details,
    parse_compare,
    participant_settings,
    quarantined_journals,
    read_datasets,
    read_lesions,
    read_segmetrics,
    report_incomplete,
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
from bids_stroke.group.equivalence import DEFAULT_MARGINS, DEFAULT_PRIMARY, equivalence_table
from bids_stroke.group.findings import (
    dataset_findings,
    lesion_size_finding,
    primary_findings,
    secondary_findings,
    unit_sentence,
)
from bids_stroke.group.hodges_lehmann import DEFAULT_DIGITS_RANK
from bids_stroke.group.lesion_size import size_regression
from bids_stroke.group.methods import MethodsInput, methods_document, to_html, to_markdown
from bids_stroke.group.omnibus import friedman_table
from bids_stroke.group.paired import DEFAULT_METRICS, pairwise_wilcoxon, unit_matrix
from bids_stroke.group.references import (
    agreement_findings,
    metric_namer,
    prefix,
    reference_of,
    reference_sets,
    sidecar_reference,
    with_self_agreement,
    wording,
)
from bids_stroke.group.report import ReportParts, render_report
from bids_stroke.group.unpaired import compare_datasets, comparison_pairs
from bids_stroke.metrics.reference import Reference
from bids_stroke.model.bundled import DEMO_MODEL_WARNING
from bids_stroke.reports.citation import citation_lines

if TYPE_CHECKING:
    from bids_stroke.outputs.commit import ImageState

__all__ = ["GroupInputError", "run_group"]

LOGGER = logging.getLogger("bids_stroke.group")
MASK = Reference()
RESOLUTION_METRIC = "dice"


def _check_options(metrics: Sequence[str], alpha: float, unit: str, zero_method: str,
                   error_bars: str, size_bins_ml: Sequence[float], primary: str,
                   margins: Mapping[str, float], digits_rank: int | None,
                   bland_altman: str) -> None:
    unknown = [m for m in [*metrics, primary, *margins] if m not in METRIC_COLUMNS]
    if unknown or not metrics:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {', '.join(METRIC_COLUMNS)}")
    if primary not in margins:
        raise ValueError(f"the primary metric {primary} has no margin: add one (--margin "
                         f"{primary}=VALUE or group.margins in the study file)")
    bad = [m for m, v in margins.items() if not (isinstance(v, int | float) and v > 0
                                                 and np.isfinite(v))]
    if bad:
        raise ValueError(f"the margin of {bad[0]} must be a positive number, got "
                         f"{margins[bad[0]]!r}")
    if digits_rank is not None and not 1 <= int(digits_rank) <= 22:
        raise ValueError(f"digits_rank must be in [1, 22] or None, got {digits_rank!r}")
    if bland_altman not in ("log", "raw"):
        raise ValueError(f"bland_altman must be 'log' or 'raw', got {bland_altman!r}")
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
    n_boot: int, seed: int, zero_method: str, size_bins_ml: Sequence[float], primary: str,
    margins: Mapping[str, float], digits_rank: int | None,
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
        "detection": (lesion_detection_by_size(lesions, size_bins_ml, conditions,
                                               n_boot=n_boot, seed=seed)
                      if lesions is not None else None),
        "equivalence": equivalence_table(units, {m: margins[m] for m in metrics
                                                 if m in margins}, conditions, alpha=alpha,
                                         primary=primary, digits_rank=digits_rank),
        "wilcoxon": pairwise_wilcoxon(units, metrics, conditions, alpha=alpha, n_boot=n_boot,
                                      seed=seed, zero_method=zero_method,
                                      reference=conditions[0], primary=primary,
                                      digits_rank=digits_rank),
        "friedman": friedman_table(units, metrics, conditions),
        "lesionsize": size_regression(units, primary, conditions, alpha=alpha),
    }


def run_group(
    output_dir: str | os.PathLike[str],
    *,
    metrics: Sequence[str] | None = None,
    alpha: float = GroupSettings.alpha,
    n_boot: int = GroupSettings.n_boot,
    seed: int = 0,
    participant_label: str | Iterable[str] | None = None,
    zero_method: str = "wilcox",
    size_bins_ml: Sequence[float] = DEFAULT_SIZE_BINS_ML,
    error_bars: str = "ci95",
    unit: str = GroupSettings.unit,
    compare: Mapping[str, str | os.PathLike[str]] | Sequence[str] | None = None,
    conditions: Sequence[Condition | str] | None = None,
    primary: str = DEFAULT_PRIMARY,
    margins: Mapping[str, float] | None = None,
    digits_rank: int | None = DEFAULT_DIGITS_RANK,
    bland_altman: str = GroupSettings.bland_altman,
    pairs: Sequence[tuple[str, str]] | None = None,
    strict: bool = GroupSettings.strict,
) -> Path:
    """Run the group-level analysis of a bids_stroke output directory.

    Parameters
    ----------
    output_dir : path
        The BIDS-App output directory: its participant-level metrics are analysed (paired
        tests between conditions) and every group output is written there.
    metrics : sequence of str, optional
        Metrics to test and plot (default: the default study's, ``GroupSettings.metrics``);
        the primary metric and every metric with a margin are added when missing. Summaries cover
        every metric column. Metrics without any value (e.g. a column that older outputs lack)
        are left out with a note.
    alpha : float
        Significance level (raw and Holm-adjusted p); the equivalence intervals have level
        ``1 - 2 alpha`` (Bonferroni-adjusted for the primary metric).
    n_boot, seed : int
        Bootstrap resamples and seed of every bootstrap interval (and of the permutation
        Brunner-Munzel test).
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
        Output directories of several datasets, compared with unpaired tests. ``DIR:c1,c2``
        compares only those conditions of that dataset, with every condition of the others.
        ``output_dir`` may hold no participant outputs of its own in that case.
    conditions : sequence of Condition or str, optional
        The study's conditions (or their specs), giving the display order (native always
        first).
    primary : str
        The primary metric: its comparisons with the reference condition are the
        confirmatory family and head the findings.
    margins : mapping metric -> float, optional
        Equivalence margins in each metric's units (default: ``GroupSettings.margins``,
        ``{"dice": 0.05}``); the primary metric needs one.
    digits_rank : int or None
        Significant digits kept before ranking (R's ``digits.rank``; None: exact binary
        comparison).
    bland_altman : {"log", "raw"}
        Scale of the Bland-Altman plots (ratio of volumes on a log scale, or ml).
    pairs : sequence of ("LABEL:desc", "LABEL:desc"), optional
        Dataset comparisons across conditions (default: from ``compare``).
    strict : bool
        Refuse (:class:`GroupIncomplete`, nothing written) when an image of OUT is
        incomplete; by default it is left out and named in one log line and in the report.

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
    margins = dict(DEFAULT_MARGINS if margins is None else margins)
    metrics = list(DEFAULT_METRICS if metrics is None else metrics)
    _check_options(metrics, alpha, unit, zero_method, error_bars, size_bins_ml, primary,
                   margins, digits_rank, bland_altman)
    metrics = list(dict.fromkeys([*metrics, primary, *margins]))
    datasets = parse_compare(compare)
    selection = compare_selection(compare)
    # every manifest read and every table checksum verified once for the whole group run
    from bids_stroke.outputs.commit import committed_images

    states = committed_images(root) if root.is_dir() else None
    left_out = report_incomplete(states, participant_label, strict=strict)
    ds_states = {label: committed_images(Path(path)) if Path(path).is_dir() else None
                 for label, path in datasets.items()}
    # results scored against different references are analysed apart, never pooled
    sets = reference_sets(states, *ds_states.values()) or [Reference()]
    options = {"metrics": metrics, "alpha": alpha, "n_boot": n_boot, "seed": seed,
               "participant_label": participant_label, "zero_method": zero_method,
               "size_bins_ml": size_bins_ml, "unit": unit, "conditions": conditions,
               "primary": primary, "margins": margins, "digits_rank": digits_rank}
    analyses = [_analyse(root, reference, states=states, ds_states=ds_states,
                         datasets=datasets, selection=selection, pairs=pairs,
                         filtered=len(sets) > 1, **options)
                for reference in sets]

    # everything is written into a staging folder, then committed at once (outputs.commit)
    from bids_stroke.outputs.commit import (
        GROUP_KEY,
        commit_group,
        group_staging,
        lock_path,
        recover,
    )
    from bids_stroke.outputs.locks import FileLock

    run_uuid = time.strftime("%Y%m%d-%H%M%S")
    root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_path(root, GROUP_KEY), run=f"group {run_uuid}").acquire(timeout=600)
    try:
        recover(root, GROUP_KEY)
        stage = group_staging(root, run_uuid)
        try:
            names = [f"{prefix(a['reference'])}_report.html" for a in analyses]
            reports = [_write_outputs(
                stage, out_dir=root, seed=seed, error_bars=error_bars,
                size_bins_ml=size_bins_ml, unit=unit, alpha=alpha, n_boot=n_boot,
                zero_method=zero_method, metrics=metrics, participant_label=participant_label,
                t0=t0, states=a.pop("set_states"), primary=primary, margins=margins,
                digits_rank=digits_rank, bland_altman=bland_altman, left_out=left_out,
                others=[(b["reference"], name) for b, name in zip(analyses, names, strict=True)
                        if b is not a], **a)
                for a in analyses]
            commit_group(root, stage, run_uuid)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
    finally:
        lock.release()
    quarantined = quarantined_journals(states)
    if quarantined:  # bad data in OUT: the others were analysed, the run still fails
        raise GroupDataError(quarantined)
    return root / reports[0].relative_to(stage)


def _analyse(root: Path, reference: Reference, *, states, ds_states, datasets, selection,
             pairs, metrics, alpha, n_boot, seed, participant_label, zero_method,
             size_bins_ml, unit, conditions, primary, margins, digits_rank,
             filtered: bool) -> dict:
    """Read and test the results scored against ``reference`` (``filtered``: the output
    folders hold other references too, left out here)."""
    only = reference if filtered else None
    set_states = ([st for st in states if reference_of(st) in (None, reference)]
                  if states is not None and filtered else states)
    own = (not datasets) or (states is not None and bool(
        find_files(root, SEGMETRICS_GLOB, participant_label, states=states, reference=only)))
    seg = (read_segmetrics(root, participant_label, states=states, reference=only)
           if own else None)
    lesions = (read_lesions(root, participant_label, states=states, reference=only)
               if own else None)
    compared, apart = (_with_results(datasets, ds_states, participant_label, reference)
                       if datasets and filtered else (dict(datasets), []))
    ds_rows = (read_datasets(compared, participant_label, reference=only, states=ds_states)
               if compared else None)
    notes: list[str] = []
    measured, ds_measured = seg, ds_rows  # the written row tables hold measured rows only
    if reference.is_prediction:  # each condition against the reference's perfect self-agreement
        seg, note = with_self_agreement(seg, reference)
        ds_rows, _ = with_self_agreement(ds_rows, reference)
        notes += [note] if note else []
    frames = [t for t in (seg, ds_rows) if t is not None]
    if not frames:
        raise GroupInputError(f"no results scored against {reference.reference_words} to "
                              "analyse")
    tested, usable_notes = _usable_metrics(metrics, frames)
    notes += usable_notes
    if apart:
        notes.append(f"Dataset(s) {', '.join(apart)} hold no results scored against "
                     f"{reference.reference_words}: left out of this dataset comparison"
                     + (" (fewer than two datasets remain: none is made)." if not compared
                        else "."))
    _refuse_untestable(metrics, tested, primary)
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
                                 seed=seed, zero_method=zero_method, size_bins_ml=size_bins_ml,
                                 primary=primary, margins=margins, digits_rank=digits_rank)
        if reference.is_prediction:  # implied rows are a comparison value, not a result
            for key in ("summary", "means", "sizebins"):
                table = within.get(key)
                if table is not None:
                    within[key] = table[table["desc"] != reference.label]
    ds_units = ds_stats = None
    if ds_rows is not None:
        ds_units = aggregate_units(ds_rows, metric_cols, unit)
        ds_conds = [c for c in conds if c in set(ds_units["desc"])]
        present = {ds: set(ds_units.loc[ds_units["dataset"] == ds, "desc"]) for ds in compared}
        chosen = comparison_pairs(list(compared), ds_conds, present, selection=selection,
                                  pairs=pairs)
        ds_stats = compare_datasets(ds_units, tested, ds_conds, list(compared), alpha=alpha,
                                    n_boot=n_boot, seed=seed, pairs=chosen, primary=primary,
                                    digits_rank=digits_rank)
    return {"reference": reference, "set_states": set_states, "seg": measured,
            "within": within, "ds_rows": ds_measured, "ds_stats": ds_stats,
            "metric_cols": metric_cols,
            "ds_units": ds_units, "tested": tested, "conds": conds, "geometry": geometry,
            "specs": specs, "descriptions": descriptions, "notes": notes, "frames": frames,
            "datasets": compared}

def _with_results(datasets: Mapping[str, str | os.PathLike[str]],
                  ds_states: Mapping[str, Sequence[ImageState] | None],
                  participant_label: str | Iterable[str] | None, reference: Reference
                  ) -> tuple[dict[str, str | os.PathLike[str]], list[str]]:
    """The compared datasets that hold results scored against ``reference`` (none when
    fewer than two do), and the labels of those left out."""
    compared = {label: path for label, path in datasets.items() if ds_states[label]
                and find_files(Path(path), SEGMETRICS_GLOB, participant_label,
                               states=ds_states[label], reference=reference)}
    apart = sorted(set(datasets) - set(compared))
    return (compared if len(compared) >= 2 else {}), apart


def _refuse_untestable(metrics: Sequence[str], tested: Sequence[str], primary: str) -> None:
    """``ValueError`` when no metric, or not the primary one, has a value to test."""
    if not tested:
        raise ValueError(f"none of the metrics {metrics} has a value in the outputs")
    if primary not in tested:
        raise ValueError(f"the primary metric {primary} has no value in the outputs: choose "
                         f"another with --primary (and its --margin)")


def _findings(*, within, ds_stats, conds, phrases, alpha, unit, primary, tested, seg,
              ds_rows, own_label, reference: Reference = MASK) -> list[str]:
    """Primary verdicts first, then one exploratory line per other metric, the datasets, and
    the statistical unit with each dataset's own counts. A prediction-referenced set names
    every metric as agreement with the model's own prediction, never as accuracy."""
    unit_word = "participants" if unit == "participant" else "images"
    name = metric_namer(reference)
    out: list[str] = []
    if within is not None:
        out += primary_findings(within["equivalence"], primary, phrases, unit_word, name=name)
    if ds_stats is not None:
        out += [f for f in dataset_findings(ds_stats, phrases, alpha, primary=primary, name=name)
                if not f.startswith("Exploratory")]
    if within is not None:
        out += secondary_findings(within["wilcoxon"], within["equivalence"], conds[0], phrases,
                                  alpha, primary=primary, order=tested, name=name)
    if within is not None and within.get("lesionsize") is not None:
        out += lesion_size_finding(within["lesionsize"], phrases, name=name)
    if reference.is_prediction and within is not None:
        out += agreement_findings(within["summary"], conds[1:], phrases, [primary], reference)
    if ds_stats is not None:
        out += [f for f in dataset_findings(ds_stats, phrases, alpha, primary=primary, name=name)
                if f.startswith("Exploratory")]
    sizes: dict[str, dict[str, int]] = {}
    if seg is not None and (ds_rows is None or own_label is None):
        sizes[own_label or ("" if ds_rows is None else "this folder")] = study.sample_sizes(seg)
    if ds_rows is not None:
        sizes.update(study.sample_sizes_by_dataset(ds_rows))
    out.append(unit_sentence(unit, sizes))
    return out


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
                   participant_label, t0, states, primary, margins, digits_rank,
                   bland_altman, left_out=None, reference: Reference = MASK,
                   others: Sequence[tuple[Reference, str]] = ()) -> Path:
    """Tables, figures, the methods text and the report of one reference set, written under
    ``root`` with the set's prefix (``group`` for the lesion-mask set)."""
    name = prefix(reference)
    words = wording(reference, others)
    phrases = {c: study.phrase(specs.get(c, c), geometry.get(c)) for c in conds}
    outputs = writers.write_tables(root, seg=seg, within=within, ds_rows=ds_rows,
                                   ds_stats=ds_stats, metric_cols=metric_cols, prefix=name,
                                   reference=sidecar_reference(reference))
    figures, fig_paths = writers.make_figures(
        root, within=within, ds_units=ds_units, metrics=tested, conditions=conds,
        geometry=geometry, datasets=list(datasets), seed=seed, error_bars=error_bars,
        size_bins_ml=size_bins_ml, resolution_metric=RESOLUTION_METRIC, primary=primary,
        bland_altman=bland_altman, phrases=phrases, prefix=name,
        reference_name=words.reference_name)
    outputs += fig_paths

    source = seg if seg is not None else ds_rows
    sizes = study.sample_sizes(source)
    own_label = next((label for label, folder in datasets.items()
                      if Path(folder).resolve() == Path(out_dir).resolve()), None)
    findings = _findings(within=within, ds_stats=ds_stats, conds=conds, phrases=phrases,
                         alpha=alpha, unit=unit, primary=primary, tested=tested, seg=seg,
                         ds_rows=ds_rows, own_label=own_label, reference=reference)
    versions = study.versions()
    models = (segmentation_models(out_dir, participant_label, states=states)
              if seg is not None else [])
    warned = (run_warnings(states, participant_label)
              if seg is not None and states is not None else {})
    cautions = [f"Participant level ({n} image(s)): {w}." for w, n in warned.items()]
    if left_out:
        cautions.append(f"{left_out}.")
    if (any(m.startswith(BUNDLED_MODEL_LABEL) for m in models)
            and DEMO_MODEL_WARNING not in warned):
        cautions.append("Predictions of the bundled demo model, trained on synthetic phantoms: "
                        "its numbers describe bids_stroke's demo data only, never real lesions "
                        "(run the participant level with --model for a real study).")
    methods = methods_document(_methods_input(
        out_dir=out_dir, states=states, participant_label=participant_label, sizes=sizes,
        conds=conds, specs=specs, descriptions=descriptions, tested=tested, primary=primary,
        margins=margins, alpha=alpha, n_boot=n_boot, seed=seed, unit=unit,
        zero_method=zero_method, digits_rank=digits_rank, size_bins_ml=size_bins_ml,
        versions=versions, bland_altman=bland_altman, models=models, within=within,
        datasets=datasets, ds_stats=ds_stats, seg=seg, reference=reference))
    outputs.append(atomic_write_text(root / f"{name}_methods.md", to_markdown(methods)))
    outputs.append(atomic_write_text(root / f"{name}_methods.html", to_html(methods)))
    report = root / f"{name}_report.html"
    people = _participants(out_dir, within, tested, conds, states, participant_label)
    if people:
        from bids_stroke.group.participants import OUTLIER_DICTIONARY

        outputs.append(writers.write_table(people["outliers"],
                                           root / f"{name}_desc-outliers_segmetrics.tsv",
                                           OUTLIER_DICTIONARY, sidecar_reference(reference)))
    template = ""
    if seg is not None and states is not None:
        from bids_stroke.templates.standin import describe_source

        sources = template_sources(out_dir, states, participant_label)
        template = "; ".join(describe_source(TEMPLATE, src)
                             + (f" ({n} of {sum(sources.values())} images)"
                                if len(sources) > 1 else "") for src, n in sources.items())
    settings = {
        "reference": (reference.reference_words if not reference.is_prediction else
                      f"{reference.reference_words} (condition {reference.condition})"),
        "output_dir": str(out_dir), "metrics": ", ".join(metrics), "primary": primary,
        "margins": ", ".join(f"{k}={v:g}" for k, v in margins.items()), "alpha": alpha,
        "n_boot": n_boot, "seed": seed, "zero_method": zero_method,
        "digits_rank": "exact" if digits_rank is None else digits_rank, "unit": unit,
        "compare": ", ".join(f"{k}={v}" for k, v in datasets.items()) or "none",
        "size_bins_ml": ", ".join(f"{e:g}" for e in size_bins_ml), "error_bars": error_bars,
        "bland_altman": bland_altman,
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
        lesionsize=within.get("lesionsize") if within is not None else None,
        outputs=[*(p.relative_to(root).as_posix() for p in outputs), report.name],
        settings=settings, warnings=cautions, equivalence=shown("equivalence"),
        primary=primary, phrases=phrases, title=words.title, reference=words.paragraphs,
        **people, template=template, citation=citation_lines())
    atomic_write_text(report, render_report(parts))
    return report


def _methods_input(*, out_dir, states, participant_label, sizes, conds, specs, descriptions,
                   tested, primary, margins, alpha, n_boot, seed, unit, zero_method,
                   digits_rank, size_bins_ml, versions, bland_altman, models, within,
                   datasets, ds_stats, seg, reference: Reference = MASK) -> MethodsInput:
    """Everything the methods text describes, from this run."""
    configs = (participant_settings(out_dir, states, participant_label)
               if seg is not None and states is not None else [])
    details = (model_details(out_dir, states, participant_label)
               if seg is not None and states is not None else {})
    kinds = sorted({str(d.get("kind")) for d in details.values() if d.get("kind")})
    specs_ = [d.get("spec") or d.get("model_spec") for d in details.values()]
    spaces = {str(sp.get("space", "")) for sp in specs_ if isinstance(sp, dict)}
    thresholds = sorted({float(d["threshold"]) for d in details.values()
                         if isinstance(d.get("threshold"), int | float)})
    wil = within["wilcoxon"] if within is not None else None
    eq = within["equivalence"] if within is not None else None
    return MethodsInput(
        n_participants=sizes["participants"], n_sessions=sizes["sessions"],
        n_images=sizes["images"], conditions=conds, specs=specs, descriptions=descriptions,
        metrics=tested, primary=primary, margins={m: margins[m] for m in tested
                                                  if m in margins},
        alpha=alpha, n_boot=n_boot, seed=seed, unit=unit, zero_method=zero_method,
        digits_rank=digits_rank, size_bins_ml=size_bins_ml,
        versions=versions, pipeline_versions=study.pipeline_versions(),
        bland_altman=bland_altman,
        participant=configs, models=models, model_kinds=kinds, thresholds=thresholds,
        native_space=spaces == {"native"}, paired=within is not None,
        wilcoxon_methods=(wil["method"].value_counts(sort=False).to_dict()
                          if wil is not None else {}),
        n_primary_comparisons=(int(eq.loc[eq["metric"] == primary, "family_size"].max())
                               if eq is not None and (eq["metric"] == primary).any() else 0),
        datasets=list(datasets),
        dataset_pairs=([f"{r.dataset_a} {r.desc_a} vs {r.dataset_b} {r.desc_b}"
                        for r in ds_stats[ds_stats["metric"] == primary].itertuples()]
                       if ds_stats is not None else []),
        bm_methods=(ds_stats["bm_method"].str.replace(r" \(.*", "", regex=True)
                    .value_counts(sort=False).to_dict() if ds_stats is not None else {}),
        lesion_detection=within is not None and within.get("detection") is not None,
        reference=reference, date=time.strftime("%Y-%m-%d"))
