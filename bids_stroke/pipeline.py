"""Declarative study definitions (``pipelines/*.yml``) and their schema.

A pipeline file names the resolution conditions of a study and the settings of each stage::

    name: atlas_resolution
    description: ...
    conditions: [native, crude:2, linear:2, thick:5]
    segmentation: {threshold: 0.5, min_size: 0, tta: false, mode: auto}
    metrics: {connectivity: 26, tolerance_mm: 2.0}
    registration: {kind: affine}
    outputs: {save_degraded: true, save_degraded_masks: false}
    group: {metrics: [dice, hd95, lesion_f1, abs_volume_diff_ml], alpha: 0.05,
            unit: participant, compare: {ATLAS: /out_atlas, ISLES: /out_isles}}

Every section is optional except ``conditions``; unknown keys are refused with an error that
names the file and the key.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

#: schema: section -> {key: (type(s), default)}; ``None`` default = required or no default
SCHEMA: dict[str, dict[str, tuple[tuple[type, ...], Any]]] = {
    "segmentation": {
        "threshold": ((float, int), 0.5),
        "min_size": ((int,), 0),
        "tta": ((bool,), False),
        "mode": ((str,), "auto"),
        "precision": ((str,), "auto"),
    },
    "metrics": {
        "connectivity": ((int,), 26),
        "tolerance_mm": ((float, int), 2.0),
    },
    "registration": {
        "kind": ((str,), "affine"),
    },
    "outputs": {
        "save_degraded": ((bool,), True),
        "save_degraded_masks": ((bool,), False),
    },
    "group": {
        "metrics": ((list,), ["dice", "hd95", "lesion_f1", "abs_volume_diff_ml"]),
        "alpha": ((float, int), 0.05),
        "n_boot": ((int,), 2000),
        "unit": ((str,), "participant"),
        "compare": ((dict,), {}),
    },
}
TOP_LEVEL = {"name", "description", "conditions", *SCHEMA}
CHOICES = {
    ("segmentation", "mode"): ("auto", "full", "sliding"),
    ("segmentation", "precision"): ("auto", "fp32", "bf16", "fp16"),
    ("registration", "kind"): ("affine", "rigid", "syn"),
    ("metrics", "connectivity"): (6, 18, 26),
    ("group", "unit"): ("participant", "image"),
}
DEFAULT_PIPELINE = "atlas_resolution"


class PipelineError(ValueError):
    """A pipeline file is malformed (one-line message naming the file and the key)."""


@dataclass
class Pipeline:
    """A validated study definition."""

    name: str
    description: str
    conditions: list[str]
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str | None = None

    def section(self, name: str) -> dict[str, Any]:
        """Settings of one section with defaults filled in."""
        return self.settings[name]

    def to_dict(self) -> dict[str, Any]:
        """JSON/YAML-serialisable form (as recorded in the outputs' provenance)."""
        return {
            "name": self.name,
            "description": self.description,
            "conditions": list(self.conditions),
            **copy.deepcopy(self.settings),
            "source": self.source,
        }


def pipelines_dir() -> Path:
    """Folder of the bundled pipeline files (``pipelines/`` of the repository)."""
    return Path(str(resources.files("bids_stroke") / "data" / "pipelines"))


def available_pipelines() -> list[str]:
    """Names of the bundled pipelines."""
    return sorted(p.stem for p in pipelines_dir().glob("*.yml"))


def resolve_pipeline_path(name_or_path: str | Path) -> Path:
    """A path to an existing file, or the name of a bundled pipeline (with or without .yml)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    bundled = pipelines_dir() / (path.name if path.suffix in (".yml", ".yaml") else f"{path}.yml")
    if bundled.is_file():
        return bundled
    raise PipelineError(
        f"pipeline {str(name_or_path)!r} not found: give a YAML file or one of "
        + ", ".join(available_pipelines())
    )


def _check_type(where: str, value: Any, types: tuple[type, ...]) -> Any:
    if bool in types or not isinstance(value, bool):
        if isinstance(value, types):
            return float(value) if float in types and not isinstance(value, bool) else value
    names = "/".join(t.__name__ for t in types)
    raise PipelineError(f"{where} must be {names}, got {value!r}")


def validate_pipeline(data: Any, source: str = "<pipeline>") -> Pipeline:
    """Validate a parsed pipeline mapping against :data:`SCHEMA`."""
    if not isinstance(data, Mapping):
        raise PipelineError(f"{source}: a pipeline file must be a YAML mapping")
    unknown = sorted(set(data) - TOP_LEVEL)
    if unknown:
        raise PipelineError(
            f"{source}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(TOP_LEVEL))})"
        )
    conditions = data.get("conditions")
    if not isinstance(conditions, list) or not conditions:
        raise PipelineError(f"{source}: 'conditions' must be a non-empty list of condition specs")
    if not all(isinstance(c, str) for c in conditions):
        raise PipelineError(f"{source}: every entry of 'conditions' must be a string")
    settings: dict[str, dict[str, Any]] = {}
    for section, keys in SCHEMA.items():
        given = data.get(section) or {}
        if not isinstance(given, Mapping):
            raise PipelineError(f"{source}: section {section!r} must be a mapping")
        bad = sorted(set(given) - set(keys))
        if bad:
            raise PipelineError(
                f"{source}: unknown key {section}.{bad[0]} (allowed: {', '.join(sorted(keys))})"
            )
        values = {}
        for key, (types, default) in keys.items():
            if key in given:
                value = _check_type(f"{source}: {section}.{key}", given[key], types)
                choices = CHOICES.get((section, key))
                if choices is not None and value not in choices:
                    raise PipelineError(
                        f"{source}: {section}.{key} must be one of {choices}, got {value!r}"
                    )
                values[key] = value
            else:
                values[key] = copy.deepcopy(default)
        settings[section] = values
    name = data.get("name") or Path(source).stem
    return Pipeline(
        name=str(name),
        description=str(data.get("description", "")).strip(),
        conditions=[c.strip() for c in conditions],
        settings=settings,
        source=source,
    )


def load_pipeline(name_or_path: str | Path | None = None) -> Pipeline:
    """Load and validate a pipeline (default: ``atlas_resolution``)."""
    path = resolve_pipeline_path(name_or_path or DEFAULT_PIPELINE)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise PipelineError(f"{path}: not valid YAML{where}: fix the file") from exc
    return validate_pipeline(data, str(path))
