"""Top-level participant workflow: one sub-workflow per input image (wiring only).

``init_bids_stroke_wf`` → ``init_single_image_wf`` → [channels → normalise] → (per
condition: degrade → segment) → join → metrics → report + commit. Running the graph is
:mod:`bids_stroke.runner`'s job; deciding what to run is the CLI's.

Two paths, chosen by the model's space (:class:`ModelRequest`):

* **template-space models** (the bundled one): the reference image is registered to the
  template (or only conformed to RAS+ when it already is there), every other channel follows
  it, conditions degrade the template-space image, predictions are mapped back to the native
  grid and scored there;
* **native-space models** (nnU-Net, most ONNX exports): nothing is registered to a template;
  the conditions degrade the native image along its own axes (thick slices along the
  acquisition's slice axis), the model runs and is scored on the native grid.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_stroke.core.settings import TEMPLATE, Settings
from bids_stroke.inputs.discovery import ImageInputs
from bids_stroke.metrics.reference import Reference
from bids_stroke.model.request import ModelRequest

LOGGER = logging.getLogger("bids_stroke.workflow")
SEGMENT_NODE = "unet"
#: sub-workflows of an input kept in the work folder after its commit (the registration):
#: what a later run with other conditions or metric settings reuses
REUSABLE_WORKFLOWS = ("channels_wf", "normalize_wf")
JOIN_FIELDS = [
    "images", "degraded_masks", "probsegs", "masks", "labels", "specs", "descriptions",
    "params", "effective_resolutions", "model_checksum", "model_info",
]


def _first(values):
    """First element of a joined list (the model is the same for every condition)."""
    return values[0] if isinstance(values, list | tuple) else values


def channel_order(subject: ImageInputs, channels: Sequence[str]) -> list[int]:
    """Index, among the subject's channels (reference first), of each model input channel
    (a single-channel model given another modality gets the reference)."""
    have = [subject.suffix, *[c[0] for c in subject.channels]]
    return [have.index(c) if c in have else 0 for c in channels]


def _grid_voxels(subject: ImageInputs, model: ModelRequest, template: str) -> tuple[int, int]:
    """Voxels of the grid the conditions and the model work on, and of the native grid the
    metrics are computed on (read from headers only)."""
    from bids_stroke.degradation.nifti import load_nifti

    native = int(np.prod(load_nifti(subject.image).shape[:3]))
    if model.native or subject.space == TEMPLATE:
        return native, native
    from bids_stroke.templates import get_template

    shape = load_nifti(get_template(template, suffix="T1w",
                                    resolution=model.resolution or 1)).shape[:3]
    return int(np.prod(shape)), native


def subject_wf_name(subject: ImageInputs) -> str:
    """Node-safe workflow name, e.g. ``single_subject_r001s001_ses_1_wf``."""
    return "single_subject_" + re.sub(r"[^A-Za-z0-9]+", "_", subject.key[4:]) + "_wf"


def init_single_image_wf(
    subject: ImageInputs,
    *,
    settings: Settings,
    model: ModelRequest,
    provenance: Mapping[str, Any],
    warnings: Sequence[str] = (),
    progress_dir: str = "",
    fingerprint: str = "",
) -> pe.Workflow:
    """The whole participant-level pipeline for one image (see the module docstring);
    ``progress_dir``: where its segmentations report their forward passes (progress line);
    ``fingerprint`` (:mod:`bids_stroke.outputs.fingerprint`) is recorded in its manifest."""
    from bids_stroke.core.resources import degrade_mem_gb, metrics_mem_gb
    from bids_stroke.metrics.reference import resolve
    from bids_stroke.workflows.channels import init_channels_wf
    from bids_stroke.workflows.degrade import init_degrade_wf
    from bids_stroke.workflows.metrics import init_metrics_wf
    from bids_stroke.workflows.normalize import init_normalize_wf
    from bids_stroke.workflows.outputs import init_outputs_wf
    from bids_stroke.workflows.segment import init_segment_wf

    in_template = subject.space == TEMPLATE
    register = not model.native and not in_template
    study = settings.study
    # what the predictions are scored against (None: not scored); the mask is used only when
    # it is the reference
    reference = resolve(study.reference, subject.mask is not None, study.reference_condition)
    has_mask = reference is not None and not reference.is_prediction
    outs = settings.outputs
    keep_ref_masks = outs.save_degraded_masks and has_mask
    wf = pe.Workflow(name=subject_wf_name(subject))

    inputnode = pe.Node(niu.IdentityInterface(fields=["t1w", "mask"]), name="inputnode")
    inputnode.inputs.t1w = str(subject.image)
    if has_mask:
        inputnode.inputs.mask = str(subject.mask)

    channels = init_channels_wf(subject, seed=settings.execution.seed,
                                omp_nthreads=settings.execution.omp_nthreads)
    condition_source = pe.Node(niu.IdentityInterface(fields=["condition"]),
                               name="condition_source")
    condition_source.iterables = ("condition", [c.spec for c in settings.study.conditions])
    voxels, native_voxels = _grid_voxels(subject, model, settings.registration.template)
    degrade = init_degrade_wf(degrade_mask=keep_ref_masks,
                              mem_gb=degrade_mem_gb(voxels, 1 + len(subject.channels)))
    segment = init_segment_wf(model=model,
                              channel_order=channel_order(subject, model.input_channels),
                              progress_dir=progress_dir, probseg=outs.save_probseg)
    keep_probsegs = outs.save_probseg != "none"
    join_fields = [f for f in JOIN_FIELDS if (f != "degraded_masks" or keep_ref_masks)
                   and (f != "probsegs" or keep_probsegs)]
    join = pe.JoinNode(niu.IdentityInterface(fields=join_fields),
                       joinsource="condition_source", joinfield=join_fields,
                       name="join_conditions")
    outputs = init_outputs_wf(subject=subject, settings=settings, model=model,
                              registered=register, has_mask=has_mask, reference=reference,
                              provenance=provenance, warnings=warnings,
                              fingerprint=fingerprint)
    wf.connect([
        (inputnode, channels, [("t1w", "inputnode.reference")]),
        (condition_source, degrade, [("condition", "inputnode.condition")]),
        (degrade, segment, [("outputnode.out_files", "inputnode.in_files")]),
        (degrade, join, [("outputnode.out_files", "images"),
                         ("outputnode.label", "labels"),
                         ("outputnode.spec", "specs"),
                         ("outputnode.description", "descriptions"),
                         ("outputnode.params", "params"),
                         ("outputnode.effective_resolution_mm", "effective_resolutions")]),
        (segment, join, [("outputnode.mask", "masks"),
                         ("outputnode.model_checksum", "model_checksum"),
                         ("outputnode.model_info", "model_info")]),
        (join, outputs, [("images", "inputnode.images"),
                         ("masks", "inputnode.masks"),
                         ("labels", "inputnode.labels"),
                         ("specs", "inputnode.specs"),
                         ("descriptions", "inputnode.descriptions"),
                         ("params", "inputnode.params"),
                         (("model_checksum", _first), "inputnode.model_checksum"),
                         (("model_info", _first), "inputnode.model_info")]),
    ])
    if keep_probsegs:
        wf.connect([(segment, join, [("outputnode.probseg", "probsegs")]),
                    (join, outputs, [("probsegs", "inputnode.probsegs")])])
    if keep_ref_masks:
        wf.connect([(degrade, join, [("outputnode.out_mask", "degraded_masks")]),
                    (join, outputs, [("degraded_masks", "inputnode.degraded_masks")])])

    if model.native:
        # native grid: the channels (co-registered to the reference) are what is degraded
        wf.connect([(channels, degrade, [("outputnode.channels", "inputnode.in_files")])])
        if keep_ref_masks:
            wf.connect(inputnode, "mask", degrade, "inputnode.in_mask")
        reference_grid = (inputnode, "t1w")
        reference_mask = (inputnode, "mask")
    else:
        normalize = init_normalize_wf(register=register, has_mask=has_mask,
                                      registration=settings.registration,
                                      resolution=model.resolution or 1,
                                      seed=settings.execution.seed,
                                      omp_nthreads=settings.execution.omp_nthreads)
        wf.connect([
            (inputnode, normalize, [("mask", "inputnode.mask")]),
            (channels, normalize, [("outputnode.channels", "inputnode.channels")]),
            (normalize, degrade, [("outputnode.channels_std", "inputnode.in_files")]),
            (normalize, segment, [("outputnode.brain_mask", "inputnode.brain_mask")]),
            (normalize, outputs, [
                ("outputnode.t1w_std", "inputnode.preproc"),
                ("outputnode.template_info", "inputnode.template_info"),
                ("outputnode.forward_transforms", "inputnode.forward_transforms"),
                ("outputnode.inverse_transforms", "inputnode.inverse_transforms"),
                ("outputnode.inverse_invert_flags", "inputnode.inverse_invert_flags")]),
        ])
        if keep_ref_masks:
            wf.connect(normalize, "outputnode.mask_std", degrade, "inputnode.in_mask")
        reference_grid = (normalize, "outputnode.t1w_std")
        reference_mask = (normalize, "outputnode.mask_std")
    wf.connect(reference_grid[0], reference_grid[1], outputs, "inputnode.report_image")

    scored = (join, "masks")
    if register:
        from bids_stroke.interfaces.registration import ApplyTransforms

        to_native = pe.MapNode(
            ApplyTransforms(reference_file=str(subject.image), interpolation="nearestNeighbor"),
            iterfield=["in_file"], name="masks_to_native")
        wf.connect([
            (join, to_native, [("masks", "in_file")]),
            (normalize, to_native, [("outputnode.inverse_transforms", "transforms"),
                                    ("outputnode.inverse_invert_flags", "invert_flags")]),
            (to_native, outputs, [("out_file", "inputnode.native_masks")]),
        ])
        scored = (to_native, "out_file")
    if reference is not None:
        metrics = init_metrics_wf(
            participant_id=f"sub-{subject.subject}",
            session_id=f"ses-{subject.session}" if subject.session else "n/a",
            prefix=subject.key, metrics=settings.metrics, mem_gb=metrics_mem_gb(native_voxels),
            reference_label=reference.label if reference.is_prediction else None,
            reference=reference_record(subject, settings, model, register, reference))
        wf.connect(scored[0], scored[1], metrics, "inputnode.masks")
        if has_mask:
            wf.connect(reference_mask[0], reference_mask[1], outputs,
                       "inputnode.reference_mask")
        wf.connect([
            (join, metrics, [("labels", "inputnode.labels"),
                             ("specs", "inputnode.specs"),
                             ("effective_resolutions", "inputnode.effective_resolutions")]),
            (metrics, outputs, [("outputnode.tsv", "inputnode.metrics_tsv"),
                                ("outputnode.json", "inputnode.metrics_json"),
                                ("outputnode.lesions_tsv", "inputnode.lesions_tsv"),
                                ("outputnode.lesions_json", "inputnode.lesions_json")]),
        ])
        # a prediction reference is the reference condition's mask among ``masks``
        if has_mask and (register or model.native):
            # scored against the untouched native reference
            metrics.inputs.inputnode.reference_mask = str(subject.mask)
        elif has_mask:
            wf.connect(reference_mask[0], reference_mask[1], metrics,
                       "inputnode.reference_mask")
    return wf


def reference_record(subject: ImageInputs, settings: Settings, model: ModelRequest,
                     registered: bool, reference: Reference) -> dict[str, Any]:
    """The sidecars' ``Reference`` object of a subject's metric tables (the metric code adds
    a prediction's ``SHA256``): the lesion mask's file and sha256, or the reference
    condition and the committed mask that is the reference."""
    from bids_stroke.outputs.plan import bids_uri, scored_mask_rel

    if not reference.is_prediction:
        from bids_stroke.core.digest import file_sha256

        if subject.mask is None:  # the workflow scores against a mask only when there is one
            raise ValueError(f"{subject.key}: no lesion mask to score against")
        return reference.record(File=bids_uri(str(subject.mask), str(settings.data.bids_dir)),
                                SHA256=file_sha256(subject.mask))
    rel = scored_mask_rel(subject.subject, subject.session, dict(subject.entities),
                          subject.suffix, None if model.native else TEMPLATE, None, registered,
                          str(reference.label))
    return reference.record(File=f"bids::{rel}")


def init_bids_stroke_wf(
    subjects: Sequence[ImageInputs],
    *,
    settings: Settings,
    model: ModelRequest,
    work_dir: str,
    provenance: Mapping[str, Any],
    warnings: Mapping[str, Sequence[str]] | None = None,
    progress_dir: str = "",
    fingerprints: Mapping[str, str] | None = None,
) -> pe.Workflow:
    """One workflow holding a single-subject workflow per input image."""
    wf = pe.Workflow(name="bids_stroke_wf", base_dir=work_dir)
    for subject in subjects:
        wf.add_nodes([init_single_image_wf(
            subject, settings=settings, model=model, provenance=provenance,
            warnings=(warnings or {}).get(subject.key, ()), progress_dir=progress_dir,
            fingerprint=(fingerprints or {}).get(subject.key, ""))])
    return wf
