"""Subject report and the all-or-nothing commit of a subject's results into the derivatives."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_stroke.core.settings import TEMPLATE, Settings

if TYPE_CHECKING:
    from bids_stroke.inputs.discovery import ImageInputs
    from bids_stroke.metrics.reference import Reference
    from bids_stroke.model.request import ModelRequest

INPUT_FIELDS = [
    "report_image", "preproc", "reference_mask", "labels", "specs", "descriptions", "params",
    "images", "degraded_masks", "probsegs", "masks", "native_masks", "forward_transforms",
    "inverse_transforms", "inverse_invert_flags", "metrics_tsv", "metrics_json", "lesions_tsv",
    "lesions_json", "model_checksum", "model_info", "template_info",
]


def _references(images):
    """The reference channel (first) of each condition's degraded channels."""
    return [files[0] for files in images]


def kept_metric_rows(settings: Settings, key: str) -> list[dict[str, str]]:
    """Rows of the subject's committed metrics table for conditions of earlier runs that
    this run keeps (not in its study, no ``--clean``): the report lists them too.

    Read while the subject is locked (the graph is built after the locks are taken).
    """
    from pathlib import Path

    from bids_stroke.outputs.commit import CommitError, read_manifest, read_table

    if settings.execution.clean:
        return []
    out = Path(settings.data.output_dir)
    try:
        previous = read_manifest(out, key)
    except CommitError:
        return []  # the commit step refuses it with its own message
    if previous is None:
        return []
    kept = set(previous.conditions) - {c.label for c in settings.study.conditions}
    rel = previous.tables.get("segmetrics")
    if not kept or rel is None or not (out / rel).is_file():
        return []
    return [row for row in read_table(out / rel)[1] if row.get("desc") in kept]


def init_outputs_wf(
    *,
    subject: ImageInputs,
    settings: Settings,
    model: ModelRequest,
    registered: bool,
    has_mask: bool,
    provenance: Mapping[str, Any],
    warnings: Sequence[str] = (),
    reference: Reference | None = None,
    fingerprint: str = "",
    name: str = "outputs_wf",
) -> pe.Workflow:
    """Build the subject's HTML report, then commit every derivative in one step.

    ``has_mask``: the lesion mask is the reference (shown in the report; its degraded copies
    may be written); ``reference``: what the metrics were scored against (``None``: not
    scored, e.g. a caller that only segments).

    The writer runs in the process holding the subject's lock (``run_without_submitting``)
    and always runs (``overwrite``), so a resumed run whose computations are cached commits.
    """
    from bids_stroke.interfaces.bids import WriteImageDerivatives
    from bids_stroke.interfaces.reports import SubjectReport
    from bids_stroke.outputs.plan import metrics_table_name

    if reference is None and has_mask:
        from bids_stroke.metrics.reference import Reference

        reference = Reference()
    ref_desc = reference.desc if reference is not None else None
    suffixes = [subject.suffix, *[c[0] for c in subject.channels]]
    resolution = model.resolution if registered and model.resolution not in (None, 1) else 0
    wf = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=INPUT_FIELDS), name="inputnode")
    report = pe.Node(
        SubjectReport(subject=subject.subject, session=subject.session or "",
                      suffix=subject.suffix, provenance=dict(provenance),
                      command_line=settings.execution.command,
                      earlier_metrics=kept_metric_rows(settings, subject.key),
                      warnings=list(warnings),
                      metrics_name=metrics_table_name(
                          subject.subject, subject.session, dict(subject.entities),
                          None if model.native else TEMPLATE, resolution or None, registered,
                          reference_desc=ref_desc),
                      reference_label=(reference.label if reference is not None
                                       and reference.is_prediction else ""),
                      reference_condition=(reference.condition if reference is not None
                                           and reference.is_prediction else ""),
                      scored=reference is not None),
        name="report", mem_gb=1.5,
    )
    if registered:  # registration check: the template's brain outline over the image
        from bids_stroke.templates import get_template

        tpl_res = model.resolution or 1
        report.inputs.template_file = str(get_template(settings.registration.template,
                                                       suffix="T1w", resolution=tpl_res))
        report.inputs.template_mask = str(get_template(settings.registration.template,
                                                       suffix="mask", desc="brain",
                                                       resolution=tpl_res))
    writer = pe.Node(
        WriteImageDerivatives(
            output_dir=str(settings.data.output_dir), bids_dir=str(settings.data.bids_dir),
            key=subject.key, subject=subject.subject, session=subject.session or "",
            entities=dict(subject.entities), suffix=subject.suffix,
            space="" if model.native else TEMPLATE, resolution=resolution,
            registered=registered, registration=settings.registration.kind,
            source_image=str(subject.image),
            source_mask=str(subject.mask) if subject.mask else "",
            channel_sources={subject.suffix: str(subject.image),
                             **{s: str(p) for s, p, _ in subject.channels}},
            image_suffixes=suffixes, threshold=model.threshold,
            results_key=settings.results_key(reference.kind if reference else "mask"),
            run_uuid=settings.execution.run_uuid,
            clean=settings.execution.clean, warnings=list(warnings),
            reference=reference.record() if reference is not None else {},
            reference_desc=ref_desc or "",
            probseg_encoding=settings.outputs.save_probseg, fingerprint=fingerprint,
        ),
        name="write_derivatives", overwrite=True, run_without_submitting=True,
    )
    wf.connect([
        (inputnode, report, [("report_image", "image"), ("labels", "labels"),
                             ("specs", "specs"),
                             ("descriptions", "descriptions"),
                             (("images", _references), "images"),
                             ("masks", "masks")]),
        (inputnode, writer, [("labels", "labels"), ("specs", "specs"),
                             ("descriptions", "descriptions"), ("params", "params"),
                             ("masks", "masks"),
                             ("model_checksum", "model_checksum"), ("model_info", "model_info")]),
        (report, writer, [("out_report", "report")]),
    ])
    if not model.native:
        wf.connect([(inputnode, writer, [("preproc", "preproc"),
                                         ("template_info", "template_info")])])
    if settings.outputs.save_degraded:
        wf.connect(inputnode, "images", writer, "images")
    if settings.outputs.save_probseg != "none":
        wf.connect(inputnode, "probsegs", writer, "probsegs")
    if reference is not None:
        wf.connect([
            (inputnode, report, [("metrics_tsv", "metrics_tsv")]),
            (inputnode, writer, [("metrics_tsv", "metrics_tsv"), ("metrics_json", "metrics_json"),
                                 ("lesions_tsv", "lesions_tsv"),
                                 ("lesions_json", "lesions_json")]),
        ])
    if has_mask:
        wf.connect(inputnode, "reference_mask", report, "reference_mask")
        if settings.outputs.save_degraded_masks:
            wf.connect(inputnode, "degraded_masks", writer, "degraded_masks")
    if registered:
        wf.connect([
            (inputnode, writer, [("native_masks", "native_masks"),
                                 ("forward_transforms", "forward_transforms"),
                                 ("inverse_transforms", "inverse_transforms"),
                                 ("inverse_invert_flags", "inverse_invert_flags")]),
        ])
    return wf
