"""Nipype wrapper of the per-subject HTML report (:mod:`bids_stroke.reports.subject`)."""

from __future__ import annotations

import os
from typing import Any

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
    image = File(exists=True, mandatory=True, xor=["t1w"],
                 desc="preprocessed image (in template space for registered inputs)")
    t1w = File(exists=True, mandatory=True, xor=["image"],
               desc="deprecated name of 'image' (kept until the workflow passes 'image')")
    suffix = traits.Str(desc="BIDS suffix of the input image (T1w, T2w, FLAIR, dwi...), "
                             "used in the report's wording")
    reference_mask = File(exists=True, desc="reference lesion mask on the image grid")
    labels = InputMultiObject(traits.Str, mandatory=True)
    specs = InputMultiObject(traits.Str, mandatory=True)
    descriptions = InputMultiObject(traits.Str, mandatory=True)
    images = InputMultiObject(File(exists=True), mandatory=True)
    masks = InputMultiObject(File(exists=True), mandatory=True)
    probsegs = InputMultiObject(File(exists=True),
                                desc="probability maps (only used for a condition without mask)")
    metrics_tsv = File(exists=True)
    metrics_name = traits.Str(desc="file name of the metrics TSV in the derivatives (shown "
                                   "in the report instead of the working-directory name)")
    earlier_metrics = traits.List(traits.Dict, value=[], usedefault=True,
                                  desc="metrics rows of conditions kept from earlier runs")
    provenance = traits.Dict(value={}, usedefault=True)
    command_line = traits.Str(desc="full command line of the run, shown verbatim")
    template_mask = File(exists=True, desc="template brain mask the image was registered to "
                                           "(registered inputs): adds the registration check")
    template_file = File(exists=True, desc="template image shown under the same outline")
    warnings = traits.List(traits.Str, desc="the run's warnings, shown at the top")
    reference_label = traits.Str("", usedefault=True,
                                 desc="label of the condition whose prediction is the "
                                      "reference ('' = the lesion mask, if any)")
    reference_condition = traits.Str("", usedefault=True,
                                     desc="spec of that condition (e.g. native)")
    scored = traits.Bool(True, usedefault=True,
                         desc="whether the image was scored (False: no reference at all)")


class _SubjectReportOutputSpec(TraitedSpec):
    out_report = File(exists=True)


def _opt(value: Any) -> Any:
    """A trait's value (a path or a text), ``None`` when it is undefined or empty."""
    return value if isdefined(value) and value != "" else None


class SubjectReport(ChecksummedInterface):
    """Self-contained HTML report: overlays per condition, metrics and registration check."""

    input_spec = _SubjectReportInputSpec
    output_spec = _SubjectReportOutputSpec

    def _run_interface(self, runtime):
        from bids_stroke.reports.subject import build_subject_report

        inp = self.inputs
        probsegs = list(inp.probsegs) if isdefined(inp.probsegs) else [None] * len(inp.labels)
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
                inp.labels, inp.specs, inp.descriptions, inp.images, inp.masks, probsegs,
                strict=True,
            )
        ]
        out = os.path.join(runtime.cwd, "report.html")
        build_subject_report(
            out,
            subject=inp.subject,
            session=inp.session or None,
            image=_opt(inp.image) or inp.t1w,
            suffix=_opt(inp.suffix),
            reference_mask=_opt(inp.reference_mask),
            conditions=conditions,
            metrics_tsv=_opt(inp.metrics_tsv),
            metrics_name=_opt(inp.metrics_name),
            earlier_metrics=list(inp.earlier_metrics),
            provenance=dict(inp.provenance),
            command_line=_opt(inp.command_line),
            template_mask=_opt(inp.template_mask),
            template_file=_opt(inp.template_file),
            warnings=list(inp.warnings) if isdefined(inp.warnings) else [],
            reference_label=inp.reference_label or None,
            reference_condition=inp.reference_condition or None,
            scored=bool(inp.scored),
        )
        self._results["out_report"] = out
        return runtime
