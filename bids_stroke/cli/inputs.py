"""The input images of a command: the dataset's cheap checks, discovery, and the line said
for each image refused.

Shared by the participant level, ``export`` and ``score``: the same selection options
(``--participant-label``, ``--session-label``, ``--bids-filter-file``, ``--derivatives``...)
find the same images, and a dataset that fails the same checks is refused with the same line.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from bids_stroke.cli import parser as P
from bids_stroke.cli.config import CLIError
from bids_stroke.core.settings import Settings
from bids_stroke.inputs.discovery import ImageInputs

__all__ = ["check_dataset", "discover"]


def check_dataset(settings: Settings) -> None:
    """The checks that need only the file system (milliseconds), run before any heavy import
    or the model: the dataset's structure (unless ``--skip-bids-validation``) and that every
    ``--participant-label`` has a ``sub-`` folder."""
    from bids_stroke.inputs.discovery import (
        DiscoveryError,
        check_participant_labels,
        validate_dataset,
    )

    data = settings.data
    try:
        if not data.skip_bids_validation:
            problems = validate_dataset(data.bids_dir)
            if problems:
                raise CLIError(
                    f"BIDS validation failed: {problems[0]}"
                    + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
                    + "; fix the dataset or pass --skip-bids-validation",
                    P.EXIT_VALIDATION,
                )
        check_participant_labels(data.bids_dir, data.participant_label)
    except DiscoveryError as exc:
        raise CLIError(str(exc), exc.exit_code) from exc


def discover(settings: Settings, reference: str) -> list[ImageInputs]:
    """Every input image whose BIDS suffix is ``reference`` (with its lesion mask, if any),
    after :func:`check_dataset`; a discovery error is one line and its exit code."""
    from bids_stroke.inputs.discovery import DiscoveryError, collect_images

    data = settings.data
    check_dataset(settings)
    try:
        return collect_images(
            data.bids_dir,
            participant_label=data.participant_label,
            session_label=data.session_label,
            suffix=reference,
            derivatives=data.derivatives,
            bids_filters=data.bids_filters,
            database_dir=data.database_dir,
            exclude=[data.output_dir, *([settings.execution.work_dir]
                                        if settings.execution.work_dir else [])],
        )
    except DiscoveryError as exc:
        raise CLIError(str(exc), exc.exit_code) from exc


def print_refused(refused: Sequence[tuple[ImageInputs, str]]) -> None:
    """One line on stderr per refused input image (its key and why)."""
    for subject, message in refused:
        print(f"bids_stroke: error: {subject.key}: {message}", file=sys.stderr)
