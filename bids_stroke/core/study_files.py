"""Study files (``pipelines/*.yml``, declarative study definitions): found, read with limits,
turned into :class:`~bids_stroke.core.settings.Settings`.

A study file names the resolution conditions of a study and the settings of each stage::

    name: atlas_resolution
    description: ...
    conditions: [native, crude:2, linear:2]
    reference: mask              # or prediction / auto (reference_condition: native)
    segmentation: {threshold: 0.5, min_size: 0, tta: false, mode: auto}
    metrics: {connectivity: 26, tolerance_mm: 2.0}
    registration: {kind: affine}
    outputs: {save_degraded: true, save_degraded_masks: false}
    group: {metrics: [dice, precision, recall], alpha: 0.05, unit: participant,
            compare: {ATLAS: /out_atlas, ISLES: /out_isles}}

Every section is optional except ``conditions``; a key left out keeps its default, and the
defaults (``Settings()``) are the default study, ``atlas_resolution``. ``reference`` and
``reference_condition`` say what each prediction is scored against
(:mod:`bids_stroke.metrics.reference`). The keys and their checks are those of
:mod:`bids_stroke.core.settings` — the very code that checks the command line — so a value refused
on the command line is refused in a study file with the same reason. Files are read with limits
(size, YAML events, aliases, nesting) before anything is built, so a hostile file ("billion
laughs") is refused in milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from bids_stroke.core.settings import (
    DEFAULT_STUDY,
    STUDY_FILE_SECTIONS,
    STUDY_TOP_LEVEL,
    Settings,
    SettingsError,
    settings_from_layers,
)

TOP_LEVEL = {*STUDY_TOP_LEVEL, *STUDY_FILE_SECTIONS} - {"source"}
#: limits of a study file (a real one is < 2 KiB with no alias at all)
MAX_BYTES = 256 * 1024
MAX_EVENTS = 20_000
MAX_ALIASES = 16
MAX_DEPTH = 16


class StudyFileError(SettingsError):
    """A study file is unreadable or malformed (one line naming the file and the key)."""


def studies_dir() -> Path:
    """Folder of the bundled study files (``pipelines/`` of the repository)."""
    return Path(str(resources.files("bids_stroke") / "data" / "pipelines"))


def available_studies() -> list[str]:
    """Names of the bundled study files."""
    return sorted(p.stem for p in studies_dir().glob("*.yml"))


def resolve_study_path(name_or_path: str | Path) -> Path:
    """A path to an existing file, or the name of a bundled study (with or without .yml)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    bundled = studies_dir() / (path.name if path.suffix in (".yml", ".yaml") else f"{path}.yml")
    if bundled.is_file():
        return bundled
    raise StudyFileError(
        f"study {str(name_or_path)!r} not found: give a YAML file or one of "
        + ", ".join(available_studies())
    )


def _check_events(text: str, source: str) -> None:
    """Refuse YAML that is too large, too deep or uses aliases beyond a small budget.

    Only the parser's event stream is read (nothing is constructed), so this costs
    microseconds per event whatever the aliases would expand to.
    """
    events = aliases = depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        events += 1
        if isinstance(event, yaml.AliasEvent):
            aliases += 1
        elif isinstance(event, yaml.CollectionStartEvent):
            depth += 1
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        if events > MAX_EVENTS or aliases > MAX_ALIASES or depth > MAX_DEPTH:
            what = ("YAML aliases" if aliases > MAX_ALIASES else
                    "nesting" if depth > MAX_DEPTH else "YAML elements")
            raise StudyFileError(
                f"{source}: too many {what} for a study file (limits: {MAX_ALIASES} aliases, "
                f"depth {MAX_DEPTH}, {MAX_EVENTS} elements); write the values out plainly"
            )


def read_study_file(path: Path) -> Any:
    """Parse a study file with the limits above; returns the YAML data."""
    source = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise StudyFileError(f"{source}: {size} bytes is too large for a study file "
                                 f"(limit {MAX_BYTES}); is it the right file?")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StudyFileError(f"{source}: not UTF-8 text: give a YAML study file") from exc
    except OSError as exc:
        raise StudyFileError(f"{source}: cannot be read ({exc.strerror})") from exc
    try:
        _check_events(text, source)
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise StudyFileError(f"{source}: not valid YAML{where}: fix the file") from exc
    except RecursionError as exc:
        raise StudyFileError(f"{source}: nesting too deep for a study file") from exc


def study_settings(data: Any, source: str = "<study>") -> Settings:
    """The settings of parsed study-file data (defaults <- the file); the settings' own checks
    apply to every value."""
    if not isinstance(data, Mapping):
        raise StudyFileError(f"{source}: a study file must be a YAML mapping")
    unknown = sorted(set(data) - TOP_LEVEL)
    if unknown:
        raise StudyFileError(
            f"{source}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(TOP_LEVEL))})"
        )
    conditions = data.get("conditions")
    if not isinstance(conditions, list) or not conditions:
        raise StudyFileError(f"{source}: 'conditions' must be a non-empty list of condition "
                             "specs")
    study = dict(data)
    # values reach the settings' checks as written (a list as name is refused, not str()-ed)
    name, description = data.get("name"), data.get("description")
    study["name"] = Path(source).stem if name is None or name == "" else name
    study["description"] = (description.strip() if isinstance(description, str)
                            else "" if description is None else description)
    study["source"] = source
    compare = (data.get("group") or {}).get("compare") if isinstance(data.get("group"),
                                                                     Mapping) else None
    if isinstance(compare, Mapping):  # relative folders are relative to the study file
        base = Path(source).parent
        study["group"] = {**data["group"], "compare": {
            k: (v if not isinstance(v, str) or Path(v).is_absolute()
                else str((base / v).absolute()))
            for k, v in compare.items()}}
    try:
        return settings_from_layers(study, study_where=source)
    except SettingsError as exc:
        raise StudyFileError(str(exc)) from None


def load_study(name_or_path: str | Path | None = None) -> Settings:
    """The settings of a study file or bundled study (default: the default study)."""
    path = resolve_study_path(name_or_path or DEFAULT_STUDY)
    return study_settings(read_study_file(path), str(path))
