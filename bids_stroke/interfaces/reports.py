"""Nipype wrapper of the per-subject HTML report."""

from __future__ import annotations

import os

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    InputMultiObject,
    TraitedSpec,
    isdefined,
    traits,
)

from bids_stroke.interfaces.checksums import ChecksummedInterface


class _SubjectReportInputSpec(BaseInterfaceInputSpec):
    subject = traits.Str(mandatory=True)
    session = traits.Str("", usedefault=True)
    t1w = File(exists=True, mandatory=True, desc="image in template space")
    reference_mask = File(exists=True, desc="reference lesion mask on the t1w grid")
    labels = InputMultiObject(traits.Str, mandatory=True)
    specs = InputMultiObject(traits.Str, mandatory=True)
    descriptions = InputMultiObject(traits.Str, mandatory=True)
    images = InputMultiObject(File(exists=True), mandatory=True)
    masks = InputMultiObject(File(exists=True), mandatory=True)
    probsegs = InputMultiObject(File(exists=True), mandatory=True)
    metrics_tsv = File(exists=True)
    provenance = traits.Dict(value={}, usedefault=True)


class _SubjectReportOutputSpec(TraitedSpec):
    out_report = File(exists=True)


class SubjectReport(ChecksummedInterface):
    """Self-contained HTML report: overlays per condition and the metrics table."""

    input_spec = _SubjectReportInputSpec
    output_spec = _SubjectReportOutputSpec

    def _run_interface(self, runtime):
        from bids_stroke.reports.subject import build_subject_report

        inp = self.inputs
        conditions = [
            {
                "label": label,
                "spec": spec,
                "description": desc,
                "image": image,
                "mask": mask,
                "probseg": prob,
            }
            for label, spec, desc, image, mask, prob in zip(
                inp.labels, inp.specs, inp.descriptions, inp.images, inp.masks, inp.probsegs,
                strict=True,
            )
        ]
        out = os.path.join(runtime.cwd, "report.html")
        build_subject_report(
            out,
            subject=inp.subject,
            session=inp.session or None,
            t1w=inp.t1w,
            reference_mask=inp.reference_mask if isdefined(inp.reference_mask) else None,
            conditions=conditions,
            metrics_tsv=inp.metrics_tsv if isdefined(inp.metrics_tsv) else None,
            provenance=dict(inp.provenance),
        )
        self._results["out_report"] = out
        return runtime
