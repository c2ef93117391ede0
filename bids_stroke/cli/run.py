"""``bids_stroke`` entry point: parse, build the settings, run the levels (thin).

The subcommands (``bids_stroke demo|train|model|export|score|status``) are routed by
:mod:`bids_stroke.cli.subcommands`; building the settings is :mod:`bids_stroke.cli.config`; the
participant level is :mod:`bids_stroke.cli.participant`; the group level is
:mod:`bids_stroke.group`; how a run ends (one line, its exit code) is
:mod:`bids_stroke.cli.guard`.
"""

from __future__ import annotations

import gc
import importlib
import inspect
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from bids_stroke.cli import parser as P
from bids_stroke.cli.config import CLIError, cannot_write
from bids_stroke.cli.guard import run_guarded
from bids_stroke.cli.subcommands import SUBCOMMANDS, subcommand
from bids_stroke.core.progress import setup_logging

LOGGER = logging.getLogger("bids_stroke")


def run_group_level(settings) -> int:
    """Paired statistics over the committed participant-level derivatives."""
    out = settings.data.output_dir
    group = settings.group
    if group.compare:  # the compared datasets are elsewhere: OUT only receives results
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CLIError(f"cannot create output_dir {out}: {exc.strerror}",
                           P.EXIT_CANT_CREATE) from exc
    if not out.is_dir():
        raise CLIError(f"output_dir {out} does not exist: run the participant level first",
                       P.EXIT_NO_INPUT)
    if not os.access(out, os.W_OK):
        raise CLIError(f"output_dir {out} is not writable", P.EXIT_CANT_CREATE)
    from bids_stroke.group.collect import GroupDataError  # pandas, scipy, matplotlib
    from bids_stroke.group.run import GroupInputError, run_group

    try:
        report = run_group(
            out,
            metrics=list(group.metrics),
            alpha=float(group.alpha),
            n_boot=int(group.n_boot),
            seed=settings.execution.seed,
            participant_label=list(settings.data.participant_label or []) or None,
            unit=group.unit,
            compare=dict(group.compare) if group.compare else None,
            conditions=list(settings.study.conditions),
            primary=group.primary,
            margins=dict(group.margins),
            digits_rank=group.digits_rank,
            bland_altman=group.bland_altman,
            pairs=list(group.pairs) if group.pairs else None,
            strict=bool(group.strict),
        )
    except GroupDataError as exc:  # malformed tables or impossible values: bad input data
        raise CLIError(f"group level: {exc}", P.EXIT_BAD_DATA) from exc
    except GroupInputError as exc:  # no participant-level outputs at all
        raise CLIError(str(exc), P.EXIT_NO_INPUT) from exc
    except ValueError as exc:  # inconsistent tables, out-of-range values, unknown metric
        raise CLIError(f"group level: {exc}", P.EXIT_BAD_DATA) from exc
    except OSError as exc:
        raise cannot_write(out, exc, what="group level: ") from exc
    print(f"Group report: {report}")
    return P.EXIT_OK


def _run_subcommand(name: str, argv: list[str]) -> int:
    sub_main = importlib.import_module(SUBCOMMANDS[name]).main
    if "prog" in inspect.signature(sub_main).parameters:
        return int(sub_main(argv, prog=f"bids_stroke {name}"))
    return int(sub_main(argv))


ENV_ITK_THREADS = "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"


def _write_roots(opts) -> list[Path]:
    """The folders a run writes into (to name the one a failed write was in)."""
    from bids_stroke.cli.config import default_work_dir
    from bids_stroke.outputs.commit import staging_root

    out = Path(opts.output_dir).absolute()
    roots = [out, staging_root(out), default_work_dir("run").parent]
    if getattr(opts, "work_dir", None):
        roots.append(Path(opts.work_dir).absolute())
    return roots


def _environment_failure(exc: OSError, roots: Sequence[Path]) -> str | None:
    """The one line for a failed write in one of ``roots`` (full disk, quota, read-only,
    permission, file-size limit), else ``None`` (e.g. an unreadable input: not ours)."""
    from bids_stroke.core.write_errors import environment_error

    failure = environment_error(exc)
    if failure is None or not failure.is_write_in(roots):
        return None
    return failure.message(roots, "the output or work folder")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``bids_stroke``; returns the exit code (BIDS-App execution spec)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # no telemetry/version look-ups over the network (offline HPC nodes, containers)
    os.environ.setdefault("NIPYPE_NO_ET", "1")
    sub = subcommand(argv)
    if sub is not None:
        os.environ.setdefault(ENV_ITK_THREADS, "1")
        return _run_subcommand(sub, argv[1:])
    if argv[:1] == ["--"]:
        argv = argv[1:]

    opts = None

    def write_failure(exc: OSError) -> str | None:
        return _environment_failure(exc, _write_roots(opts)) if opts is not None else None

    def levels() -> int:  # SIGTERM/SIGINT from here on: one line, exit 143/130
        nonlocal opts
        opts = P.build_parser().parse_args(argv)
        from bids_stroke.core.progress import ENV_VERBOSITY

        os.environ[ENV_VERBOSITY] = str(int(opts.verbose))  # read by nipype's worker processes
        setup_logging(opts.verbose)
        return _run_levels(opts, argv)

    return run_guarded(levels, write_failure=write_failure)


def _run_levels(opts, argv: Sequence[str]) -> int:
    """The settings of the command line, then its levels in order; returns the exit code."""
    from bids_stroke.cli.config import settings_from_cli

    settings = settings_from_cli(opts, argv)
    # ITK (ANTs registration) reads its thread count once per process from the
    # environment; worker processes inherit it. A value the user exported wins.
    os.environ.setdefault(ENV_ITK_THREADS, str(settings.execution.omp_nthreads))
    if "participant" in settings.execution.levels:
        from bids_stroke.cli.references import check_reference_settings, refuse_without_any_mask

        check_reference_settings(settings)
        refuse_without_any_mask(settings)  # before the model and pybids: milliseconds
    code = P.EXIT_OK
    for level in settings.execution.levels:
        if level == "participant":
            from bids_stroke.cli.participant import run_participant

            code = run_participant(settings)
            if settings.execution.prepare:
                return code
            if code != P.EXIT_OK and "group" in settings.execution.levels:
                LOGGER.warning("participant level failed for some inputs; the group level "
                               "uses the subjects that were committed")
        elif level == "group":
            group_code = run_group_level(settings)
            code = code or group_code
    return code


def console_main() -> NoReturn:
    """Entry point of the ``bids_stroke`` command: :func:`main`, then exit with its code.

    What is still alive is first frozen out of the cyclic garbage collector, so interpreter
    shutdown does not walk the objects of numpy, pandas, scipy, matplotlib and torch once more
    (0.2-0.3 s, a sixth of the group level's fixed cost: bench/bench_group.py). atexit handlers
    and finalizers still run; nothing is skipped but that last collection.
    """
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    console_main()
