"""Top-level participant workflow: one sub-workflow per input image.

``init_bids_stroke_wf`` → ``init_single_subject_wf`` → normalise → (per condition: degrade →
segment) → join → metrics → report + derivatives.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_stroke.config import TEMPLATE, RunConfig, environment_info
from bids_stroke.discovery import SubjectInputs, resolve_modality

LOGGER = logging.getLogger("bids_stroke.workflow")
JOIN_FIELDS = [
    "images", "degraded_masks", "probsegs", "masks", "labels", "specs", "descriptions",
    "params", "effective_resolutions", "model_checksum", "model_info",
]


def _first(values):
    """First element of a joined list (the model is the same for every condition)."""
    return values[0] if isinstance(values, list | tuple) else values


def in_template_space(subject: SubjectInputs) -> bool:
    """True when the file name says the image already is in MNI152NLin2009aSym space."""
    return subject.space == TEMPLATE


def subject_wf_name(subject: SubjectInputs) -> str:
    """Node-safe workflow name, e.g. ``single_subject_r001s001_ses_1_wf``."""
    return "single_subject_" + re.sub(r"[^A-Za-z0-9]+", "_", subject.key[4:]) + "_wf"


def init_single_subject_wf(
    config: RunConfig, subject: SubjectInputs, *, provenance: dict | None = None
) -> pe.Workflow:
    """The whole participant-level pipeline for one image."""
    from bids_stroke.workflows.degrade import init_degrade_wf
    from bids_stroke.workflows.metrics import init_metrics_wf
    from bids_stroke.workflows.normalize import init_normalize_wf
    from bids_stroke.workflows.outputs import init_outputs_wf
    from bids_stroke.workflows.segment import init_segment_wf

    register = not in_template_space(subject)
    has_mask = subject.mask is not None
    wf = pe.Workflow(name=subject_wf_name(subject))

    inputnode = pe.Node(niu.IdentityInterface(fields=["t1w", "mask"]), name="inputnode")
    inputnode.inputs.t1w = str(subject.image)
    if has_mask:
        inputnode.inputs.mask = str(subject.mask)

    normalize = init_normalize_wf(
        register=register,
        has_mask=has_mask,
        kind=config.registration,
        template_resolution=config.template_resolution,
        seed=config.seed,
        omp_nthreads=config.omp_nthreads,
    )
    condition_source = pe.Node(niu.IdentityInterface(fields=["condition"]),
                               name="condition_source")
    condition_source.iterables = ("condition", list(config.conditions))
    degrade = init_degrade_wf(degrade_mask=config.save_degraded_masks and has_mask)
    segment = init_segment_wf(
        model=str(config.model) if config.model else "",
        device=config.device,
        precision=config.precision,
        threshold=config.threshold,
        min_size=config.min_size,
        tta=config.tta,
        mode=config.inference_mode,
        omp_nthreads=config.omp_nthreads,
    )
    join_fields = [f for f in JOIN_FIELDS
                   if f != "degraded_masks" or (config.save_degraded_masks and has_mask)]
    join = pe.JoinNode(
        niu.IdentityInterface(fields=join_fields),
        joinsource="condition_source",
        joinfield=join_fields,
        name="join_conditions",
    )
    space_entities = {"space": TEMPLATE}
    if register and config.template_resolution != 1:
        space_entities["res"] = str(config.template_resolution)
    outputs = init_outputs_wf(
        output_dir=str(config.output_dir),
        bids_dir=str(config.bids_dir),
        subject=subject.subject,
        session=subject.session,
        entities=dict(subject.entities),
        space_entities=space_entities,
        registered=register,
        registration=config.registration,
        suffix=resolve_modality(config.modality),
        has_mask=has_mask,
        save_degraded=config.save_degraded,
        save_degraded_masks=config.save_degraded_masks and has_mask,
        threshold=config.threshold,
        provenance=provenance or {},
    )
    outputs.inputs.inputnode.source_image = str(subject.image)
    if has_mask:
        outputs.inputs.inputnode.source_mask = str(subject.mask)

    wf.connect([
        (inputnode, normalize, [("t1w", "inputnode.t1w"), ("mask", "inputnode.mask")]),
        (normalize, degrade, [("outputnode.t1w_std", "inputnode.in_file")]),
        (condition_source, degrade, [("condition", "inputnode.condition")]),
        (degrade, segment, [("outputnode.out_file", "inputnode.in_file")]),
        (normalize, segment, [("outputnode.brain_mask", "inputnode.brain_mask")]),
        (degrade, join, [("outputnode.out_file", "images"),
                         ("outputnode.label", "labels"),
                         ("outputnode.spec", "specs"),
                         ("outputnode.description", "descriptions"),
                         ("outputnode.params", "params"),
                         ("outputnode.effective_resolution_mm", "effective_resolutions")]),
        (segment, join, [("outputnode.probseg", "probsegs"),
                         ("outputnode.mask", "masks"),
                         ("outputnode.model_checksum", "model_checksum"),
                         ("outputnode.model_info", "model_info")]),
        (normalize, outputs, [("outputnode.t1w_std", "inputnode.preproc"),
                              ("outputnode.template_info", "inputnode.template_info"),
                              ("outputnode.forward_transforms", "inputnode.forward_transforms"),
                              ("outputnode.inverse_transforms", "inputnode.inverse_transforms")]),
        (join, outputs, [("images", "inputnode.degraded_images"),
                         ("probsegs", "inputnode.probsegs"),
                         ("masks", "inputnode.masks"),
                         ("labels", "inputnode.labels"),
                         ("specs", "inputnode.specs"),
                         ("descriptions", "inputnode.descriptions"),
                         ("params", "inputnode.params"),
                         (("model_checksum", _first), "inputnode.model_checksum"),
                         (("model_info", _first), "inputnode.model_info")]),
    ])
    if config.save_degraded_masks and has_mask:
        wf.connect([
            (normalize, degrade, [("outputnode.mask_std", "inputnode.in_mask")]),
            (degrade, join, [("outputnode.out_mask", "degraded_masks")]),
            (join, outputs, [("degraded_masks", "inputnode.degraded_masks")]),
        ])
    if register:
        from bids_stroke.interfaces.registration import ApplyTransforms

        to_native = pe.MapNode(
            ApplyTransforms(reference_file=str(subject.image), interpolation="nearestNeighbor"),
            iterfield=["in_file"],
            name="masks_to_native",
        )
        wf.connect([
            (join, to_native, [("masks", "in_file")]),
            (normalize, to_native, [("outputnode.inverse_transforms", "transforms"),
                                    ("outputnode.inverse_invert_flags", "invert_flags")]),
            (to_native, outputs, [("out_file", "inputnode.native_masks")]),
        ])
    if has_mask:
        metrics = init_metrics_wf(
            participant_id=f"sub-{subject.subject}",
            session_id=f"ses-{subject.session}" if subject.session else "n/a",
            prefix=subject.key,
            connectivity=config.connectivity,
            tolerance_mm=config.tolerance_mm,
        )
        wf.connect([
            (join, metrics, [("labels", "inputnode.labels"),
                             ("specs", "inputnode.specs"),
                             ("effective_resolutions", "inputnode.effective_resolutions")]),
            (normalize, outputs, [("outputnode.mask_std", "inputnode.reference_mask")]),
            (metrics, outputs, [("outputnode.tsv", "inputnode.metrics_tsv"),
                                ("outputnode.json", "inputnode.metrics_json"),
                                ("outputnode.lesions_tsv", "inputnode.lesions_tsv"),
                                ("outputnode.lesions_json", "inputnode.lesions_json")]),
        ])
        if register:
            # score against the *native* reference: predictions mapped back to its grid
            metrics.inputs.inputnode.reference_mask = str(subject.mask)
            wf.connect(to_native, "out_file", metrics, "inputnode.masks")
        else:
            wf.connect([
                (normalize, metrics, [("outputnode.mask_std", "inputnode.reference_mask")]),
                (join, metrics, [("masks", "inputnode.masks")]),
            ])
    else:
        LOGGER.warning("%s: no lesion mask, metrics are skipped", subject.key)
    return wf


def init_bids_stroke_wf(
    config: RunConfig, subjects: Sequence[SubjectInputs], *, provenance: dict | None = None
) -> pe.Workflow:
    """One workflow holding a single-subject workflow per input image."""
    wf = pe.Workflow(name="bids_stroke_wf", base_dir=str(config.work_dir))
    for subject in subjects:
        wf.add_nodes([init_single_subject_wf(config, subject, provenance=provenance)])
    return wf


def _distribute_crash_files(crash_dir: Path, config: RunConfig,
                            subjects: Sequence[SubjectInputs]) -> None:
    """Move nipype crash files to ``OUT/sub-X/log/<run>/`` of the subject they belong to."""
    if not crash_dir.is_dir():
        return
    names = {subject_wf_name(s): s for s in subjects}
    for crash in sorted(crash_dir.glob("crash-*")):
        text = crash.read_text(errors="replace")
        owner = next((s for n, s in names.items() if f".{n}." in text or f"{n}." in text), None)
        if owner is not None:
            dest = config.output_dir / f"sub-{owner.subject}" / "log" / config.run_uuid
        else:
            dest = config.output_dir / "logs" / "crash" / config.run_uuid
        dest.mkdir(parents=True, exist_ok=True)
        shutil.move(str(crash), dest / crash.name)


def _remove_stale_staging(out: Path) -> None:
    """Remove staging folders left by *dead* writers on this host.

    Staging folders are named ``.staging-<subject>-<session>-<host>-<pid>-<uuid>``; those of a
    live process (another participant job writing into the same folder, e.g. a SLURM array)
    or of another host are left alone.
    """
    import os
    import socket

    host = socket.gethostname().replace("-", "")
    for stale in out.glob(".staging-*"):
        parts = stale.name.split("-")
        if len(parts) < 6 or parts[-3] != host or not parts[-2].isdigit():
            continue
        pid = int(parts[-2])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(stale, ignore_errors=True)
        except PermissionError:  # alive, another user
            continue


def _write_preflight_logs(config: RunConfig, failures) -> None:
    from bids_stroke.outputs import atomic_write_text

    for subject, message in failures:
        path = (config.output_dir / f"sub-{subject.subject}" / "log" / config.run_uuid
                / f"crash-preflight-{subject.key}.txt")
        atomic_write_text(path, f"{subject.image}\n{message}\n")


def execute_participant_level(
    config: RunConfig,
    subjects: Sequence[SubjectInputs],
    preflight_failures: Sequence = (),
) -> list[str]:
    """Run the participant level; returns the keys of inputs whose workflow failed."""
    from nipype import config as ncfg

    from bids_stroke.conditions import parse_conditions
    from bids_stroke.outputs import write_dataset_files

    out = config.output_dir
    _remove_stale_staging(out)
    conds = parse_conditions(config.conditions)
    write_dataset_files(
        out,
        config.bids_dir,
        config.pipeline.name,
        [{"desc_id": "preproc", "description": "input image in MNI152NLin2009aSym space",
          "condition": "n/a"}]
        + [{"desc_id": c.label, "description": c.description, "condition": c.spec}
           for c in conds],
    )
    config.write(out / "logs")
    _write_preflight_logs(config, preflight_failures)

    crash_dir = config.work_dir / "crash" / config.run_uuid
    ncfg.update_config({
        "execution": {
            "crashdump_dir": str(crash_dir),
            "stop_on_first_crash": config.stop_on_first_crash,
            "crashfile_format": "txt",
            "hash_method": "content",
            "remove_unnecessary_outputs": False,
            "get_linked_libs": False,
            "check_version": False,
            "poll_sleep_duration": 0.2,
        },
        "monitoring": {"enabled": False},
    })
    from bids_stroke.progress import ParticipantProgress, quiet_nipype

    quiet_nipype(1 if LOGGER.isEnabledFor(logging.DEBUG) else 0)
    provenance = {
        "command": "bids_stroke " + " ".join(config.levels),
        "pipeline": config.pipeline.name,
        "conditions": list(config.conditions),
        "seed": config.seed,
        "device": config.device,
        "versions": environment_info(),
    }  # no run id or time here: a resumed run must hash (and write) the same
    wf = init_bids_stroke_wf(config, subjects, provenance=provenance)
    names = [subject_wf_name(s) for s in subjects]
    progress = ParticipantProgress(names, len(conds))
    plugin = dict(config.plugin or {"plugin": "Linear", "plugin_args": {}})
    plugin_args = dict(plugin.get("plugin_args") or {})
    if plugin["plugin"] in ("MultiProc", "Linear", "LegacyMultiProc"):
        plugin_args["status_callback"] = progress
    LOGGER.info(
        "Running %d input(s) x %d condition(s) with nipype %s (work dir %s)",
        len(subjects), len(conds), plugin["plugin"], config.work_dir,
    )
    try:
        with progress:
            wf.run(plugin=plugin["plugin"], plugin_args=plugin_args)
    except Exception as exc:  # Linear re-raises the node's own exception type
        LOGGER.error("some nodes failed: %s", str(exc).splitlines()[0] if str(exc) else exc)
        if not progress.failed:
            progress.failed.update(names)
    _distribute_crash_files(crash_dir, config, subjects)
    failed = [s.key for s, n in zip(subjects, names, strict=True) if n in progress.failed]
    for key in failed:
        LOGGER.error("%s FAILED: crash file(s) under %s/%s/log/%s", key, out,
                     key.split("_")[0], config.run_uuid)
    ok = len(subjects) - len(failed)
    LOGGER.info("Participant level finished: %d ok, %d failed; outputs in %s", ok, len(failed),
                out)
    return failed

