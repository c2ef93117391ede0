"""Export every resolution condition as a BIDS dataset that any segmentation tool can read.

``bids_stroke export BIDS_DIR OUT`` writes one dataset per condition::

    OUT/conditions/<label>/dataset_description.json   DatasetType of the input (raw stays raw)
    OUT/conditions/<label>/README                      what was degraded, how, from where
    OUT/conditions/<label>/participants.tsv (+ .json)  the input's rows of the exported subjects
    OUT/conditions/<label>/<the input's own path>      e.g. sub-X/ses-Y/dwi/sub-X_ses-Y_dwi.nii.gz
    OUT/conditions/<label>/<the input's own path>.json the input's metadata + the condition
    OUT/conditions/.bids_stroke/                       commit state (outside every dataset)

Images keep their names, folders and voxel grid: each is degraded on its own grid (no template,
no registration) by :func:`bids_stroke.degradation.nifti.degrade_image`, the code path of the
participant level's ``DegradeImage`` node, so an exported image is bit for bit the image a
native-space model run is given. All channels of a session (``--channels``) get the same condition.
Reference lesion masks are never exported: the tool under test must not see the answer.

Sidecars copy the input's metadata (BIDS inheritance principle applied, so top-level sidecars
count) except fields that describe the sampling the condition changed
(:data:`SAMPLING_FIELDS`), and add the condition, its parameters, the simulated voxel size and
the source file with its sha256.

Each subject is committed with the protocol of :mod:`bids_stroke.outputs.commit` (all or nothing,
manifest in ``OUT/conditions/.bids_stroke/subjects/<key>.json``), so a killed export never
leaves half a subject; the dataset-level files are rewritten from the manifests at the end
of every run. Pure module (no nipype).
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bids_stroke.__about__ import __version__
from bids_stroke.core.atomic import json_text, write_text_if_changed
from bids_stroke.core.digest import file_sha256
from bids_stroke.degradation import Condition
from bids_stroke.degradation.nifti import degrade_image, load_nifti
from bids_stroke.inputs.discovery import ImageInputs, file_entities
from bids_stroke.outputs.commit import (
    ConditionRecord,
    Manifest,
    PlannedFile,
    commit_image,
    plan_conditions,
    read_manifest,
    state_dir,
)
from bids_stroke.outputs.tsv import text_tsv

EXPORT_DIR = "conditions"
#: ``model_sha256`` of every exported condition: what made it (no model is involved)
EXPORT_ORIGIN = hashlib.sha256(b"bids_stroke export: degrade_image on the native grid").hexdigest()
#: sidecar fields describing the acquired sampling (matrix, slices, voxel size): no longer true
#: of a degraded image, so they are dropped from every condition but ``native``
SAMPLING_FIELDS = (
    "AcquisitionMatrix", "AcquisitionMatrixPE", "AcquisitionVoxelSize", "BaseResolution",
    "PercentSampling", "PhaseResolution", "PixelSpacing", "ReconMatrixPE", "SliceThickness",
    "SliceTiming", "SpacingBetweenSlices",
)
#: dropped as well by thick-slice conditions, which simulate a 2-D multi-slice acquisition
THICK_FIELDS = ("MRAcquisitionType",)
_DATASET_FILES = ("dataset_description.json", "README", "participants.tsv", "participants.json")


class ExportError(RuntimeError):
    """An input cannot be exported (one-line message naming the file and the fix)."""


def export_root(out: Path | str) -> Path:
    """``OUT/conditions``: the folder holding one dataset per condition."""
    return Path(out) / EXPORT_DIR


# ----------------------------------------------------------------------------- metadata
def dataset_root_of(path: Path, roots: Sequence[Path]) -> Path:
    """The dataset root (of ``roots``, e.g. ATLAS cohorts) that holds ``path``."""
    best = None
    for root in roots:
        try:
            Path(path).relative_to(root)
        except ValueError:
            continue
        if best is None or len(root.parts) > len(best.parts):
            best = root
    if best is None:
        raise ExportError(f"{path}: not inside the input dataset(s) {', '.join(map(str, roots))}")
    return best


def _json_entities(path: Path) -> dict[str, str]:
    return file_entities(path.with_name(path.name[: -len(".json")]))


def inherited_metadata(image: Path, root: Path) -> dict[str, Any]:
    """The metadata of ``image`` by the BIDS inheritance principle: every JSON file from the
    dataset root down to the image's folder whose entities are a subset of the image's (same
    suffix) applies, deeper and more specific files overriding."""
    ents = file_entities(image)
    folders = [root]
    for part in Path(image).parent.relative_to(root).parts:
        folders.append(folders[-1] / part)
    meta: dict[str, Any] = {}
    for folder in folders:
        found = []
        for js in folder.glob("*.json"):
            if js.name in _DATASET_FILES:
                continue
            jents = _json_entities(js)
            if jents.get("suffix") != ents.get("suffix"):
                continue
            if all(ents.get(k) == v for k, v in jents.items()):
                found.append((len(jents), js))
        for _, js in sorted(found):
            try:
                content = json.loads(js.read_text())
            except (OSError, ValueError) as exc:
                raise ExportError(f"{js}: unreadable sidecar ({exc}); fix or remove it") from exc
            if isinstance(content, dict):
                meta.update(content)
    return meta


def exported_sidecar(metadata: Mapping[str, Any], cond: Condition, *, source: str,
                     source_sha256: str, zooms: Sequence[float], derivative: bool
                     ) -> dict[str, Any]:
    """The sidecar of an exported image: the input's metadata that stays true, plus the
    condition that made it and the file it was made from."""
    drop = (SAMPLING_FIELDS if cond.changes_sampling else ()) + (
        THICK_FIELDS if cond.changes_slice_profile else ())
    kept = {k: v for k, v in metadata.items() if k not in drop}
    removed = sorted(k for k in metadata if k in drop)
    out: dict[str, Any] = {
        **kept,
        "Condition": cond.spec,
        "ConditionLabel": cond.label,
        "ConditionParameters": dict(cond.params),
        "ConditionDescription": cond.description,
        "SimulatedVoxelSize": [round(z, 6) for z in cond.effective_zooms(zooms)],
        "SourceFile": source,
        "SourceSHA256": source_sha256,
        "DegradedBy": f"bids_stroke {__version__} (bids_stroke.degrade.apply_condition on the "
                      "image's own voxel grid; float32)",
    }
    if removed:
        out["RemovedSidecarFields"] = removed
    if derivative:
        out["Sources"] = [source]
    return out


# ----------------------------------------------------------------------------- subjects
@dataclass(frozen=True)
class Channel:
    """One input image of a subject to export."""

    suffix: str
    path: Path
    root: Path

    @property
    def rel(self) -> str:
        return self.path.relative_to(self.root).as_posix()


def channels_of(subject: ImageInputs, roots: Sequence[Path]) -> list[Channel]:
    """The reference image, then the subject's other channels, each with its dataset root."""
    images = [(subject.suffix, Path(subject.image))] + [(s, Path(p)) for s, p, _ in
                                                          subject.channels]
    return [Channel(s, p, dataset_root_of(p, roots)) for s, p in images]


def results_key(channels: Sequence[Channel], sha: Mapping[str, str]) -> str:
    """Digest of what the exported images depend on: the input files' content."""
    blob = json.dumps({c.suffix: sha[c.suffix] for c in channels}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _stem_rel(rel: str) -> str:
    for ext in (".nii.gz", ".nii"):
        if rel.endswith(ext):
            return rel[: -len(ext)]
    return rel


def plan_export(subject: ImageInputs, conditions: Sequence[Condition],
                channels: Sequence[Channel], work: Path, *, derivative: bool
                ) -> tuple[list[PlannedFile], dict[str, str], dict[str, dict[str, str]]]:
    """Degrade every channel by every condition into ``work``; returns the files to commit
    (relative to ``OUT/conditions``), the sha256 of each input channel and, per condition
    label, suffix -> exported file."""
    files: list[PlannedFile] = []
    sha: dict[str, str] = {}
    images: dict[str, dict[str, str]] = {c.label: {} for c in conditions}
    for ch in channels:
        sha[ch.suffix] = file_sha256(ch.path)
        img = load_nifti(ch.path)
        zooms = [float(z) for z in img.header.get_zooms()[:3]]
        meta = inherited_metadata(ch.path, ch.root)
        source = f"bids:raw:{ch.rel}"
        for cond in conditions:
            rel = f"{cond.label}/{ch.rel}"
            tmp = work / cond.label / (_stem_rel(ch.rel) + ".nii")
            tmp.parent.mkdir(parents=True, exist_ok=True)
            try:
                degrade_image(img, cond).to_filename(str(tmp))
            except ValueError as exc:
                raise ExportError(f"{ch.path}: condition {cond.spec} cannot be applied ({exc}); "
                                  "drop the condition") from exc
            files.append(PlannedFile(rel, source=str(tmp), conditions=(cond.label,),
                                     compress=rel.endswith(".gz")))
            sidecar = exported_sidecar(meta, cond, source=source, source_sha256=sha[ch.suffix],
                                       zooms=zooms, derivative=derivative)
            files.append(PlannedFile(f"{cond.label}/{_stem_rel(ch.rel)}.json",
                                     content=json_text(sidecar).encode(),
                                     conditions=(cond.label,)))
            images[cond.label][ch.suffix] = rel
    return files, sha, images


def export_subject(root: Path, subject: ImageInputs, conditions: Sequence[Condition],
                   roots: Sequence[Path], work: Path, *, run_uuid: str, clean: bool = False,
                   derivative: bool = False) -> Manifest:
    """Export one subject (the caller holds its lock in ``root``): all or nothing.

    The manifest's ``extra`` records what ``bids_stroke score`` checks later: the reference
    suffix, each input channel (path relative to its dataset, sha256) and, per condition,
    the exported file of each channel.
    """
    channels = channels_of(subject, roots)
    files, sha, images = plan_export(subject, conditions, channels, work, derivative=derivative)
    key = results_key(channels, sha)
    records = [ConditionRecord(c.label, c.spec, EXPORT_ORIGIN, key, run_uuid)
               for c in conditions]
    previous = read_manifest(root, subject.key)
    plan = plan_conditions(previous, records, clean=clean)
    kept = {lab: (previous.extra.get("images", {}) if previous else {}).get(lab, {})
            for lab in plan.keep}
    extra = {
        "reference": subject.suffix,
        "sources": {c.suffix: {"file": c.rel, "sha256": sha[c.suffix]} for c in channels},
        "images": {**kept, **images},
        "order": [*plan.keep, *(c.label for c in conditions)],  # the manifest sorts its keys
        "grid": "native",
    }
    manifest, _ = commit_image(root, subject.key, files=files, conditions=records,
                                 plan=plan, run_uuid=run_uuid, extra=extra)
    return manifest


# ----------------------------------------------------------------------------- datasets
def exported_manifests(root: Path) -> list[Manifest]:
    """The committed manifests of an export folder (sorted by key)."""
    folder = state_dir(root) / "subjects"
    out = []
    for path in sorted(folder.glob("*.json")):
        manifest = read_manifest(root, path.stem)
        if manifest is not None:
            out.append(manifest)
    return out


def _input_description(roots: Sequence[Path]) -> dict[str, Any]:
    for root in roots:
        try:
            content = json.loads((root / "dataset_description.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(content, dict):
            return content
    return {}


def is_derivative(roots: Sequence[Path]) -> bool:
    """Whether any input dataset declares ``DatasetType: derivative`` (ATLAS-like datasets
    with ``space-`` in raw-looking names): the export then keeps that type, so the names
    stay valid."""
    for root in roots:
        try:
            content = json.loads((root / "dataset_description.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(content, dict) and content.get("DatasetType") == "derivative":
            return True
    return False


def dataset_description(bids_dir: Path, roots: Sequence[Path], cond: Condition
                        ) -> dict[str, Any]:
    """``dataset_description.json`` of one condition's dataset."""
    src = _input_description(roots)
    derivative = is_derivative(roots)
    uri = Path(bids_dir).absolute().as_uri()
    source: dict[str, Any] = {"URL": uri}
    for key, field_ in (("DatasetDOI", "DOI"), ("Name", "Name"), ("BIDSVersion", "Version")):
        if src.get(key):
            source[field_] = src[key]
    ours = {
        "Name": "bids_stroke",
        "Version": __version__,
        "Description": f"bids_stroke export: every image degraded by condition '{cond.spec}' "
                       f"({cond.description}) on its own voxel grid",
        "CodeURL": "https://github.com/bids-stroke/bids_stroke",
    }
    before = [g for g in src.get("GeneratedBy", []) if isinstance(g, dict)] if derivative else []
    out: dict[str, Any] = {
        "Name": f"{src.get('Name', Path(bids_dir).name)} - condition {cond.label} ({cond.spec})",
        "BIDSVersion": str(src.get("BIDSVersion", "1.10.0")),
        "DatasetType": "derivative" if derivative else "raw",
        "GeneratedBy": [*before, ours],
        "SourceDatasets": [source],
        "DatasetLinks": {"raw": uri},
    }
    for key in ("License", "Authors", "Acknowledgements", "HowToAcknowledge", "Funding",
                "ReferencesAndLinks"):
        if key in src:
            out[key] = src[key]
    return out


README = """# {name}

Written by `bids_stroke export` ({version}) from {source}.

Every image of this dataset is the input image of the same name degraded by the resolution
condition `{spec}`: {description}. The degraded volume is reconstructed on the image's own voxel
grid (same shape, affine and file name as the input; data type float32), so a tool finds the
files where it expects them and its predictions can be scored voxel by voxel against the
input's lesion masks (`bids_stroke score`). All channels of a session were degraded by the same
condition. Reference lesion masks are not included.

Each sidecar keeps the input's metadata except fields describing the acquired sampling
(`RemovedSidecarFields` lists them), and records `Condition`, `ConditionParameters`,
`SimulatedVoxelSize` (mm, the voxel size of the simulated acquisition) and the source file
with its sha256.
"""


def _participants(roots: Sequence[Path], subjects: set[str]) -> tuple[str | None, str | None]:
    """participants.tsv (rows of ``subjects``) and participants.json of the input, or None."""
    header: list[str] = []
    rows: dict[str, dict[str, str]] = {}
    meta = None
    for root in roots:
        tsv = root / "participants.tsv"
        if meta is None and (root / "participants.json").is_file():
            meta = (root / "participants.json").read_text()
        if not tsv.is_file():
            continue
        with tsv.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh, delimiter="\t")
            header += [c for c in reader.fieldnames or [] if c not in header]
            for row in reader:
                pid = row.get("participant_id", "")
                if pid.removeprefix("sub-") in subjects:
                    rows[pid] = row
    if not header or "participant_id" not in header:
        return None, meta
    known = [[rows[pid].get(c) or "n/a" for c in header] for pid in sorted(rows)]
    unknown = [[f"sub-{sub}" if c == "participant_id" else "n/a" for c in header]
               for sub in sorted(subjects - {p.removeprefix("sub-") for p in rows})]
    return text_tsv(header, [*known, *unknown]), meta


def _describe(folder: Path, bids_dir: Path, roots: Sequence[Path], cond: Condition) -> None:
    src = _input_description(roots)
    desc = dataset_description(bids_dir, roots, cond)
    write_text_if_changed(folder / "dataset_description.json", json_text(desc))
    write_text_if_changed(folder / "README", README.format(
        name=desc["Name"], version=__version__, spec=cond.spec,
        description=cond.description.rstrip("."),
        source=f"{src.get('Name', 'the input dataset')} ({Path(bids_dir).absolute()})"))


def prepare_datasets(root: Path, bids_dir: Path, roots: Sequence[Path],
                     conditions: Sequence[Condition]) -> None:
    """Before any subject is committed: the description of each condition's dataset, and no
    ``participants.tsv`` until :func:`write_datasets` lists the committed subjects (so a
    killed run leaves valid datasets: described, whole subjects, no stale participant list)."""
    for cond in conditions:
        _describe(root / cond.label, bids_dir, roots, cond)
        for name in ("participants.tsv", "participants.json"):
            (root / cond.label / name).unlink(missing_ok=True)


def write_datasets(root: Path, bids_dir: Path, roots: Sequence[Path],
                   conditions: Mapping[str, Condition]) -> list[str]:
    """(Re)write the dataset-level files of every condition some committed subject holds,
    from the manifests (the caller holds the export's dataset lock); returns the labels.

    ``conditions`` maps labels to conditions for the descriptions (labels only known from
    the manifests are parsed from their recorded spec). The dataset-level files of a label
    no subject holds any more (``--clean``) are removed.
    """
    from bids_stroke.degradation import parse_condition

    holders: dict[str, set[str]] = {}
    specs: dict[str, str] = {}
    for manifest in exported_manifests(root):
        for label, record in manifest.conditions.items():
            holders.setdefault(label, set()).add(manifest.key.split("_")[0].removeprefix("sub-"))
            specs[label] = record.spec
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name != ".bids_stroke"):
        if folder.name not in holders:
            for name in _DATASET_FILES:
                (folder / name).unlink(missing_ok=True)
            if not any(p.is_file() for p in folder.rglob("*")):
                shutil.rmtree(folder, ignore_errors=True)  # empty folders of a removed label
    for label, subjects in sorted(holders.items()):
        cond = conditions.get(label) or parse_condition(specs[label])
        folder = root / label
        _describe(folder, bids_dir, roots, cond)
        tsv, meta = _participants(roots, subjects)
        if tsv is not None:
            write_text_if_changed(folder / "participants.tsv", tsv)
            if meta is not None:
                write_text_if_changed(folder / "participants.json", meta)
    return sorted(holders)
