"""From the parsed command line to one :class:`~bids_stroke.core.settings.Settings` (no writes).

Cheap checks come first (paths that cannot work), then the layers: defaults <- study file (or
``--config-file``) <- the options given on the command line. Each option is checked by the
same function as the study-file key it sets (the options are made from the settings' fields:
:mod:`bids_stroke.cli.options`); errors name the option.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import sys
import tempfile
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bids_stroke.cli import parser as P
from bids_stroke.cli.command_line import command_line
from bids_stroke.cli.options import OPTIONS, OptionError
from bids_stroke.core.cpus import MIN_PARALLEL_CPUS, default_omp_nthreads, usable_cpus
from bids_stroke.core.settings import (
    SECTIONS,
    Settings,
    SettingsError,
    check_value,
    settings_from_layers,
)


class CLIError(RuntimeError):
    """An error reported as one line with a BIDS-App exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def cannot_write(folder: Path | str, exc: OSError, *, what: str = "") -> CLIError:
    """The one-line error (exit 73) for a write that failed in ``folder`` (full disk, quota,
    read-only, no permission, file-size limit), with the fix for that failure; ``what``
    prefixes it (e.g. ``"group level: "``)."""
    from bids_stroke.core.write_errors import fix_for

    return CLIError(f"{what}cannot write into {folder} ({exc.strerror or exc}): "
                    f"{fix_for(exc.errno)}", P.EXIT_CANT_CREATE)


def new_run_uuid() -> str:
    """``YYYYmmdd-HHMMSS_<8 hex>``: sortable and unique."""
    return f"{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}_{uuid.uuid4().hex[:8]}"


def default_work_dir(run_uuid: str) -> Path:
    """Per user and per run, so two runs never share a work folder by accident."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers run with -u UID)
        user = str(os.getuid())
    safe = "".join(c if c.isalnum() else "_" for c in user) or "user"
    return Path(tempfile.gettempdir()) / f"bids_stroke-{safe}" / run_uuid


def is_within(path: Path, parent: Path) -> bool:
    """True when ``path`` is ``parent`` or below it (after resolving symlinks)."""
    try:
        path.resolve().relative_to(parent.resolve())
    except ValueError:
        return False
    return True


def check_folder_target(path: Path, what: str) -> None:
    """Refuse (exit 73) a path that cannot become a writable folder, without writing anything:
    an existing file, a path below a file, or a read-only parent — before the input check."""
    if path.exists():
        if not path.is_dir():
            raise CLIError(f"cannot create {what} {path}: it is a file; give a folder",
                           P.EXIT_CANT_CREATE)
        if not os.access(path, os.W_OK | os.X_OK):
            raise CLIError(f"{what} {path} is not writable: fix its permissions or choose "
                           "another folder", P.EXIT_CANT_CREATE)
        return
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise CLIError(f"cannot create {what} {path} ({parent} is a file): choose "
                               "another folder", P.EXIT_CANT_CREATE)
            if not os.access(parent, os.W_OK | os.X_OK):
                raise CLIError(f"cannot create {what} {path} ({parent} is not writable): "
                               "choose another folder", P.EXIT_CANT_CREATE)
            return


def check_paths(bids_dir: Path, output_dir: Path, work_dir: Path | None,
                database_dir: Path | None) -> None:
    """Refuse, before any work, folders that would write into the input or clash."""
    check_folder_target(output_dir, "output directory")
    if work_dir is not None:
        check_folder_target(work_dir, "work directory")
    if not bids_dir.is_dir():
        raise CLIError(f"BIDS directory {bids_dir} does not exist: check the path",
                       P.EXIT_NO_INPUT)
    derivatives = bids_dir / "derivatives"
    if is_within(derivatives, output_dir):
        raise CLIError(
            f"output_dir {output_dir} is the BIDS dataset itself, its derivatives folder or a "
            f"folder containing them ({bids_dir}): bids_stroke would overwrite the input's "
            f"files; use a folder outside it or {derivatives}/bids_stroke", P.EXIT_USAGE)
    if is_within(output_dir, bids_dir) and not is_within(output_dir, derivatives):
        raise CLIError(
            f"output_dir {output_dir} is inside the BIDS dataset {bids_dir}: use a folder "
            f"outside it or {derivatives}/bids_stroke", P.EXIT_USAGE)
    if work_dir is not None:
        if is_within(work_dir, bids_dir):
            raise CLIError(f"work dir {work_dir} is inside the BIDS dataset {bids_dir}: "
                           "choose another -w", P.EXIT_USAGE)
        if is_within(work_dir, output_dir) or is_within(output_dir, work_dir):
            raise CLIError(f"work dir {work_dir} and output_dir {output_dir} overlap: "
                           "choose a -w outside the derivatives", P.EXIT_USAGE)
    if database_dir is not None and is_within(database_dir, bids_dir):
        raise CLIError(f"--bids-database-dir {database_dir} is inside the BIDS dataset "
                       f"{bids_dir}: choose a folder outside it (bids_stroke never writes "
                       "into its input)", P.EXIT_USAGE)


def cli_overrides(opts: Any) -> dict[str, dict[str, Any]]:
    """Section -> {key: checked value} of every option given on the command line (the
    options of :data:`bids_stroke.cli.options.TABLE` found in ``opts``), each checked by its
    setting's check; an error names the option: ``--threshold must be in (0, 1), got 1.5``."""
    overrides: dict[str, dict[str, Any]] = {}
    for dest, option in OPTIONS.items():
        given = getattr(opts, dest, None)
        if given is None:
            continue
        try:
            value = check_value(SECTIONS[option.section], option.key, option.value(given))
        except OptionError as exc:
            raise CLIError(str(exc), P.EXIT_USAGE) from None
        except ValueError as exc:
            raise CLIError(f"{option.flag} {exc}", P.EXIT_USAGE) from None
        overrides.setdefault(option.section, {})[option.key] = value
    return overrides


LOGGER = logging.getLogger("bids_stroke")


def clamp_nprocs(nprocs: int, cpus: int) -> int:
    """``--nprocs`` as run on ``cpus`` usable CPUs: one process below
    :data:`MIN_PARALLEL_CPUS`, said once in the log with the reason.

    On 2 CPUs every design measured was slower than one process: the segmentation already
    runs on every core, so a second process only competes with it, and it holds a second
    copy of the libraries (``bench/bench_floor.py``: 0.8-0.95x the speed for 1.5x the
    memory). A ``--use-plugin`` file is not changed.
    """
    if nprocs <= 1 or cpus >= MIN_PARALLEL_CPUS:
        return nprocs
    LOGGER.warning(
        "--nprocs %d: running one process on %d CPU(s): the segmentation already uses every "
        "CPU, and a second process was slower than one and held a second copy of the "
        "libraries (bench/RESULTS.md); parallel processes start from %d CPUs",
        nprocs, cpus, MIN_PARALLEL_CPUS)
    return 1


def _load_plugin(path: Path | None, nprocs: int, mem_gb: float | None) -> dict:
    """nipype plugin settings: MultiProc by default, or a YAML file (fMRIPrep format)."""
    if path is None:
        # forkserver: workers never inherit the parent's threads/locks (fork can deadlock)
        args: dict = {"n_procs": nprocs, "raise_insufficient": False,
                      "mp_context": "forkserver"}
        if mem_gb:
            args["memory_gb"] = mem_gb
        return {"plugin": "MultiProc" if nprocs > 1 else "Linear", "plugin_args": args}
    from bids_stroke.core.study_files import StudyFileError, read_study_file

    try:
        data = read_study_file(Path(path))  # same limits as study files
    except StudyFileError as exc:
        code = P.EXIT_NO_INPUT if not Path(path).exists() else P.EXIT_USAGE
        raise CLIError(f"--use-plugin: {exc}", code) from exc
    if not isinstance(data, dict) or "plugin" not in data:
        raise CLIError(
            f"--use-plugin file {path} must define 'plugin' (and optionally 'plugin_args')",
            P.EXIT_USAGE,
        )
    data.setdefault("plugin_args", {})
    if not isinstance(data["plugin_args"], dict):
        raise CLIError(f"--use-plugin file {path}: 'plugin_args' must be a mapping", P.EXIT_USAGE)
    return {"plugin": str(data["plugin"]), "plugin_args": data["plugin_args"]}


def _base_settings(opts: Any) -> Settings:
    from bids_stroke.core.study_files import StudyFileError, load_study

    if getattr(opts, "config_file", None) is not None:
        if opts.study is not None:
            raise CLIError("--config-file and --study cannot be combined: the config "
                           "already holds the study", P.EXIT_USAGE)
        path = Path(opts.config_file)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise CLIError(f"--config-file {path} does not exist", P.EXIT_NO_INPUT) from None
        except (OSError, ValueError) as exc:
            raise CLIError(f"--config-file {path} is not a JSON settings file ({exc})",
                           P.EXIT_USAGE) from None
        try:
            return Settings.from_dict(data, where=str(path))
        except SettingsError as exc:
            raise CLIError(str(exc), P.EXIT_USAGE) from None
    try:
        return load_study(opts.study)
    except StudyFileError as exc:
        raise CLIError(str(exc), P.EXIT_USAGE) from None


def settings_from_cli(opts: Any, argv: Sequence[str] | None = None) -> Settings:
    """Resolve the command line (and the study file or config) into :class:`Settings`."""
    bids_dir = Path(opts.bids_dir).absolute()
    output_dir = Path(opts.output_dir).absolute()
    work_dir = Path(opts.work_dir).absolute() if opts.work_dir else None
    db = Path(opts.bids_database_dir).absolute() if opts.bids_database_dir else None
    check_paths(bids_dir, output_dir, work_dir, db)
    if getattr(opts, "prepare", None) and "group" in opts.analysis_level:
        raise CLIError("--prepare goes with the participant level only: run the group level "
                       "after the array", P.EXIT_USAGE)
    overrides = cli_overrides(opts)
    base = _base_settings(opts)
    group = overrides.get("group", {})
    if "margins" in group:  # --margin adds to (or changes) the study file's margins
        group["margins"] = {**base.group.margins, **group["margins"]}
    execution = overrides.setdefault("execution", {})
    replay = getattr(opts, "config_file", None) is not None
    cpus = usable_cpus()
    nprocs = int(execution.get("nprocs", base.execution.nprocs))
    if getattr(opts, "use_plugin", None) is None:
        nprocs = clamp_nprocs(nprocs, cpus)
    execution["nprocs"] = nprocs
    # threads per node follow the processes actually run (a replay keeps its recorded ones)
    if not replay:
        execution.setdefault("omp_nthreads", default_omp_nthreads(nprocs, cpus))
    execution.update(
        levels=list(dict.fromkeys(opts.analysis_level)),
        run_uuid=new_run_uuid(),
        command=command_line(["bids_stroke", *(sys.argv[1:] if argv is None else argv)]),
        verbose=min(int(opts.verbose or 0), 5),
        plugin=_load_plugin(getattr(opts, "use_plugin", None), nprocs, execution.get("mem_gb")),
    )
    overrides.setdefault("data", {}).update(bids_dir=str(bids_dir), output_dir=str(output_dir))
    if getattr(opts, "bids_filter_file", None) is not None:
        from bids_stroke.inputs.discovery import DiscoveryError, load_bids_filters

        try:
            overrides["data"]["bids_filters"] = load_bids_filters(opts.bids_filter_file)
        except DiscoveryError as exc:
            raise CLIError(str(exc), exc.exit_code) from exc
    try:
        settings = settings_from_layers(base=base, overrides=overrides)
    except SettingsError as exc:
        raise CLIError(str(exc), exc.exit_code) from None
    model = settings.segmentation.model
    if model is not None and not Path(model).exists():
        raise CLIError(f"--model {model} does not exist: give a bids_stroke checkpoint (.pt), "
                       "a TorchScript file, an ONNX file or an nnU-Net trained-model folder",
                       P.EXIT_NO_INPUT)
    return settings


def work_dir_of(settings: Settings) -> tuple[Path, bool]:
    """``(work folder, explicit)``: ``-w`` when given, else a per-user, per-run folder."""
    if settings.execution.work_dir is not None:
        return Path(settings.execution.work_dir), True
    return default_work_dir(settings.execution.run_uuid), False
