"""Writing the group level's TSV tables (with JSON data dictionaries) and figures.

Every file goes through the atomic writers of :mod:`bids_stroke.atomic`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from bids_stroke.core.atomic import atomic_write_bytes, atomic_write_text
from bids_stroke.core.settings import GroupSettings
from bids_stroke.group.dictionary import (
    COLUMN_DICTIONARY,
    DETECTION_DICTIONARY,
    EQUIVALENCE_DICTIONARY,
    LESION_SIZE_DICTIONARY,
    metric_descriptions,
)
from bids_stroke.group.resolution import ConditionGeometry

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["make_figures", "write_table", "write_tables"]

_ROW_COLUMNS = ["dataset", "participant_id", "session_id", "image_id", "desc", "condition",
                "effective_resolution_mm"]


def write_table(df: pd.DataFrame, path: Path, sidecar: Mapping[str, Any],
                reference: Mapping[str, Any] | None = None) -> Path:
    """``df`` as a BIDS TSV (``n/a`` for missing) and its JSON data dictionary (with a
    ``Reference`` entry when the values are not scored against lesion masks)."""
    atomic_write_text(path, df.to_csv(sep="\t", index=False, na_rep="n/a",
                                      lineterminator="\n"))
    side = {c: sidecar.get(c, COLUMN_DICTIONARY.get(c, {"Description": c})) for c in df.columns}
    if reference:
        side["Reference"] = dict(reference)
    atomic_write_text(path.with_suffix(".json"), json.dumps(side, indent=2) + "\n")
    return path


def _rows(table: pd.DataFrame, metric_cols: Sequence[str]) -> pd.DataFrame:
    return table[[c for c in (*_ROW_COLUMNS, *metric_cols) if c in table.columns]]


def write_tables(
    root: Path, *, seg: pd.DataFrame | None, within: Mapping[str, pd.DataFrame | None] | None,
    ds_rows: pd.DataFrame | None, ds_stats: pd.DataFrame | None, metric_cols: Sequence[str],
    prefix: str = "group", reference: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write every group TSV that has content; return their paths (``prefix``: ``group``, or
    the prefix of a set scored against another reference, whose sidecars then carry
    ``reference``)."""
    source = seg if seg is not None else ds_rows
    side_file = source.attrs.get("sidecar") if source is not None else None
    mdesc = metric_descriptions(metric_cols, Path(side_file) if side_file else None)
    metric_side = {**mdesc, "metric": {**COLUMN_DICTIONARY["metric"],
                                       "Levels": {m: mdesc[m].get("Description", m)
                                                  for m in metric_cols}}}
    out: list[Path] = []
    if seg is not None and within is not None:
        out.append(write_table(_rows(seg, metric_cols), root / f"{prefix}_segmetrics.tsv",
                               metric_side, reference))
        for name, key in (("desc-summary_segmetrics", "summary"),
                          ("desc-means_segmetrics", "means"),
                          ("desc-sizebins_segmetrics", "sizebins"),
                          ("desc-equivalence_stats", "equivalence"),
                          ("desc-wilcoxon_stats", "wilcoxon"),
                          ("desc-friedman_stats", "friedman"),
                          ("desc-lesionsize_stats", "lesionsize"),
                          ("desc-lesiondetection_segmetrics", "detection")):
            table = within.get(key)
            if table is not None:
                side: Mapping[str, object] = metric_side if key != "means" else {
                    **metric_side, "ci_low": COLUMN_DICTIONARY["mean_ci_low"],
                    "ci_high": COLUMN_DICTIONARY["mean_ci_high"]}
                if key == "detection":
                    side = DETECTION_DICTIONARY
                elif key == "equivalence":
                    side = {**metric_side, **EQUIVALENCE_DICTIONARY}
                elif key == "lesionsize":
                    side = {**metric_side, **LESION_SIZE_DICTIONARY}
                out.append(write_table(table, root / f"{prefix}_{name}.tsv", side, reference))
    if ds_rows is not None:
        out.append(write_table(_rows(ds_rows, metric_cols),
                               root / f"{prefix}_desc-datasets_segmetrics.tsv", metric_side,
                               reference))
    if ds_stats is not None:
        out.append(write_table(ds_stats, root / f"{prefix}_desc-datasets_stats.tsv",
                               metric_side, reference))
    return out


def make_figures(
    root: Path, *, within: Mapping[str, pd.DataFrame | None] | None,
    ds_units: pd.DataFrame | None, metrics: Sequence[str], conditions: Sequence[str],
    geometry: Mapping[str, ConditionGeometry], datasets: Sequence[str], seed: int,
    error_bars: str, size_bins_ml: Sequence[float], resolution_metric: str,
    primary: str | None = None, bland_altman: str = GroupSettings.bland_altman,
    phrases: Mapping[str, str] | None = None,
    prefix: str = "group", reference_name: str = "reference",
) -> tuple[list[tuple[str, str, bytes]], list[Path]]:
    """Render the figures that apply (matplotlib is imported only here); write the PNGs
    (``figures/<prefix>_<name>.png``; ``reference_name``: what the axes call the reference)."""
    from bids_stroke.group import plots
    from bids_stroke.group.describe import size_bin_labels
    from bids_stroke.reports.html import fig_to_png

    specs: list[tuple[str, str, Callable[[], Figure]]] = []
    if within is not None:
        units, means, summary = within["units"], within["means"], within["summary"]
        if units is None or means is None or summary is None:
            raise ValueError("the within-dataset tables lack units, means or summary")
        shown = means[means["stratum"] == "all"] if error_bars == "ci95" else summary
        equivalence = within.get("equivalence")
        if equivalence is not None and len(equivalence):
            specs.append(("equivalence", "Equivalence verdicts against the reference condition",
                          lambda: plots.plot_equivalence(equivalence, phrases)))
        specs += [
            ("distributions", "Distribution and mean per condition",
             lambda: plots.plot_metric_distributions(units, metrics, conditions, seed=seed,
                                                     means=shown, error=error_bars,
                                                     primary=primary)),
            ("paired", "Paired values per unit",
             lambda: plots.plot_paired_lines(units, metrics, conditions, seed=seed,
                                             primary=primary)),
            ("bland-altman", f"Bland-Altman of predicted vs {reference_name} lesion volume "
                             f"({'ratio, log scale' if bland_altman == 'log' else 'ml'})",
             lambda: plots.plot_bland_altman(units, conditions, seed=seed,
                                             scale=bland_altman,
                                             reference_name=reference_name)),
        ]
        if geometry and resolution_metric in set(means["metric"]):
            strata = ["all", *size_bin_labels(size_bins_ml)]
            specs.insert(len(specs) - 1, (
                f"{resolution_metric}-vs-resolution",
                f"{resolution_metric} against the real resolution (slice and in-plane spacing)",
                lambda: plots.plot_metric_vs_resolution(
                    means, conditions, geometry, metric=resolution_metric,
                    strata=[s for s in strata if s in set(means["stratum"])],
                    reference_name=reference_name)))
    if ds_units is not None:
        ds_conds = [c for c in conditions if c in set(ds_units["desc"])]
        specs.append(("datasets", "Datasets compared per condition",
                      lambda: plots.plot_dataset_comparison(ds_units, metrics, ds_conds,
                                                            datasets, primary=primary)))
    figures, paths = [], []
    for name, title, make in specs:
        png = fig_to_png(make())
        path = atomic_write_bytes(root / "figures" / f"{prefix}_{name}.png", png)
        paths.append(path)
        figures.append((path.name, title, png))
    return figures, paths
