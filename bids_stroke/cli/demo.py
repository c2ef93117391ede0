"""``bids_stroke demo`` (also ``bids_stroke-demo``): write a synthetic stroke-lesion BIDS dataset.

Re-running the same command reuses the dataset (same options, files unmodified: see
:mod:`bids_stroke.demo.state`); ``--force`` regenerates it.

Examples
--------
.. code-block:: console

   $ bids_stroke demo /tmp/demo --n-subjects 4 --resolution 2
   /tmp/demo
   $ bids_stroke demo /tmp/demo_real --lesion-masks /data/lesions --resolution 2
   /tmp/demo_real
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from bids_stroke.__about__ import __version__
from bids_stroke.cli.formatter import HelpFormatter
from bids_stroke.cli.parser import ArgumentParser
from bids_stroke.core.settings import TEMPLATE

EXIT_CANTCREAT = 73  # sysexits.h EX_CANTCREAT: output exists / cannot be created
EXIT_USAGE = 64  # sysexits.h EX_USAGE

_GENERATOR_NAME = "bids_stroke demo"


def build_parser(prog: str = "bids_stroke-demo") -> argparse.ArgumentParser:
    """Argument parser of the demo command."""
    parser = ArgumentParser(  # usage errors exit 64
        prog=prog,
        description=(
            "Write a small synthetic stroke-lesion BIDS dataset (ATLAS v2.0 naming, "
            f"{TEMPLATE} grid) for demos, tests and model training."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("out", type=Path, help="output dataset root")
    parser.add_argument(
        "--n-subjects", type=int, default=6, metavar="N", help="number of subjects"
    )
    parser.add_argument(
        "--seed", type=int, default=0, metavar="S", help="seed: the same seed, the same bytes"
    )
    parser.add_argument(
        "--resolution",
        type=float,
        default=1.0,
        metavar="MM",
        help="isotropic voxel size in mm, 0.5-8; file names do not change",
    )
    parser.add_argument(
        "--layout",
        choices=("atlas", "plain"),
        default="atlas",
        help="atlas: sub-r001s001 with masks beside the T1w (default); "
        "plain: sub-01 with masks in derivatives/lesions",
    )
    parser.add_argument(
        "--no-sessions",
        dest="sessions",
        action="store_false",
        default=None,
        help="omit the ses-1 level (the plain layout has none by default)",
    )
    parser.add_argument(
        "--subject-offset",
        type=int,
        default=0,
        metavar="K",
        help="number subjects from K+1 (disjoint sets for training/testing)",
    )
    parser.add_argument(
        "--lesion-masks",
        metavar="DIR_OR_GLOB",
        default=None,
        help="take the lesion shapes from real binary masks in MNI space: a folder of "
        "NIfTI files, a glob ('masks/*.nii.gz') or one file; each subject gets one mask, "
        "resampled onto the demo grid (default: synthetic lesions)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty OUT (a previous demo dataset there is removed first); "
        "without it, OUT holding the dataset these options make is reused",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no progress bar (the path is still printed)"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _is_demo_dataset(root: Path) -> bool:
    """Whether ``root`` holds a dataset written by :func:`bids_stroke.demo.make_demo_dataset`."""
    try:
        desc = json.loads((root / "dataset_description.json").read_text())
    except (OSError, ValueError):
        return False
    generated = desc.get("GeneratedBy") if isinstance(desc, dict) else None
    return isinstance(generated, list) and any(
        isinstance(g, dict) and g.get("Name") == _GENERATOR_NAME for g in generated
    )


def _print_warnings(prog: str, caught: Sequence[warnings.WarningMessage]) -> None:
    for warning in caught:
        print(f"{prog}: warning: {warning.message}", file=sys.stderr)


def _check_out(prog: str, out: Path, options: dict, force: bool) -> int | None:
    """Exit status when OUT cannot be written (or is reused: 0); None to generate."""
    from bids_stroke.demo.state import STATE_FILE, describe, reuse_problem

    if out.exists() and not out.is_dir():
        print(f"{prog}: {out} exists and is not a directory", file=sys.stderr)
        return EXIT_CANTCREAT
    if not (out.is_dir() and any(out.iterdir())):
        return None
    is_demo = _is_demo_dataset(out) or (out / STATE_FILE).is_file()
    if not force:
        problem = reuse_problem(out, options)
        if problem is None:
            print(f"{prog}: {out} already holds this demo dataset ({describe(options)}); "
                  "reusing it (--force regenerates it)", file=sys.stderr)
            print(out.absolute())
            return 0
        hint = f"it holds a demo dataset that cannot be reused: {problem}" if is_demo else (
            "it is not empty")
        print(f"{prog}: {out}: {hint}; use --force to write into it", file=sys.stderr)
        return EXIT_CANTCREAT
    if is_demo:
        # Only a dataset this command wrote is removed, never arbitrary content.
        shutil.rmtree(out)
    return None


def main(argv: Sequence[str] | None = None, *, prog: str = "bids_stroke-demo") -> int:
    """Run the demo command; returns the process exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).
    prog : str
        Name in usage and messages (``bids_stroke demo`` when run as a subcommand).

    Returns
    -------
    int
        0 on success, also when OUT already holds the dataset these options make (it is
        reused: same options, every file unmodified); 73 when OUT is a file or a non-empty
        directory holding anything else and ``--force`` was not given; 2 (argparse) or 64
        on invalid option values.
    """
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    out: Path = args.out.expanduser()
    # Check values before anything on disk is touched (argparse exits with status 2).
    if args.n_subjects < 1:
        parser.error("--n-subjects must be >= 1")
    if args.seed < 0:
        parser.error("--seed must be >= 0")
    if args.subject_offset < 0:
        parser.error("--subject-offset must be >= 0")
    if not 0.5 <= args.resolution <= 8.0:
        parser.error("--resolution must be between 0.5 and 8 mm")

    from bids_stroke.demo import find_lesion_masks, make_demo_dataset
    from bids_stroke.demo.state import demo_options

    lesion_masks = None
    if args.lesion_masks is not None:
        try:
            lesion_masks = find_lesion_masks(args.lesion_masks)
        except ValueError as exc:
            print(f"{prog}: {exc}", file=sys.stderr)
            return EXIT_USAGE
    options = demo_options(
        n_subjects=args.n_subjects, seed=args.seed, resolution_mm=args.resolution,
        layout=args.layout, sessions=args.sessions, subject_offset=args.subject_offset,
        lesion_masks=lesion_masks,
    )
    code = _check_out(prog, out, options, args.force)
    if code is not None:
        return code

    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            root = make_demo_dataset(
                out,
                n_subjects=args.n_subjects,
                seed=args.seed,
                resolution_mm=args.resolution,
                layout=args.layout,
                sessions=args.sessions,
                subject_offset=args.subject_offset,
                progress=not args.quiet,
                lesion_masks=lesion_masks,
            )
    except ValueError as exc:
        _print_warnings(prog, caught)
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        _print_warnings(prog, caught)
        print(f"{prog}: cannot write {out}: {exc}", file=sys.stderr)
        return EXIT_CANTCREAT
    _print_warnings(prog, caught)
    print(root)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
