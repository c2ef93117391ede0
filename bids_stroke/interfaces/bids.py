"""Commit one subject's derivatives: the plan (:mod:`bids_stroke.outputs.plan`) executed by the
commit protocol (:mod:`bids_stroke.outputs.commit`). This interface only gathers its inputs.

It runs in the process that holds the subject's lock (``run_without_submitting``) and always
runs (``overwrite``), so a resumed run whose computations are all cached still commits.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    InputMultiObject,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

LOGGER = logging.getLogger("bids_stroke.commit")


class _WriteImageDerivativesInputSpec(BaseInterfaceInputSpec):
    output_dir = traits.Str(mandatory=True, desc="root of the derivatives dataset")
    bids_dir = traits.Str(mandatory=True, desc="root of the input dataset")
    key = traits.Str(mandatory=True, desc="the subject's key, e.g. sub-01_ses-1")
    subject = traits.Str(mandatory=True)
    session = traits.Str("", usedefault=True)
    entities = traits.Dict(value={}, usedefault=True, desc="acq/ce/rec/run of the input")
    suffix = traits.Str(mandatory=True, desc="BIDS suffix of the reference image")
    space = traits.Str("", usedefault=True, desc="template of the model grid ('' = native)")
    resolution = traits.Int(0, usedefault=True, desc="res- entity (0: none)")
    registered = traits.Bool(False, usedefault=True)
    registration = traits.Str("", usedefault=True)
    template_info = traits.Str("", usedefault=True)
    source_image = File(exists=True, mandatory=True)
    source_mask = traits.Str("", usedefault=True)
    channel_sources = traits.Dict(value={}, usedefault=True, desc="suffix -> input file")
    preproc = File(exists=True, desc="image the conditions were applied to (template runs)")
    labels = InputMultiObject(traits.Str, mandatory=True)
    specs = InputMultiObject(traits.Str, mandatory=True)
    descriptions = InputMultiObject(traits.Str, mandatory=True)
    params = InputMultiObject(traits.Dict, mandatory=True)
    images = InputMultiObject(traits.List(File(exists=True)),
                              desc="per condition: the degraded channels (image_suffixes order)")
    image_suffixes = traits.List(traits.Str, value=[], usedefault=True,
                                 desc="BIDS suffix of each channel of images")
    probsegs = InputMultiObject(File(exists=True), desc="per condition (absent: none written)")
    probseg_encoding = traits.Enum("none", "compact", "full", mandatory=True,
                                   desc="how the probability maps were stored")
    masks = InputMultiObject(File(exists=True), mandatory=True)
    native_masks = InputMultiObject(File(exists=True))
    degraded_masks = InputMultiObject(File(exists=True))
    forward_transforms = InputMultiObject(File(exists=True))
    inverse_transforms = InputMultiObject(File(exists=True))
    inverse_invert_flags = InputMultiObject(traits.Bool)
    metrics_tsv = File(exists=True)
    metrics_json = File(exists=True)
    lesions_tsv = File(exists=True)
    lesions_json = File(exists=True)
    report = File(exists=True)
    model_checksum = traits.Str(mandatory=True)
    model_info = traits.Dict(value={}, usedefault=True)
    threshold = traits.Float(mandatory=True)
    results_key = traits.Str(mandatory=True, desc="digest of the result-changing settings")
    run_uuid = traits.Str(mandatory=True)
    clean = traits.Bool(False, usedefault=True, desc="remove conditions not in this run")
    warnings = traits.List(traits.Str, value=[], usedefault=True)
    reference = traits.Dict(value={}, usedefault=True,
                            desc="what the metrics are scored against (kind, condition): "
                                 "recorded in the manifest; {} = not scored")
    reference_desc = traits.Str("", usedefault=True,
                                desc="desc of the metric tables ('' = mask reference)")
    fingerprint = traits.Str("", usedefault=True,
                             desc="bids_stroke.outputs.fingerprint of the image (kept in the "
                                  "manifest)")


class _WriteImageDerivativesOutputSpec(TraitedSpec):
    out_files = traits.List(traits.Str, desc="committed files, relative to output_dir")
    removed = traits.List(traits.Str, desc="files removed by this commit")


def _opt(value: Any) -> Any:
    return value if isdefined(value) else None


def _list(value: Any) -> list:
    return list(value) if isdefined(value) else []


def source_sidecar(image: str) -> dict[str, Any]:
    """The JSON sidecar beside an input image (``{}`` when absent or unreadable)."""
    path = Path(image)
    stem = path.name[: -len(".nii.gz")] if path.name.endswith(".nii.gz") else path.stem
    try:
        content = json.loads(path.with_name(f"{stem}.json").read_text())
    except (OSError, ValueError):
        return {}
    return content if isinstance(content, dict) else {}


def manifest_extra(warnings: list[str], reference: dict[str, Any]) -> dict[str, Any] | None:
    """The manifest's ``extra``: the run's warnings and what the subject was scored against."""
    extra: dict[str, Any] = {}
    if warnings:
        extra["warnings"] = warnings
    if reference:
        extra["reference"] = reference
    return extra or None


class WriteImageDerivatives(SimpleInterface):
    """Plan and commit a subject's outputs (all or nothing; re-runs accumulate)."""

    input_spec = _WriteImageDerivativesInputSpec
    output_spec = _WriteImageDerivativesOutputSpec

    def _subject_outputs(self):
        from bids_stroke.outputs.plan import ConditionOutputs, ImageOutputs

        i = self.inputs
        n = len(i.labels)
        images = [dict(zip(i.image_suffixes, files, strict=False)) for files in _list(i.images)]
        images = images or [{}] * n
        natives = _list(i.native_masks) or [None] * n
        probsegs = _list(i.probsegs) or [None] * n
        refs = _list(i.degraded_masks) or [None] * n
        conditions = [
            ConditionOutputs(label=i.labels[k], spec=i.specs[k], description=i.descriptions[k],
                             params=dict(i.params[k]), probseg=probsegs[k], mask=i.masks[k],
                             images=dict(images[k]), native_mask=natives[k],
                             degraded_reference_mask=refs[k])
            for k in range(n)
        ]
        return ImageOutputs(
            subject=i.subject, session=i.session or None, entities=dict(i.entities),
            suffix=i.suffix, bids_dir=i.bids_dir, source_image=i.source_image,
            conditions=conditions, model_sha256=i.model_checksum,
            model_info=dict(i.model_info), threshold=float(i.threshold),
            space=i.space or None, resolution=i.resolution or None,
            registered=bool(i.registered), registration=i.registration,
            template_info=i.template_info, channel_sources=dict(i.channel_sources),
            source_mask=i.source_mask or None, preproc=_opt(i.preproc),
            forward_transforms=_list(i.forward_transforms),
            inverse_transforms=_list(i.inverse_transforms),
            inverse_invert_flags=_list(i.inverse_invert_flags),
            metrics_tsv=_opt(i.metrics_tsv), metrics_json=_opt(i.metrics_json),
            lesions_tsv=_opt(i.lesions_tsv), lesions_json=_opt(i.lesions_json),
            report=_opt(i.report),
            skull_stripped=source_sidecar(i.source_image).get("SkullStripped", False),
            warnings=list(i.warnings), reference_desc=i.reference_desc or None,
            probseg_encoding=i.probseg_encoding,
        )

    def _extra(self) -> dict[str, Any] | None:
        from bids_stroke.outputs.fingerprint import EXTRA_KEY

        i = self.inputs
        extra = manifest_extra(list(i.warnings), dict(i.reference)) or {}
        if i.fingerprint:
            extra[EXTRA_KEY] = i.fingerprint
        return extra or None

    def _run_interface(self, runtime):
        from bids_stroke.outputs.commit import (
            ConditionRecord,
            commit_image,
            plan_conditions,
            read_manifest,
        )
        from bids_stroke.outputs.plan import plan_image

        i = self.inputs
        out = Path(i.output_dir)
        files, tables = plan_image(self._subject_outputs())
        records = [ConditionRecord(label, spec, i.model_checksum, i.results_key, i.run_uuid)
                   for label, spec in zip(i.labels, i.specs, strict=True)]
        plan = plan_conditions(read_manifest(out, i.key), records, clean=bool(i.clean))
        manifest, removed = commit_image(
            out, i.key, files=files, tables=tables, conditions=records, plan=plan,
            run_uuid=i.run_uuid, extra=self._extra())
        for label in plan.remove:
            LOGGER.warning("%s: removed condition %s (--clean: not in this study)", i.key, label)
        for rel in removed:
            LOGGER.info("%s: removed %s", i.key, rel)
        if plan.keep:
            LOGGER.info("%s: kept committed condition(s) %s", i.key, ", ".join(plan.keep))
        self._results["out_files"] = sorted(manifest.files)
        self._results["removed"] = list(removed)
        return runtime
