"""Subject report and the all-or-nothing copy of a subject's results into the derivatives."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

INPUT_FIELDS = [
    "source_image", "source_mask", "preproc", "reference_mask", "labels", "specs",
    "descriptions", "params", "degraded_images", "degraded_masks", "probsegs", "masks",
    "native_masks", "forward_transforms", "inverse_transforms", "metrics_tsv", "metrics_json",
    "lesions_tsv", "lesions_json", "model_checksum", "model_info", "template_info",
]


def init_outputs_wf(
    *,
    output_dir: str,
    bids_dir: str,
    subject: str,
    session: str | None,
    entities: dict,
    space_entities: dict,
    registered: bool,
    registration: str,
    suffix: str = "T1w",
    has_mask: bool,
    save_degraded: bool,
    save_degraded_masks: bool,
    threshold: float,
    provenance: dict,
    name: str = "outputs_wf",
) -> pe.Workflow:
    """Build the subject's HTML report, then write every derivative in one atomic step.

    The writer always runs (``overwrite=True``), so a resumed run whose computations are all
    cached still (re)writes its outputs.
    """
    from bids_stroke.interfaces.bids import WriteSubjectDerivatives
    from bids_stroke.interfaces.reports import SubjectReport

    wf = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=INPUT_FIELDS), name="inputnode")
    report = pe.Node(
        SubjectReport(subject=subject, session=session or "", provenance=provenance),
        name="report",
        mem_gb=1.5,
    )
    writer = pe.Node(
        WriteSubjectDerivatives(
            output_dir=output_dir,
            bids_dir=bids_dir,
            subject=subject,
            session=session or "",
            entities=entities,
            space_entities=space_entities,
            registered=registered,
            registration=registration,
            suffix=suffix,
            threshold=threshold,
            settings=provenance,
        ),
        name="write_derivatives",
        overwrite=True,
        run_without_submitting=True,
    )
    wf.connect([
        (inputnode, report, [("preproc", "t1w"), ("labels", "labels"), ("specs", "specs"),
                             ("descriptions", "descriptions"), ("degraded_images", "images"),
                             ("masks", "masks"), ("probsegs", "probsegs")]),
        (inputnode, writer, [("source_image", "source_image"), ("preproc", "preproc"),
                             ("labels", "labels"), ("specs", "specs"),
                             ("descriptions", "descriptions"), ("params", "params"),
                             ("probsegs", "probsegs"), ("masks", "masks"),
                             ("model_checksum", "model_checksum"), ("model_info", "model_info"),
                             ("template_info", "template_info")]),
        (report, writer, [("out_report", "report")]),
    ])
    if save_degraded:
        wf.connect(inputnode, "degraded_images", writer, "degraded_images")
    if has_mask:
        wf.connect([
            (inputnode, report, [("reference_mask", "reference_mask"),
                                 ("metrics_tsv", "metrics_tsv")]),
            (inputnode, writer, [("source_mask", "source_mask"),
                                 ("metrics_tsv", "metrics_tsv"), ("metrics_json", "metrics_json"),
                                 ("lesions_tsv", "lesions_tsv"),
                                 ("lesions_json", "lesions_json")]),
        ])
        if save_degraded_masks:
            wf.connect(inputnode, "degraded_masks", writer, "degraded_masks")
    if registered:
        wf.connect([
            (inputnode, writer, [("native_masks", "native_masks"),
                                 ("forward_transforms", "forward_transforms"),
                                 ("inverse_transforms", "inverse_transforms")]),
        ])
    return wf
