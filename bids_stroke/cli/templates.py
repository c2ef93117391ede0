"""``python -m bids_stroke.templates {fetch,info}``: the template files' command line.

``fetch`` populates ``TEMPLATEFLOW_HOME`` (:func:`bids_stroke.templates.fetch`); ``info``
prints :func:`bids_stroke.templates.template_provenance` as JSON. Used by the image builds
(Dockerfile, Singularity recipes).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from bids_stroke.templates.install import fetch
from bids_stroke.templates.resolve import (
    DEFAULT_TEMPLATE,
    TemplateError,
    template_provenance,
    templateflow_home,
)

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m bids_stroke.templates``."""
    parser = argparse.ArgumentParser(prog="python -m bids_stroke.templates",
                                     description="Template files of bids_stroke: TemplateFlow "
                                                 "or the labelled offline stand-in.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_fetch = sub.add_parser("fetch", help="pre-fetch templates into TEMPLATEFLOW_HOME")
    p_fetch.add_argument("--dest", type=Path, default=None,
                         help="TemplateFlow home to populate (default: $TEMPLATEFLOW_HOME)")
    p_fetch.add_argument("--template", default=DEFAULT_TEMPLATE)
    p_fetch.add_argument("--no-standin", action="store_true",
                         help="fail (exit 1) instead of installing the nilearn stand-in when "
                         "TemplateFlow cannot provide a file")
    p_info = sub.add_parser("info", help="print the template provenance as JSON")
    p_info.add_argument("--template", default=DEFAULT_TEMPLATE)
    p_info.add_argument("--resolution", type=int, default=1)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bids_stroke.templates {fetch,info}``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "fetch":
            report = fetch(args.dest, args.template, allow_standin=not args.no_standin)
            home = args.dest.absolute() if args.dest is not None else templateflow_home()
            print(json.dumps({"templateflow_home": str(home), "files": report}, indent=2))
        else:
            print(json.dumps(template_provenance(args.template, args.resolution), indent=2))
    except TemplateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
