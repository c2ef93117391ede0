"""Execute the participant graph for subjects whose locks this process holds."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from bids_stroke.cli import parser as P
from bids_stroke.cli.config import CLIError, work_dir_of
from bids_stroke.discovery import SubjectInputs
from bids_stroke.settings import Settings
from bids_stroke.workflows.base import ModelPlan

LOGGER = logging.getLogger("bids_stroke")


def _provenance(settings: Settings) -> dict:
    from bids_stroke.config import environment_info

    # no run id or time here: a resumed run must hash (and write) the same; the command line
    # reaches the report separately
    return {
        "pipeline": settings.study.name,
        "conditions": list(settings.study.conditions),
        "seed": settings.execution.seed,
        "device": settings.segmentation.device,
        "versions": environment_info(),
    }


def _write_preflight_logs(settings: Settings, failures) -> None:
    from bids_stroke.atomic import atomic_write_text

    for subject, message in failures:
        path = (settings.data.output_dir / f"sub-{subject.subject}" / "log"
                / settings.execution.run_uuid / f"crash-preflight-{subject.key}.txt")
        atomic_write_text(path, f"{subject.image}\n{message}\n")


def execute(settings: Settings, model: ModelPlan, subjects: Sequence[SubjectInputs], *,
            cached: Sequence[SubjectInputs] = (), preflight_failures: Sequence = (),
            warnings: Sequence[str] = (), fingerprints: Mapping[str, str] | None = None,
            digests: Mapping[str, Mapping] | None = None) -> list[str]:
    """Run the graph for ``subjects``; returns the keys of those not committed by this run.

    ``cached``: inputs whose committed outputs are already what this run would write (see
    :func:`bids_stroke.cli.participant.split_cached`): not run, counted as cached.
    ``fingerprints`` (by key) are recorded in the manifests this run commits; ``digests``
    (by key: :func:`bids_stroke.fingerprint.input_digests`) in the work folder, where they
    catch an input changed behind nipype's timestamp hashing.
    Raises :class:`CLIError` (exit 130/143) when a signal stops the run.
    """
    from bids_stroke.locks import FileLock, LockBusyError
    from bids_stroke.progress import ParticipantProgress

    out = settings.data.output_dir
    run = settings.execution.run_uuid
    work, explicit = work_dir_of(settings)
    try:
        work.mkdir(parents=True, exist_ok=True)
        work_lock = FileLock(work / ".bids_stroke-work.lock", run=run).acquire(timeout=0)
    except LockBusyError as exc:
        raise CLIError(f"work folder {work} is in use by {exc.holder}: give this run its own "
                       "-w (or wait for that run)", P.EXIT_TEMPFAIL) from exc
    except OSError as exc:
        raise CLIError(f"cannot create work folder {work} ({exc.strerror}): choose a "
                       "writable -w", P.EXIT_CANT_CREATE) from exc
    try:
        settings.write(out / "logs")
        _write_preflight_logs(settings, preflight_failures)
        for line in warnings:
            LOGGER.warning(line)
        names = []
        if subjects:  # nipype is imported only when there is work
            from bids_stroke.workflows.base import subject_wf_name

            names = [subject_wf_name(s) for s in subjects]
        progress = ParticipantProgress([*names, *(s.key for s in cached)],
                                       len(settings.study.conditions))
        for subject in cached:
            progress.mark_cached(subject.key)
        failed: list[str] = []
        if subjects:
            failed = _run(settings, model, subjects, names, progress, work, explicit,
                          fingerprints or {}, warnings, digests or {})
        else:
            with progress:
                progress.start()
        LOGGER.info("Participant level finished: %d ok (%d unchanged), %d failed; outputs "
                    "in %s", len(subjects) + len(cached) - len(failed), len(cached),
                    len(failed), out)
        if failed or preflight_failures:
            print(f"bids_stroke: work folder kept for resuming: {work}", file=sys.stderr)
        elif not explicit:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
        return failed
    finally:
        work_lock.release()


def _run(settings: Settings, model: ModelPlan, subjects: Sequence[SubjectInputs],
         names: Sequence[str], progress, work: Path, explicit: bool,
         fingerprints: Mapping[str, str], warnings: Sequence[str],
         digests: Mapping[str, Mapping]) -> list[str]:
    """Build and run the graph of ``subjects``; returns the keys not committed by this run."""
    from bids_stroke import runner
    from bids_stroke.commit import read_manifest
    from bids_stroke.progress import quiet_nipype
    from bids_stroke.workflows.base import REUSABLE_WORKFLOWS, init_bids_stroke_wf

    out = settings.data.output_dir
    run = settings.execution.run_uuid
    root = work / "bids_stroke_wf"
    for subject, name in zip(subjects, names, strict=True):
        # only the folders this run will use (cached inputs need none)
        runner.check_inputs(root / name, digests.get(subject.key, {}))
        runner.scan_work_dir(root / name)
    crash_dir = work / "crash" / run
    runner.configure_nipype(crash_dir, stop_on_first_crash=settings.execution.
                            stop_on_first_crash)
    quiet_nipype(settings.execution.verbose)
    wf = init_bids_stroke_wf(subjects, settings=settings, model=model, work_dir=str(work),
                             provenance=_provenance(settings),
                             warnings={s.key: list(warnings) for s in subjects},
                             fingerprints=fingerprints)
    plugin = dict(settings.execution.plugin or {})
    if plugin.get("plugin", "Linear") != "Linear":
        # worker processes segment: this one drops the model it checked (Linear keeps it,
        # as it segments here with the same network)
        from bids_stroke.model.adapters import clear_model_cache
        from bids_stroke.resources import release_memory

        clear_model_cache()
        release_memory()
    LOGGER.info("Running %d input(s) x %d condition(s) with nipype %s (work folder %s)",
                len(subjects), len(settings.study.conditions),
                plugin.get("plugin", "Linear"), work)
    try:
        with progress:
            error = runner.run_graph(wf, _thaw(plugin), progress)
    except runner.Interrupted as exc:
        code = P.EXIT_SIGTERM if exc.signum == 15 else P.EXIT_SIGINT
        resume = f" -w {work}" if not explicit else ""
        raise CLIError(
            f"interrupted by {exc}: committed subjects are complete, the others untouched; "
            f"re-run the same command{resume} to resume", code) from None
    if error:
        LOGGER.error("some steps failed: %s", error)
    destinations = {n: out / f"sub-{s.subject}" / "log" / run
                    for n, s in zip(names, subjects, strict=True)}
    runner.distribute_crash_files(crash_dir, destinations, out / "logs" / "crash" / run)
    failed = []
    for subject, name in zip(subjects, names, strict=True):
        manifest = read_manifest(out, subject.key)
        if manifest is None or manifest.run_uuid != run:
            failed.append(subject.key)
            LOGGER.error("%s FAILED: crash file(s) under %s", subject.key,
                         out / f"sub-{subject.subject}" / "log" / run)
        elif explicit:  # committed: only what a later run could reuse stays
            runner.prune_work_dir(root / name, keep=(*REUSABLE_WORKFLOWS, runner.INPUTS))
    return failed


def _thaw(plugin):
    from bids_stroke.settings import thaw

    return thaw(plugin) if plugin else None

