"""Command-line parser following the BIDS-App conventions (cf. fMRIPrep's ``cli/parser.py``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bids_stroke.__about__ import __version__
from bids_stroke.cli.formatter import HelpFormatter
from bids_stroke.settings import TEMPLATE

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
        self.print_usage(sys.stderr)  # as argparse does: stdout stays for results
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


def add_reference_options(group, *, what: str = "the model") -> None:
    """``--reference`` and ``--reference-condition`` (the participant level and ``score``)."""
    group.add_argument(
        "--reference",
        choices=("mask", "prediction", "auto"),
        default=None,
        help="what each prediction is scored against: 'mask', the image's lesion mask "
        "(accuracy; images without one are not run); 'prediction', " + what + "'s own "
        "prediction at --reference-condition (agreement, no mask needed; that condition is not "
        "scored against itself); 'auto', the mask where there is one, else the prediction "
        "(default: the study file's reference, mask)",
    )
    group.add_argument(
        "--reference-condition",
        default=None,
        metavar="SPEC",
        help="the condition whose prediction is the reference of --reference prediction/auto; "
        "it must be one of the conditions (default: native)",
    )


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
        help="BIDS suffix of the reference image (the grid of its lesion mask): T1w (ATLAS), "
        "FLAIR, dwi or adc (ISLES'22) (default: the model's first channel, T1w for the bundled "
        "model)",
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
    add_study_option(
        g_study,
        "study definition: a YAML file or a bundled name (atlas_resolution, clinical_slices, "
        "kspace_vs_interpolation)",
    )
    g_study.add_argument(
        "--conditions",
        nargs="+",
        metavar="SPEC",
        help="resolution conditions, overriding the study's, e.g. native crude:2 linear:2 "
        "thick:5 thick:5:gap=1 kspace:2",
    )
    add_reference_options(g_study)
    g_study.add_argument(
        "--registration",
        choices=("affine", "rigid", "syn"),
        help=f"registration to {TEMPLATE} when the image is not already there "
        "(default: the pipeline's, affine)",
    )
    g_study.add_argument(
        "--template-resolution",
        type=int,
        choices=(1, 2),
        default=None,
        help=f"resolution (mm) of the {TEMPLATE} grid that native-space images are "
        "registered to (default: 1)",
    )
    g_study.add_argument(
        "--no-degraded-images",
        dest="save_degraded",
        action="store_false",
        default=None,
        help="do not write the degraded T1w images (masks are always written)",
    )
    g_study.add_argument(
        "--save-probseg",
        choices=("none", "compact", "full"),
        default=None,
        help="how lesion probability maps are written: compact (16-bit, within 1e-4 of the "
        "model's output, below 1e-4 stored as 0; ~40x smaller), full (float32 as computed) or "
        "none; masks and metrics are identical in every mode (default: the study file's, "
        "compact)",
    )

    g_group = parser.add_argument_group("Group level")
    g_group.add_argument(
        "--compare",
        nargs="+",
        metavar="LABEL=DIR",
        help="compare datasets: participant-level output folders with a label each, e.g. "
        "ATLAS=/out_atlas ISLES=/out_isles (unpaired tests per condition; default: the study "
        "file's group.compare); LABEL=DIR:native,crude2 compares only those conditions of that "
        "dataset, with every condition of the others (ISLES=/out_isles:native ATLAS=/out_atlas: "
        "ISLES native against each ATLAS condition)",
    )
    g_group.add_argument(
        "--primary",
        metavar="METRIC",
        help="primary metric: its comparisons with the reference condition are the "
        "confirmatory family and head the findings (default: the study file's group.primary, "
        "dice)",
    )
    g_group.add_argument(
        "--margin",
        action="append",
        metavar="METRIC=VALUE",
        help="equivalence margin of a metric in its own units, e.g. dice=0.05 or hd95=2; "
        "repeat for several metrics; added to the study file's group.margins (default: "
        "dice=0.05, a starting point to change, not a clinical truth)",
    )
    g_group.add_argument(
        "--group-unit",
        choices=("participant", "image"),
        default=None,
        help="statistical unit: 'participant' averages a participant's sessions/runs before "
        "the tests, 'image' keeps every image (default: the study file's group.unit, "
        "participant)",
    )
    g_group.add_argument(
        "--strict",
        action="store_true",
        default=None,
        help="exit 66 and write nothing when an image of output_dir is incomplete (a run "
        "killed before its commit, a quarantined journal, files changed after their commit); "
        "default: leave it out and name it in one line and in the report",
    )

    g_model = parser.add_argument_group("Segmentation model")
    g_model.add_argument(
        "--model",
        type=Path,
        metavar="FILE",
        help="the model: a bids_stroke checkpoint (.pt), a TorchScript file, an ONNX file or an "
        "nnU-Net v2 trained-model folder (default: the bundled model); see 'bids_stroke model "
        "info MODEL'",
    )
    g_model.add_argument(
        "--device",
        default=None,
        metavar="DEVICE",
        help="where the model runs: auto (CUDA when available, else the CPU), cpu, cuda or "
        "cuda:N (default: auto)",
    )
    g_model.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16", "fp16"),
        default=None,
        help="inference precision; auto uses AMP on GPU and bf16 on CPUs with AMX "
        "(default: the pipeline's, auto)",
    )
    g_model.add_argument(
        "--engine",
        choices=("auto", "torch", "openvino"),
        default=None,
        help="engine of fp32 inference on the CPU (bids_stroke checkpoints): auto uses "
        "OpenVINO when installed (1.4x faster here, checked to give torch's masks), else "
        "torch (default: auto)",
    )
    g_model.add_argument(
        "--threshold",
        default=None,
        metavar="P",
        help="probability threshold: voxels with probability >= P are lesion (default: the "
        "study file's segmentation.threshold if it sets one, else the model's own: 0.5 for "
        "the bundled model, what 'bids_stroke model info MODEL' prints for yours); checked "
        "exactly like a study file's segmentation.threshold",
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
        help="nipype work folder; a re-run with the same folder resumes, and two runs never "
        "share one (default: a new $TMPDIR/bids_stroke-<user>/<run id>, removed after a fully "
        "successful run and named in the log otherwise)",
    )
    g_perf.add_argument(
        "--nprocs",
        "--nthreads",
        dest="nprocs",
        type=_positive_int,
        default=None,
        help="processes for nipype's MultiProc plugin; the segmentation uses all of them, one "
        "image at a time; one process below 4 CPUs, where a second was slower (default: half "
        "the CPUs this process may use, at least 1)",
    )
    g_perf.add_argument(
        "--omp-nthreads",
        type=_positive_int,
        default=None,
        metavar="N",
        help="threads per process (default: CPUs / --nprocs, at most 8)",
    )
    g_perf.add_argument(
        "--mem-gb",
        "--mem_gb",
        dest="mem_gb",
        type=_positive_float,
        metavar="GB",
        help="memory nipype may schedule (default: no limit)",
    )
    g_perf.add_argument(
        "--max-image-gb",
        type=_positive_float,
        metavar="GB",
        help="largest image accepted, as the data size its header declares (voxels x bytes "
        "per voxel), checked before anything is decompressed (default: 1 GiB or a quarter of "
        "--mem-gb or of the available memory, whichever is smaller)",
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
        help="participant level only: validate and check the inputs, build the pybids database "
        "(--bids-database-dir) and write the dataset-level files of output_dir, then exit "
        "without processing anyone. Run it once before a SLURM array, whose tasks then only "
        "read them",
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
    g_perf.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more logging: -v adds debug messages and nipype's per-node messages, -vv "
        "everything",
    )
    return parser
