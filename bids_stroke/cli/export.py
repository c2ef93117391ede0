"""``bids_stroke export BIDS_DIR OUT``: every condition as a BIDS dataset for other tools.

A subcommand rather than a participant-level flag: exporting needs no model, no template, no
registration and no nipype graph, and its output (``OUT/conditions/<label>/``, one dataset per
condition, see :mod:`bids_stroke.export`) is meant for another program. The options it shares
with the participant level (selection, study, ``--channels``) go through the same settings
checks (:func:`bids_stroke.cli.config.settings_from_cli`).

Order, as for the participant level: discovery and every input check first (nothing is
written before they pass for at least one input), then per subject: lock, degrade, commit;
last, the dataset-level files of every condition, rewritten from the committed manifests.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path

from bids_stroke.cli import parser as P
from bids_stroke.cli.config import CLIError, cannot_write
from bids_stroke.cli.formatter import HelpFormatter

LOGGER = logging.getLogger("bids_stroke")


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """Positional folders and the selection options shared by ``export`` and ``score``
    (same destinations as the participant parser, so the same checks apply)."""
    parser.add_argument("bids_dir", type=Path, help="root of the input BIDS dataset")
    parser.add_argument("output_dir", type=Path, help="the bids_stroke output folder")
    parser.add_argument("--participant-label", "--participant_label", dest="participant_label",
                        nargs="+", metavar="LABEL", help="subjects (default: all)")
    parser.add_argument("--session-label", "--session_label", dest="session_label", nargs="+",
                        metavar="LABEL", help="sessions (default: all)")
    parser.add_argument("--modality", default=None,
                        help="BIDS suffix of the reference image, the grid of the lesion mask "
                        "(default: T1w)")
    parser.add_argument("--bids-filter-file", type=Path, metavar="FILE",
                        help='JSON file of extra pybids filters, e.g. {"t1w": {"acquisition": '
                        '"mprage"}}')
    parser.add_argument("--derivatives", nargs="+", type=Path, default=None, metavar="PATH",
                        help="extra folders searched for lesion masks (bids_dir/derivatives "
                        "is always searched)")
    parser.add_argument("--skip-bids-validation", "--skip_bids_validation",
                        dest="skip_bids_validation", action="store_true", default=None,
                        help="skip the structural check of the input dataset")
    P.add_study_option(parser, "study file or bundled study name: its conditions (default: "
                       "atlas_resolution)")
    parser.add_argument("--conditions", nargs="+", metavar="SPEC",
                        help="resolution conditions, overriding the study's, e.g. native "
                        "crude:2 thick:5")
    parser.add_argument("--lock-wait", type=P._positive_float, default=None, metavar="SECONDS",
                        help="wait up to this long for a subject locked by another run "
                        "(default: do not wait; the subject is skipped with exit code 75)")
    parser.add_argument("--clean", action="store_true", default=None,
                        help="remove committed conditions this run does not produce")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more logging (-v debug messages, -vv everything)")
    parser.set_defaults(analysis_level=["participant"], work_dir=None, bids_database_dir=None,
                        config_file=None, use_plugin=None, nprocs=1)


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


def settings_for(opts: argparse.Namespace, argv: Sequence[str], word: str):
    from bids_stroke.cli.config import settings_from_cli

    return settings_from_cli(opts, [word, *argv])


def interrupted_code(exc: BaseException) -> int:
    from bids_stroke import interrupt

    signum = getattr(exc, "signum", signal.SIGINT)
    interrupt.announce(signum)
    return P.EXIT_SIGTERM if signum == signal.SIGTERM else P.EXIT_SIGINT


def run_guarded(verbose: int, work: Callable[[], int]) -> int:
    """Run a subcommand's ``work`` as the participant level runs: logging set up, SIGTERM
    and Ctrl-C turned into a one-line message and exit 143/130 (commits finish first),
    :class:`CLIError` into its one line and exit code, a link planted in the state folder or a
    full disk (quota, read-only folder...) into one line and exit 73."""
    from bids_stroke import interrupt
    from bids_stroke.progress import setup_logging
    from bids_stroke.state_files import UnsafeStateError
    from bids_stroke.write_errors import environment_error

    setup_logging(verbose)
    with interrupt.handled():
        try:
            return work()
        except CLIError as exc:
            print(f"bids_stroke: error: {exc}", file=sys.stderr)
            return exc.exit_code
        except UnsafeStateError as exc:
            print(f"bids_stroke: error: {exc}", file=sys.stderr)
            return P.EXIT_CANT_CREATE
        except (KeyboardInterrupt, interrupt.Interrupted) as exc:
            return interrupted_code(exc)
        except OSError as exc:
            failure = environment_error(exc)
            if failure is None:
                raise
            print(f"bids_stroke: error: {failure.message([], 'the output folder')}",
                  file=sys.stderr)
            return P.EXIT_CANT_CREATE


def lock_subjects(root: Path, keys: Sequence[str], run: str, wait: float, stack: ExitStack
                  ) -> tuple[list[str], list[str]]:
    """Lock each subject of the commit folder ``root``, finishing interrupted commits;
    returns (locked, busy) keys."""
    from bids_stroke.commit import CommitError, lock_path, recover, remove_stale_staging
    from bids_stroke.locks import FileLock, LockBusyError, is_locked

    ok, busy = [], []
    for key in keys:
        lock = FileLock(lock_path(root, key), run=run)
        try:
            lock.acquire(timeout=wait)
        except LockBusyError as exc:
            print(f"bids_stroke: error: {key}: locked by {exc.holder}: another run is writing "
                  "it; wait for it (or --lock-wait SECONDS)", file=sys.stderr)
            busy.append(key)
            continue
        stack.callback(lock.release)
        try:
            if recover(root, key):
                LOGGER.warning("%s: finished a commit interrupted earlier", key)
        except CommitError as exc:
            print(f"bids_stroke: error: {exc}", file=sys.stderr)
            busy.append(key)
            continue
        ok.append(key)
    held = set(ok)  # ours now: nobody else can be staging them (is_locked would say "busy")
    remove_stale_staging(root, lambda k: k in held or not is_locked(lock_path(root, k)))
    return ok, busy


def _export_all(settings, subjects, conditions, roots) -> list[str]:
    """Lock, export and commit each subject; returns the keys that failed."""
    from bids_stroke.commit import CommitError
    from bids_stroke.export import ExportError, export_root, export_subject, is_derivative

    root = export_root(settings.data.output_dir)
    derivative = is_derivative(roots)
    run = settings.execution.run_uuid
    failed: list[str] = []
    by_key = {s.key: s for s in subjects}
    with ExitStack() as stack:
        locked, busy = lock_subjects(root, list(by_key), run, settings.execution.lock_wait_s,
                                     stack)
        for key in locked:
            work = Path(tempfile.mkdtemp(prefix="bids_stroke-export-"))
            try:
                export_subject(root, by_key[key], conditions, roots, work, run_uuid=run,
                               clean=settings.execution.clean, derivative=derivative)
                LOGGER.info("%s: exported %d condition(s)", key, len(conditions))
            except (ExportError, CommitError) as exc:
                print(f"bids_stroke: error: {key}: {exc}", file=sys.stderr)
                failed.append(key)
            except OSError as exc:
                raise cannot_write(root, exc) from exc
            finally:
                shutil.rmtree(work, ignore_errors=True)
    return failed + [f"busy:{k}" for k in busy]


def _write_datasets(settings, conditions, roots, *, prepare: bool = False) -> list[str]:
    """The dataset-level files, under the export's dataset lock: described before the
    subjects are committed (``prepare``), listed from the manifests after."""
    from bids_stroke.commit import state_dir
    from bids_stroke.export import export_root, prepare_datasets, write_datasets
    from bids_stroke.locks import LockBusyError, locked

    root = export_root(settings.data.output_dir)
    try:
        with locked(state_dir(root) / "locks" / "dataset.lock", timeout=600,
                    run=settings.execution.run_uuid):
            if prepare:
                prepare_datasets(root, settings.data.bids_dir, roots, conditions)
                return []
            return write_datasets(root, settings.data.bids_dir, roots,
                                  {c.label: c for c in conditions})
    except LockBusyError as exc:
        raise CLIError(f"{exc}; another run is writing the exported datasets",
                       P.EXIT_TEMPFAIL) from exc
    except OSError as exc:
        raise cannot_write(root, exc) from exc


def run_export(settings) -> int:
    from bids_stroke.cli.participant import discover
    from bids_stroke.discovery import attach_channels, find_dataset_roots
    from bids_stroke.export import export_root
    from bids_stroke.preflight import max_image_bytes, native_grid, preflight_check

    reference = settings.data.modality or "T1w"
    subjects = discover(settings, reference)
    bad = []
    channels = tuple(settings.segmentation.channels or (reference,))
    if channels != (reference,):
        subjects, bad = attach_channels(subjects, channels)
    good, failed_checks = preflight_check(subjects, nprocs=settings.execution.nprocs,
                                          conditions=settings.study.conditions,
                                          grid=native_grid, max_bytes=max_image_bytes(
                                              settings.execution.max_image_gb,
                                              settings.execution.mem_gb))
    bad += failed_checks
    for subject, message in bad:
        print(f"bids_stroke: error: {subject.key}: {message}", file=sys.stderr)
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
    failed = _export_all(settings, good, conditions, roots)
    labels = _write_datasets(settings, conditions, roots)
    root = export_root(settings.data.output_dir)
    LOGGER.info("Exported %d input(s) x %d condition(s): %s", len(good) - len(failed),
                len(conditions), ", ".join(str(root / lab) for lab in labels))
    if any(not k.startswith("busy:") for k in failed):
        return P.EXIT_FAILURE
    if bad:
        return P.EXIT_BAD_DATA
    return P.EXIT_TEMPFAIL if failed else P.EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[2:] if argv is None else argv)
    opts = build_parser().parse_args(argv)
    return run_guarded(opts.verbose, lambda: run_export(settings_for(opts, argv, "export")))
