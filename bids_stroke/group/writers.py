"""Writing the group level's TSV tables (with JSON data dictionaries) and figures.

Every file goes through the one atomic writer of :mod:`bids_stroke.outputs`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from bids_stroke.group.dictionary import COLUMN_DICTIONARY, metric_descriptions
from bids_stroke.group.resolution import ConditionGeometry
from bids_stroke.outputs import atomic_write_bytes, atomic_write_text

__all__ = ["atomic_write_text", "make_figures", "write_table", "write_tables"]

_ROW_COLUMNS = ["dataset", "participant_id", "session_id", "image_id", "desc", "condition",
                "effective_resolution_mm"]


def write_table(df: pd.DataFrame, path: Path, sidecar: Mapping[str, Any]) -> Path:
    """``df`` as a BIDS TSV (``n/a`` for missing) and its JSON data dictionary."""
    atomic_write_text(path, df.to_csv(sep="\t", index=False, na_rep="n/a",
                                      lineterminator="\n"))
    side = {c: sidecar.get(c, COLUMN_DICTIONARY.get(c, {"Description": c})) for c in df.columns}
    atomic_write_text(path.with_suffix(".json"), json.dumps(side, indent=2) + "\n")
    return path


def _rows(table: pd.DataFrame, metric_cols: Sequence[str]) -> pd.DataFrame:
    return table[[c for c in (*_ROW_COLUMNS, *metric_cols) if c in table.columns]]


def write_tables(
    root: Path, *, seg: pd.DataFrame | None, within: Mapping[str, pd.DataFrame | None] | None,
    ds_rows: pd.DataFrame | None, ds_stats: pd.DataFrame | None, metric_cols: Sequence[str],
) -> list[Path]:
    """Write every group TSV that has content; return their paths."""
    source = seg if seg is not None else ds_rows
    side_file = source.attrs.get("sidecar") if source is not None else None
    mdesc = metric_descriptions(metric_cols, Path(side_file) if side_file else None)
    metric_side = {**mdesc, "metric": {**COLUMN_DICTIONARY["metric"],
                                       "Levels": {m: mdesc[m].get("Description", m)
                                                  for m in metric_cols}}}
    out: list[Path] = []
    if seg is not None and within is not None:
        out.append(write_table(_rows(seg, metric_cols), root / "group_segmetrics.tsv",
                               metric_side))
        for name, key in (("desc-summary_segmetrics", "summary"),
                          ("desc-means_segmetrics", "means"),
                          ("desc-sizebins_segmetrics", "sizebins"),
                          ("desc-wilcoxon_stats", "wilcoxon"),
                          ("desc-friedman_stats", "friedman"),
                          ("desc-lesiondetection_segmetrics", "detection")):
            table = within.get(key)
            if table is not None:
                side = metric_side if key != "means" else {
                    **metric_side, "ci_low": COLUMN_DICTIONARY["mean_ci_low"],
                    "ci_high": COLUMN_DICTIONARY["mean_ci_high"]}
                if key == "detection":
                    side = {}
                out.append(write_table(table, root / f"group_{name}.tsv", side))
    if ds_rows is not None:
        out.append(write_table(_rows(ds_rows, metric_cols),
                               root / "group_desc-datasets_segmetrics.tsv", metric_side))
    if ds_stats is not None:
        out.append(write_table(ds_stats, root / "group_desc-datasets_stats.tsv", metric_side))
    return out


def make_figures(
    root: Path, *, within: Mapping[str, pd.DataFrame | None] | None,
    ds_units: pd.DataFrame | None, metrics: Sequence[str], conditions: Sequence[str],
    geometry: Mapping[str, ConditionGeometry], datasets: Sequence[str], seed: int,
    error_bars: str, size_bins_ml: Sequence[float], resolution_metric: str,
) -> tuple[list[tuple[str, str, bytes]], list[Path]]:
    """Render the figures that apply (matplotlib is imported only here); write the PNGs."""
    from bids_stroke.group import plots
    from bids_stroke.group.describe import size_bin_labels
    from bids_stroke.reports.html import fig_to_png

    specs = []
    if within is not None:
        units, means = within["units"], within["means"]
        shown = (means[means["stratum"] == "all"] if error_bars == "ci95" else within["summary"])
        specs += [
            ("distributions", "Distribution and mean per condition",
             lambda: plots.plot_metric_distributions(units, metrics, conditions, seed=seed,
                                                     means=shown, error=error_bars)),
            ("paired", "Paired values per unit",
             lambda: plots.plot_paired_lines(units, metrics, conditions, seed=seed)),
            ("bland-altman", "Bland-Altman of predicted vs reference lesion volume",
             lambda: plots.plot_bland_altman(units, conditions, seed=seed)),
        ]
        if geometry and resolution_metric in set(means["metric"]):
            strata = ["all", *size_bin_labels(size_bins_ml)]
            specs.insert(2, (
                f"{resolution_metric}-vs-resolution",
                f"{resolution_metric} against the real resolution (slice and in-plane spacing)",
                lambda: plots.plot_metric_vs_resolution(
                    means, conditions, geometry, metric=resolution_metric,
                    strata=[s for s in strata if s in set(means["stratum"])])))
    if ds_units is not None:
        ds_conds = [c for c in conditions if c in set(ds_units["desc"])]
        specs.append(("datasets", "Datasets compared per condition",
                      lambda: plots.plot_dataset_comparison(ds_units, metrics, ds_conds,
                                                            datasets)))
    figures, paths = [], []
    for name, title, make in specs:
        png = fig_to_png(make())
        path = atomic_write_bytes(root / "figures" / f"group_{name}.png", png)
        paths.append(path)
        figures.append((path.name, title, png))
    return figures, paths
