"""``bids_stroke`` entry point: thin layer over configuration, preflight checks and workflows."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from bids_stroke.cli import parser as P

LOGGER = logging.getLogger("bids_stroke")


class CLIError(RuntimeError):
    """An error reported as one line with a BIDS-App exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _setup_logging(verbose: int) -> None:
    level = logging.INFO if verbose == 0 else logging.DEBUG
    logging.basicConfig(
        level=level,
        format="%(asctime)s [%(name)s] %(levelname)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    quiet_nipype(verbose)


def quiet_nipype(verbose: int = 0) -> None:
    """nipype logs through our handler only (no duplicate lines), warnings unless -v."""
    for name in ("nipype", "nipype.workflow", "nipype.interface", "nipype.utils"):
        log = logging.getLogger(name)
        log.handlers.clear()
        log.propagate = True
        log.setLevel(logging.WARNING if verbose == 0 else logging.INFO)


def _load_plugin(path: Path | None, nprocs: int, mem_gb: float | None) -> dict:
    """nipype plugin settings: MultiProc by default, or a YAML file (fMRIPrep format)."""
    if path is None:
        # forkserver: workers never inherit the parent's threads/locks (fork can deadlock)
        args: dict = {"n_procs": nprocs, "raise_insufficient": False,
                      "mp_context": "forkserver"}
        if mem_gb:
            args["memory_gb"] = mem_gb
        return {"plugin": "MultiProc" if nprocs > 1 else "Linear", "plugin_args": args}
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError as exc:
        raise CLIError(f"--use-plugin file {path} does not exist", P.EXIT_NO_INPUT) from exc
    except yaml.YAMLError as exc:
        raise CLIError(f"--use-plugin file {path} is not valid YAML: fix it", P.EXIT_USAGE) from exc
    if not isinstance(data, dict) or "plugin" not in data:
        raise CLIError(
            f"--use-plugin file {path} must define 'plugin' (and optionally 'plugin_args')",
            P.EXIT_USAGE,
        )
    data.setdefault("plugin_args", {})
    if not isinstance(data["plugin_args"], dict):
        raise CLIError(f"--use-plugin file {path}: 'plugin_args' must be a mapping", P.EXIT_USAGE)
    return {"plugin": str(data["plugin"]), "plugin_args": data["plugin_args"]}


def _check_model(path: Path) -> None:
    """Refuse an unsafe or malformed ``--model`` before any work starts (exit 65).

    Checkpoints are read with ``torch.load(weights_only=True)`` (a pickle that would run code is
    refused without running it) and their architecture is validated; TorchScript files are
    loaded. No tensor maths runs here: the parent process must not start torch's thread pool
    before nipype forks its workers.
    """
    from bids_stroke.model.checkpoint import ModelLoadError, _is_torchscript, load_checkpoint

    try:
        if _is_torchscript(path):
            from bids_stroke.model.checkpoint import load_model

            load_model(path, device="cpu")
        else:
            from bids_stroke.model.unet import UNetConfig

            ckpt = load_checkpoint(path)
            try:
                UNetConfig.from_dict(dict(ckpt["model_config"]))
            except (TypeError, ValueError) as exc:
                raise ModelLoadError(f"{path}: invalid model_config ({exc})") from exc
    except ModelLoadError as exc:
        raise CLIError(f"--model: {exc}", P.EXIT_BAD_DATA) from exc


def build_config(opts):
    """Resolve the command line and the pipeline into a :class:`RunConfig` (no writes)."""
    from bids_stroke.conditions import ConditionError, parse_conditions
    from bids_stroke.config import RunConfig, check_output_dir, default_work_dir
    from bids_stroke.discovery import DiscoveryError, load_bids_filters, normalize_label
    from bids_stroke.pipeline import PipelineError, load_pipeline

    bids_dir = Path(opts.bids_dir).absolute()
    output_dir = Path(opts.output_dir).absolute()
    if not bids_dir.is_dir():
        raise CLIError(f"BIDS directory {bids_dir} does not exist: check the path", P.EXIT_NO_INPUT)
    check_output_dir(bids_dir, output_dir)
    work_dir = Path(opts.work_dir).absolute() if opts.work_dir else default_work_dir(output_dir)
    from bids_stroke.config import is_within

    if is_within(work_dir, bids_dir) and not is_within(work_dir, bids_dir / "derivatives"):
        raise CLIError(
            f"work dir {work_dir} is inside the BIDS dataset {bids_dir}: choose another -w",
            P.EXIT_USAGE,
        )
    try:
        pipeline = load_pipeline(opts.pipeline)
        specs = opts.conditions or pipeline.conditions
        conditions = [c.spec for c in parse_conditions(specs)]
    except (PipelineError, ConditionError) as exc:
        raise CLIError(str(exc), P.EXIT_USAGE) from exc
    try:
        participants = (
            [normalize_label(x, "sub") for x in opts.participant_label]
            if opts.participant_label
            else None
        )
        sessions = (
            [normalize_label(x, "ses") for x in opts.session_label] if opts.session_label else None
        )
        filters = load_bids_filters(opts.bids_filter_file)
    except DiscoveryError as exc:
        raise CLIError(str(exc), exc.exit_code) from exc
    if opts.model is not None and not Path(opts.model).is_file():
        raise CLIError(
            f"--model {opts.model} does not exist: give a .pt checkpoint or .ts file",
            P.EXIT_NO_INPUT,
        )
    if opts.model is not None and "participant" in opts.analysis_level:
        _check_model(Path(opts.model))
    seg = pipeline.section("segmentation")
    outputs = pipeline.section("outputs")
    metrics = pipeline.section("metrics")
    # threads per node: share the cores among the parallel nodes (no oversubscription)
    omp = opts.omp_nthreads or max(1, min(8, (os.cpu_count() or 1) // opts.nprocs))
    return RunConfig(
        bids_dir=bids_dir,
        output_dir=output_dir,
        work_dir=work_dir,
        levels=list(dict.fromkeys(opts.analysis_level)),
        pipeline=pipeline,
        conditions=conditions,
        participant_label=participants,
        session_label=sessions,
        modality=opts.modality,
        bids_filters=filters,
        derivatives=[Path(d).absolute() for d in opts.derivatives],
        database_dir=Path(opts.bids_database_dir).absolute() if opts.bids_database_dir else None,
        nprocs=opts.nprocs,
        omp_nthreads=omp,
        mem_gb=opts.mem_gb,
        plugin=_load_plugin(opts.use_plugin, opts.nprocs, opts.mem_gb),
        stop_on_first_crash=opts.stop_on_first_crash,
        skip_bids_validation=opts.skip_bids_validation,
        model=Path(opts.model).absolute() if opts.model else None,
        device=opts.device,
        precision=opts.precision or seg["precision"],
        threshold=opts.threshold if opts.threshold is not None else float(seg["threshold"]),
        min_size=int(seg["min_size"]),
        tta=bool(seg["tta"]),
        inference_mode=seg["mode"],
        registration=opts.registration or pipeline.section("registration")["kind"],
        template_resolution=opts.template_resolution,
        connectivity=int(metrics["connectivity"]),
        tolerance_mm=float(metrics["tolerance_mm"]),
        save_degraded=(
            outputs["save_degraded"] if opts.save_degraded is None else opts.save_degraded
        ),
        save_degraded_masks=bool(outputs["save_degraded_masks"]),
        seed=opts.seed,
    )


def run_participant(config) -> int:
    """Validate, discover, preflight-check and run the participant workflow."""
    from bids_stroke.config import ensure_writable_dir
    from bids_stroke.discovery import DiscoveryError, collect_subjects, validate_dataset
    from bids_stroke.preflight import preflight_check

    try:
        if not config.skip_bids_validation:
            problems = validate_dataset(config.bids_dir)
            if problems:
                raise CLIError(
                    f"BIDS validation failed: {problems[0]}"
                    + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
                    + "; fix the dataset or pass --skip-bids-validation",
                    P.EXIT_VALIDATION,
                )
        subjects = collect_subjects(
            config.bids_dir,
            participant_label=config.participant_label,
            session_label=config.session_label,
            suffix=config.modality,
            derivatives=config.derivatives,
            bids_filters=config.bids_filters,
            database_dir=config.database_dir,
            exclude=[config.output_dir, config.work_dir],
        )
    except DiscoveryError as exc:
        raise CLIError(str(exc), exc.exit_code) from exc

    LOGGER.info("Found %d input image(s); checking them", len(subjects))
    good, bad = preflight_check(subjects, nprocs=config.nprocs)
    for subject, message in bad:
        print(f"bids_stroke: error: {subject.key}: {message}", file=sys.stderr)
    if not good:
        raise CLIError(
            f"no usable input among {len(subjects)} image(s) (see the errors above)",
            P.EXIT_BAD_DATA,
        )
    ensure_writable_dir(config.output_dir, "output directory")
    ensure_writable_dir(config.work_dir, "work directory")
    from bids_stroke.discovery import resolve_modality
    from bids_stroke.outputs import check_output_modality

    try:
        check_output_modality(config.output_dir, resolve_modality(config.modality))
    except ValueError as exc:
        raise CLIError(str(exc), P.EXIT_USAGE) from exc

    from bids_stroke.workflows.base import execute_participant_level

    failed = execute_participant_level(config, good, preflight_failures=bad)
    if bad and not failed:
        return P.EXIT_BAD_DATA
    return P.EXIT_FAILURE if failed or bad else P.EXIT_OK


def run_group_level(config) -> int:
    """Paired statistics over the participant-level derivatives in ``output_dir``."""
    from bids_stroke.group.run import GroupInputError, run_group

    if not config.output_dir.is_dir():
        raise CLIError(
            f"output_dir {config.output_dir} does not exist: run the participant level first",
            P.EXIT_NO_INPUT,
        )
    if not os.access(config.output_dir, os.W_OK):
        raise CLIError(f"output_dir {config.output_dir} is not writable", P.EXIT_CANT_CREATE)
    group = config.pipeline.section("group")
    try:
        report = run_group(
            config.output_dir,
            metrics=list(group["metrics"]),
            alpha=float(group["alpha"]),
            n_boot=int(group["n_boot"]),
            seed=config.seed,
            participant_label=config.participant_label,
        )
    except GroupInputError as exc:
        raise CLIError(str(exc), P.EXIT_NO_INPUT) from exc
    except ValueError as exc:  # inconsistent tables (e.g. duplicated rows), unknown metric
        raise CLIError(f"group level: {exc}", P.EXIT_BAD_DATA) from exc
    print(f"Group report: {report}")
    return P.EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``bids_stroke``; returns the exit code (BIDS-App execution spec)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # no telemetry/version look-ups over the network (offline HPC nodes, containers)
    os.environ.setdefault("NIPYPE_NO_ET", "1")
    if argv and argv[0] == "demo":
        from bids_stroke.cli.demo import main as demo_main

        return demo_main(argv[1:])
    if argv and argv[0] == "model":
        from bids_stroke.cli.model import main as model_main

        return model_main(argv[1:])
    if argv and argv[0] == "train":
        from bids_stroke.cli.train import main as train_main

        return train_main(argv[1:])

    opts = P.build_parser().parse_args(argv)
    _setup_logging(opts.verbose)
    from bids_stroke.config import OutputDirError

    try:
        config = build_config(opts)
        code = P.EXIT_OK
        for level in config.levels:
            if level == "participant":
                code = run_participant(config)
                if code not in (P.EXIT_OK,) and "group" in config.levels:
                    LOGGER.warning("participant level failed for some inputs; group level uses "
                                   "the subjects that succeeded")
            elif level == "group":
                group_code = run_group_level(config)
                code = code or group_code
        return code
    except (CLIError, OutputDirError) as exc:
        print(f"bids_stroke: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("bids_stroke: interrupted; re-run with the same -w to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
