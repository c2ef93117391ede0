"""``bids_stroke status OUT_DIR --participants-file FILE``: who of a batch submission completed.

The bookkeeping itself is :mod:`bids_stroke.outputs.status`; this module parses the command line and
prints the report.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bids_stroke.cli.formatter import HelpFormatter
from bids_stroke.cli.parser import ArgumentParser
from bids_stroke.outputs.status import (
    STATUS_TABLE,
    format_report,
    participant_status,
    read_participants,
    write_table,
)

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``bids_stroke status`` parser (usage errors exit 64, as everywhere in bids_stroke)."""
    parser = ArgumentParser(
        prog="bids_stroke status",
        description="Which participants of a batch submission completed, failed or are "
        "missing (exit 1 if any is not complete, 66 if an input is missing). Writes "
        f"OUTPUT_DIR/{STATUS_TABLE.as_posix()}.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("output_dir", type=Path, metavar="OUTPUT_DIR",
                        help="the output folder the array tasks wrote into (the participant "
                        "level's output_dir)")
    parser.add_argument("--participants-file", type=Path, required=True, metavar="FILE",
                        help="one label per line (with or without sub-), as given to submit.sh")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``bids_stroke status OUT_DIR --participants-file FILE``: 0 when everyone is complete,
    1 when anyone failed or is missing, 66 when an input is missing."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.participants_file.is_file():
        print(f"bids_stroke status: error: participants file {args.participants_file} does not "
              "exist: give the list the array was submitted with", file=sys.stderr)
        return 66
    if not args.output_dir.is_dir():
        print(f"bids_stroke status: error: output folder {args.output_dir} does not exist",
              file=sys.stderr)
        return 66
    labels = read_participants(args.participants_file)
    if not labels:
        print(f"bids_stroke status: error: no participant in {args.participants_file}",
              file=sys.stderr)
        return 66
    statuses = participant_status(args.output_dir, labels)
    table = write_table(args.output_dir / STATUS_TABLE, statuses)
    print(format_report(statuses))
    print(f"table: {table}")
    return 0 if all(s.state == "complete" for s in statuses) else 1
