"""Execute the participant graph for subjects whose locks this process holds."""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bids_stroke.cli import parser as P
from bids_stroke.cli.config import CLIError, work_dir_of
from bids_stroke.core.settings import Settings
from bids_stroke.inputs.discovery import ImageInputs
from bids_stroke.model.request import ModelRequest

LOGGER = logging.getLogger("bids_stroke")


def _provenance(settings: Settings, model: ModelRequest) -> dict:
    from bids_stroke.core.versions import environment_info

    # no run id or time here: a resumed run must hash (and write) the same; the command line
    # reaches the report separately
    template = {}
    if not model.native:  # the line the run logged: TemplateFlow's file or the stand-in
        from bids_stroke.templates import template_statement

        template = {"template": template_statement(settings.registration.template,
                                                   model.resolution or 1)[1]}
    return {
        "pipeline": settings.study.name,
        "conditions": [c.spec for c in settings.study.conditions],
        "seed": settings.execution.seed,
        "device": settings.segmentation.device,
        **template,
        "versions": environment_info(),
    }


def _write_preflight_logs(settings: Settings, failures) -> None:
    from bids_stroke.core.atomic import atomic_write_text

    for subject, message in failures:
        path = (settings.data.output_dir / f"sub-{subject.subject}" / "log"
                / settings.execution.run_uuid / f"crash-preflight-{subject.key}.txt")
        atomic_write_text(path, f"{subject.image}\n{message}\n")


def execute(settings: Settings, model: ModelRequest, subjects: Sequence[ImageInputs], *,
            cached: Sequence[ImageInputs] = (), preflight_failures: Sequence = (),
            warnings: Sequence[str] = (), fingerprints: Mapping[str, str] | None = None,
            digests: Mapping[str, Mapping] | None = None) -> list[str]:
    """Run the graph for ``subjects``; returns the keys of those not committed by this run.

    ``cached``: inputs whose committed outputs are already what this run would write (see
    :func:`bids_stroke.cli.participant.split_cached`): not run, counted as cached.
    ``fingerprints`` (by key) are recorded in the manifests this run commits; ``digests``
    (by key: :func:`bids_stroke.outputs.fingerprint.input_digests`) in the work folder, where they
    catch an input changed behind nipype's timestamp hashing.
    Raises :class:`bids_stroke.core.interrupt.Interrupted` when a signal stops the run (the entry
    point prints its one line, exit 130/143), :class:`CLIError` with exit 73 when nodes failed
    because a write failed (full disk, quota, read-only or forbidden folder, ``ulimit -f``).
    """
    from bids_stroke.core.progress import ParticipantProgress
    from bids_stroke.outputs.locks import FileLock, LockBusyError
    from bids_stroke.outputs.state_files import first_link

    out = settings.data.output_dir
    run = settings.execution.run_uuid
    work, explicit = work_dir_of(settings)
    try:
        if not explicit:
            _private_parent(work.parent)
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
        planted = first_link(work)
        if planted is not None:  # nipype would write through it (its files have fixed names)
            raise CLIError(f"the work folder holds a symbolic link bids_stroke did not make: "
                           f"{planted}; remove it or give another -w", P.EXIT_CANT_CREATE)
        for line in warnings:
            LOGGER.warning(line)
        # running segmentations report their forward passes here (this run holds the work
        # folder's lock: whatever is left in it is stale)
        steps = work / "progress"
        shutil.rmtree(steps, ignore_errors=True)
        names = []
        if subjects:  # nipype is imported only when there is work
            from bids_stroke.workflows.base import subject_wf_name

            names = [subject_wf_name(s) for s in subjects]
        progress = ParticipantProgress([*names, *(s.key for s in cached)],
                                       len(settings.study.conditions), steps_dir=steps)
        for subject in cached:
            progress.mark_cached(subject.key)
        failed: list[str] = []
        failure = None
        if subjects:
            failed, failure = _run(settings, model, subjects, names, progress, work, explicit,
                                 fingerprints or {}, warnings, digests or {}, steps)
        else:
            with progress:
                progress.start()
        LOGGER.info("Participant level finished: %d ok (%d unchanged), %d failed; outputs "
                    "in %s", len(subjects) + len(cached) - len(failed), len(cached),
                    len(failed), out)
        if failed or preflight_failures:
            print(f"bids_stroke: work folder kept for resuming: {work}", file=sys.stderr)
        elif not explicit:
            shutil.rmtree(work, ignore_errors=True)
        roots = [out / ".bids_stroke" / "staging", out, work]
        if failed and failure is not None and failure.is_write_in(roots):
            # a full disk (quota, read-only folder...), not a bug: one line, exit 73
            raise CLIError(failure.message(roots, f"the output folder {out} or the work "
                                                  f"folder {work}"), P.EXIT_CANT_CREATE)
        return failed
    finally:
        work_lock.release()


def _run(settings: Settings, model: ModelRequest, subjects: Sequence[ImageInputs],
         names: Sequence[str], progress, work: Path, explicit: bool,
         fingerprints: Mapping[str, str], warnings: Sequence[str],
         digests: Mapping[str, Mapping], steps: Path) -> tuple[list[str], Any]:
    """Build and run the graph of ``subjects``; returns the keys not committed by this run and
    the environment failure (full disk...) behind failed nodes, if any."""
    from bids_stroke import runner
    from bids_stroke.core import interrupt
    from bids_stroke.core.progress import quiet_nipype
    from bids_stroke.outputs.commit import read_manifest
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
                             provenance=_provenance(settings, model),
                             warnings={s.key: list(warnings) for s in subjects},
                             fingerprints=fingerprints, progress_dir=str(steps))
    plugin = dict(settings.execution.plugin or {})
    if plugin.get("plugin", "Linear") != "Linear":
        # worker processes segment: this one drops the model it checked (Linear keeps it,
        # as it segments here with the same network)
        from bids_stroke.core.resources import release_memory
        from bids_stroke.model.adapters import clear_model_cache

        clear_model_cache()
        release_memory()
    LOGGER.info("Running %d input(s) x %d condition(s) with nipype %s (work folder %s)",
                len(subjects), len(settings.study.conditions),
                plugin.get("plugin", "Linear"), work)
    resume = f" (with -w {work} to reuse the finished steps)" if not explicit else ""
    interrupt.set_hint(resume)
    with progress:  # a signal raises Interrupted: the entry point prints the one line
        error = runner.run_graph(wf, _thaw(plugin), progress)
    if error:
        LOGGER.error("some steps failed: %s", error.splitlines()[0])
    failure = _environment_failure(error, crash_dir)
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
    return failed, failure


def _thaw(plugin):
    from bids_stroke.core.settings import thaw

    return thaw(plugin) if plugin else None


def _private_parent(folder) -> None:
    """The per-user parent of default work folders (``$TMPDIR/bids_stroke-<user>``): made
    private (0700) by this user; one another user made first (``/tmp`` is shared), or a link,
    is refused (exit 73) rather than used."""
    import os
    import stat

    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    st = os.lstat(folder)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise CLIError(f"default work folder parent {folder} is not a folder of this user's (a "
                       "link, or made by another user in a shared temporary folder): give -w "
                       "a folder of yours", P.EXIT_CANT_CREATE)


def _environment_failure(error: str | None, crash_dir):
    """The environment failure (full disk, quota, read-only, permission, file-size limit)
    behind the failed nodes of this run: in nipype's error or in a crash file."""
    from bids_stroke.core.write_errors import environment_error_in_text

    found = environment_error_in_text(error or "")
    if found is None and crash_dir.is_dir():
        for crash in sorted(crash_dir.glob("crash-*")):
            found = environment_error_in_text(crash.read_text(errors="replace"))
            if found is not None:
                break
    return found
