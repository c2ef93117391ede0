"""Score lesion masks made by another tool on the exported conditions (pure: no nipype).

``bids_stroke score BIDS_DIR OUT --predictions PATTERN --tool-name NAME`` reads one prediction
per subject and condition, found with a pattern such as
``/preds/{condition}/sub-{subject}/ses-{session}/anat/*_mask.nii.gz`` (placeholders
:data:`PLACEHOLDERS`; ``*``, ``?`` and ``**`` as in a shell), checks it
(:func:`load_prediction`: on the grid of the exported image it was made from, binary, or a
probability map thresholded with ``--threshold``: probability >= T is lesion) and writes the
same derivatives as a native-space model run — masks, metric tables
(:func:`bids_stroke.metrics.tables.score_conditions`), report, provenance — through
:func:`bids_stroke.outputs.plan.plan_image` and :func:`bids_stroke.outputs.commit.commit_image`,
so ``bids_stroke BIDS OUT group`` reads them unchanged.

With ``--reference prediction`` (or ``auto`` for images without a mask) the reference is the
tool's own prediction at the reference condition (default ``native``): the other conditions'
predictions are scored against it (agreement, no mask needed), with the same metric code.

The tool is identified in every sidecar (``SegmentationModel``: kind ``external tool``, its
name and version) by :func:`tool_digest` as ``SHA256``: the sha256 of the tool's name and
version, *not* of its prediction files. Like a model's checksum it keys the committed
conditions (:func:`bids_stroke.outputs.commit.plan_conditions`), so results of two tools (or of a
tool and bids_stroke's own model) are never silently mixed in one output folder, while a re-run
that scores a condition missing before joins the conditions scored earlier. Each prediction's
own sha256 is recorded in its mask's sidecar (``PredictionSHA256``) and in the run's log.
"""

from __future__ import annotations

import glob
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nibabel as nb
import numpy as np

from bids_stroke.degradation import Condition
from bids_stroke.degradation.nifti import load_nifti
from bids_stroke.inputs.discovery import AFFINE_ATOL, ImageInputs
from bids_stroke.metrics.reference import Reference

if TYPE_CHECKING:
    from bids_stroke.outputs.commit import Manifest

PLACEHOLDERS = ("condition", "subject", "session", "acq", "run")
_FIELD_RE = re.compile(r"\{([^{}]*)\}")


class ScoreError(ValueError):
    """A prediction (or the pattern) cannot be scored; one line naming the file and the fix."""


# ----------------------------------------------------------------------------- the pattern
@dataclass(frozen=True)
class PredictionPattern:
    """Where the tool's predictions are: a path with placeholders, e.g.
    ``out/{condition}/sub-{subject}/ses-{session}/anat/*_mask.nii.gz``."""

    text: str

    def __post_init__(self) -> None:
        names = _FIELD_RE.findall(self.text)
        unknown = sorted({n for n in names if n not in PLACEHOLDERS})
        if unknown:
            raise ScoreError(f"--predictions {self.text!r}: unknown placeholder {{{unknown[0]}}}"
                             f"; use {', '.join('{' + p + '}' for p in PLACEHOLDERS)}")
        for needed in ("condition", "subject"):
            if needed not in names:
                raise ScoreError(f"--predictions {self.text!r} has no {{{needed}}}: every "
                                 f"{needed}'s predictions must be told apart, e.g. "
                                 "'preds/{condition}/sub-{subject}/anat/*_mask.nii.gz'")

    @property
    def names(self) -> set[str]:
        return set(_FIELD_RE.findall(self.text))

    def glob_for(self, values: Mapping[str, str]) -> str:
        """The pattern with ``values`` filled in and every other placeholder a ``*``."""
        return _FIELD_RE.sub(lambda m: values.get(m.group(1), "*"), self.text)

    def regex(self) -> re.Pattern[str]:
        out, seen, pos = [], set(), 0
        for m in _FIELD_RE.finditer(self.text):
            out.append(_glob_regex(self.text[pos:m.start()]))
            name = m.group(1)
            out.append(f"(?P={name})" if name in seen else f"(?P<{name}>[A-Za-z0-9]+)")
            seen.add(name)
            pos = m.end()
        out.append(_glob_regex(self.text[pos:]))
        return re.compile("".join(out) + r"\Z")

    def parse(self, path: str) -> dict[str, str] | None:
        m = self.regex().match(path)
        return m.groupdict() if m else None

    def every_file(self) -> list[tuple[Path, dict[str, str]]]:
        """Every file the pattern matches, with its placeholder values."""
        found = []
        for name in sorted(glob.glob(self.glob_for({}), recursive=True)):
            values = self.parse(name)
            if values is not None and Path(name).is_file():
                found.append((Path(name), values))
        return found

    def find(self, values: Mapping[str, str]) -> list[Path]:
        """The files of one subject and condition (placeholders given by ``values``)."""
        hits = []
        for name in sorted(glob.glob(self.glob_for(values), recursive=True)):
            parsed = self.parse(name)
            if parsed is not None and all(parsed.get(k) == v for k, v in values.items()
                                          if k in parsed) and Path(name).is_file():
                hits.append(Path(name))
        return hits


def _glob_regex(text: str) -> str:
    out = []
    i = 0
    while i < len(text):
        if text.startswith("**", i):
            out.append(".*")
            i += 2
        elif text[i] == "*":
            out.append("[^/]*")
            i += 1
        elif text[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(text[i]))
            i += 1
    return "".join(out)


def placeholder_values(pattern: PredictionPattern, subject: ImageInputs,
                       label: str) -> dict[str, str]:
    """The values of one subject's condition; a placeholder the subject has no value for
    (``{session}`` in a dataset without sessions) is an error naming the fix."""
    values = {"condition": label, "subject": subject.subject}
    have = {"session": subject.session, "acq": subject.entities.get("acq"),
            "run": subject.entities.get("run")}
    for name, value in have.items():
        if name in pattern.names:
            if not value:
                raise ScoreError(f"--predictions uses {{{name}}} but {subject.key} has no "
                                 f"{name}: remove it (and its '{name[:3]}-' part) from the "
                                 "pattern")
            values[name] = value
    return values


# ----------------------------------------------------------------------------- predictions
def _refuse(path: Path, problem: str) -> ScoreError:
    return ScoreError(f"{path}: {problem}")


def load_prediction(path: Path, grid: nb.Nifti1Image, grid_path: Path,
                    threshold: float | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The lesion mask (bool) of a prediction and its probabilities (or ``None``).

    The prediction must be a 3-D NIfTI (a single-volume 4-D one is accepted) on the grid of
    ``grid`` (the exported image it was made from: same shape, affine within 1e-3 mm), and
    binary (0/1) — or, with ``threshold``, probabilities in [0, 1] (lesion: >= threshold).
    Anything else raises :class:`ScoreError` naming the file and the fix; the shape is checked
    on the header, before any data is decompressed.
    """
    try:
        img = load_nifti(path)
    except Exception as exc:  # nibabel raises many types on bad files
        raise _refuse(path, f"cannot be read as NIfTI ({type(exc).__name__}); give the "
                            "tool's NIfTI output") from exc
    shape = tuple(img.shape)
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    fix = (f"resample it onto the grid of the exported image {grid_path.name} (nearest "
           "neighbour) or make the tool write its output on its input's grid")
    if shape != tuple(grid.shape[:3]):
        raise _refuse(path, f"shape {shape} differs from the exported image {grid_path.name} "
                            f"{tuple(grid.shape[:3])}: not on its grid; {fix}")
    if not np.all(np.isfinite(img.affine)) or not np.allclose(img.affine, grid.affine,
                                                              rtol=0, atol=AFFINE_ATOL):
        diff = float(np.nanmax(np.abs(np.asarray(img.affine) - grid.affine)))
        raise _refuse(path, f"affine differs from the exported image {grid_path.name} by up "
                            f"to {diff:.4g} mm: not on its grid; {fix}")
    dtype = img.header.get_data_dtype()
    if dtype.kind not in "biuf" or dtype.fields is not None:
        raise _refuse(path, f"data type {dtype} is not a mask; write 0/1 (uint8) or "
                            "probabilities (float)")
    try:
        data = np.asanyarray(img.dataobj).reshape(shape)
    except Exception as exc:
        raise _refuse(path, f"data cannot be read ({type(exc).__name__}: truncated or corrupt "
                            "file?); re-run the tool for it") from exc
    if data.dtype.kind == "f" and not np.all(np.isfinite(data)):
        raise _refuse(path, "has NaN/Inf values; the tool's output is broken for this image")
    if threshold is None:
        values = np.unique(data)
        if not np.all(np.isin(values, (0, 1))):
            shown = ", ".join(f"{v:g}" for v in values[:4]) + (" ..." if len(values) > 4 else "")
            raise _refuse(path, f"is not a binary mask (values {shown}); if it is a "
                                "probability map give --threshold T (probability >= T is "
                                "lesion), else binarise it to 0/1")
        return data == 1, None
    lo, hi = (float(data.min()), float(data.max())) if data.size else (0.0, 0.0)
    if lo < 0 or hi > 1:
        raise _refuse(path, f"values span [{lo:g}, {hi:g}], not probabilities in [0, 1]; "
                            "rescale them or give binary masks without --threshold")
    return data >= threshold, np.asarray(data, dtype=np.float32)


# ----------------------------------------------------------------------------- the tool
@dataclass(frozen=True)
class Tool:
    """The segmentation tool whose predictions are scored."""

    name: str
    version: str = ""
    pattern: str = ""
    threshold: float | None = None

    @property
    def digest(self) -> str:
        return tool_digest(self.name, self.version)

    def info(self) -> dict[str, Any]:
        """``SegmentationModel`` fields (with ``SHA256`` = :attr:`digest`)."""
        return {
            "kind": "external tool",
            "name": self.name,
            "version": self.version or "n/a",
            "predictions": self.pattern,
            "input": "the exported conditions (bids_stroke export)",
            "sha256_of": "the tool's name and version (bids_stroke.score.tool_digest), not "
                         "of a file: the predictions' own sha256 are in PredictionSHA256",
        }


def tool_digest(name: str, version: str = "") -> str:
    """sha256 identifying an external tool: of ``{"external_tool": name, "version": ...}``."""
    blob = json.dumps({"external_tool": name, "version": version}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def check_tool_name(value: str, option: str = "--tool-name") -> str:
    text = str(value).strip()
    if not text or len(text) > 200 or not text.isprintable():
        raise ScoreError(f"{option} must be 1-200 printable characters, got {value!r}")
    return text


# ----------------------------------------------------------------------------- one subject
@dataclass(frozen=True)
class ConditionToScore:
    """One condition of a subject: its prediction and the exported images it was made from."""

    condition: Condition
    prediction: Path
    prediction_sha256: str
    exported: Mapping[str, Path]  # suffix -> exported image (reference first)
    reference: Path  # the exported image of the reference suffix: the prediction's grid


@dataclass(frozen=True)
class SubjectToScore:
    subject: ImageInputs
    conditions: Sequence[ConditionToScore]
    gaps: Sequence[str] = field(default_factory=tuple)  # condition labels without prediction
    reference: Reference = field(default_factory=Reference)  # what the conditions are scored
    # against (the lesion mask, or the tool's prediction at the reference condition)


def _write(img: nb.Nifti1Image, data: np.ndarray, dtype: type, path: Path) -> str:
    from bids_stroke.degradation.nifti import like_image

    path.parent.mkdir(parents=True, exist_ok=True)
    like_image(img, data, dtype).to_filename(str(path))
    return str(path)


def _reference_metadata(subject: ImageInputs, bids_dir: Path) -> dict[str, Any]:
    from bids_stroke.external.export import ExportError, dataset_root_of, inherited_metadata
    from bids_stroke.inputs.discovery import find_dataset_roots

    try:
        root = dataset_root_of(Path(subject.image), find_dataset_roots(bids_dir))
        return inherited_metadata(Path(subject.image), root)
    except ExportError:
        return {}


def score_subject(out: Path, item: SubjectToScore, tool: Tool, work: Path, *, bids_dir: Path,
                  connectivity: int, tolerance_mm: float, grid: str, save_degraded: bool,
                  results_key: str, run_uuid: str, clean: bool,
                  provenance: Mapping[str, Any], command: str = "",
                  reference: Reference | None = None) -> Manifest:
    """Masks, metric tables, report, then the all-or-nothing commit of one subject (the
    caller holds its lock in ``out``). Returns the new manifest.

    ``reference``: the lesion mask (default), or the tool's own prediction at a reference
    condition (:meth:`bids_stroke.metrics.reference.Reference.prediction`): every other condition is
    then scored against it (agreement) and that condition gets no row."""
    from bids_stroke.metrics.tables import score_conditions
    from bids_stroke.outputs.commit import (
        ConditionRecord,
        commit_image,
        plan_conditions,
        read_manifest,
    )
    from bids_stroke.outputs.plan import (
        ConditionOutputs,
        ImageOutputs,
        bids_uri,
        metrics_table_name,
        plan_image,
        scored_mask_rel,
    )
    from bids_stroke.reports.subject import build_subject_report

    s = item.subject
    reference = reference or Reference()
    outputs, report_rows, masks, eff = [], [], [], []
    for c in item.conditions:
        cond = c.condition
        exported = load_nifti(c.reference)
        mask, prob = load_prediction(c.prediction, exported, c.reference, tool.threshold)
        mask_file = _write(exported, mask.astype(np.uint8), np.uint8,
                           work / f"{cond.label}_mask.nii")
        prob_file = None if prob is None else _write(exported, prob, np.float32,
                                                     work / f"{cond.label}_probseg.nii")
        masks.append(mask_file)
        eff.append(cond.effective_resolution_mm(exported.header.get_zooms()[:3]))
        outputs.append(ConditionOutputs(
            label=cond.label, spec=cond.spec, description=cond.description,
            params=dict(cond.params), probseg=prob_file, mask=mask_file,
            images={k: str(v) for k, v in c.exported.items()} if save_degraded else {},
            provenance={"PredictionFile": c.prediction.absolute().as_uri(),
                        "PredictionSHA256": c.prediction_sha256,
                        "ToolInputs": [Path(v).absolute().as_uri()
                                       for v in c.exported.values()]}))
        report_rows.append({"label": cond.label, "spec": cond.spec,
                            "description": cond.description, "image": str(c.reference),
                            "mask": mask_file, "probseg": prob_file})
    session = f"ses-{s.session}" if s.session else "n/a"
    if reference.is_prediction:
        record = reference.record(File="bids::" + scored_mask_rel(
            s.subject, s.session, dict(s.entities), s.suffix, None, None, False,
            str(reference.label)))
    else:
        record = reference.record(File=bids_uri(str(s.mask), str(bids_dir)))
    tables = score_conditions(
        None if reference.is_prediction else s.mask, masks,
        [c.condition.label for c in item.conditions],
        [c.condition.spec for c in item.conditions], eff, participant_id=f"sub-{s.subject}",
        session_id=session, prefix=s.key, connectivity=connectivity,
        tolerance_mm=tolerance_mm, grid=grid, out_dir=work,
        reference_label=reference.label if reference.is_prediction else None,
        reference=record)
    prov = {"segmentation tool": tool.name, "tool version": tool.version or "n/a",
            "tool digest (SHA256)": tool.digest, "predictions": tool.pattern,
            "masks": (f"probability >= {tool.threshold:g}" if tool.threshold is not None
                      else "binary, as the tool wrote them"),
            "not scored (no prediction)": ", ".join(item.gaps) or "none", **provenance}
    report = build_subject_report(
        work / "report.html", subject=s.subject, session=s.session, image=str(s.image),
        suffix=s.suffix, reference_mask=None if reference.is_prediction else str(s.mask),
        conditions=report_rows, metrics_tsv=tables.tsv, provenance=prov,
        command_line=command or None, threshold=tool.threshold,
        metrics_name=metrics_table_name(s.subject, s.session, dict(s.entities), None, None,
                                        False, reference_desc=reference.desc),
        reference_label=reference.label, reference_condition=reference.condition)
    meta = _reference_metadata(s, bids_dir)
    warnings = [f"no prediction for condition(s) {', '.join(item.gaps)}"] if item.gaps else []
    so = ImageOutputs(
        subject=s.subject, session=s.session, entities=dict(s.entities), suffix=s.suffix,
        bids_dir=str(bids_dir), source_image=str(s.image), conditions=outputs,
        model_sha256=tool.digest, model_info=tool.info(), threshold=tool.threshold,
        channel_sources={s.suffix: str(s.image), **{k: str(p) for k, p, _ in s.channels}},
        source_mask=None if reference.is_prediction else str(s.mask),
        metrics_tsv=str(tables.tsv), metrics_json=str(tables.json),
        lesions_tsv=str(tables.lesions_tsv), lesions_json=str(tables.lesions_json),
        report=str(report), skull_stripped=meta.get("SkullStripped", False),
        warnings=warnings,
        mask_rule=(None if tool.threshold is not None else
                   f"the binary mask written by {tool.name}, on the native grid"),
        reference_desc=reference.desc)
    files, planned_tables = plan_image(so)
    records = [ConditionRecord(c.condition.label, c.condition.spec, tool.digest, results_key,
                               run_uuid) for c in item.conditions]
    plan = plan_conditions(read_manifest(out, s.key), records, clean=clean)
    manifest, _ = commit_image(
        out, s.key, files=files, tables=planned_tables, conditions=records, plan=plan,
        run_uuid=run_uuid, extra={"segmentation": {"sha256": tool.digest, **tool.info()},
                                  "reference": reference.record()})
    return manifest
