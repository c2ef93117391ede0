"""Command-line parser following the BIDS-App conventions (cf. fMRIPrep's ``cli/parser.py``).

The options that set a setting are made from the settings' fields (:mod:`bids_stroke.cli.options`:
type, choices, help and default written once, on the field); this module places them in the
sections of ``--help`` and declares the few that set no single setting (files read into
settings, logging, the study file itself)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from bids_stroke.__about__ import __version__
from bids_stroke.cli.formatter import HelpFormatter
from bids_stroke.cli.options import add_options
from bids_stroke.core.settings import DEFAULT_STUDY

#: Exit codes of the BIDS-Apps execution specification.
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_VALIDATION = 16
EXIT_UNKNOWN_LEVEL = 17
EXIT_NOTHING_SELECTED = 18
EXIT_USAGE = 64
EXIT_BAD_DATA = 65
EXIT_NO_INPUT = 66
EXIT_CANT_CREATE = 73
EXIT_TEMPFAIL = 75  # a subject is locked by another run: try again later
EXIT_SIGINT = 130
EXIT_SIGTERM = 143

ANALYSIS_LEVELS = ("participant", "group")


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the BIDS-App exit codes: 64 for usage, 17 for an unknown level."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)  # as argparse does: stdout stays for results
        code = EXIT_USAGE
        if "analysis_level" in message and "invalid choice" in message:
            code = EXIT_UNKNOWN_LEVEL
        self.exit(code, f"{self.prog}: error: {message}\n")


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from exc
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be > 0")
    return number


class DeprecatedAlias(argparse.Action):
    """An old option name that still works: it sets the new option and says once, on stderr
    (as argparse's own ``deprecated=True`` of Python 3.13 does), which option replaces it."""

    def __init__(self, option_strings, dest, *, replacement: str, **kwargs) -> None:
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)
        self.replacement = replacement
        self._said = False

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        if not self._said:
            self._said = True
            sys.stderr.write(f"{parser.prog}: warning: option '{option_string}' is deprecated:"
                             f" use {self.replacement}\n")
        setattr(namespace, self.dest, values)


def add_study_option(group, help: str) -> None:
    """``--study NAME_OR_FILE`` (and its deprecated old name ``--pipeline``)."""
    group.add_argument("--study", default=None, metavar="NAME_OR_FILE", help=help)
    group.add_argument("--pipeline", dest="study", action=DeprecatedAlias, replacement="--study",
                       default=None, metavar="NAME_OR_FILE")


def add_reference_options(group) -> None:
    """``--reference`` and ``--reference-condition`` (the participant level and ``score``)."""
    add_options(group, "--reference", "--reference-condition")


def build_parser() -> ArgumentParser:
    """The ``bids_stroke BIDS_DIR OUTPUT_DIR {participant,group}`` parser."""
    parser = ArgumentParser(
        prog="bids_stroke",
        description=(
            "bids_stroke: how much does MRI spatial resolution change what a stroke lesion "
            "segmentation model sees? Degrades each T1w (crude decimation, linear resampling, "
            "thick slices, k-space truncation), segments every condition with a 3D U-Net and "
            "scores it against the native lesion mask (or, with --reference prediction, "
            "against the model's own native-resolution prediction).\n\n"
            "The defaults below are those of the default study, " + DEFAULT_STUDY + "; a study "
            "file given with --study replaces them, and the options given replace the study "
            "file's values.\n\n"
            "Other commands (see their --help): 'bids_stroke demo OUT' (demo dataset), "
            "'bids_stroke train BIDS_DIR OUT' (train a model), 'bids_stroke model info|export' "
            "(describe or export a model), 'bids_stroke export BIDS_DIR OUT' and "
            "'bids_stroke score BIDS_DIR OUT' (score any segmentation tool), "
            "'bids_stroke status OUT --participants-file FILE' (who completed, failed or is "
            "missing after a batch submission)."
        ),
        epilog=(
            "examples:\n"
            "  bids_stroke /data/bids /data/out participant group -w /scratch/work\n"
            "  bids_stroke /data/bids /data/out participant --participant-label 01 02\n\n"
            "A dataset folder named like a command (demo, train) is used as BIDS_DIR when an\n"
            "analysis level follows; 'bids_stroke -- demo OUT participant' or './demo' force it.\n"
            "Exit codes: 0 ok, 1 a subject failed, 16 validation, 17 unknown level, 18 nothing\n"
            "selected, 64 usage, 65 bad input data, 66 missing input, 73 cannot write output."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("bids_dir", type=Path, help="root of the input BIDS dataset")
    parser.add_argument(
        "output_dir",
        type=Path,
        help="where the BIDS-Derivatives are written (not inside bids_dir, except "
        "bids_dir/derivatives/...)",
    )
    parser.add_argument(
        "analysis_level",
        nargs="+",
        choices=ANALYSIS_LEVELS,
        help="'participant' (per subject), 'group' (paired statistics), or both in order",
    )
    parser.add_argument("--version", action="version", version=f"bids_stroke {__version__}")

    g_bids = parser.add_argument_group("Selecting the data")
    add_options(g_bids, "--participant-label", "--session-label", "--modality")
    g_bids.add_argument(
        "--bids-filter-file",
        type=Path,
        metavar="FILE",
        help='JSON file of extra pybids filters, e.g. {"t1w": {"acquisition": "mprage"}}',
    )
    add_options(g_bids, "--derivatives", "--bids-database-dir", "--skip-bids-validation")

    g_study = parser.add_argument_group("The study")
    from bids_stroke.core.study_files import available_studies

    add_study_option(g_study, "study definition: a YAML file or a bundled name "
                     f"({', '.join(available_studies())}) (default: {DEFAULT_STUDY})")
    add_options(g_study, "--conditions", "--reference", "--reference-condition",
                "--registration", "--template-resolution", "--no-degraded-images",
                "--save-probseg")

    g_group = parser.add_argument_group("Group level")
    add_options(g_group, "--compare", "--primary", "--margin", "--group-unit", "--strict")

    g_model = parser.add_argument_group("Segmentation model")
    add_options(g_model, "--model", "--device", "--precision", "--engine", "--threshold",
                "--channels", "--trust-model-code", "--allow-modality-mismatch", "--folds",
                "--checkpoint", "--seed")

    g_perf = parser.add_argument_group("Execution")
    add_options(g_perf, "-w", "--nprocs", "--omp-nthreads", "--mem-gb", "--max-image-gb")
    g_perf.add_argument(
        "--use-plugin",
        type=Path,
        metavar="FILE",
        help="nipype plugin YAML (e.g. plugin: SLURM, plugin_args: {...})",
    )
    add_options(g_perf, "--stop-on-first-crash")
    g_perf.add_argument(
        "--config-file",
        type=Path,
        metavar="FILE",
        help="replay a run: the logs/config-<run>.json it wrote replaces the defaults and the "
        "study file (options given here still override it)",
    )
    add_options(g_perf, "--clean", "--prepare", "--lock-wait")
    g_perf.add_argument(
        "--notrack", action="store_true", help="accepted for compatibility; nothing is sent"
    )
    g_perf.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more logging: -v adds debug messages and nipype's per-node messages, -vv "
        "everything",
    )
    return parser
