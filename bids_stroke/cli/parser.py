"""Command-line parser following the BIDS-App conventions (cf. fMRIPrep's ``cli/parser.py``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from bids_stroke.__about__ import __version__

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

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage()
        code = EXIT_USAGE
        if "analysis_level" in message and "invalid choice" in message:
            code = EXIT_UNKNOWN_LEVEL
        self.exit(code, f"{self.prog}: error: {message}\n")


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from exc
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} must be >= 1")
    return number


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from exc
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be > 0")
    return number


def build_parser() -> ArgumentParser:
    """The ``bids_stroke BIDS_DIR OUTPUT_DIR {participant,group}`` parser."""
    parser = ArgumentParser(
        prog="bids_stroke",
        description=(
            "bids_stroke: how much does MRI spatial resolution change what a stroke lesion "
            "segmentation model sees? Degrades each T1w (crude decimation, linear resampling, "
            "thick slices, k-space truncation), segments every condition with a 3D U-Net and "
            "scores it against the native lesion mask. Other entry points: "
            "'bids_stroke demo OUT' (demo dataset) and 'bids_stroke train BIDS_DIR OUT' "
            "(train a model)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
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
    g_bids.add_argument(
        "--participant-label",
        "--participant_label",
        dest="participant_label",
        nargs="+",
        metavar="LABEL",
        help="subjects to process, with or without 'sub-' (default: all)",
    )
    g_bids.add_argument(
        "--session-label",
        "--session_label",
        dest="session_label",
        nargs="+",
        metavar="LABEL",
        help="sessions to process, with or without 'ses-' (default: all)",
    )
    g_bids.add_argument(
        "--modality",
        default=None,
        help="BIDS suffix of the image to segment: T1w (ATLAS), FLAIR/dwi/adc (ISLES'22)",
    )
    g_bids.add_argument(
        "--bids-filter-file",
        type=Path,
        metavar="FILE",
        help='JSON file of extra pybids filters, e.g. {"t1w": {"acquisition": "mprage"}}',
    )
    g_bids.add_argument(
        "--derivatives",
        nargs="+",
        type=Path,
        default=None,
        metavar="PATH",
        help="extra folders searched for lesion masks (bids_dir/derivatives is always searched)",
    )
    g_bids.add_argument(
        "--bids-database-dir",
        type=Path,
        metavar="PATH",
        help="persistent pybids database folder, so large datasets are indexed once",
    )
    g_bids.add_argument(
        "--skip-bids-validation",
        "--skip_bids_validation",
        dest="skip_bids_validation",
        action="store_true",
        default=None,
        help="skip the structural check of the input dataset",
    )

    g_study = parser.add_argument_group("The study")
    g_study.add_argument(
        "--pipeline",
        default=None,
        metavar="NAME_OR_FILE",
        help="study definition: a YAML file or a bundled name (atlas_resolution, "
        "clinical_slices, kspace_vs_interpolation)",
    )
    g_study.add_argument(
        "--conditions",
        nargs="+",
        metavar="SPEC",
        help="resolution conditions, overriding the pipeline's, e.g. native crude:2 linear:2 "
        "thick:5 thick:5:gap=1 kspace:2",
    )
    g_study.add_argument(
        "--registration",
        choices=("affine", "rigid", "syn"),
        help="registration to MNI152NLin2009aSym when the image is not already there "
        "(default: the pipeline's, affine)",
    )
    g_study.add_argument(
        "--template-resolution",
        type=int,
        choices=(1, 2),
        default=None,
        help="resolution (mm) of the MNI152NLin2009aSym grid that native-space images are "
        "registered to",
    )
    g_study.add_argument(
        "--no-degraded-images",
        dest="save_degraded",
        action="store_false",
        default=None,
        help="do not write the degraded T1w images (masks and maps are always written)",
    )

    g_model = parser.add_argument_group("Segmentation model")
    g_model.add_argument(
        "--model",
        type=Path,
        metavar="FILE",
        help="bids_stroke checkpoint (.pt) or TorchScript model (.ts); default: bundled model",
    )
    g_model.add_argument(
        "--device",
        default=None,
        metavar="DEVICE",
        help="auto (CUDA when present), cpu, cuda or cuda:N (default: auto)",
    )
    g_model.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16", "fp16"),
        default=None,
        help="inference precision; 'auto' uses AMP on GPU and bf16 on CPUs with AMX",
    )
    g_model.add_argument(
        "--threshold",
        default=None,
        metavar="P",
        help="probability threshold: voxels with probability >= P are lesion (default: the "
        "study's, 0.5); checked exactly like a study file's segmentation.threshold",
    )
    g_model.add_argument(
        "--channels",
        nargs="+",
        metavar="SUFFIX",
        help="the model's input channels as BIDS suffixes, in order (e.g. dwi adc); default: "
        "what the model declares",
    )
    g_model.add_argument(
        "--trust-model-code",
        action="store_true",
        default=None,
        help="allow a model file whose loading runs pickled code (nnU-Net checkpoints saved "
        "with custom classes); only for files you trust",
    )
    g_model.add_argument(
        "--allow-modality-mismatch",
        action="store_true",
        default=None,
        help="run the model on an image whose modality differs from the model's channels "
        "(warned in every report)",
    )
    g_model.add_argument(
        "--folds",
        nargs="+",
        metavar="FOLD",
        help="nnU-Net folds to ensemble (default: the folders present), e.g. 0 1 2 3 4 or all",
    )
    g_model.add_argument(
        "--checkpoint",
        choices=("final", "best"),
        default=None,
        help="nnU-Net checkpoint_final.pth or checkpoint_best.pth (default: final)",
    )
    g_model.add_argument("--seed", type=int, default=None,
                         help="seed for everything random (default: 0)")

    g_perf = parser.add_argument_group("Execution")
    g_perf.add_argument(
        "-w",
        "--work-dir",
        type=Path,
        metavar="PATH",
        help="nipype work folder; a re-run with the same folder resumes "
        "(default: $TMPDIR/bids_stroke_work/<hash of output_dir>)",
    )
    g_perf.add_argument(
        "--nprocs",
        "--nthreads",
        dest="nprocs",
        type=_positive_int,
        default=None,
        help=f"processes for nipype's MultiProc plugin (default: {os.cpu_count() or 1}, the "
        "CPUs of this machine)",
    )
    g_perf.add_argument(
        "--omp-nthreads", type=_positive_int, default=None, help="threads per process"
    )
    g_perf.add_argument(
        "--mem-gb", "--mem_gb", dest="mem_gb", type=_positive_float, help="memory limit (GB)"
    )
    g_perf.add_argument(
        "--use-plugin",
        type=Path,
        metavar="FILE",
        help="nipype plugin YAML (e.g. plugin: SLURM, plugin_args: {...})",
    )
    g_perf.add_argument(
        "--stop-on-first-crash",
        action="store_true",
        default=None,
        help="stop at the first failing node instead of continuing with the other subjects",
    )
    g_perf.add_argument(
        "--config-file",
        type=Path,
        metavar="FILE",
        help="replay a run: the logs/config-<run>.json it wrote replaces the defaults and the "
        "study file (options given here still override it)",
    )
    g_perf.add_argument(
        "--clean",
        action="store_true",
        default=None,
        help="remove (and list) results of conditions the current study no longer has; "
        "without it re-runs only add or replace conditions",
    )
    g_perf.add_argument(
        "--prepare",
        action="store_true",
        default=None,
        help="only check the inputs, index the dataset (--bids-database-dir) and write the "
        "dataset-level files, then exit (run once before a SLURM array)",
    )
    g_perf.add_argument(
        "--lock-wait",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="wait up to this long for a subject locked by another run (default: do not wait; "
        "the subject is skipped with exit code 75)",
    )
    g_perf.add_argument(
        "--notrack", action="store_true", help="accepted for compatibility; nothing is sent"
    )
    g_perf.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    return parser
