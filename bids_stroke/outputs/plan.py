"""The output plan of one subject: every derivative's name, sidecar and source (pure).

:func:`plan_image` turns what a subject's workflow produced (:class:`ImageOutputs`) into
the list of files to commit (:class:`~bids_stroke.outputs.commit.PlannedFile`) and the tables to
merge (:class:`~bids_stroke.outputs.commit.PlannedTable`). It decides nothing at run time and
touches no file, so every naming rule is tested without nipype (``tests/test_plan.py``); the nipype
writer only executes the plan through :func:`bids_stroke.outputs.commit.commit_image`.

Naming (BIDS-Derivatives, entities in the specification's order):

* images on the grid the model ran on carry ``space-<template>[_res-N]`` when that grid is a
  template, nothing when it is the input's own grid;
* ``desc-preproc_<suffix>`` the image the conditions were applied to (template runs only),
  ``desc-<condition>_<suffix>`` each degraded channel, ``label-L_desc-<condition>_probseg`` /
  ``_mask`` the model's outputs; registered runs add ``label-L_desc-<condition>_mask`` on the
  native grid (no ``space-``), the grid metrics are computed on;
* ``label-L_segmetrics.tsv`` / ``_lesions.tsv`` carry the ``space-`` of the grid they were
  computed on (none for the native grid), and ``desc-ref<condition>prediction`` when they were
  scored against the model's own prediction of that condition (agreement, not accuracy);
* transforms: ``from-<suffix>_to-<template>_mode-image_xfm`` (forward, one file per step) and
  only where the inverse is a separate file (SyN's inverse warp) ``from-<template>_to-<suffix>``;
  each has a sidecar stating its direction and how to apply it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bids_stroke.core.atomic import json_text
from bids_stroke.outputs.commit import PlannedFile, PlannedTable
from bids_stroke.outputs.derivatives import build_name, datatype_of, subject_dir
from bids_stroke.outputs.probseg import encoding_sidecar


@dataclass(frozen=True)
class ConditionOutputs:
    """What one condition produced (paths in the work folder)."""

    label: str
    spec: str
    description: str
    params: Mapping[str, Any]
    probseg: str | None  # None: no probability map (a tool that gives binary masks only)
    mask: str
    images: Mapping[str, str] = field(default_factory=dict)  # suffix -> degraded image
    native_mask: str | None = None
    degraded_reference_mask: str | None = None
    #: extra sidecar fields of this condition's lesion outputs (e.g. the prediction file
    #: an external tool wrote, ``bids_stroke score``)
    provenance: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageOutputs:
    """Everything the writer needs to name and document a subject's outputs."""

    subject: str
    session: str | None
    entities: Mapping[str, str]
    suffix: str
    bids_dir: str
    source_image: str
    conditions: Sequence[ConditionOutputs]
    model_sha256: str
    model_info: Mapping[str, Any]
    threshold: float | None  # None: the masks were given binary (no probability map)
    space: str | None = None  # template of the model grid; None = the input's own grid
    resolution: int | None = None  # res- entity of a resampled template grid
    registered: bool = False
    registration: str = ""
    template_info: str = ""
    channel_sources: Mapping[str, str] = field(default_factory=dict)  # suffix -> input file
    source_mask: str | None = None
    preproc: str | None = None
    forward_transforms: Sequence[str] = ()
    inverse_transforms: Sequence[str] = ()
    inverse_invert_flags: Sequence[bool] = ()
    metrics_tsv: str | None = None
    metrics_json: str | None = None
    lesions_tsv: str | None = None
    lesions_json: str | None = None
    report: str | None = None
    skull_stripped: bool | str = False
    warnings: Sequence[str] = ()
    mask_rule: str | None = None  # how the masks were made (default: probability >= threshold)
    #: ``desc`` of the metric tables: ``None`` for mask-referenced tables, e.g.
    #: ``refnativeprediction`` for tables scored against the native prediction
    reference_desc: str | None = None
    #: how the probability maps are stored (:mod:`bids_stroke.outputs.probseg`; None: as given, e.g.
    #: an external tool's map kept by ``bids_stroke score``)
    probseg_encoding: str | None = None


def bids_uri(path: str, root: str, dataset: str = "raw") -> str:
    """``bids:<dataset>:<relative path>`` for a file inside ``root``, else a ``file://`` URI."""
    try:
        rel = Path(path).resolve().relative_to(Path(root).resolve())
    except ValueError:
        return Path(path).absolute().as_uri()
    return f"bids:{dataset}:{rel.as_posix()}"


def _ext(path: str) -> str:
    return ".nii.gz" if path.endswith((".nii.gz", ".nii")) else Path(path).suffix


def _json(content: Mapping[str, Any]) -> bytes:
    return json_text(content).encode("utf-8")


class _Plan:
    """Accumulates planned files (helper of :func:`plan_image`)."""

    def __init__(self) -> None:
        self.files: list[PlannedFile] = []

    def image(self, src: str, rel: Path, sidecar: Mapping[str, Any] | None,
              conditions: tuple[str, ...] = ()) -> str:
        name = rel.as_posix()
        compress = name.endswith(".nii.gz") and not src.endswith(".gz")
        self.files.append(PlannedFile(name, source=src, conditions=conditions,
                                      compress=compress))
        if sidecar is not None:
            stem = rel.name[: -len(".nii.gz")] if rel.name.endswith(".nii.gz") else rel.stem
            self.files.append(PlannedFile((rel.parent / f"{stem}.json").as_posix(),
                                          content=_json(sidecar), conditions=conditions))
        return f"bids::{name}"


def plan_image(o: ImageOutputs) -> tuple[list[PlannedFile], list[PlannedTable]]:
    """The files and tables of one subject (see the module docstring)."""
    folder = subject_dir(o.subject, o.session, datatype_of(o.suffix))
    base = {"sub": o.subject, "ses": o.session, **o.entities}
    grid = {**base, "space": o.space, "res": str(o.resolution) if o.resolution else None}
    p = _Plan()
    source_uri = bids_uri(o.source_image, o.bids_dir)
    sources_all = [bids_uri(s, o.bids_dir) for s in o.channel_sources.values()] or [source_uri]
    spatial = {"SpatialReference": o.space} if o.space else {}
    warn = {"Warnings": list(o.warnings)} if o.warnings else {}
    model = {"SegmentationModel": {"SHA256": o.model_sha256, **dict(o.model_info)},
             "Threshold": o.threshold, **warn}
    encoding = encoding_sidecar(o.probseg_encoding) if o.probseg_encoding else {}
    rule = o.mask_rule or (f"probability >= {o.threshold:g}" if o.threshold is not None
                           else "as given (binary)")

    preproc_uri = source_uri
    if o.preproc is not None:
        preproc_uri = p.image(o.preproc, folder / build_name({**grid, "desc": "preproc"},
                                                             o.suffix, ".nii.gz"), {
            "Sources": [source_uri], **spatial,
            "TemplateSource": o.template_info or "n/a",
            "Registration": o.registration if o.registered else "none (already in space)",
            "SkullStripped": o.skull_stripped,
            "Description": f"input {o.suffix} on the {o.space or 'native'} grid, before "
                           "degradation",
        })
    for c in o.conditions:
        cond = {"Condition": c.spec, "ConditionParameters": dict(c.params),
                "ConditionDescription": c.description}
        tag = (c.label,)
        image_uris = []
        for suffix, image in ({} if c.spec == "native" else c.images).items():
            chan_folder = subject_dir(o.subject, o.session, datatype_of(suffix))
            src = o.channel_sources.get(suffix, o.source_image)
            before = preproc_uri if suffix == o.suffix else bids_uri(src, o.bids_dir)
            image_uris.append(p.image(image, chan_folder / build_name(
                {**grid, "desc": c.label}, suffix, ".nii.gz"), {
                "Sources": [before], **cond, **spatial, "SkullStripped": o.skull_stripped,
                "Description": f"{suffix} degraded by condition '{c.spec}'"}, tag))
        if not image_uris:  # native, or degraded images not saved: what the model was given
            image_uris = [preproc_uri] if o.preproc is not None else sources_all
        lesion = {**grid, "label": "L", "desc": c.label}
        made = {**cond, **model, **dict(c.provenance)}
        if c.probseg is not None:
            p.image(c.probseg, folder / build_name(lesion, "probseg", ".nii.gz"), {
                "Sources": image_uris, **made, **spatial, **encoding,
                "Description": "lesion probability from the segmentation model"}, tag)
        p.image(c.mask, folder / build_name(lesion, "mask", ".nii.gz"), {
            "Sources": image_uris, **made, **spatial, "Type": "Lesion",
            "Description": f"lesion mask: {rule}"}, tag)
        if c.degraded_reference_mask is not None and o.source_mask is not None:
            p.image(c.degraded_reference_mask, folder / build_name(
                {**grid, "label": "L", "desc": f"{c.label}ref"}, "mask", ".nii.gz"), {
                "Sources": [bids_uri(o.source_mask, o.bids_dir)], **cond, **spatial,
                "Type": "Lesion",
                "Description": "reference mask degraded by the same geometry (analysis only)"},
                tag)
        if c.native_mask is not None:
            p.image(c.native_mask, folder / build_name(
                {**base, "label": "L", "desc": c.label}, "mask", ".nii.gz"), {
                "Sources": [*image_uris, source_uri], **made, "Type": "Lesion",
                "Description": f"lesion mask mapped back to the native {o.suffix} grid "
                               "(nearest neighbour)"}, tag)
    tables = _plan_tables(o, folder, base, grid, p)
    _plan_transforms(o, folder, base, p)
    if o.report is not None:
        key = "_".join([f"sub-{o.subject}"] + ([f"ses-{o.session}"] if o.session else [])
                       + [f"{k}-{o.entities[k]}" for k in ("acq", "ce", "rec", "run")
                          if k in o.entities])
        p.files.append(PlannedFile(f"{key}.html", source=o.report))
    return p.files, tables


def metrics_entities(o: ImageOutputs, base: Mapping[str, Any],
                     grid: Mapping[str, Any]) -> dict[str, Any]:
    """Entities of the metric tables: those of the grid the metrics were computed on, and the
    reference's ``desc`` when it is a prediction."""
    scored_on_native = o.registered or o.space is None
    return {**(base if scored_on_native else grid), "label": "L", "desc": o.reference_desc}


def metrics_table_name(subject: str, session: str | None, entities: Mapping[str, str],
                       space: str | None, resolution: int | None, registered: bool,
                       table: str = "segmetrics", reference_desc: str | None = None) -> str:
    """File name of a subject's metric table (what the subject report must call it)."""
    base = {"sub": subject, "ses": session, **entities}
    on_native = registered or space is None
    ents = {**base, **({} if on_native else {"space": space,
                                              "res": str(resolution) if resolution else None})}
    return build_name({**ents, "label": "L", "desc": reference_desc}, table, ".tsv")


def scored_mask_rel(subject: str, session: str | None, entities: Mapping[str, str],
                    suffix: str, space: str | None, resolution: int | None, registered: bool,
                    label: str) -> str:
    """Path (relative to OUT) of the committed mask of condition ``label`` on the grid the
    metrics are computed on: what a prediction reference of that condition is."""
    base = {"sub": subject, "ses": session, **entities}
    on_native = registered or space is None
    ents = {**base, **({} if on_native else {"space": space,
                                              "res": str(resolution) if resolution else None})}
    folder = subject_dir(subject, session, datatype_of(suffix))
    return (folder / build_name({**ents, "label": "L", "desc": label}, "mask",
                                ".nii.gz")).as_posix()


def _plan_tables(o: ImageOutputs, folder: Path, base: Mapping[str, Any],
                 grid: Mapping[str, Any], p: _Plan) -> list[PlannedTable]:
    ents = metrics_entities(o, base, grid)
    tables = []
    for tsv, js, table in ((o.metrics_tsv, o.metrics_json, "segmetrics"),
                           (o.lesions_tsv, o.lesions_json, "lesions")):
        if tsv is None:
            continue
        tables.append(PlannedTable((folder / build_name(ents, table, ".tsv")).as_posix(), tsv))
        if js is not None:
            p.files.append(PlannedFile((folder / build_name(ents, table, ".json")).as_posix(),
                                       source=js))
    return tables


def _plan_transforms(o: ImageOutputs, folder: Path, base: Mapping[str, Any],
                     p: _Plan) -> None:
    if not (o.registered and o.space):
        return
    fwd = {**base, "from": o.suffix, "to": o.space, "mode": "image"}
    n = len(o.forward_transforms)
    order = "last applied first (ANTs order)"
    for i, src in enumerate(o.forward_transforms):
        ent = {**fwd, "desc": f"step{i}"} if n > 1 else fwd
        p.image(src, folder / build_name(ent, "xfm", _ext(src)), {
            "Direction": f"maps {o.suffix} (moving) to {o.space} (fixed); resample onto the "
                         "template grid with it",
            "Step": f"{i + 1} of {n}, {order}", "Invert": False,
            "Software": "ANTsPy (antspyx)", "Registration": o.registration,
            "Inverse": "apply the forward steps in reverse order with every affine inverted "
                       "(ants.apply_transforms whichtoinvert=True) and the inverse warp below",
        })
    inv = {**base, "from": o.space, "to": o.suffix, "mode": "image"}
    separate = [(src, flag) for src, flag in zip(o.inverse_transforms, o.inverse_invert_flags,
                                                  strict=False) if not flag]
    for i, (src, _) in enumerate(separate):
        ent = {**inv, "desc": f"step{i}"} if len(separate) > 1 else inv
        p.image(src, folder / build_name(ent, "xfm", _ext(src)), {
            "Direction": f"maps {o.space} back to {o.suffix}: the inverse displacement field "
                         "of the forward warp (a separate file; affine steps are inverted "
                         "on the fly)",
            "Invert": False, "Software": "ANTsPy (antspyx)",
        })
