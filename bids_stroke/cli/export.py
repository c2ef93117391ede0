"""``bids_stroke export BIDS_DIR OUT``: every condition as a BIDS dataset for other tools.

A subcommand rather than a participant-level flag: exporting needs no model, no template, no
registration and no nipype graph, and its output (``OUT/conditions/<label>/``, one dataset per
condition, see :mod:`bids_stroke.external.export`) is meant for another program. The options it
shares with the participant level (selection, study, ``--channels``) go through the same settings
checks (:func:`bids_stroke.cli.config.settings_from_cli`).

Order, as for the participant level: discovery and every input check first (nothing is
written before they pass for at least one input), then per subject: lock, degrade, commit
(:mod:`bids_stroke.cli.image_loop`); last, the dataset-level files of every condition,
rewritten from the committed manifests.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from bids_stroke.cli import parser as P
from bids_stroke.cli.common_options import add_common_options, settings_for
from bids_stroke.cli.config import CLIError
from bids_stroke.cli.formatter import HelpFormatter
from bids_stroke.cli.guard import run_guarded
from bids_stroke.cli.image_loop import ImageLoop, dataset_locked
from bids_stroke.cli.inputs import discover, print_refused
from bids_stroke.core.progress import setup_logging

LOGGER = logging.getLogger("bids_stroke")


def build_parser() -> argparse.ArgumentParser:
    parser = P.ArgumentParser(
        prog="bids_stroke export",
        description="Write every resolution condition as a BIDS dataset "
        "(OUT/conditions/<label>/) that another segmentation tool (a BIDS-App, a container) "
        "can read unchanged: the input's names, folders and voxel grids, each image degraded "
        "on its own grid exactly as the participant level does for native-space models. "
        "Score the tool's predictions with 'bids_stroke score'.",
        formatter_class=HelpFormatter,
    )
    add_common_options(parser)
    parser.add_argument("--channels", nargs="+", metavar="SUFFIX",
                        help="every image of a session to export, as BIDS suffixes (e.g. dwi "
                        "adc); all are degraded by the same condition (default: the reference "
                        "image only)")
    return parser


def _export_all(settings, subjects, conditions, roots) -> ImageLoop:
    """Lock, export and commit each subject (:class:`ImageLoop`)."""
    from bids_stroke.external.export import ExportError, export_root, export_subject, is_derivative
    from bids_stroke.outputs.commit import CommitError

    root = export_root(settings.data.output_dir)
    derivative = is_derivative(roots)
    run = settings.execution.run_uuid
    by_key = {s.key: s for s in subjects}

    def export_one(key: str, work: Path) -> None:
        export_subject(root, by_key[key], conditions, roots, work, run_uuid=run,
                       clean=settings.execution.clean, derivative=derivative)
        LOGGER.info("%s: exported %d condition(s)", key, len(conditions))

    with ImageLoop(root, list(by_key), run=run, wait=settings.execution.lock_wait_s,
                   busy="another run is writing it") as images:
        images.work_each(export_one, errors=(ExportError, CommitError),
                         prefix="bids_stroke-export-")
    return images


def _write_datasets(settings, conditions, roots, *, prepare: bool = False) -> list[str]:
    """The dataset-level files, under the export's dataset lock: described before the
    subjects are committed (``prepare``), listed from the manifests after."""
    from bids_stroke.external.export import export_root, prepare_datasets, write_datasets

    root = export_root(settings.data.output_dir)
    with dataset_locked(root, settings.execution.run_uuid, "the exported datasets"):
        if prepare:
            prepare_datasets(root, settings.data.bids_dir, roots, conditions)
            return []
        return write_datasets(root, settings.data.bids_dir, roots,
                              {c.label: c for c in conditions})


def run_export(settings) -> int:
    from bids_stroke.external.export import export_root
    from bids_stroke.inputs.discovery import ImageInputs, attach_channels, find_dataset_roots
    from bids_stroke.inputs.preflight import max_image_bytes, native_grid, preflight_check

    reference = settings.data.modality or "T1w"
    subjects = discover(settings, reference)
    bad: list[tuple[ImageInputs, str]] = []
    channels = tuple(settings.segmentation.channels or (reference,))
    if channels != (reference,):
        subjects, bad = attach_channels(subjects, channels)
    good, failed_checks = preflight_check(subjects, nprocs=settings.execution.nprocs,
                                          conditions=settings.study.conditions,
                                          grid=native_grid, max_bytes=max_image_bytes(
                                              settings.execution.max_image_gb,
                                              settings.execution.mem_gb))
    bad += failed_checks
    print_refused(bad)
    if not good:
        raise CLIError(f"no usable input among {len(good) + len(bad)} image(s) (see the "
                       "errors above)", P.EXIT_BAD_DATA)
    for subject in good:
        off_grid = [s for s, _, on_grid in subject.channels if not on_grid]
        if off_grid:
            LOGGER.warning("%s: channel(s) %s are not on the %s grid: each is degraded on its "
                           "own grid", subject.key, ", ".join(off_grid), reference)
    conditions = list(settings.study.conditions)
    roots = find_dataset_roots(settings.data.bids_dir)
    _write_datasets(settings, conditions, roots, prepare=True)
    images = _export_all(settings, good, conditions, roots)
    labels = _write_datasets(settings, conditions, roots)
    root = export_root(settings.data.output_dir)
    LOGGER.info("Exported %d input(s) x %d condition(s): %s", len(images.done),
                len(conditions), ", ".join(str(root / lab) for lab in labels))
    return images.exit_code(inputs=P.EXIT_BAD_DATA if bad else P.EXIT_OK)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[2:] if argv is None else argv)
    opts = build_parser().parse_args(argv)
    setup_logging(opts.verbose)
    return run_guarded(lambda: run_export(settings_for(opts, argv, "export")))
