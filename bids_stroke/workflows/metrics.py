"""Score every condition's prediction against the native-grid reference (mask or prediction)."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_stroke.core.settings import MetricsSettings


def init_metrics_wf(
    *,
    participant_id: str,
    session_id: str,
    prefix: str,
    metrics: MetricsSettings,
    mem_gb: float = 2.0,
    reference_label: str | None = None,
    reference: dict | None = None,
    name: str = "metrics_wf",
) -> pe.Workflow:
    """One long-format TSV per subject (one row per condition) and a per-lesion TSV.

    Inputs: ``reference_mask``, ``masks``, ``labels``, ``specs``, ``effective_resolutions``
    (lists in condition order). Outputs: ``tsv``, ``json``, ``lesions_tsv``, ``lesions_json``.
    With ``reference_label`` the prediction of that condition is the reference (no
    ``reference_mask``); ``reference`` is recorded in the sidecars.
    """
    from bids_stroke.interfaces.metrics import SegmentationMetrics

    wf = pe.Workflow(name=name)
    inputnode = pe.Node(
        niu.IdentityInterface(
            fields=["reference_mask", "masks", "labels", "specs", "effective_resolutions"]
        ),
        name="inputnode",
    )
    outputnode = pe.Node(
        niu.IdentityInterface(fields=["tsv", "json", "lesions_tsv", "lesions_json"]),
        name="outputnode",
    )
    measure = pe.Node(
        SegmentationMetrics(
            participant_id=participant_id,
            session_id=session_id,
            prefix=prefix,
            connectivity=metrics.connectivity,
            tolerance_mm=metrics.tolerance_mm,
            grid=metrics.grid,
        ),
        name="measure",
        mem_gb=mem_gb,
    )
    if reference is not None:
        measure.inputs.reference = dict(reference)
    if reference_label is not None:
        measure.inputs.reference_label = reference_label
    else:
        wf.connect(inputnode, "reference_mask", measure, "reference_mask")
    wf.connect([
        (inputnode, measure, [("masks", "prediction_masks"),
                              ("labels", "condition_labels"),
                              ("specs", "condition_specs"),
                              ("effective_resolutions", "effective_resolutions")]),
        (measure, outputnode, [("out_tsv", "tsv"), ("out_json", "json"),
                               ("out_lesions_tsv", "lesions_tsv"),
                               ("out_lesions_json", "lesions_json")]),
    ])
    return wf
