"""Nipype interface writing per-subject segmentation metrics tables (BIDS TSV + JSON).

A thin wrapper of :func:`bids_stroke.metrics.tables.score_conditions` (the science lives in
:mod:`bids_stroke.metrics`, the tables in :mod:`bids_stroke.metrics.tables`, whose names are
re-exported here).
"""

from __future__ import annotations

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
from bids_stroke.metrics.tables import (
    LESIONS_COLUMNS,
    SEGMETRICS_COLUMNS,
    SEGMETRICS_ID_COLUMNS,
    lesions_sidecar,
    score_conditions,
    segmetrics_sidecar,
)

__all__ = [
    "LESIONS_COLUMNS",
    "SEGMETRICS_COLUMNS",
    "SEGMETRICS_ID_COLUMNS",
    "SegmentationMetrics",
    "lesions_sidecar",
    "segmetrics_sidecar",
]


class _SegmentationMetricsInputSpec(BaseInterfaceInputSpec):
    reference_mask = File(exists=True, xor=["reference_label"],
                          desc="reference (manual) lesion mask on the native grid")
    reference_label = traits.Str(xor=["reference_mask"],
                                 desc="the condition whose prediction is the reference "
                                      "(agreement; that condition gets no row)")
    reference = traits.Dict(desc="the sidecars' Reference object (kind, condition, File...)")
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
    # science settings come from bids_stroke.core.settings.MetricsSettings: no defaults here
    connectivity = traits.Enum(26, 18, 6, mandatory=True,
                               desc="lesion connectivity (26 as ISLES'22, 6 as ATLAS R2.0)")
    tolerance_mm = traits.Float(mandatory=True, desc="surface Dice tolerance (mm)")
    threshold = traits.Float(desc="binarise masks as value >= threshold (default: masks "
                                  "must already be binary)")
    grid = traits.Str(mandatory=True,
                      desc="grid over which true negatives are counted: 'native' or "
                           "'padded:<multiple>' (the original study: 'padded:16')")
    prefix = traits.Str(desc="BIDS filename prefix (default participant_id[_session_id])")


class _SegmentationMetricsOutputSpec(TraitedSpec):
    out_tsv = File(exists=True, desc="segmetrics TSV, one row per condition")
    out_json = File(exists=True, desc="data dictionary of out_tsv")
    out_lesions_tsv = File(exists=True, desc="per-reference-lesion TSV, per condition")
    out_lesions_json = File(exists=True, desc="data dictionary of out_lesions_tsv")


class SegmentationMetrics(ChecksummedInterface):
    """Compute segmentation metrics of each condition's prediction against the reference (the
    lesion mask, or with ``reference_label`` that condition's prediction).

    Every prediction must lie on the reference grid (same shape, affine within 1e-3);
    otherwise :class:`~bids_stroke.metrics.MetricsInputError` names both files and the
    fix. Outputs are written to the node's working directory as
    ``<prefix>_label-L[_desc-ref<label>prediction]_segmetrics.{tsv,json}`` and ``..._lesions``.
    """

    input_spec = _SegmentationMetricsInputSpec
    output_spec = _SegmentationMetricsOutputSpec

    def _run_interface(self, runtime):
        inp = self.inputs
        label = inp.reference_label if isdefined(inp.reference_label) else None
        tables = score_conditions(
            None if label else inp.reference_mask, list(inp.prediction_masks),
            list(inp.condition_labels), list(inp.condition_specs),
            [float(r) for r in inp.effective_resolutions],
            participant_id=inp.participant_id, session_id=inp.session_id or "n/a",
            prefix=inp.prefix if isdefined(inp.prefix) and inp.prefix else None,
            connectivity=int(inp.connectivity), tolerance_mm=float(inp.tolerance_mm),
            threshold=float(inp.threshold) if isdefined(inp.threshold) else None,
            grid=str(inp.grid), out_dir=Path(runtime.cwd), reference_label=label,
            reference=dict(inp.reference) if isdefined(inp.reference) else None)
        self._results.update(out_tsv=str(tables.tsv), out_json=str(tables.json),
                             out_lesions_tsv=str(tables.lesions_tsv),
                             out_lesions_json=str(tables.lesions_json))
        return runtime
