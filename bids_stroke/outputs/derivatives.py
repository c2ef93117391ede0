"""BIDS-Derivatives naming and dataset-level files, written atomically.

The files are written by :mod:`bids_stroke.atomic` (a temporary file in the destination
folder moved into place with ``os.replace``, so a killed run never leaves a half-written file
under a final name); its writers are re-exported here for the import path of earlier versions.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bids_stroke.__about__ import __version__
from bids_stroke.core.atomic import (
    atomic_copy,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    json_text,
    write_text_if_changed,
)
from bids_stroke.core.provenance import container_info
from bids_stroke.outputs.tsv import text_tsv

__all__ = [
    "BIDSIGNORE",
    "BIDS_VERSION",
    "ENTITY_ORDER",
    "atomic_copy",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "build_name",
    "check_output_modality",
    "dataset_description",
    "datatype_of",
    "subject_dir",
    "write_dataset_files",
]

BIDS_VERSION = "1.10.0"
#: BIDS entity order (subset used here), from the specification's entity table
ENTITY_ORDER = ("sub", "ses", "acq", "ce", "rec", "run", "from", "to", "mode", "space", "res",
                "label", "desc")
BIDSIGNORE = [  # the deno validator matches folders by bare name ("figures", not "figures/")
    "logs",
    "figures",
    "sub-*/log",
    "*.html",
    "*_segmetrics.tsv",
    "*_segmetrics.json",
    "*_lesions.tsv",
    "*_lesions.json",
    "*_xfm.*",
    "group_*",
    "conditions",  # bids_stroke export: one dataset per condition (each validates on its own)
]


def build_name(entities: Mapping[str, str | None], suffix: str, extension: str) -> str:
    """``sub-01_ses-1_space-X_label-L_desc-native_mask.nii.gz`` from entities in spec order."""
    unknown = set(entities) - set(ENTITY_ORDER)
    if unknown:
        raise ValueError(f"unknown BIDS entities {sorted(unknown)}")
    parts = [f"{k}-{entities[k]}" for k in ENTITY_ORDER if entities.get(k)]
    return "_".join([*parts, suffix]) + extension


def datatype_of(suffix: str) -> str:
    """BIDS datatype folder of an image suffix (``dwi``/``adc`` -> ``dwi``, else ``anat``)."""
    return "dwi" if suffix.lower() in ("dwi", "adc") else "anat"


def subject_dir(subject: str, session: str | None, datatype: str = "anat") -> Path:
    """``sub-X[/ses-Y]/<datatype>`` relative to the derivatives root."""
    rel = Path(f"sub-{subject}")
    if session:
        rel = rel / f"ses-{session}"
    return rel / datatype


#: who made the software, last among the derivatives' Authors
SOFTWARE_AUTHORS = "bids_stroke developers"


def _source_descriptions(bids_dir: Path) -> list[dict[str, Any]]:
    """The input's ``dataset_description.json`` contents: the root's, else those of its
    cohort folders (ATLAS v2.0)."""
    root = Path(bids_dir)
    files = [root / "dataset_description.json"]
    if not files[0].is_file() and root.is_dir():
        files = sorted(p / "dataset_description.json" for p in root.iterdir() if p.is_dir())
    out = []
    for path in files:
        try:
            content = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(content, dict):
            out.append(content)
    return out


def dataset_description(bids_dir: Path, pipeline_name: str) -> dict[str, Any]:
    """``dataset_description.json`` of the derivatives (DatasetType derivative).

    ``Authors``: those of the input dataset (whose data the derivatives are made from), then
    bids_stroke's developers (who made the software that made them).
    """
    source: dict[str, Any] = {"URL": Path(bids_dir).absolute().as_uri()}
    sources = _source_descriptions(bids_dir)
    content = sources[0] if sources else {}
    if content.get("DatasetDOI"):
        source["DOI"] = content["DatasetDOI"]
    if content.get("Name"):
        source["Name"] = content["Name"]
    authors = [str(a) for c in sources for a in (c.get("Authors") or [])
               if isinstance(c.get("Authors"), list) and str(a).strip()]
    generated: dict[str, Any] = {
        "Name": "bids_stroke",
        "Version": __version__,
        "Description": "Resolution degradation, lesion segmentation and metrics",
        "CodeURL": "https://github.com/bids-stroke/bids_stroke",
    }
    container = container_info()
    if container is not None:  # only when really running inside one
        generated["Container"] = container
    return {
        "Name": f"bids_stroke derivatives ({pipeline_name})",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [generated],
        "SourceDatasets": [source],
        "DatasetLinks": {"raw": Path(bids_dir).absolute().as_uri()},
        "Authors": list(dict.fromkeys([*authors, SOFTWARE_AUTHORS])),
        "HowToAcknowledge": "Cite bids_stroke (CITATION.cff in its repository; the group "
                            "report says how) and the source dataset.",
    }


STATE_FILE = ".bids_stroke/dataset.json"


def check_output_modality(output_dir: Path, suffix: str) -> None:
    """One output folder holds one modality: outputs of ``dwi`` and ``adc`` (or ``T1w`` and
    ``FLAIR``) would otherwise share file names. Raises ``ValueError`` on a mismatch and
    records the modality of a new folder."""
    state = Path(output_dir) / STATE_FILE
    if state.is_file():
        try:
            previous = json.loads(state.read_text()).get("modality")
        except (OSError, ValueError, AttributeError):
            previous = None
        if previous and previous != suffix:
            raise ValueError(
                f"{output_dir} holds '{previous}' results; write '{suffix}' results to another "
                "output folder (one modality per folder)"
            )
    write_text_if_changed(state, json_text({"modality": suffix}))


README_TEXT = """# bids_stroke derivatives

Written by bids_stroke {version} ({study} study). Every subject folder holds, per resolution
condition (`desc-<condition>`, listed in `descriptions.tsv`): the degraded image(s), the
model's lesion probability (`_probseg`) and mask (`_mask`), and the metric tables
(`_segmetrics.tsv`, `_lesions.tsv`, with JSON data dictionaries). Files with `space-<template>`
lie on the template grid the model ran on; files without `space-` lie on the subject's own
(native) grid, where metrics are computed against the native lesion mask. Subject reports are
`sub-*.html`; group-level tables and the report are `group_*`.

`.bids_stroke/` holds the run state: per-subject manifests (`subjects/*.json`: every file with
its sha256 and what produced each condition), locks and unfinished commits. `logs/` holds the
settings of every run (`config-<run>.json`, replayable with `--config-file`), including its
full command line.
"""


def write_dataset_files(
    output_dir: Path,
    bids_dir: Path,
    pipeline_name: str,
    descriptions: list[dict[str, str]],
    *,
    command: str = "",
) -> None:
    """Write ``dataset_description.json``, ``descriptions.tsv``, ``README.md`` and
    ``.bidsignore`` (the caller holds the dataset lock).

    ``descriptions.tsv`` is merged with an existing one (rows keyed by ``desc_id``), so runs
    of different studies into one folder keep every label documented. Files whose content
    would not change are not rewritten (array tasks only read them).
    """
    output_dir = Path(output_dir)
    write_text_if_changed(output_dir / "dataset_description.json",
                      json.dumps(dataset_description(bids_dir, pipeline_name), indent=2,
                                 sort_keys=True) + "\n")
    rows: dict[str, dict[str, str]] = {}
    existing = output_dir / "descriptions.tsv"
    if existing.is_file():
        with existing.open(newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                if row.get("desc_id"):
                    rows[row["desc_id"]] = row
    for row in descriptions:
        desc_id = row["desc_id"]
        desc_id = desc_id if desc_id.startswith("desc-") else f"desc-{desc_id}"
        rows[desc_id] = {**row, "desc_id": desc_id}
    columns = ["desc_id", "description", "condition"]
    write_text_if_changed(existing, text_tsv(
        columns, (["n/a" if rows[key].get(c) is None else rows[key][c] for c in columns]
                  for key in sorted(rows))))
    write_text_if_changed(output_dir / "README.md", README_TEXT.format(
        version=__version__, study=pipeline_name))
    write_text_if_changed(
        output_dir / "descriptions.json",
        json_text({
            "Description": "The desc- labels of this dataset's files: the preprocessed input "
                           "(preproc) and each resolution condition, with the condition spec "
                           "that produced it.",
            "desc_id": {"Description": "desc- entity of the files it describes"},
            "description": {"Description": "what the label means"},
            "condition": {
                "Description": "bids_stroke resolution condition spec that produced the files "
                "(n/a for files that are not a condition)"
            },
        }),
    )
    write_text_if_changed(output_dir / ".bidsignore", "\n".join(BIDSIGNORE) + "\n")
