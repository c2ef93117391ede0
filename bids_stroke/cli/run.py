"""``bids_stroke`` entry point: parse, build the settings, run the levels (thin).

Building the settings is :mod:`bids_stroke.cli.config`; the participant level is
:mod:`bids_stroke.cli.participant`; the group level is :mod:`bids_stroke.group`.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Sequence

from bids_stroke.cli import parser as P
from bids_stroke.cli.config import CLIError

LOGGER = logging.getLogger("bids_stroke")
SUBCOMMANDS = ("demo", "train", "model", "export", "score")


def _setup_logging(verbose: int) -> None:
    from bids_stroke.runner import quiet_nipype

    level = logging.INFO if verbose == 0 else logging.DEBUG
    logging.basicConfig(
        level=level,
        format="%(asctime)s [%(name)s] %(levelname)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    logging.getLogger("bidsschematools").setLevel(logging.WARNING)
    quiet_nipype(verbose)


def run_group_level(settings) -> int:
    """Paired statistics over the committed participant-level derivatives."""
    from bids_stroke.group.run import GroupInputError, run_group

    out = settings.data.output_dir
    if not out.is_dir():
        raise CLIError(f"output_dir {out} does not exist: run the participant level first",
                       P.EXIT_NO_INPUT)
    if not os.access(out, os.W_OK):
        raise CLIError(f"output_dir {out} is not writable", P.EXIT_CANT_CREATE)
    group = settings.group
    try:
        report = run_group(
            out,
            metrics=list(group.metrics),
            alpha=float(group.alpha),
            n_boot=int(group.n_boot),
            seed=settings.execution.seed,
            participant_label=list(settings.data.participant_label or []) or None,
        )
    except GroupInputError as exc:
        raise CLIError(str(exc), P.EXIT_NO_INPUT) from exc
    except ValueError as exc:  # inconsistent tables, out-of-range values, unknown metric
        raise CLIError(f"group level: {exc}", P.EXIT_BAD_DATA) from exc
    except OSError as exc:
        raise CLIError(f"group level: cannot write into {out} ({exc.strerror}); free space or "
                       "fix permissions and re-run", P.EXIT_CANT_CREATE) from exc
    print(f"Group report: {report}")
    return P.EXIT_OK


def _route(argv: list[str]) -> int | None:
    """``bids_stroke demo|train|model|export|score ...``: only when the first word is exactly
    that and no folder of that name exists here (a dataset called ``demo`` stays a dataset)."""
    if not argv or argv[0] not in SUBCOMMANDS or os.path.isdir(argv[0]):
        return None
    if argv[0] == "demo":
        from bids_stroke.cli.demo import main as sub_main
    elif argv[0] == "train":
        from bids_stroke.cli.train import main as sub_main
    elif argv[0] in ("export", "score"):  # other tools: export conditions, score predictions
        from importlib import import_module

        sub_main = import_module(f"bids_stroke.cli.{argv[0]}").main
    else:
        from bids_stroke.cli.model import main as sub_main
    return sub_main(argv[1:])


def _on_signal(signum: int, _frame) -> None:
    from bids_stroke.runner import Interrupted

    raise Interrupted(signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``bids_stroke``; returns the exit code (BIDS-App execution spec)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # no telemetry/version look-ups over the network (offline HPC nodes, containers)
    os.environ.setdefault("NIPYPE_NO_ET", "1")
    routed = _route(argv)
    if routed is not None:
        return routed

    opts = P.build_parser().parse_args(argv)
    _setup_logging(opts.verbose)
    from bids_stroke.runner import Interrupted

    old = signal.signal(signal.SIGTERM, _on_signal)
    try:
        from bids_stroke.cli.config import settings_from_cli

        settings = settings_from_cli(opts, argv)
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
    except CLIError as exc:
        print(f"bids_stroke: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except (KeyboardInterrupt, Interrupted) as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        print(f"bids_stroke: error: interrupted by {signal.Signals(signum).name}; nothing was "
              "left half-written: re-run the same command to resume", file=sys.stderr)
        return P.EXIT_SIGTERM if signum == signal.SIGTERM else P.EXIT_SIGINT
    finally:
        signal.signal(signal.SIGTERM, old)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
