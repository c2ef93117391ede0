"""What the group level knows about the study: condition order, names, geometry, provenance."""

from __future__ import annotations

import platform
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from bids_stroke.__about__ import __version__
from bids_stroke.degradation import Condition, ConditionError, parse_condition
from bids_stroke.group.resolution import ConditionGeometry, condition_geometry, condition_phrase

__all__ = [
    "condition_table",
    "geometries",
    "order_conditions",
    "phrase",
    "pipeline_versions",
    "read_descriptions",
    "sample_sizes",
    "sample_sizes_by_dataset",
    "versions",
]


def read_descriptions(roots: Sequence[Path]) -> dict[str, str]:
    """``desc`` label -> description from the ``descriptions.tsv`` of each output folder."""
    out: dict[str, str] = {}
    for root in roots:
        f = Path(root) / "descriptions.tsv"
        if not f.is_file():
            continue
        try:
            d = pd.read_csv(f, sep="\t", dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
            continue
        if {"desc_id", "description"} <= set(d.columns):  # BIDS: desc_id values are desc-<x>
            labels = d["desc_id"].str.removeprefix("desc-")
        elif {"desc", "description"} <= set(d.columns):
            labels = d["desc"]
        else:
            continue
        for lab, text in zip(labels, d["description"], strict=True):
            out.setdefault(lab, text)
    return out


def order_conditions(frames: Sequence[pd.DataFrame],
                     study: Sequence[Condition | str] | None = None) -> list[str]:
    """Condition labels in study order, native first.

    Order: the study's condition specs (when given), then the order in which the
    participant-level tables list the remaining conditions (which is the order of the study
    that wrote them). Labels whose spec is ``native`` are moved to the front.
    """
    present: list[str] = []
    native: set[str] = set()
    for t in frames:
        for lab, spec in zip(t["desc"], t["condition"], strict=True):
            if lab not in present:
                present.append(lab)
            if str(spec).strip() == "native":
                native.add(lab)
    labels = []
    for spec in study or []:
        try:
            labels.append(parse_condition(spec).label)
        except ConditionError:
            continue
    ordered = [c for c in labels if c in present] + [c for c in present if c not in labels]
    return [c for c in ordered if c in native] + [c for c in ordered if c not in native]


def geometries(frames: Sequence[pd.DataFrame],
               specs: Mapping[str, str]) -> dict[str, ConditionGeometry]:
    """Per-axis effective voxel size of each condition (median stored resolution)."""
    rows = pd.concat([t[["desc", "effective_resolution_mm"]] for t in frames])
    med = rows.groupby("desc", sort=False)["effective_resolution_mm"].median()
    out = {}
    for lab, eff in med.items():
        g = condition_geometry(specs.get(lab, lab), float(eff))
        if g is not None:
            out[str(lab)] = g
    return out


def phrase(spec: str, geometry: ConditionGeometry | None) -> str:
    """Words for a condition in the findings (``linear 2 mm``)."""
    return condition_phrase(spec, geometry)


def condition_table(frames: Sequence[pd.DataFrame], conditions: Sequence[str],
                    descriptions: Mapping[str, str], specs: Mapping[str, str],
                    geometry: Mapping[str, ConditionGeometry]) -> pd.DataFrame:
    """The report's condition table: spec, description, real voxel size, images."""
    rows = pd.concat([t[["desc", "effective_resolution_mm"]] for t in frames])
    eff = rows.groupby("desc")["effective_resolution_mm"].median()
    n = rows.groupby("desc").size()
    out = []
    for c in conditions:
        g = geometry.get(c)
        out.append({
            "desc": c, "condition": specs.get(c, c), "description": descriptions.get(c, ""),
            "voxel size": g.voxel_text() if g else "n/a",
            "slice spacing (mm)": g.through_plane_mm if g else np.nan,
            "in-plane spacing (mm)": g.in_plane_mm if g else np.nan,
            "effective resolution (mm, cube root)": float(eff.get(c, np.nan)),
            "images": int(n.get(c, 0)),
        })
    return pd.DataFrame(out)


def sample_sizes(rows: pd.DataFrame) -> dict[str, int]:
    """Participants, participant-sessions, images and participants with several images."""
    who = [c for c in ("dataset", "participant_id") if c in rows.columns]
    images = rows.drop_duplicates([c for c in (*who, "session_id", "image_id")
                                   if c in rows.columns])
    per_participant = images.groupby(who).size()
    sessions = images.drop_duplicates([c for c in (*who, "session_id") if c in rows.columns])
    return {"participants": int(per_participant.size), "sessions": len(sessions),
            "images": len(images), "multi": int((per_participant > 1).sum())}


def pipeline_versions() -> dict[str, str]:
    """Versions of the participant level's main libraries where this process runs (metadata
    only: nothing is imported)."""
    out = {}
    for pkg in ("nipype", "pybids", "antspyx", "torch", "nnunetv2", "onnxruntime", "nibabel"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def sample_sizes_by_dataset(rows: pd.DataFrame) -> dict[str, dict[str, int]]:
    """:func:`sample_sizes` of each dataset (label ``""`` for a table without datasets)."""
    if "dataset" not in rows.columns:
        return {"": sample_sizes(rows)}
    return {str(ds): sample_sizes(g) for ds, g in rows.groupby("dataset", sort=False)}


def versions() -> dict[str, str]:
    """Versions of Python, bids_stroke and the libraries that computed the results."""
    out = {"python": platform.python_version(), "bids_stroke": __version__}
    for pkg in ("numpy", "scipy", "pandas", "matplotlib", "statsmodels"):
        if pkg == "statsmodels" and pkg not in sys.modules:
            continue
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:  # pragma: no cover
            continue
    return out
