"""Collect the per-subject metric derivatives of a bids_stroke output directory.

Only ``OUT`` is read: ``sub-*/**/anat/*_label-L_segmetrics.tsv`` (one row per condition) and
``sub-*/**/anat/*_label-L_lesions.tsv`` (one row per condition and reference lesion).
``n/a`` (and empty cells) become NaN in numeric columns; ``session_id`` keeps ``n/a``.
"""

from __future__ import annotations

import fnmatch
import io
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from bids_stroke.metrics.reference import Reference
    from bids_stroke.outputs.commit import ImageState, Manifest

__all__ = [
    "BUNDLED_MODEL_LABEL",
    "CORE_METRIC_COLUMNS",
    "LESION_COLUMNS",
    "METRIC_COLUMNS",
    "OPTIONAL_METRIC_COLUMNS",
    "SEGMETRICS_ID_COLUMNS",
    "GroupIncomplete",
    "GroupInputError",
    "compare_selection",
    "find_files",
    "incomplete_images",
    "incomplete_sentence",
    "model_details",
    "normalise_labels",
    "parse_compare",
    "participant_settings",
    "quarantined_journals",
    "read_datasets",
    "read_lesions",
    "read_segmetrics",
    "read_tsvs",
    "report_incomplete",
    "run_warnings",
    "segmentation_models",
    "split_conditions",
    "template_sources",
]

#: Metric columns every ``*_label-L_segmetrics.tsv`` has (docs/CONTRACTS.md).
CORE_METRIC_COLUMNS: tuple[str, ...] = (
    "tp", "fp", "fn", "tn", "dice", "jaccard", "precision", "recall", "specificity",
    "accuracy", "balanced_accuracy", "mcc", "ref_volume_ml", "pred_volume_ml",
    "volume_diff_ml", "abs_volume_diff_ml", "abs_volume_diff_voxels", "rel_volume_diff",
    "volume_ratio", "hd", "hd95", "assd", "surface_dice", "distances_undefined",
    "ref_lesion_count", "pred_lesion_count", "abs_lesion_count_diff", "lesion_tp",
    "lesion_fp", "lesion_fn", "lesion_f1", "detection_rate",
)
#: Metric columns added later: read when present, NaN (and reported) in older outputs.
#: ``pred_fraction_pct``: predicted lesion voxels as % of all voxels of the scored grid.
OPTIONAL_METRIC_COLUMNS: tuple[str, ...] = ("grid_voxels", "pred_fraction_pct")
METRIC_COLUMNS: tuple[str, ...] = (*CORE_METRIC_COLUMNS, *OPTIONAL_METRIC_COLUMNS)
SEGMETRICS_ID_COLUMNS: tuple[str, ...] = (
    "participant_id", "session_id", "desc", "condition", "effective_resolution_mm",
)
LESION_COLUMNS: tuple[str, ...] = (
    "participant_id", "session_id", "desc", "condition", "lesion_id", "volume_ml",
    "volume_voxels", "detected", "overlap_fraction",
)
_TEXT_COLUMNS = ("participant_id", "session_id", "desc", "condition")
SEGMETRICS_GLOB = "sub-*/**/*_label-L*_segmetrics.tsv"
LESIONS_GLOB = "sub-*/**/*_label-L*_lesions.tsv"
LOGGER = logging.getLogger("bids_stroke.group")


#: metrics that are fractions: a value outside [0, 1] means a corrupted or foreign table
UNIT_INTERVAL = ("dice", "jaccard", "precision", "recall", "specificity", "accuracy",
                 "balanced_accuracy", "surface_dice", "lesion_f1", "detection_rate",
                 "overlap_fraction")
#: metrics that cannot be negative
NON_NEGATIVE = ("tp", "fp", "fn", "tn", "ref_volume_ml", "pred_volume_ml", "abs_volume_diff_ml",
                "abs_volume_diff_voxels", "hd", "hd95", "assd", "ref_lesion_count",
                "pred_lesion_count", "lesion_tp", "lesion_fp", "lesion_fn", "volume_ml",
                "volume_voxels", "effective_resolution_mm", "grid_voxels", "pred_fraction_pct")


class GroupInputError(RuntimeError):
    """The output directory does not hold usable participant-level derivatives."""


class GroupDataError(GroupInputError, ValueError):
    """A participant-level table is malformed or holds impossible values (exit 65, as any
    bad input data), as opposed to no table at all (:class:`GroupInputError`, exit 66)."""


def normalise_labels(labels: str | Iterable[str] | None) -> set[str] | None:
    """Participant labels without the ``sub-`` prefix (None = no filter)."""
    if labels is None:
        return None
    if isinstance(labels, str):
        labels = [labels]
    out = {str(lab).removeprefix("sub-") for lab in labels}
    return out or None


def find_files(
    output_dir: str | os.PathLike[str],
    pattern: str,
    participant_label: str | Iterable[str] | None = None,
    *,
    states: Sequence[ImageState] | None = None,
    reference: Reference | None = None,
) -> list[Path]:
    """The committed tables matching ``pattern`` under ``output_dir`` (sorted), optionally for
    some subjects and only those scored against ``reference`` (default: every table). Only
    subjects with a complete commit are read (their table checksums are verified, interrupted
    commits finished first); every other table found is named in a warning and left out
    (:func:`bids_stroke.outputs.commit.committed_images`; ``states``: its result when the caller
    already has it, so that one group run reads every manifest and checks every table
    once)."""
    from bids_stroke.outputs.commit import committed_images

    root = Path(output_dir)
    wanted = normalise_labels(participant_label)
    table = pattern.rsplit("_", 1)[-1].split(".")[0]  # segmetrics / lesions
    from bids_stroke.group.references import reference_of

    committed: set[Path] = set()
    selected: set[Path] = set()
    standalone = states is None
    states = committed_images(root) if states is None else states
    incomplete = incomplete_images(states, participant_label)
    if standalone and incomplete and table == "segmetrics":  # else the caller says it
        LOGGER.warning("group: %s", incomplete_sentence(incomplete, states, participant_label))
    for state in _selected(states, wanted):
        rel = state.manifest.tables.get(table) if state.manifest is not None else None
        if rel is not None:
            committed.add(root / rel)
            if reference is None or reference_of(state) == reference:
                selected.add(root / rel)
    named = {s.key for s in incomplete}
    for found in scan(root, f"sub-*/**/*_{table}.tsv", wanted):
        if found not in committed and table == "segmetrics" and image_id(found) not in named:
            LOGGER.warning("group: skipping %s: not part of a committed subject (written by an "
                           "interrupted or older run); re-run its participant level",
                           found.relative_to(root))
    return sorted(selected)


def _selected(states: Iterable[ImageState], wanted: set[str] | None
              ) -> Iterator[ImageState]:
    for state in states:
        if wanted is None or state.key.split("_", 1)[0].removeprefix("sub-") in wanted:
            yield state


def incomplete_images(states: Sequence[ImageState],
                      participant_label: str | Iterable[str] | None = None
                      ) -> list[ImageState]:
    """The images of OUT the group level leaves out: a run killed before their commit
    (staging left), a journal quarantined or being written, a manifest unreadable or whose
    tables changed, a participant level that failed (crash files only)."""
    return [s for s in _selected(states, normalise_labels(participant_label))
            if s.manifest is None]


def incomplete_sentence(incomplete: Sequence[ImageState], states: Sequence[ImageState],
                        participant_label: str | Iterable[str] | None = None,
                        shown: int = 10) -> str:
    """``2 of 40 images are incomplete and were not used: sub-01_ses-1 (interrupted), ...``"""
    total = len(list(_selected(states, normalise_labels(participant_label))))
    names = ", ".join(f"{s.key} ({s.reason or 'incomplete'})" for s in incomplete[:shown])
    more = f" and {len(incomplete) - shown} more" if len(incomplete) > shown else ""
    verb = "is incomplete and was" if len(incomplete) == 1 else "are incomplete and were"
    return f"{len(incomplete)} of {total} images {verb} not used: {names}{more}"


class GroupIncomplete(GroupInputError):
    """``--strict`` and some images of OUT are incomplete (exit 66, nothing written)."""


def report_incomplete(states: Sequence[ImageState] | None,
                      participant_label: str | Iterable[str] | None = None, *,
                      strict: bool = False) -> str | None:
    """Name the images the group level leaves out in one log line and return the sentence
    for the report (``None``: none); :class:`GroupIncomplete` instead under ``strict``."""
    incomplete = incomplete_images(states or [], participant_label)
    if not incomplete:
        return None
    sentence = incomplete_sentence(incomplete, states or [], participant_label)
    if strict:
        raise GroupIncomplete(f"--strict: {sentence}; re-run their participant level (or "
                              "leave out --strict to analyse the others)")
    LOGGER.warning("group: %s", sentence)
    return sentence


def quarantined_journals(states: Sequence[ImageState] | None) -> str | None:
    """The one-line error for commit journals that failed their checks in this run."""
    bad = [s for s in states or [] if s.quarantined]
    if not bad:
        return None
    more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
    return f"{bad[0].problem}{more}; the group outputs were written without them"


def scan(root: Path, pattern: str, subjects: set[str] | None = None) -> list[Path]:
    """``root.glob(pattern)`` for ``sub-*/**/...`` patterns, sorted, by one ``os.walk`` of each
    subject folder (pathlib's ``**`` costs seconds on 10 000 subjects)."""
    head, _, tail = pattern.partition("/**/")
    if head != "sub-*" or "/" in tail.replace("anat/", "", 1):
        return sorted(f for f in root.glob(pattern)
                      if subjects is None
                      or f.relative_to(root).parts[0].removeprefix("sub-") in subjects)
    folder, _, name = tail.rpartition("/")
    out = []
    with os.scandir(root) as entries:
        subs = [e.name for e in entries if e.name.startswith("sub-") and e.is_dir()]
    for sub in subs:
        if subjects is not None and sub.removeprefix("sub-") not in subjects:
            continue
        for here, _, names in os.walk(root / sub):
            if folder and os.path.basename(here) != folder:
                continue
            out += [Path(here) / n for n in names if fnmatch.fnmatchcase(n, name)]
    return sorted(out)


def _check_header(path: Path, header: Sequence[str], required: Sequence[str]) -> None:
    missing = [c for c in required if c not in header]
    if missing:
        raise GroupDataError(
            f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(header)})")


def _finish(df: pd.DataFrame, numeric: Sequence[str], source: str) -> pd.DataFrame:
    for col in _TEXT_COLUMNS:
        if col in df.columns:
            df[col] = df[col].astype("string").fillna("n/a").astype(object)
    for col in numeric:
        if col in df.columns and not pd.api.types.is_numeric_dtype(df[col]):
            conv = pd.to_numeric(df[col], errors="coerce")
            bad = conv.isna() & df[col].notna()
            if bad.any():
                raise GroupDataError(
                    f"{source}: non-numeric value {df[col][bad].iloc[0]!r} in column {col!r}")
            df[col] = conv
    for col in numeric:
        if col in df.columns:
            df[col] = df[col].astype(float)
    _check_ranges(df, source)
    return df


def _check_ranges(df: pd.DataFrame, source: str) -> None:
    """Refuse values no participant-level run can write (e.g. Dice 1.7 or -0.2)."""
    for col, lo, hi in ([(c, 0.0, 1.0) for c in UNIT_INTERVAL]
                        + [(c, 0.0, np.inf) for c in NON_NEGATIVE]):
        if col not in df.columns:
            continue
        values = df[col].to_numpy(dtype=float)
        bad = ~np.isnan(values) & ((values < lo) | (values > hi))
        if bad.any():
            where = df.get("participant_id")
            who = f" ({where.iloc[int(np.argmax(bad))]})" if where is not None else ""
            raise GroupDataError(
                f"{source}: {col} = {values[bad][0]:g}{who} is outside its range "
                f"[{lo:g}, {hi:g}]; the table is corrupted or not from bids_stroke: re-run that "
                "subject's participant level")


def _read_one(path: Path, required: Sequence[str], numeric: Sequence[str]) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, sep="\t", na_values=["n/a", ""], keep_default_na=False,
                         dtype={c: str for c in _TEXT_COLUMNS})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise GroupDataError(f"{path}: cannot parse TSV ({exc})") from exc
    _check_header(path, list(df.columns), required)
    return _finish(df, numeric, str(path))


def image_id(path: Path) -> str:
    """``sub-01_ses-1_run-2`` from ``sub-01_ses-1_run-2_space-X_label-L_segmetrics.tsv``:
    the input image a row comes from (tells runs/acquisitions of one session apart)."""
    return re.split(r"_(?:space|res|label|desc)-", path.name, maxsplit=1)[0]


def read_tsvs(
    files: Sequence[Path],
    required: Sequence[str],
    numeric: Sequence[str],
) -> pd.DataFrame:
    """Validate and concatenate TSV files.

    Fast path: when every file has the same header, the bodies are joined and parsed once
    (one ``read_csv`` for thousands of small files). Otherwise, or when a value is malformed,
    files are parsed one by one so the error names the offending file.
    """
    if not files:
        return pd.DataFrame(columns=list(required))
    headers, bodies = [], []
    for f in files:
        text = f.read_text(encoding="utf-8")
        head, _, body = text.partition("\n")
        header = head.rstrip("\r").split("\t")
        _check_header(f, header, required)
        headers.append(header)
        if body and not body.endswith("\n"):
            body += "\n"
        bodies.append(body)
    if all(h == headers[0] for h in headers):
        try:
            df = pd.read_csv(io.StringIO("\t".join(headers[0]) + "\n" + "".join(bodies)),
                             sep="\t", na_values=["n/a", ""], keep_default_na=False,
                             dtype={c: str for c in _TEXT_COLUMNS})
            counts = [b.count("\n") for b in bodies]
            if sum(counts) == len(df):
                df["image_id"] = np.repeat([image_id(f) for f in files], counts)
                return _finish(df, numeric, f"{len(files)} files")
        except (GroupInputError, pd.errors.ParserError):
            pass  # fall back to per-file parsing to name the culprit
    frames = [_read_one(f, required, numeric).assign(image_id=image_id(f)) for f in files]
    return pd.concat(frames, ignore_index=True)


def read_segmetrics(
    output_dir: str | os.PathLike[str],
    participant_label: str | Iterable[str] | None = None,
    *,
    states: Sequence[ImageState] | None = None,
    reference: Reference | None = None,
) -> pd.DataFrame:
    """All ``*_label-L_segmetrics.tsv`` rows of ``output_dir`` in one frame (only those
    scored against ``reference`` when it is given).

    Raises
    ------
    GroupInputError
        When the directory does not exist, holds no metrics TSV, or a file is malformed.
    """
    root = Path(output_dir)
    if not root.is_dir():
        raise GroupInputError(f"output directory {root} does not exist")
    if states is None:
        from bids_stroke.outputs.commit import committed_images

        states = committed_images(root)
    files = find_files(root, SEGMETRICS_GLOB, participant_label, states=states,
                       reference=reference)
    if not files:
        who = "" if participant_label is None else f" for participant(s) {participant_label}"
        unscored = [s for s in states if s.manifest is not None
                    and "segmetrics" not in s.manifest.tables]
        if unscored and reference is None:
            raise GroupInputError(
                f"no *_label-L_segmetrics.tsv found under {root}{who}: the participant level "
                f"segmented {len(unscored)} image(s) without scoring them (no lesion mask); "
                "re-run it with --reference prediction to score them against the model's own "
                "native-resolution prediction")
        raise GroupInputError(
            f"no *_label-L_segmetrics.tsv found under {root}{who}; "
            "run the participant level first")
    df = read_tsvs(files, [*SEGMETRICS_ID_COLUMNS, *CORE_METRIC_COLUMNS],
                   ["effective_resolution_mm", *METRIC_COLUMNS])
    if df.empty:
        raise GroupInputError(f"the {len(files)} segmetrics TSV file(s) under {root} have no rows")
    absent = [c for c in OPTIONAL_METRIC_COLUMNS if c not in df.columns]
    for col in absent:
        df[col] = np.nan
    df = df.replace([np.inf, -np.inf], np.nan)  # infinite distances are treated as undefined
    df = df.reset_index(drop=True)
    df.attrs["absent_columns"] = absent
    side = files[0].with_suffix(".json")
    df.attrs["sidecar"] = str(side) if side.is_file() else None  # the columns' data dictionary
    return df


_CONDITION_LIST = re.compile(r"[A-Za-z0-9]+(?:,[A-Za-z0-9]+)*")


def split_conditions(folder: str) -> tuple[str, tuple[str, ...]]:
    """``"/out_isles:native,crude2"`` -> ``("/out_isles", ("native", "crude2"))``.

    The part after the last ``:`` is a list of condition labels when it is one (letters and
    digits, comma-separated, no ``/``); a folder whose name ends in such a part is given with a
    trailing ``/``.
    """
    head, sep, tail = str(folder).rpartition(":")
    if sep and head and _CONDITION_LIST.fullmatch(tail):
        return head, tuple(tail.split(","))
    return str(folder), ()


def compare_selection(items: Iterable[str] | Mapping[str, str] | None) -> dict[str, tuple[str,
                                                                                        ...]]:
    """The conditions given per dataset (``LABEL=DIR:cond,...``); datasets without are absent."""
    out = {}
    for label, path in _compare_items(items):
        conds = split_conditions(path)[1]
        if conds:
            out[label] = conds
    return out


def _compare_items(items: Iterable[str] | Mapping[str, str] | None) -> list[tuple[str, str]]:
    if not items:
        return []
    pairs = (list(items.items()) if isinstance(items, Mapping)
             else [tuple(str(i).split("=", 1)) if "=" in str(i) else (str(i), "")
                   for i in items])
    return [(str(label).strip(), str(path).strip()) for label, path in pairs]


def parse_compare(items: Iterable[str] | Mapping[str, str] | None) -> dict[str, Path]:
    """``["ATLAS=/out_a", "ISLES=/out_b:native"]`` (or a mapping) -> ``{"ATLAS": Path(...),
    ...}`` (condition lists stripped: :func:`compare_selection` returns them).

    Labels are letters, digits, ``-`` and ``_``; they must be unique. Raises ``ValueError``
    with a one-line message naming the bad item.
    """
    if not items:
        return {}
    out: dict[str, Path] = {}
    for label, path in _compare_items(items):
        path = split_conditions(path)[0]
        if not re.fullmatch(r"[A-Za-z0-9_-]+", label) or not path:
            raise ValueError(f"dataset comparison item {label}={path!r} must be LABEL=DIR "
                             "(label: letters, digits, - or _)")
        if label in out:
            raise ValueError(f"dataset label {label!r} is given twice")
        out[label] = Path(path)
    if len(out) < 2:
        raise ValueError("a dataset comparison needs at least two LABEL=DIR items")
    return out


def read_datasets(
    datasets: Mapping[str, str | os.PathLike[str]],
    participant_label: str | Iterable[str] | None = None,
    *,
    reference: Reference | None = None,
    states: Mapping[str, Sequence[ImageState]] | None = None,
) -> pd.DataFrame:
    """Metric rows of several output directories, with a ``dataset`` column (their label);
    only rows scored against ``reference`` when it is given (``states``: each directory's
    committed subjects when the caller has them)."""
    frames = []
    for label, path in datasets.items():
        try:
            df = read_segmetrics(path, participant_label, reference=reference,
                                 states=(states or {}).get(label))
        except GroupInputError as exc:
            raise GroupInputError(f"dataset {label}: {exc}") from exc
        frames.append(df.assign(dataset=label))
    out = pd.concat(frames, ignore_index=True)
    out.attrs["absent_columns"] = sorted({c for f in frames for c in f.attrs["absent_columns"]})
    out.attrs["sidecar"] = next((f.attrs["sidecar"] for f in frames if f.attrs["sidecar"]), None)
    return out


def read_lesions(
    output_dir: str | os.PathLike[str],
    participant_label: str | Iterable[str] | None = None,
    *,
    states: Sequence[ImageState] | None = None,
    reference: Reference | None = None,
) -> pd.DataFrame | None:
    """All ``*_label-L_lesions.tsv`` rows (of tables scored against ``reference`` when it is
    given), or None when there is no such file."""
    files = find_files(output_dir, LESIONS_GLOB, participant_label, states=states,
                       reference=reference)
    if not files:
        return None
    return read_tsvs(files, LESION_COLUMNS,
                     ["lesion_id", "volume_ml", "volume_voxels", "detected", "overlap_fraction"])


def _manifests(states: Iterable[ImageState],
               participant_label: str | Iterable[str] | None) -> Iterator[Manifest]:
    """The manifests of the committed subjects ``participant_label`` selects."""
    wanted = normalise_labels(participant_label)
    for state in states:
        subject = state.key.split("_", 1)[0].removeprefix("sub-")
        if state.manifest is not None and (wanted is None or subject in wanted):
            yield state.manifest


def run_warnings(states: Sequence[ImageState],
                 participant_label: str | Iterable[str] | None = None) -> dict[str, int]:
    """The warnings the participant level recorded in the committed subjects' manifests (a
    modality the model does not declare, the bundled demo model on other data...), each with
    the number of images it concerns, in first-seen order."""
    counts: dict[str, int] = {}
    for manifest in _manifests(states, participant_label):
        for warning in dict.fromkeys(manifest.extra.get("warnings") or ()):
            counts[str(warning)] = counts.get(str(warning), 0) + 1
    return counts


#: how the group level names the bundled model (its sha256 identifies it)
BUNDLED_MODEL_LABEL = "bids_stroke bundled demo model"


def segmentation_models(
    output_dir: str | os.PathLike[str],
    participant_label: str | Iterable[str] | None = None,
    *,
    states: Sequence[ImageState] | None = None,
) -> list[str]:
    """What made the committed predictions, one line per model or tool (sorted), from the
    subjects' manifests: an external tool scored with ``bids_stroke score`` by its name and
    version, the bundled demo model as such, another model by its sha256 (the sidecars'
    ``SegmentationModel``)."""
    from bids_stroke.model.bundled import bundled_sha256
    from bids_stroke.outputs.commit import committed_images

    found: set[str] = set()
    if states is None:
        states = committed_images(output_dir, recover_free=False)
    for manifest in _manifests(states, participant_label):
        tool = manifest.extra.get("segmentation")
        for record in manifest.conditions.values():
            if isinstance(tool, dict) and tool.get("sha256") == record.model_sha256:
                version = tool.get("version")
                found.add(f"{tool.get('kind', 'tool')} {tool.get('name')}"
                          + (f" {version}" if version and version != "n/a" else "")
                          + f" (sha256 {record.model_sha256[:12]})")
            elif record.model_sha256 == bundled_sha256():
                found.add(f"{BUNDLED_MODEL_LABEL} (sha256 {record.model_sha256[:12]})")
            else:
                found.add(f"model sha256 {record.model_sha256[:12]}")
    return sorted(found)


def participant_settings(
    output_dir: str | os.PathLike[str], states: Sequence[ImageState],
    participant_label: str | Iterable[str] | None = None,
) -> list[dict[str, Any]]:
    """The settings the participant-level runs recorded (``logs/config-<run>.json``) for the
    runs that made the committed conditions, oldest first (unreadable or absent files are
    skipped)."""
    import json

    runs = sorted({record.run_uuid for manifest in _manifests(states, participant_label)
                   for record in manifest.conditions.values()})
    out = []
    for run in runs:
        path = Path(output_dir) / "logs" / f"config-{run}.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            out.append(data)
    return out


def model_details(
    output_dir: str | os.PathLike[str], states: Sequence[ImageState],
    participant_label: str | Iterable[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """sha256 -> the ``SegmentationModel`` block of one committed mask sidecar made with that
    model (kind, spec...) and its ``threshold``, read once per model; models without a readable
    sidecar map to an empty dict."""
    import json

    out: dict[str, dict[str, Any]] = {}
    for manifest in _manifests(states, participant_label):
        for record in manifest.conditions.values():
            if record.model_sha256 in out:
                continue
            out[record.model_sha256] = {}
            tail = f"desc-{record.label}_mask.json"
            side = next((f for f in manifest.files if f.endswith(tail)), None)
            if side is None:
                continue
            try:
                content = json.loads((Path(output_dir) / side).read_text())
            except (OSError, ValueError):
                continue
            block = content.get("SegmentationModel") if isinstance(content, dict) else None
            if isinstance(block, dict):
                out[record.model_sha256] = {**block, "threshold": content.get("Threshold")}
    return out


def template_sources(output_dir: str | os.PathLike[str], states: Sequence[ImageState],
                     participant_label: str | Iterable[str] | None = None) -> dict[str, int]:
    """The ``TemplateSource`` (``templateflow``, ``templateflow-standin``, ``nilearn-standin``)
    of the committed subjects' template-space images, each with the number of images, from
    their ``desc-preproc`` sidecars (native-space runs have none: ``{}``)."""
    import json

    counts: dict[str, int] = {}
    for manifest in _manifests(states, participant_label):
        for rel in manifest.files:
            if "_desc-preproc_" in rel and rel.endswith(".json"):
                try:
                    source = json.loads((Path(output_dir) / rel).read_text()).get(
                        "TemplateSource")
                except (OSError, ValueError, AttributeError):
                    continue
                if source and source != "n/a":
                    counts[str(source)] = counts.get(str(source), 0) + 1
                break
    return counts
