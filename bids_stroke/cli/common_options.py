"""The options ``export`` and ``score`` share: the two folders, the selection of the input
images, the study's conditions, the lock wait, and how their settings are built.

The destinations are those of the participant parser, so the same settings checks apply
(:func:`bids_stroke.cli.config.settings_from_cli`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from bids_stroke.cli import parser as P
from bids_stroke.core.settings import Settings

__all__ = ["add_common_options", "settings_for"]


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


def settings_for(opts: argparse.Namespace, argv: Sequence[str], word: str) -> Settings:
    """The settings of ``bids_stroke <word> <argv>`` (``export``, ``score``)."""
    from bids_stroke.cli.config import settings_from_cli

    return settings_from_cli(opts, [word, *argv])
