"""Which module runs ``bids_stroke <word> ...``: the routing table of the subcommands.

Kept apart from the entry point (:mod:`bids_stroke.cli.run`) so that the provenance of a run
(:mod:`bids_stroke.cli.command_line`, which finds the parser of the command it renders) and the
entry point read the same table without importing each other.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from bids_stroke.cli.parser import ANALYSIS_LEVELS

__all__ = ["SUBCOMMANDS", "subcommand"]

#: subcommand name -> the module whose ``main(argv)`` runs it (and ``build_parser()`` parses it)
SUBCOMMANDS = {
    "demo": "bids_stroke.cli.demo",
    "train": "bids_stroke.cli.train",
    "model": "bids_stroke.cli.model",
    "export": "bids_stroke.cli.export",
    "score": "bids_stroke.cli.score",
    "status": "bids_stroke.cli.status",
}


def subcommand(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` (without the program name) asks for, or None for a BIDS-App run.

    ``argv[0]`` must be exactly a subcommand name (``demo``, ``train``, ``model``, ``export``,
    ``score``, ``status``). A dataset folder of the same name in the current directory is never
    shadowed: when ``argv[0]`` names an existing folder and an analysis level (``participant``
    or ``group``) follows, it is the ``BIDS_DIR``. ``bids_stroke -- demo OUT participant`` or
    ``bids_stroke ./demo OUT participant`` always mean the dataset.
    """
    if not argv or argv[0] not in SUBCOMMANDS:
        return None
    name = argv[0]
    if Path(name).is_dir() and any(a in ANALYSIS_LEVELS for a in argv[1:]):
        return None
    try:
        if importlib.util.find_spec(SUBCOMMANDS[name]) is None:
            return None
    except ModuleNotFoundError:  # pragma: no cover - bids_stroke.cli is always there
        return None
    return name
