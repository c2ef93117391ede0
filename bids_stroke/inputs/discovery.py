"""Find the images and lesion masks of a BIDS dataset with pybids.

Three layouts are supported, and may be mixed:

ATLAS v2.0
    ``sub-r001s001/ses-1/anat/sub-r001s001_ses-1_space-MNI152NLin2009aSym_T1w.nii.gz`` with the
    mask ``..._space-MNI152NLin2009aSym_label-L_desc-T1lesion_mask.nii.gz`` *beside* it. ATLAS
    ships one ``dataset_description.json`` per cohort folder (``Training/R001/``,
    ``Training/R002/``…) and none at ``Training/``: when ``bids_dir`` has no
    ``dataset_description.json`` but sub-folders that do, each sub-folder is indexed as its own
    dataset (a *cohort*).
ISLES 2022
    ``sub-strokecase0001/ses-0001/anat/..._FLAIR.nii.gz``, ``dwi/..._dwi.nii.gz`` and
    ``..._adc.nii.gz``; masks in ``derivatives/sub-*/ses-*/..._msk.nii.gz``. There is no T1w:
    choose the image with ``suffix`` (``--modality``).
Plain BIDS
    raw images in the dataset, masks in a derivatives dataset (``derivatives/<name>/``) or in any
    folder given with ``--derivatives``, named ``sub-X[_ses-Y]..._mask.nii.gz`` with a ``label-``
    or a lesion ``desc-`` entity.

Subjects without a mask are still returned (``mask=None``); what that means is the caller's
decision (the participant level: :mod:`bids_stroke.metrics.reference`). :func:`any_lesion_mask`
answers "is there any lesion mask at all?" without pybids, in milliseconds, so a dataset without
masks is refused before anything slow starts.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOGGER = logging.getLogger("bids_stroke.discovery")

NIFTI_EXTENSIONS = (".nii.gz", ".nii")
#: two images lie on the same grid when their shapes match and their affines agree within
#: this many mm (every same-grid check of bids_stroke: masks, channels, predictions)
AFFINE_ATOL = 1e-3
#: mask suffixes recognised as lesion masks (BIDS ``mask``/``dseg``; ISLES'22 ``msk``)
MASK_SUFFIXES = ("mask", "msk", "dseg", "roi")
_LABEL_RE = re.compile(r"^[A-Za-z0-9]+$")
_ENTITY_RE = re.compile(r"(?:^|_)([a-zA-Z]+)-([a-zA-Z0-9]+)")
#: modality aliases accepted by ``--modality`` (case-insensitive) -> BIDS suffix
MODALITY_ALIASES = {
    "t1w": "T1w",
    "t1": "T1w",
    "t2w": "T2w",
    "t2": "T2w",
    "flair": "FLAIR",
    "dwi": "dwi",
    "adc": "adc",
}


class DiscoveryError(RuntimeError):
    """Bad input dataset. ``exit_code`` follows the BIDS-App execution spec."""

    def __init__(self, message: str, exit_code: int = 66) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class ImageInputs:
    """One image to process and its lesion mask (if any)."""

    subject: str
    session: str | None
    image: Path
    mask: Path | None
    space: str | None
    entities: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)
    suffix: str = "T1w"
    #: the model's other input channels: ``(suffix, path, on the image's grid)``
    channels: tuple[tuple[str, Path, bool], ...] = field(default=(), compare=False, hash=False)

    @property
    def key(self) -> str:
        """``sub-X[_ses-Y][_acq-..][_run-..]``: unique name of this input."""
        parts = [f"sub-{self.subject}"]
        if self.session:
            parts.append(f"ses-{self.session}")
        for ent in ("acq", "rec", "run"):
            if ent in self.entities:
                parts.append(f"{ent}-{self.entities[ent]}")
        return "_".join(parts)


def normalize_label(label: str, prefix: str = "sub") -> str:
    """Strip an optional ``sub-``/``ses-`` prefix and check the label is alphanumeric.

    Raises
    ------
    DiscoveryError
        (exit 64) for labels such as ``../x`` that could escape a folder.
    """
    value = label.strip()
    if value.startswith(f"{prefix}-"):
        value = value[len(prefix) + 1 :]
    if not _LABEL_RE.match(value):
        raise DiscoveryError(
            f"invalid {prefix} label {label!r}: BIDS labels are alphanumeric "
            f"(e.g. '{prefix}-01' or '01')",
            exit_code=64,
        )
    return value


def resolve_modality(modality: str) -> str:
    """Map ``--modality`` to a BIDS suffix (``t1w`` -> ``T1w``; unknown values pass through)."""
    return MODALITY_ALIASES.get(modality.lower(), modality)


def file_entities(path: Path) -> dict[str, str]:
    """BIDS entities of a file name (``sub-01_ses-1_T1w.nii.gz`` -> ``{sub: 01, ses: 1, ...}``).

    Uses the short entity keys of the file name plus ``suffix``; independent of pybids so it
    also works on derivatives folders without a ``dataset_description.json`` (ISLES'22).
    """
    name = path.name
    for ext in NIFTI_EXTENSIONS:
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    ents = {k: v for k, v in _ENTITY_RE.findall(name)}
    ents["suffix"] = name.rsplit("_", 1)[-1] if "_" in name else name
    return ents


def find_dataset_roots(bids_dir: Path) -> list[Path]:
    """Dataset roots below ``bids_dir``: itself, or its cohort sub-folders (ATLAS v2.0)."""
    bids_dir = Path(bids_dir)
    if not bids_dir.is_dir():
        raise DiscoveryError(f"BIDS directory {bids_dir} does not exist: check the path", 66)
    if (bids_dir / "dataset_description.json").is_file():
        return [bids_dir]
    cohorts = sorted(
        p
        for p in bids_dir.iterdir()
        if p.is_dir() and p.name != "derivatives" and (p / "dataset_description.json").is_file()
    )
    if cohorts:
        return cohorts
    raise DiscoveryError(
        f"{bids_dir / 'dataset_description.json'} is missing: not a BIDS dataset "
        "(add the file, or point to the dataset root; ATLAS cohort folders are searched one "
        "level down)",
        exit_code=66,
    )


def validate_dataset(bids_dir: Path) -> list[str]:
    """Light structural validation of the input dataset(s); returns a list of problems.

    Checks each dataset root has a parseable ``dataset_description.json`` with ``Name`` and
    ``BIDSVersion`` and at least one ``sub-*`` folder. Full validation with the BIDS validator is
    left to the user (``bids-validator``), since real datasets such as ATLAS v2.0 use entities
    (``space-`` on raw T1w) that the validator rejects.
    """
    problems: list[str] = []
    for root in find_dataset_roots(bids_dir):
        desc = root / "dataset_description.json"
        try:
            content = json.loads(desc.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            problems.append(f"{desc}: not valid JSON ({exc})")
            continue
        if not isinstance(content, dict):
            problems.append(f"{desc}: must contain a JSON object")
            continue
        for key in ("Name", "BIDSVersion"):
            if key not in content:
                problems.append(f"{desc}: required key {key!r} is missing")
        if not any(p.is_dir() for p in root.glob("sub-*")):
            problems.append(f"{root}: no sub-* folder")
    return problems


def check_participant_labels(bids_dir: Path, participant_label: Sequence[str] | None) -> None:
    """Refuse labels without a ``sub-<label>`` folder, from the file system alone (no pybids):
    a mistyped label is reported in milliseconds, before any heavy import or model loading.

    Raises the same :class:`DiscoveryError` (exit 18) as :func:`collect_images`, which
    still checks what pybids indexes.
    """
    if not participant_label:
        return
    wanted = {normalize_label(lab, "sub") for lab in participant_label}
    found = {p.name[4:] for root in find_dataset_roots(Path(bids_dir))
             for p in root.glob("sub-*") if p.is_dir()}
    _refuse_missing_labels(bids_dir, wanted, found)


def _refuse_missing_labels(bids_dir: Path, wanted: set[str], found: set[str]) -> None:
    """:class:`DiscoveryError` (exit 18) naming the ``wanted`` labels not ``found``."""
    missing = sorted(wanted - found)
    if missing:
        raise DiscoveryError(
            f"participant label(s) not found in {bids_dir}: "
            + ", ".join(f"sub-{m}" for m in missing)
            + f" (available: {', '.join(sorted(found)[:10]) or 'none'})",
            exit_code=18,
        )


def _layout(root: Path, database_dir: Path | None) -> Any:  # a pybids BIDSLayout
    import bids

    kwargs: dict[str, Any] = {"validate": False}
    if database_dir is not None:
        db = Path(database_dir) / (re.sub(r"[^A-Za-z0-9]+", "_", str(root.resolve())).strip("_"))
        db.mkdir(parents=True, exist_ok=True)
        kwargs["database_path"] = str(db)
    try:
        return bids.BIDSLayout(str(root), **kwargs)
    except Exception as exc:  # pybids raises many types for bad datasets
        raise DiscoveryError(f"{root}: pybids cannot index this dataset ({exc})", 65) from exc


def _is_lesion_mask(ents: Mapping[str, str]) -> bool:
    suffix = ents.get("suffix", "")
    if suffix not in MASK_SUFFIXES:
        return False
    if suffix == "msk":  # ISLES'22 lesion masks carry no other entity
        return True
    desc = ents.get("desc", "").lower()
    if "brain" in desc:
        return False
    return "label" in ents or "lesion" in desc or (suffix == "mask" and not desc)


def _mask_score(image_ents: Mapping[str, str], mask_ents: Mapping[str, str]) -> int | None:
    """How well a candidate mask matches an image (higher is better; None = incompatible)."""
    for ent in ("sub", "ses", "run", "acq"):
        if ent in image_ents and ent in mask_ents and image_ents[ent] != mask_ents[ent]:
            return None
    if image_ents.get("ses") and mask_ents.get("ses") is None:
        # a session-less mask only matches when it is the subject's only candidate anyway
        pass
    image_space = image_ents.get("space")
    mask_space = mask_ents.get("space")
    if image_space != mask_space and mask_space is not None and image_space is not None:
        return None
    score = 0
    score += 6 if mask_ents.get("suffix") == "msk" else 0  # ISLES'22 ground truth
    score += 4 if "lesion" in mask_ents.get("desc", "").lower() else 0
    score += 2 if mask_ents.get("label") == "L" else 0
    score += 2 if image_space == mask_space else 0
    score += 1 if image_ents.get("suffix", "").lower() in mask_ents.get("desc", "").lower() else 0
    for ent in ("run", "acq"):
        score += 1 if ent in image_ents and image_ents.get(ent) == mask_ents.get(ent) else 0
    return score


def _generated_by_bids_stroke(folder: Path, cache: dict[Path, bool]) -> bool:
    """True when ``folder`` or a parent holds a ``dataset_description.json`` that says the
    dataset was generated by bids_stroke (our own outputs are never reference masks)."""
    for parent in (folder, *folder.parents):
        if parent in cache:
            return cache[parent]
        desc = parent / "dataset_description.json"
        if desc.is_file():
            try:
                content = json.loads(desc.read_text())
                names = [g.get("Name") for g in content.get("GeneratedBy", [])
                         if isinstance(g, dict)]
            except (OSError, ValueError, AttributeError):
                names = []
            cache[parent] = "bids_stroke" in names
            return cache[parent]
    return False


def _derivative_roots(roots: Sequence[Path], extra: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for root in roots:
        deriv = root / "derivatives"
        if deriv.is_dir():
            found.append(deriv)
    parent_deriv = Path(roots[0]).parent / "derivatives" if roots else None
    if parent_deriv is not None and parent_deriv.is_dir() and parent_deriv not in found:
        found.append(parent_deriv)
    for path in extra:
        path = Path(path)
        if not path.is_dir():
            raise DiscoveryError(f"--derivatives folder {path} does not exist: check the path", 66)
        found.append(path)
    return found


def _index_masks(
    deriv_roots: Sequence[Path], subjects: set[str], exclude: Sequence[Path] = ()
) -> dict[str, list[Path]]:
    """All lesion-mask files below the derivatives roots, keyed by subject label.

    Files below ``exclude`` (the run's own output folder) or in a dataset generated by
    bids_stroke are skipped: a prediction must never become the reference of a later run.
    """
    index: dict[str, list[Path]] = {}
    excluded = [Path(e).resolve() for e in exclude]
    cache: dict[Path, bool] = {}
    for root in deriv_roots:
        for path in sorted(root.rglob("sub-*")):
            if not (path.is_file() and path.name.endswith(NIFTI_EXTENSIONS)):
                continue
            resolved = path.resolve()
            if any(resolved.is_relative_to(e) for e in excluded):
                continue
            if _generated_by_bids_stroke(path.parent, cache):
                continue
            ents = file_entities(path)
            if ents.get("sub") in subjects and _is_lesion_mask(ents):
                found = index.setdefault(ents["sub"], [])
                if path.resolve() not in {p.resolve() for p in found}:
                    found.append(path)
    return index


def _select_mask(image: Path, candidates: Sequence[Path]) -> Path | None:
    image_ents = file_entities(image)
    scored = []
    for cand in candidates:
        score = _mask_score(image_ents, file_entities(cand))
        if score is not None:
            scored.append((score, str(cand), cand))
    if not scored:
        return None
    scored.sort(key=lambda item: (-item[0], item[1]))
    best = [s for s in scored if s[0] == scored[0][0]]
    if len(best) > 1:
        raise DiscoveryError(
            f"{image}: {len(best)} lesion masks match equally ({best[0][2].name}, "
            f"{best[1][2].name}): keep one, or pass the right folder with --derivatives",
            exit_code=65,
        )
    return best[0][2]


def mask_search_places(bids_dir: Path | str, derivatives: Sequence[Path | str] = ()
                       ) -> list[Path]:
    """Where lesion masks are looked for: each dataset root (masks beside the images) and the
    derivatives folders (``derivatives/`` of each root and beside them, and ``derivatives``)."""
    roots = find_dataset_roots(Path(bids_dir))
    return [*roots, *_derivative_roots(roots, [Path(d) for d in derivatives])]


def any_lesion_mask(bids_dir: Path | str, *, derivatives: Sequence[Path | str] = (),
                    exclude: Sequence[Path | str] = ()) -> bool:
    """Whether any file in :func:`mask_search_places` is named like a lesion mask (the names
    :func:`collect_images` accepts), without pybids: one walk of the folders, so a dataset
    without any mask is told in milliseconds. ``exclude`` (the run's output and work
    folders) and datasets generated by bids_stroke are not searched."""
    excluded = {Path(e).resolve() for e in exclude}
    cache: dict[Path, bool] = {}
    for place in mask_search_places(bids_dir, derivatives):
        for here, dirs, files in os.walk(place):
            folder = Path(here)
            if folder.resolve() in excluded or ("dataset_description.json" in files
                                                and _generated_by_bids_stroke(folder, cache)):
                dirs[:] = []
                continue
            dirs[:] = sorted(d for d in dirs if not (folder == place and d == "derivatives"))
            for name in files:
                if (name.startswith("sub-") and name.endswith(NIFTI_EXTENSIONS)
                        and _is_lesion_mask(file_entities(Path(name)))):
                    return True
    return False


def load_bids_filters(path: Path | None) -> dict[str, dict[str, Any]]:
    """Read a ``--bids-filter-file`` (fMRIPrep style JSON: ``{"t1w": {"acquisition": "mprage"}}``).

    The key ``image`` (or the lower-case suffix, e.g. ``t1w``/``flair``) filters the images.
    """
    if path is None:
        return {}
    path = Path(path)
    try:
        filters = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise DiscoveryError(f"--bids-filter-file {path} does not exist", 66) from exc
    except json.JSONDecodeError as exc:
        raise DiscoveryError(f"--bids-filter-file {path} is not valid JSON: {exc}", 64) from exc
    if not isinstance(filters, dict) or not all(isinstance(v, dict) for v in filters.values()):
        raise DiscoveryError(
            f"--bids-filter-file {path} must map query names to objects, "
            'e.g. {"t1w": {"acquisition": "mprage"}}',
            64,
        )
    return filters


def collect_images(
    bids_dir: Path | str,
    *,
    participant_label: Sequence[str] | None = None,
    session_label: Sequence[str] | None = None,
    suffix: str = "T1w",
    derivatives: Sequence[Path | str] = (),
    bids_filters: Mapping[str, Mapping[str, Any]] | None = None,
    database_dir: Path | str | None = None,
    exclude: Sequence[Path | str] = (),
) -> list[ImageInputs]:
    """Collect the images to segment and their lesion masks.

    Parameters
    ----------
    bids_dir
        BIDS dataset root, or a folder of cohort datasets (ATLAS v2.0 ``Training/``).
    participant_label, session_label
        Labels with or without ``sub-``/``ses-``; ``None`` selects all.
    suffix
        BIDS suffix of the image to segment (``T1w``; ``FLAIR``/``dwi``/``adc`` for ISLES'22).
    derivatives
        Extra folders searched for lesion masks (``derivatives/`` of each dataset is searched).
    bids_filters
        Extra pybids query entities for the image (``{"t1w": {...}}`` or ``{"image": {...}}``).
    database_dir
        Folder for persistent pybids databases, so large datasets are indexed once.
    exclude
        Folders never searched for masks (the run's output folder).

    Raises
    ------
    DiscoveryError
        ``exit_code`` 64 for bad labels, 66 for missing data, 18 when filters select nothing.
    """
    bids_dir = Path(bids_dir)
    suffix = resolve_modality(suffix)
    roots = find_dataset_roots(bids_dir)
    subjects_wanted = (
        {normalize_label(lab, "sub") for lab in participant_label} if participant_label else None
    )
    sessions_wanted = (
        {normalize_label(lab, "ses") for lab in session_label} if session_label else None
    )
    filters = dict(bids_filters or {})
    query = dict(filters.get("image", filters.get(suffix.lower(), {})))
    db = Path(database_dir) if database_dir else None
    images: list[tuple[Path, dict[str, Any]]] = []
    all_subjects: set[str] = set()
    for root in roots:
        found, subjects = _query_images(root, _layout(root, db), suffix, query, subjects_wanted,
                                        sessions_wanted)
        images += found
        all_subjects |= subjects
    if subjects_wanted:
        _refuse_missing_labels(bids_dir, subjects_wanted, all_subjects)
    if not images:
        raise DiscoveryError(
            f"no '{suffix}' image selected in {bids_dir} (check --participant-label, "
            "--session-label, --modality and --bids-filter-file)",
            exit_code=18,
        )

    deriv_roots = _derivative_roots(roots, [Path(d) for d in derivatives])
    selected_subjects = {ents["sub"] for _, ents in images}
    deriv_masks = _index_masks(deriv_roots, selected_subjects, [Path(e) for e in exclude])
    out = [_with_mask(path, ents, suffix, deriv_masks.get(ents["sub"], []))
           for path, ents in images]
    keys = [s.key for s in out]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise DiscoveryError(
            f"several '{suffix}' images share the name {dupes[0]} (different acquisitions or "
            "spaces?): select one with --bids-filter-file",
            exit_code=65,
        )
    return out


def _query_images(root: Path, layout: Any, suffix: str, query: Mapping[str, Any],
                  subjects_wanted: set[str] | None, sessions_wanted: set[str] | None
                  ) -> tuple[list[tuple[Path, dict[str, Any]]], set[str]]:
    """The ``suffix`` images pybids (``layout``) indexes in the dataset ``root`` for the
    wanted subjects and sessions (``None``: all), outside its ``derivatives/``, with their
    entities; and every subject of the dataset."""
    subjects = set(layout.get_subjects())
    chosen = sorted(subjects & subjects_wanted) if subjects_wanted else sorted(subjects)
    if not chosen:
        return [], subjects
    files = layout.get(
        subject=chosen,
        suffix=suffix,
        extension=[".nii", ".nii.gz"],
        return_type="filename",
        **query,
    )
    images = []
    for fname in sorted(files):
        path = Path(fname)
        ents = file_entities(path)
        if "/derivatives/" in path.as_posix()[len(root.as_posix()) :]:
            continue
        if sessions_wanted is not None and ents.get("ses") not in sessions_wanted:
            continue
        images.append((path, ents))
    return images, subjects


def _with_mask(path: Path, ents: Mapping[str, str], suffix: str,
               deriv_masks: Sequence[Path]) -> ImageInputs:
    """The image ``path`` with its lesion mask: the best one beside it, else the best of the
    subject's masks in the derivatives (``deriv_masks``), else none."""
    beside = [
        p
        for p in sorted(path.parent.glob(f"sub-{ents['sub']}_*"))
        if p.name.endswith(NIFTI_EXTENSIONS) and _is_lesion_mask(file_entities(p))
    ]
    mask = _select_mask(path, beside) or _select_mask(path, deriv_masks)
    if mask is None:  # the caller decides what that means (and says it once)
        LOGGER.debug("%s: no lesion mask found (beside it or in derivatives)", path.name)
    return ImageInputs(
        subject=ents["sub"],
        session=ents.get("ses"),
        image=path,
        mask=mask,
        space=ents.get("space"),
        entities={k: v for k, v in ents.items() if k in ("acq", "rec", "run", "ce")},
        suffix=suffix,
    )


def _same_grid(a: Path, b: Path, atol: float = AFFINE_ATOL) -> bool:
    import numpy as np

    from bids_stroke.degradation.nifti import load_nifti

    ia, ib = load_nifti(a), load_nifti(b)
    return ia.shape[:3] == ib.shape[:3] and bool(np.allclose(ia.affine, ib.affine, atol=atol))


def find_channel(image: Path, suffix: str) -> list[Path]:
    """Files of the same subject/session (and acq/run when the image has them) with another
    suffix, in any datatype folder of the session (ISLES'22: ``dwi/..._adc``,
    ``anat/..._FLAIR``)."""
    ents = file_entities(image)
    session_dir = image.parent.parent
    found = []
    for path in sorted(session_dir.glob(f"*/sub-{ents['sub']}_*")):
        if not path.name.endswith(NIFTI_EXTENSIONS):
            continue
        other = file_entities(path)
        if other.get("suffix") != suffix or "desc" in other or "label" in other:
            continue
        if any(other.get(e) != ents.get(e) for e in ("ses", "space")):
            continue
        if any(e in ents and e in other and other[e] != ents[e] for e in ("acq", "run")):
            continue
        found.append(path)
    return found


def attach_channels(
    subjects: Sequence[ImageInputs], channels: Sequence[str]
) -> tuple[list[ImageInputs], list[tuple[ImageInputs, str]]]:
    """Give each subject the model's other channels (``channels`` minus its own suffix).

    Returns ``(usable, [(subject, reason), ...])``: a missing or ambiguous channel leaves
    that subject out with a one-line reason, the others go on.
    """
    from dataclasses import replace

    good: list[ImageInputs] = []
    bad: list[tuple[ImageInputs, str]] = []
    for subject in subjects:
        extra = []
        problem = None
        for suffix in channels:
            if suffix == subject.suffix:
                continue
            found = find_channel(subject.image, suffix)
            if len(found) != 1:
                what = "no" if not found else f"{len(found)} candidate"
                problem = (f"{subject.image}: the model needs a '{suffix}' channel and {what} "
                           f"'{suffix}' image of this session was found; add it (same sub/ses"
                           f"/acq/run entities) or select the channels with --channels")
                break
            extra.append((suffix, found[0], _same_grid(subject.image, found[0])))
        if problem:
            bad.append((subject, problem))
        else:
            good.append(replace(subject, channels=tuple(extra)))
    return good, bad
