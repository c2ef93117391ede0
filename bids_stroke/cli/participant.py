"""The participant level: check everything, lock the subjects, build the graph, run it.

Order matters and is part of the contract (README "Reliability"):

1. discovery and every input check (images, masks, channels, conditions against the grid,
   the model) — nothing is written before these pass for at least one input;
2. the dataset-level files, under the dataset lock (``--prepare`` stops here);
3. a lock per subject (a subject another run holds is skipped: exit 75 unless
   ``--lock-wait``), unfinished commits finished, stale staging removed
   (:mod:`bids_stroke.cli.image_loop`, shared with ``export`` and ``score``);
4. the work folder locked and its cached results checked;
5. the graph built (:mod:`bids_stroke.workflows`) and run (:mod:`bids_stroke.runner`);
   success per subject = its commit carries this run's id.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from bids_stroke.cli import parser as P
from bids_stroke.cli.config import CLIError
from bids_stroke.cli.dataset_files import write_dataset_level
from bids_stroke.cli.image_loop import ImageLoop
from bids_stroke.cli.inputs import check_dataset, discover, print_refused
from bids_stroke.core.settings import TEMPLATE, Settings
from bids_stroke.inputs.discovery import ImageInputs

if TYPE_CHECKING:
    from bids_stroke.model.request import ModelRequest

LOGGER = logging.getLogger("bids_stroke")


def plan_model(settings: Settings) -> tuple[ModelRequest, list[str]]:
    """Open and check the model once, before any work (exit 65 with one line otherwise).

    Returns the run's :class:`~bids_stroke.model.request.ModelRequest` (built from the
    settings, then described by the model) and the warnings every report of the run repeats
    (a modality the model does not declare, defaulted model metadata, the bundled demo model
    on data that is not a bids_stroke demo dataset).
    """
    from bids_stroke.core.resources import segment_threads
    from bids_stroke.model.adapters import open_model
    from bids_stroke.model.bundled import DEMO_MODEL_WARNING, is_bundled, is_demo_dataset
    from bids_stroke.model.check import ModelCheckError, check_model, modality_mismatch
    from bids_stroke.model.checkpoint import ModelLoadError
    from bids_stroke.model.request import ModelRequest
    from bids_stroke.model.spec import ModelSpecError

    seg, ex = settings.segmentation, settings.execution
    request = ModelRequest.from_settings(seg, threads=segment_threads(ex.nprocs,
                                                                      ex.omp_nthreads))
    try:
        model = open_model(request.for_checks())  # the parent's one open (cached per process)
        # channels now; the dry forward pass with the memory check, once there is work
        # (a re-run whose images are all unchanged never runs the model)
        check_model(model, dry_run=False)
    except (ModelLoadError, ModelSpecError, ModelCheckError) as exc:
        raise CLIError(f"--model: {exc}", P.EXIT_BAD_DATA) from exc
    spec = model.spec
    request = request.describe(spec, reference=settings.data.modality,
                               template_resolution=settings.registration.template_resolution)
    reference = str(request.reference)
    warnings: list[str] = []
    declared = "channels" not in spec.assumed
    mismatch = modality_mismatch(spec, [reference])
    if mismatch and len(spec.channels) == 1:
        if declared and not seg.allow_modality_mismatch:
            raise CLIError(mismatch, P.EXIT_BAD_DATA)
        warnings.append(f"modality mismatch: {reference} images given to a model whose input "
                        f"is {', '.join(spec.channels)}"
                        + ("" if declared else " (assumed: the model does not say)"))
    elif mismatch and reference.lower() not in {c.lower() for c in spec.channels}:
        raise CLIError(f"{mismatch}; --modality must name one of the model's channels (the "
                       "grid of the lesion masks)", P.EXIT_BAD_DATA)
    if spec.assumed:
        warnings.append(f"model metadata assumed, not declared: {', '.join(spec.assumed)}")
    if is_bundled(model.checksum, model.info) and not is_demo_dataset(settings.data.bids_dir):
        warnings.append(DEMO_MODEL_WARNING)
    LOGGER.info("Model: %s (%s channels %s, %s)", spec.source, spec.kind,
                "+".join(spec.channels), "native space" if request.native else
                f"{TEMPLATE} {request.resolution} mm")
    return request, warnings


def check_model_memory(settings: Settings, model: ModelRequest,
                       subjects: Sequence[ImageInputs], grid) -> float | None:
    """Refuse (exit 65) a model that fails its dry forward pass or whose prediction of the
    largest image would not fit in ``--mem-gb`` (or this machine's memory), before any work;
    returns the model's estimate for that image (GB; ``None`` when the model cannot say),
    the segmentation node's memory for the scheduler."""
    import numpy as np

    from bids_stroke.degradation.nifti import load_nifti
    from bids_stroke.model.adapters import open_model
    from bids_stroke.model.check import ModelCheckError, check_model

    largest = max(((grid(s, load_nifti(s.image)), s) for s in subjects),
                  key=lambda item: int(np.prod(item[0][0])))
    (shape, zooms), _ = largest
    # the model plan_model opened (per-process cache), at the run's precision: under bf16
    # autocast the network's activations take half the memory
    segmenter = open_model(model.for_checks())
    try:
        return check_model(segmenter, image_shape=tuple(shape), spacing_mm=tuple(zooms),
                           mem_limit_gb=settings.execution.mem_gb)
    except ModelCheckError as exc:
        raise CLIError(f"--model: {exc}", P.EXIT_BAD_DATA) from exc


def _condition_grid(model: ModelRequest):
    """The grid (shape, zooms) the conditions apply to, per input."""
    from bids_stroke.inputs.preflight import native_grid

    if model.native:
        return native_grid
    from bids_stroke.degradation.nifti import load_nifti
    from bids_stroke.templates import get_template

    template = load_nifti(get_template(suffix="T1w", resolution=model.resolution or 1))
    tpl = (template.shape[:3], [float(z) for z in template.header.get_zooms()[:3]])

    def grid(subject: ImageInputs, img):
        return native_grid(subject, img) if subject.space == TEMPLATE else tpl

    return grid


def _check_mixing(settings: Settings, model_sha: str, subjects: Sequence[ImageInputs]
                  ) -> tuple[list[ImageInputs], list[tuple[ImageInputs, str]]]:
    """Refuse, before any work, subjects whose committed conditions would be mixed."""
    from bids_stroke.metrics.reference import resolve
    from bids_stroke.outputs.commit import (
        CommitError,
        ConditionRecord,
        plan_conditions,
        read_manifest,
    )

    out = settings.data.output_dir
    study = settings.study
    good, bad = [], []
    for subject in subjects:
        reference = resolve(study.reference, subject.mask is not None, study.reference_condition)
        key = settings.results_key(reference.kind if reference else "mask")
        try:
            records = [ConditionRecord(c.label, c.spec, model_sha, key, "")
                       for c in settings.study.conditions]
            plan_conditions(read_manifest(out, subject.key), records,
                            clean=settings.execution.clean)
        except CommitError as exc:
            bad.append((subject, str(exc)))
            continue
        good.append(subject)
    return good, bad


def _template_digests(settings: Settings, model: ModelRequest) -> dict[str, str] | None:
    """sha256 of the template files a template-space run uses (``None``: native space)."""
    if model.native:
        return None
    from bids_stroke.core.digest import file_sha256
    from bids_stroke.templates import get_template

    res = model.resolution or 1
    tpl = settings.registration.template
    return {"T1w": file_sha256(get_template(tpl, suffix="T1w", resolution=res)),
            "brain_mask": file_sha256(get_template(tpl, suffix="mask", desc="brain",
                                                   resolution=res))}


def fingerprint_images(settings: Settings, model: ModelRequest, warnings: Sequence[str],
                       subjects: Sequence[ImageInputs]
                       ) -> tuple[dict[str, str], dict[str, dict]]:
    """The :func:`~bids_stroke.outputs.fingerprint.image_fingerprint` and the
    :func:`~bids_stroke.outputs.fingerprint.input_digests` of each input (by key); an input whose
    files cannot be read gets neither (the input check reports it)."""
    from bids_stroke.outputs.fingerprint import image_fingerprint, input_digests

    template = _template_digests(settings, model)
    use = {"space": model.space, "resolution": model.resolution, "threshold": model.threshold,
           "channels": list(model.input_channels), "reference": model.reference}
    prints, digests = {}, {}
    for subject in subjects:
        try:
            digests[subject.key] = input_digests(subject)
        except OSError:
            continue
        prints[subject.key] = image_fingerprint(
            subject, settings, digests=digests[subject.key],
            model_sha256=model.sha256, model_use=use, template=template,
            warnings=warnings)
    return prints, digests


def _unchanged(settings: Settings, subject: ImageInputs, fingerprint: str | None, *,
               files: bool) -> str | None:
    """``None`` when ``subject``'s commit is of this fingerprint (and, with ``files``, every
    committed file is intact), else why it is redone."""
    from bids_stroke.outputs.commit import CommitError, read_manifest
    from bids_stroke.outputs.fingerprint import verify_committed

    if fingerprint is None:
        return "input unreadable"
    out = settings.data.output_dir
    labels = [c.label for c in settings.study.conditions]
    try:
        return verify_committed(out, read_manifest(out, subject.key), fingerprint, labels,
                                files=files)
    except (CommitError, OSError) as exc:
        return str(exc)


def split_cached(settings: Settings, subjects: Sequence[ImageInputs],
                 fingerprints: dict[str, str], *, files: bool
                 ) -> tuple[list[ImageInputs], list[ImageInputs]]:
    """``(cached, todo)``: inputs whose committed outputs are those this run would write."""
    cached: list[ImageInputs] = []
    todo: list[ImageInputs] = []
    for subject in subjects:
        why = _unchanged(settings, subject, fingerprints.get(subject.key), files=files)
        (cached if why is None else todo).append(subject)
        if why is not None and why != "not committed":
            LOGGER.debug("%s: recomputed: %s", subject.key, why)
    return cached, todo


def _log_template(settings: Settings, model: ModelRequest) -> None:
    """Say which template a template-space model's run registers to (a warning for a
    stand-in)."""
    from bids_stroke.templates import template_statement

    standin, text = template_statement(settings.registration.template, model.resolution or 1)
    (LOGGER.warning if standin else LOGGER.info)("Template %s", text)


def _with_channels(model: ModelRequest, subjects: list[ImageInputs]
                   ) -> tuple[list[ImageInputs], list[tuple[ImageInputs, str]]]:
    """``subjects`` with the model's other input channels, and those refused for lacking one
    (none for a one-channel model)."""
    if len(model.input_channels) <= 1:
        return subjects, []
    from bids_stroke.inputs.discovery import attach_channels

    return attach_channels(subjects, model.input_channels)


def run_participant(settings: Settings) -> int:
    """Validate, discover, check, lock and run; returns the exit code."""
    check_dataset(settings)  # before torch, nipype, pybids and the model are loaded
    from bids_stroke.cli.references import split_by_mask
    from bids_stroke.inputs.preflight import max_image_bytes, preflight_check

    model, warnings = plan_model(settings)
    if not model.native:
        _log_template(settings, model)
    reference = str(model.reference)
    scored, _ = split_by_mask(settings, discover(settings, reference))
    subjects, bad = _with_channels(model, scored)
    # an image committed by an earlier run from the same inputs, settings and model needs
    # neither its input checks nor any work (its committed files are verified once locked)
    fingerprints, digests = fingerprint_images(settings, model, warnings, subjects)
    candidates, subjects_todo = split_cached(settings, subjects, fingerprints, files=False)
    grid = _condition_grid(model) if subjects_todo else None
    max_bytes = max_image_bytes(settings.execution.max_image_gb, settings.execution.mem_gb)

    def check_inputs(todo: Sequence[ImageInputs]):
        return preflight_check(todo, nprocs=settings.execution.nprocs,
                               conditions=settings.study.conditions,
                               grid=grid or _condition_grid(model), max_bytes=max_bytes)

    good, failed_checks = check_inputs(subjects_todo) if subjects_todo else ([], [])
    bad += failed_checks
    if good:
        model = replace(model, predict_gb=check_model_memory(settings, model, good,
                                                             _condition_grid(model)))
    good, mixed = _check_mixing(settings, model.sha256, good)
    bad += mixed
    print_refused(bad)
    if not good and not candidates:
        code = P.EXIT_USAGE if mixed and len(mixed) == len(bad) else P.EXIT_BAD_DATA
        raise CLIError(f"no usable input among {len(subjects) + len(bad) - len(failed_checks)}"
                       " image(s) (see the errors above)", code)
    write_dataset_level(settings, reference)
    if settings.execution.prepare:
        LOGGER.info("Prepared %s for %d input(s); run the participant level per subject now"
                    "%s", settings.data.output_dir, len(good) + len(candidates),
                    f" ({len(bad)} input(s) refused above will fail their own task)"
                    if bad else "")
        return P.EXIT_OK  # the array goes on: each refused input fails its own task
    from bids_stroke.cli.execute import execute

    by_key = {s.key: s for s in [*good, *candidates]}
    with ImageLoop(settings.data.output_dir, list(by_key), run=settings.execution.run_uuid,
                   wait=settings.execution.lock_wait_s,
                   busy="it is being processed by another run") as images:
        locked = [by_key[k] for k in images.locked]
        keys = {s.key for s in candidates}
        cached, changed = split_cached(settings, [s for s in locked if s.key in keys],
                                       fingerprints, files=True)
        todo = [s for s in locked if s.key not in keys]
        if changed:  # committed files changed since: checked and redone like any input
            late_good, late_bad = check_inputs(changed)
            if late_good and model.predict_gb is None:
                model = replace(model, predict_gb=check_model_memory(
                    settings, model, late_good, _condition_grid(model)))
            print_refused(late_bad)
            bad += late_bad
            todo += late_good
        if cached:
            LOGGER.info("%d of %d input image(s) unchanged since their commit (inputs, "
                        "settings and model; every committed file verified): kept as they "
                        "are", len(cached), len(cached) + len(todo))
        if locked:
            images.finished(execute(settings, model, todo, cached=cached,
                                    preflight_failures=bad, warnings=warnings,
                                    fingerprints=fingerprints, digests=digests))
    if not bad:
        return images.exit_code()
    return images.exit_code(inputs=P.EXIT_USAGE if len(mixed) == len(bad) else P.EXIT_BAD_DATA)
