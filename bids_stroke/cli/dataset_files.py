"""The dataset-level files of an output folder, written once per run under its dataset lock.

Shared by the participant level and ``score`` (both write a bids_stroke derivative dataset):
``dataset_description.json``, the descriptions table, ``README`` and ``.bidsignore``.
"""

from __future__ import annotations

from bids_stroke.cli import parser as P
from bids_stroke.cli.config import CLIError
from bids_stroke.core.settings import Settings

__all__ = ["write_dataset_level"]


def write_dataset_level(settings: Settings, reference: str) -> None:
    """dataset_description, descriptions, README, .bidsignore: once, under the dataset lock.

    ``reference``: the BIDS suffix of the images whose lesion masks are scored (one modality
    per output folder: another is refused, exit 64)."""
    from bids_stroke.cli.image_loop import dataset_locked
    from bids_stroke.outputs.derivatives import check_output_modality, write_dataset_files

    out = settings.data.output_dir
    rows = [{"desc_id": "preproc", "description": "input image on the model's grid, before "
             "degradation", "condition": "n/a"}]
    rows += [{"desc_id": c.label, "description": c.description, "condition": c.spec}
             for c in settings.study.conditions]
    try:
        with dataset_locked(out, settings.execution.run_uuid, "the dataset-level files"):
            check_output_modality(out, reference)
            write_dataset_files(out, settings.data.bids_dir, settings.study.name, rows,
                                command=settings.execution.command)
    except ValueError as exc:
        raise CLIError(str(exc), P.EXIT_USAGE) from exc
