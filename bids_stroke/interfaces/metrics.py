"""Nipype interface writing per-subject segmentation metrics tables (BIDS TSV + JSON).

The science lives in :mod:`bids_stroke.metrics`; this module loads the masks, runs
:func:`~bids_stroke.metrics.compute_metrics` / :func:`~bids_stroke.metrics.lesion_table`
for every condition and writes

* ``<prefix>_label-L_segmetrics.tsv`` (+ ``.json``): one row per condition, columns
  :data:`SEGMETRICS_ID_COLUMNS` + :data:`~bids_stroke.metrics.METRIC_COLUMNS`;
* ``<prefix>_label-L_lesions.tsv`` (+ ``.json``): one row per (condition, reference
  lesion), columns :data:`LESIONS_COLUMNS`.

Cells are formatted by :func:`bids_stroke.tables.format_tsv_cell` and every file is written
through the one atomic writer :func:`bids_stroke.outputs.atomic_write_text`.
"""

from __future__ import annotations

import json
from pathlib import Path

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    InputMultiObject,
    TraitedSpec,
    isdefined,
    traits,
)

from bids_stroke.interfaces.checksums import ChecksummedInterface
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
from bids_stroke.outputs import atomic_write_text
from bids_stroke.tables import tsv_text

__all__ = [
    "LESIONS_COLUMNS",
    "SEGMETRICS_COLUMNS",
    "SEGMETRICS_ID_COLUMNS",
    "SegmentationMetrics",
    "lesions_sidecar",
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

_ID_DESCRIPTIONS: dict[str, dict] = {
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

_LESION_DESCRIPTIONS: dict[str, dict] = {
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


def _with_settings(entry: dict, note: str) -> dict:
    new = dict(entry)
    new["Description"] = f"{entry['Description']} {note}"
    return new


def segmetrics_sidecar(connectivity: int = 26, tolerance_mm: float = 2.0,
                       grid: str = "native") -> dict:
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


def lesions_sidecar(connectivity: int = 26) -> dict:
    """BIDS data dictionary for every column of the ``lesions`` TSV."""
    out = {c: dict(_ID_DESCRIPTIONS[c]) for c in LESIONS_COLUMNS[:4]}
    for col in LESIONS_COLUMNS[4:]:
        out[col] = dict(_LESION_DESCRIPTIONS[col])
    out["lesion_id"] = _with_settings(
        out["lesion_id"], f"Lesions are {connectivity}-connected components.")
    return out


def _write_json(data: dict, path: Path) -> Path:
    """JSON in the dictionary's own (column) order, written atomically."""
    return atomic_write_text(path, json.dumps(data, indent=2) + "\n")


class _SegmentationMetricsInputSpec(BaseInterfaceInputSpec):
    reference_mask = File(exists=True, mandatory=True,
                          desc="reference (manual) lesion mask on the native grid")
    prediction_masks = InputMultiObject(File(exists=True), mandatory=True,
                                        desc="binary predicted masks, one per condition, on "
                                             "the reference grid")
    condition_labels = InputMultiObject(traits.Str, mandatory=True,
                                        desc="BIDS desc label of each condition")
    condition_specs = InputMultiObject(traits.Str, mandatory=True,
                                       desc="canonical spec of each condition")
    effective_resolutions = InputMultiObject(traits.Float, mandatory=True,
                                             desc="effective resolution (mm) per condition")
    participant_id = traits.Str(mandatory=True, desc="participant, e.g. sub-01")
    session_id = traits.Str("n/a", usedefault=True, desc="session, e.g. ses-01, or n/a")
    connectivity = traits.Enum(26, 18, 6, usedefault=True,
                               desc="lesion connectivity (26 as ISLES'22, 6 as ATLAS R2.0)")
    tolerance_mm = traits.Float(2.0, usedefault=True, desc="surface Dice tolerance (mm)")
    threshold = traits.Float(desc="binarise masks as value >= threshold (default: masks "
                                  "must already be binary)")
    grid = traits.Str("native", usedefault=True,
                      desc="grid over which true negatives are counted: 'native' or "
                           "'padded:<multiple>' (the original study: 'padded:16')")
    prefix = traits.Str(desc="BIDS filename prefix (default participant_id[_session_id])")


class _SegmentationMetricsOutputSpec(TraitedSpec):
    out_tsv = File(exists=True, desc="segmetrics TSV, one row per condition")
    out_json = File(exists=True, desc="data dictionary of out_tsv")
    out_lesions_tsv = File(exists=True, desc="per-reference-lesion TSV, per condition")
    out_lesions_json = File(exists=True, desc="data dictionary of out_lesions_tsv")


class SegmentationMetrics(ChecksummedInterface):
    """Compute segmentation metrics of each condition's prediction against the reference.

    Every prediction must lie on the reference grid (same shape, affine within 1e-3);
    otherwise :class:`~bids_stroke.metrics.MetricsInputError` names both files and the
    fix. Outputs are written to the node's working directory as
    ``<prefix>_label-L_segmetrics.{tsv,json}`` and ``<prefix>_label-L_lesions.{tsv,json}``.
    """

    input_spec = _SegmentationMetricsInputSpec
    output_spec = _SegmentationMetricsOutputSpec

    def _run_interface(self, runtime):  # type: ignore[no-untyped-def]
        inp = self.inputs
        preds = list(inp.prediction_masks)
        labels = list(inp.condition_labels)
        specs = list(inp.condition_specs)
        resolutions = [float(r) for r in inp.effective_resolutions]
        n = len(preds)
        if n == 0 or not (len(labels) == len(specs) == len(resolutions) == n):
            raise ValueError(
                "prediction_masks, condition_labels, condition_specs and "
                f"effective_resolutions must be non-empty and equally long, got {n}, "
                f"{len(labels)}, {len(specs)}, {len(resolutions)}"
            )
        if len(set(labels)) != n:
            raise ValueError(f"duplicate condition labels: {labels}")
        threshold = float(inp.threshold) if isdefined(inp.threshold) else None
        connectivity = int(inp.connectivity)
        tolerance = float(inp.tolerance_mm)
        grid = str(inp.grid)
        parse_grid(grid)  # fail before any work on a bad spec
        session = inp.session_id or "n/a"
        if isdefined(inp.prefix) and inp.prefix:
            prefix = inp.prefix
        else:
            prefix = inp.participant_id + ("" if session == "n/a" else f"_{session}")

        ref_path = inp.reference_mask
        ref_img, ref_data = load_mask_image(ref_path)
        ref = as_binary_mask(ref_data, threshold, name=f"reference {Path(ref_path).name}")
        spacing = spacing_from_affine(ref_img.affine)

        metric_rows: list[dict] = []
        lesion_rows: list[dict] = []
        for pred_path, label, spec, res in zip(preds, labels, specs, resolutions, strict=True):
            pred_img, pred_data = load_mask_image(pred_path)
            check_same_grid(ref_path, ref_data.shape, ref_img.affine,
                            pred_path, pred_data.shape, pred_img.affine)
            pred = as_binary_mask(pred_data, threshold,
                                  name=f"prediction {Path(pred_path).name}")
            ids = {"participant_id": inp.participant_id, "session_id": session,
                   "desc": label, "condition": spec}
            metrics = compute_metrics(ref, pred, spacing, connectivity=connectivity,
                                      tolerance_mm=tolerance, grid=grid)
            metric_rows.append({**ids, "effective_resolution_mm": res, **metrics})
            for lesion in lesion_table(ref, pred, spacing, connectivity=connectivity):
                lesion_rows.append({**ids, **lesion})

        cwd = Path(runtime.cwd)
        base = f"{prefix}_label-L"
        out_tsv = atomic_write_text(cwd / f"{base}_segmetrics.tsv",
                                    tsv_text(metric_rows, SEGMETRICS_COLUMNS))
        out_json = _write_json(segmetrics_sidecar(connectivity, tolerance, grid),
                               cwd / f"{base}_segmetrics.json")
        out_les = atomic_write_text(cwd / f"{base}_lesions.tsv",
                                    tsv_text(lesion_rows, LESIONS_COLUMNS))
        out_les_json = _write_json(lesions_sidecar(connectivity), cwd / f"{base}_lesions.json")
        self._results.update(out_tsv=str(out_tsv), out_json=str(out_json),
                             out_lesions_tsv=str(out_les), out_lesions_json=str(out_les_json))
        return runtime
