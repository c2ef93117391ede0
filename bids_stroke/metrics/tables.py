"""Per-subject metric tables (BIDS TSV + JSON data dictionaries), pure (no nipype).

:func:`score_conditions` loads a reference mask and one predicted mask per condition, runs
:func:`~bids_stroke.metrics.compute_metrics` / :func:`~bids_stroke.metrics.lesion_table` for
every condition and writes

* ``<prefix>_label-L_segmetrics.tsv`` (+ ``.json``): one row per condition, columns
  :data:`SEGMETRICS_ID_COLUMNS` + :data:`~bids_stroke.metrics.METRIC_COLUMNS`;
* ``<prefix>_label-L_lesions.tsv`` (+ ``.json``): one row per (condition, reference
  lesion), columns :data:`LESIONS_COLUMNS`.

The reference is a lesion mask, or the prediction of one condition (``reference_label``:
agreement with the model's own prediction, :mod:`bids_stroke.metrics.reference`); the sidecars
record it as ``Reference``. It is the one implementation behind the participant level's
:class:`~bids_stroke.interfaces.metrics.SegmentationMetrics` node and ``bids_stroke score``
(predictions of other tools), so both write identical tables from identical masks. Cells are
formatted by :func:`bids_stroke.tables.format_tsv_cell` and every file is written through
:func:`bids_stroke.atomic.atomic_write_text`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bids_stroke.core.atomic import atomic_write_text
from bids_stroke.core.digest import file_sha256
from bids_stroke.metrics import (
    GRID_COLUMNS,
    METRIC_COLUMNS,
    METRIC_DESCRIPTIONS,
    as_binary_mask,
    check_same_grid,
    compute_metrics,
    grid_note,
    lesion_table,
    load_mask_image,
    parse_grid,
    spacing_from_affine,
)
from bids_stroke.metrics.reference import Reference, nifti_sha256
from bids_stroke.outputs.tsv import tsv_text

__all__ = [
    "LESIONS_COLUMNS",
    "SEGMETRICS_COLUMNS",
    "SEGMETRICS_ID_COLUMNS",
    "MetricTables",
    "lesions_sidecar",
    "score_conditions",
    "segmetrics_sidecar",
]

SEGMETRICS_ID_COLUMNS: tuple[str, ...] = (
    "participant_id",
    "session_id",
    "desc",
    "condition",
    "effective_resolution_mm",
)
SEGMETRICS_COLUMNS: tuple[str, ...] = SEGMETRICS_ID_COLUMNS + tuple(METRIC_COLUMNS)
LESIONS_COLUMNS: tuple[str, ...] = (
    "participant_id",
    "session_id",
    "desc",
    "condition",
    "lesion_id",
    "volume_ml",
    "volume_voxels",
    "detected",
    "overlap_fraction",
)

_ID_DESCRIPTIONS: dict[str, dict[str, Any]] = {
    "participant_id": {"LongName": "Participant identifier",
                       "Description": "BIDS participant label with the sub- prefix."},
    "session_id": {"LongName": "Session identifier",
                   "Description": "BIDS session label with the ses- prefix; n/a when the "
                                  "dataset has no sessions."},
    "desc": {"LongName": "Condition label",
             "Description": "BIDS desc entity of the resolution condition (e.g. native, "
                            "crude2, thick5mm)."},
    "condition": {"LongName": "Condition specification",
                  "Description": "Canonical resolution-condition spec (e.g. crude:2, "
                                 "thick:5:gap=1)."},
    "effective_resolution_mm": {"LongName": "Effective resolution",
                                "Description": "Cube root of the effective voxel volume of "
                                               "the condition.",
                                "Units": "mm"},
}

_LESION_DESCRIPTIONS: dict[str, dict[str, Any]] = {
    "lesion_id": {"LongName": "Reference lesion index",
                  "Description": "1-based index of the connected component of the reference "
                                 "mask (scipy.ndimage.label raster order)."},
    "volume_ml": {"LongName": "Reference lesion volume",
                  "Description": "Voxel count of the reference lesion times the voxel "
                                 "volume.", "Units": "ml"},
    "volume_voxels": {"LongName": "Reference lesion size",
                      "Description": "Number of voxels of the reference lesion.",
                      "Units": "voxels"},
    "detected": {"LongName": "Lesion detected",
                 "Description": "Whether at least one voxel of the reference lesion is "
                                "predicted (ISLES'22 lesion-wise true positive).",
                 "Levels": {"true": "detected", "false": "missed"}},
    "overlap_fraction": {"LongName": "Overlap fraction",
                         "Description": "Fraction of the reference lesion's voxels that are "
                                        "predicted lesion."},
}


def _with_settings(entry: dict[str, Any], note: str) -> dict[str, Any]:
    new = dict(entry)
    new["Description"] = f"{entry['Description']} {note}"
    return new


def segmetrics_sidecar(connectivity: int, tolerance_mm: float, grid: str) -> dict[str, Any]:
    """BIDS data dictionary for every column of the ``segmetrics`` TSV."""
    out = {c: dict(_ID_DESCRIPTIONS[c]) for c in SEGMETRICS_ID_COLUMNS}
    conn_note = f"Lesions are {connectivity}-connected components."
    note = grid_note(grid)
    for col in METRIC_COLUMNS:
        entry = METRIC_DESCRIPTIONS[col]
        if col == "surface_dice":
            entry = _with_settings(entry, f"Tolerance used: {tolerance_mm:g} mm.")
        elif col in GRID_COLUMNS:
            entry = _with_settings(entry, note)
        elif col.startswith(("ref_lesion", "pred_lesion", "abs_lesion", "lesion_")) or (
                col == "detection_rate"):
            entry = _with_settings(entry, conn_note)
        out[col] = dict(entry)
    return out


def lesions_sidecar(connectivity: int) -> dict[str, Any]:
    """BIDS data dictionary for every column of the ``lesions`` TSV."""
    out = {c: dict(_ID_DESCRIPTIONS[c]) for c in LESIONS_COLUMNS[:4]}
    for col in LESIONS_COLUMNS[4:]:
        out[col] = dict(_LESION_DESCRIPTIONS[col])
    out["lesion_id"] = _with_settings(
        out["lesion_id"], f"Lesions are {connectivity}-connected components.")
    return out


def _write_json(data: dict[str, Any], path: Path) -> Path:
    """JSON in the dictionary's own (column) order, written atomically."""
    return atomic_write_text(path, json.dumps(data, indent=2) + "\n")


@dataclass(frozen=True)
class MetricTables:
    """The four files :func:`score_conditions` writes."""

    tsv: Path
    json: Path
    lesions_tsv: Path
    lesions_json: Path


def _reference_record(reference: Mapping[str, Any] | None, ref_path: str,
                      prediction: Reference | None) -> dict[str, Any] | None:
    """The sidecars' ``Reference`` object: what was given, with the reference's ``SHA256``
    (a mask: of its file; a prediction: of its NIfTI bytes, decompressed when gzipped)."""
    if reference is None and prediction is None:
        return None
    record = dict(reference or {})
    if prediction is not None:
        record = {**prediction.record(), **{k: v for k, v in record.items()
                                            if k not in ("kind", "condition")}}
        record.setdefault("SHA256", nifti_sha256(ref_path))
    else:
        record.setdefault("kind", "mask")
        record.setdefault("SHA256", file_sha256(ref_path))
    return record


def score_conditions(
    reference_mask: str | os.PathLike[str] | None,
    prediction_masks: Sequence[str | os.PathLike[str]],
    labels: Sequence[str],
    specs: Sequence[str],
    effective_resolutions: Sequence[float],
    *,
    participant_id: str,
    out_dir: str | os.PathLike[str],
    session_id: str = "n/a",
    prefix: str | None = None,
    connectivity: int,
    tolerance_mm: float,
    grid: str,
    threshold: float | None = None,
    reference_label: str | None = None,
    reference: Mapping[str, Any] | None = None,
) -> MetricTables:
    """Score each condition's prediction against the reference and write the tables.

    The reference is ``reference_mask`` (a lesion mask), or with ``reference_label`` the
    prediction of that condition (``reference_mask`` must then be ``None``): every *other*
    condition is scored against it with the same code on the same grid (agreement), the
    reference condition itself gets no row, and the tables are named
    ``<prefix>_label-L_desc-ref<label>prediction_...``. ``reference`` (e.g. ``{"kind":
    "mask", "File": ...}``) is recorded as the sidecars' ``Reference`` object, completed with
    the reference's ``SHA256`` (see :func:`_reference_record`); without it and without
    ``reference_label`` the sidecars carry no ``Reference``.

    Every prediction must lie on the reference grid (same shape, affine within 1e-3);
    otherwise :class:`~bids_stroke.metrics.MetricsInputError` names both files and the fix.
    Masks must be binary unless ``threshold`` is given (foreground = value >= threshold).
    ``grid`` is the grid over which true negatives are counted (``native`` or
    ``padded:<multiple>``). Files are written to ``out_dir`` as
    ``<prefix>_label-L_segmetrics.{tsv,json}`` and ``<prefix>_label-L_lesions.{tsv,json}``
    (``prefix`` defaults to ``participant_id[_session_id]``).
    """
    preds = [str(p) for p in prediction_masks]
    labels, specs = list(labels), list(specs)
    resolutions = [float(r) for r in effective_resolutions]
    n = len(preds)
    if n == 0 or not (len(labels) == len(specs) == len(resolutions) == n):
        raise ValueError(
            "prediction_masks, condition_labels, condition_specs and "
            f"effective_resolutions must be non-empty and equally long, got {n}, "
            f"{len(labels)}, {len(specs)}, {len(resolutions)}"
        )
    if len(set(labels)) != n:
        raise ValueError(f"duplicate condition labels: {labels}")
    parse_grid(grid)  # fail before any work on a bad spec
    session = session_id or "n/a"
    if not prefix:
        prefix = participant_id + ("" if session == "n/a" else f"_{session}")
    prediction = None
    if reference_label is not None:
        if reference_mask is not None:
            raise ValueError("give reference_mask or reference_label, not both")
        if reference_label not in labels or n < 2:
            raise ValueError(f"reference condition {reference_label!r} must be one of at least "
                             f"two conditions, got {labels}")
        k = labels.index(reference_label)
        prediction = Reference.prediction(specs[k])
        reference_mask = preds[k]
        keep = [i for i in range(n) if i != k]
        preds, labels = [preds[i] for i in keep], [labels[i] for i in keep]
        specs, resolutions = [specs[i] for i in keep], [resolutions[i] for i in keep]
    elif reference_mask is None:
        raise ValueError("give the reference_mask (or the reference_label of a prediction)")
    record = _reference_record(reference, str(reference_mask), prediction)

    ref_img, ref_data = load_mask_image(reference_mask)
    what = f"reference prediction ({reference_label})" if prediction else "reference"
    ref = as_binary_mask(ref_data, threshold, name=f"{what} {Path(reference_mask).name}")
    spacing = spacing_from_affine(ref_img.affine)

    metric_rows: list[dict[str, Any]] = []
    lesion_rows: list[dict[str, Any]] = []
    for pred_path, label, spec, res in zip(preds, labels, specs, resolutions, strict=True):
        pred_img, pred_data = load_mask_image(pred_path)
        check_same_grid(reference_mask, ref_data.shape, ref_img.affine,
                        pred_path, pred_data.shape, pred_img.affine)
        pred = as_binary_mask(pred_data, threshold, name=f"prediction {Path(pred_path).name}")
        ids = {"participant_id": participant_id, "session_id": session,
               "desc": label, "condition": spec}
        metrics = compute_metrics(ref, pred, spacing, connectivity=connectivity,
                                  tolerance_mm=tolerance_mm, grid=grid)
        metric_rows.append({**ids, "effective_resolution_mm": res, **metrics})
        for lesion in lesion_table(ref, pred, spacing, connectivity=connectivity):
            lesion_rows.append({**ids, **lesion})

    out = Path(out_dir)
    base = f"{prefix}_label-L" + (f"_desc-{prediction.desc}" if prediction else "")
    extra = {"Reference": record} if record is not None else {}
    return MetricTables(
        tsv=atomic_write_text(out / f"{base}_segmetrics.tsv",
                              tsv_text(metric_rows, SEGMETRICS_COLUMNS)),
        json=_write_json({**segmetrics_sidecar(connectivity, tolerance_mm, grid), **extra},
                         out / f"{base}_segmetrics.json"),
        lesions_tsv=atomic_write_text(out / f"{base}_lesions.tsv",
                                      tsv_text(lesion_rows, LESIONS_COLUMNS)),
        lesions_json=_write_json({**lesions_sidecar(connectivity), **extra},
                                 out / f"{base}_lesions.json"),
    )
