"""Who is in the group analysis, where their subject reports are, and who stands out.

Pure functions (data frames and manifests in, data frames out) behind the group report's
"Participants" section: one row per statistical unit with its subject report(s) and its
values, and the units whose *paired change* from the reference condition is an outlier by
Tukey's rule - below Q1 - 1.5 IQR or above Q3 + 1.5 IQR of that change across the units, per
metric and condition (quartiles by linear interpolation, as in the summary tables). A unit
at Dice 0.0 under a condition where the others lose 0.05 is named, with its values, so it
can be traced to its images.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bids_stroke.group.describe import to_wide

if TYPE_CHECKING:
    from bids_stroke.outputs.commit import Manifest

__all__ = ["FENCE_K", "MIN_UNITS", "OUTLIER_DICTIONARY", "paired_outliers", "participant_table",
           "subject_reports"]

#: Tukey's fence multiplier
FENCE_K = 1.5
#: fewest units with a paired change for quartiles (and so fences) to mean anything
MIN_UNITS = 4


def subject_reports(manifests: Iterable[Manifest]) -> dict[str, list[str]]:
    """``{image key: [report path relative to OUT, ...]}`` from the committed manifests.

    Reports are the HTML files a manifest lists at the top of OUT (``sub-X_ses-Y.html``), so
    the links of the group report (``OUT/group_report.html``) resolve inside OUT.
    """
    out: dict[str, list[str]] = {}
    for manifest in manifests:
        pages = sorted(rel for rel in manifest.files
                       if rel.endswith(".html") and len(PurePosixPath(rel).parts) == 1)
        if pages:
            out[str(manifest.key)] = pages
    return out


def _unit_reports(participant: str, image: str,
                  reports: Mapping[str, Sequence[str]]) -> list[str]:
    if image in reports:
        return list(reports[image])
    # a participant's images averaged into one unit: every one of its reports
    return [page for key, pages in sorted(reports.items())
            if key == participant or key.startswith(f"{participant}_") for page in pages]


def paired_outliers(units: pd.DataFrame, metrics: Sequence[str], conditions: Sequence[str],
                    *, k: float = FENCE_K) -> pd.DataFrame:
    """Units whose change from ``conditions[0]`` lies outside Tukey's fences, per metric and
    condition.

    Columns: ``participant_id, image_id, metric, condition_a, condition_b, value_a,
    value_b, change`` (``value_b - value_a``), ``q1, q3`` (of the change across the units
    with both values), ``fence`` (the fence crossed) and ``side`` (``below`` or ``above``).
    Metric/condition pairs with fewer than :data:`MIN_UNITS` changes are not screened. Rows
    come most extreme first: by how many IQRs (of that pair) the change lies beyond its fence.
    """
    columns = ["participant_id", "image_id", "metric", "condition_a", "condition_b",
               "value_a", "value_b", "change", "q1", "q3", "fence", "side"]
    rows: list[dict[str, Any]] = []
    if len(conditions) < 2 or units.empty:
        return pd.DataFrame(rows, columns=columns)
    ref = conditions[0]
    for metric in metrics:
        if metric not in units.columns:
            continue
        wide = to_wide(units, metric, conditions)
        ids = wide.index.to_frame(index=False)
        people = ids["participant_id"].astype(str).to_numpy()
        images = (ids["image_id"] if "image_id" in ids else ids["participant_id"]).astype(
            str).to_numpy()
        for cond in conditions[1:]:
            a, b = wide[ref].to_numpy(float), wide[cond].to_numpy(float)
            change = b - a
            ok = np.isfinite(change)
            if ok.sum() < MIN_UNITS:
                continue
            q1, q3 = np.percentile(change[ok], [25, 75])
            low, high = q1 - k * (q3 - q1), q3 + k * (q3 - q1)
            for i in np.flatnonzero(ok & ((change < low) | (change > high))):
                rows.append({
                    "participant_id": people[i], "image_id": images[i], "metric": metric,
                    "condition_a": ref, "condition_b": cond,
                    "value_a": a[i], "value_b": b[i], "change": change[i], "q1": q1, "q3": q3,
                    "fence": low if change[i] < low else high,
                    "side": "below" if change[i] < low else "above"})
    out = pd.DataFrame(rows, columns=columns)
    if len(out):
        iqr = (out["q3"] - out["q1"]).where(lambda v: v > 0)
        beyond = (out["change"] - out["fence"]).abs() / iqr
        out = out.iloc[np.argsort(-beyond.fillna(np.inf).to_numpy(), kind="stable")]
    return out.reset_index(drop=True)


#: the outlier table's data dictionary (group_desc-outliers_segmetrics.json)
OUTLIER_DICTIONARY = {
    "participant_id": {"Description": "participant of the unit"},
    "image_id": {"Description": "the statistical unit: an image (sub-X_ses-Y...) or, when a "
                                "participant's images are averaged, the participant"},
    "metric": {"Description": "metric whose paired change is an outlier"},
    "condition_a": {"Description": "reference condition (desc- label)"},
    "condition_b": {"Description": "compared condition (desc- label)"},
    "value_a": {"Description": "the unit's value under condition_a"},
    "value_b": {"Description": "the unit's value under condition_b"},
    "change": {"Description": "value_b - value_a"},
    "q1": {"Description": "first quartile of the change across the units with both values "
                          "(linear interpolation)"},
    "q3": {"Description": "third quartile of the change across the units"},
    "fence": {"Description": "the Tukey fence crossed: q1 - 1.5 (q3 - q1) or q3 + 1.5 (q3 - "
                             "q1)"},
    "side": {"Description": "below the lower fence or above the upper one",
             "Levels": {"below": "change < q1 - 1.5 IQR", "above": "change > q3 + 1.5 IQR"}},
}


def participant_table(units: pd.DataFrame, conditions: Sequence[str], metric: str,
                      reports: Mapping[str, Sequence[str]],
                      outliers: pd.DataFrame | None = None
                      ) -> tuple[pd.DataFrame, list[str], dict[str, list[str]]]:
    """One row per unit: ``participant_id`` (and ``session_id`` for image units), ``images``
    (the number averaged), ``metric`` under each condition and ``outlier changes`` (how many
    of its paired changes are flagged); the unit of each row (its ``image_id``, as in
    :func:`paired_outliers`); and each unit's subject report paths (relative to OUT)."""
    wide = to_wide(units, metric, conditions)
    ids = wide.index.to_frame(index=False)
    n_images = (units.drop_duplicates([c for c in ("participant_id", "image_id")
                                       if c in units.columns])
                .set_index("image_id")["n_images"] if "n_images" in units.columns else None)
    flags: dict[str, int] = {}
    if outliers is not None and len(outliers):
        flags = outliers.groupby("image_id").size().to_dict()
    table = pd.DataFrame({"participant_id": ids["participant_id"].astype(str)})
    if "session_id" in ids and (ids["session_id"].astype(str) != "n/a").any():
        table["session_id"] = ids["session_id"].astype(str)
    image_ids = (ids["image_id"] if "image_id" in ids else ids["participant_id"]).astype(str)
    table["images"] = [int(n_images.get(i, 1)) if n_images is not None else 1
                       for i in image_ids]
    for cond in conditions:
        table[f"{metric} {cond}"] = wide[cond].to_numpy(float)
    table["outlier changes"] = [int(flags.get(i, 0)) for i in image_ids]
    links = {i: _unit_reports(p, i, reports)
             for p, i in zip(table["participant_id"], image_ids, strict=True)}
    return table, list(image_ids), links
