"""Write one subject's derivatives into the output dataset, all or nothing.

The files are first copied into a staging folder inside the output dataset, then moved to
their final names with ``os.replace``; the staging folder is removed. A failure before the
final moves leaves the output dataset untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import uuid
from pathlib import Path
from typing import Any

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    InputMultiObject,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

from bids_stroke.outputs import build_name, datatype_of, subject_dir

TEMPLATE = "MNI152NLin2009aSym"


class _WriteSubjectDerivativesInputSpec(BaseInterfaceInputSpec):
    output_dir = traits.Str(mandatory=True, desc="root of the derivatives dataset")
    bids_dir = traits.Str(mandatory=True, desc="root of the input dataset")
    subject = traits.Str(mandatory=True)
    session = traits.Str("", usedefault=True)
    entities = traits.Dict(value={}, usedefault=True, desc="acq/rec/run entities of the input")
    space_entities = traits.Dict(value={}, usedefault=True, desc="space/res of template outputs")
    source_image = File(exists=True, mandatory=True)
    source_mask = traits.Str("", usedefault=True)
    preproc = File(exists=True, mandatory=True, desc="image in template space")
    registered = traits.Bool(False, usedefault=True)
    suffix = traits.Str("T1w", usedefault=True, desc="BIDS suffix of the segmented image")
    registration = traits.Str("", usedefault=True)
    labels = InputMultiObject(traits.Str, mandatory=True)
    specs = InputMultiObject(traits.Str, mandatory=True)
    descriptions = InputMultiObject(traits.Str, mandatory=True)
    params = InputMultiObject(traits.Dict, mandatory=True)
    degraded_images = InputMultiObject(File(exists=True))
    degraded_masks = InputMultiObject(File(exists=True))
    probsegs = InputMultiObject(File(exists=True), mandatory=True)
    masks = InputMultiObject(File(exists=True), mandatory=True)
    native_masks = InputMultiObject(File(exists=True))
    forward_transforms = InputMultiObject(File(exists=True))
    inverse_transforms = InputMultiObject(File(exists=True))
    metrics_tsv = File(exists=True)
    metrics_json = File(exists=True)
    lesions_tsv = File(exists=True)
    lesions_json = File(exists=True)
    report = File(exists=True)
    model_checksum = traits.Str("", usedefault=True)
    model_info = traits.Dict(value={}, usedefault=True)
    threshold = traits.Float(0.5, usedefault=True)
    template_info = traits.Str("", usedefault=True, desc="which template file was used")
    settings = traits.Dict(value={}, usedefault=True, desc="run settings for provenance")


class _WriteSubjectDerivativesOutputSpec(TraitedSpec):
    out_files = traits.List(traits.Str, desc="written files, relative to output_dir")


def _bids_uri(path: str, root: str, dataset: str = "raw") -> str:
    try:
        rel = Path(path).resolve().relative_to(Path(root).resolve())
    except ValueError:
        return Path(path).absolute().as_uri()
    return f"bids:{dataset}:{rel.as_posix()}"


def _source_sidecar(image: str) -> dict[str, Any]:
    """The JSON sidecar beside the input image (``{}`` when absent or unreadable).

    ``SkullStripped`` is copied from it: bids_stroke itself never removes the skull.
    """
    path = Path(image)
    stem = path.name[: -len(".nii.gz")] if path.name.endswith(".nii.gz") else path.stem
    sidecar = path.with_name(f"{stem}.json")
    try:
        content = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return {}
    return content if isinstance(content, dict) else {}


def _ext(path: str) -> str:
    return ".nii.gz" if path.endswith(".nii.gz") else Path(path).suffix


class WriteSubjectDerivatives(SimpleInterface):
    """Copy a subject's results to BIDS-Derivatives names with JSON sidecars, atomically."""

    input_spec = _WriteSubjectDerivativesInputSpec
    output_spec = _WriteSubjectDerivativesOutputSpec

    def _run_interface(self, runtime):
        inp = self.inputs
        out_root = Path(inp.output_dir)
        session = inp.session or None
        anat = subject_dir(inp.subject, session, datatype_of(inp.suffix))
        suffix = inp.suffix
        base = {"sub": inp.subject, "ses": session, **inp.entities}
        std = {**base, **inp.space_entities}
        plan: list[tuple[str, Path, Any]] = []  # (kind, relative dst, src path or json content)

        def add_file(src: str, rel: Path, sidecar: dict | None = None) -> None:
            plan.append(("file", rel, src))
            if sidecar is not None:
                name = rel.name.replace(".nii.gz", "").rsplit(".", 1)[0]
                plan.append(("json", rel.parent / f"{name}.json", sidecar))

        source_uri = _bids_uri(inp.source_image, inp.bids_dir)
        skull_stripped = _source_sidecar(inp.source_image).get("SkullStripped", False)
        preproc_name = build_name({**std, "desc": "preproc"}, suffix, ".nii.gz")
        preproc_uri = f"bids::{(anat / preproc_name).as_posix()}"
        add_file(
            inp.preproc,
            anat / preproc_name,
            {
                "Sources": [source_uri],
                "SpatialReference": TEMPLATE,
                "TemplateSource": inp.template_info or "n/a",
                "Registration": inp.registration if inp.registered else "none (already in space)",
                "SkullStripped": skull_stripped,
                "Description": "input image in MNI152NLin2009aSym space, before degradation",
            },
        )
        checksum = inp.model_checksum
        n = len(inp.labels)
        degraded = list(inp.degraded_images) if isdefined(inp.degraded_images) else []
        deg_masks = list(inp.degraded_masks) if isdefined(inp.degraded_masks) else []
        natives = list(inp.native_masks) if isdefined(inp.native_masks) else []
        for i in range(n):
            label, spec, params = inp.labels[i], inp.specs[i], inp.params[i]
            cond = {"Condition": spec, "ConditionParameters": params,
                    "ConditionDescription": inp.descriptions[i]}
            image_uri = preproc_uri
            if degraded and spec != "native":  # native = the preproc image itself
                deg_name = build_name({**std, "desc": label}, suffix, ".nii.gz")
                image_uri = f"bids::{(anat / deg_name).as_posix()}"
                add_file(degraded[i], anat / deg_name, {
                    "Sources": [preproc_uri], **cond, "SkullStripped": skull_stripped,
                    "Description": f"{suffix} degraded by condition '{spec}'",
                })
            model = {
                "SegmentationModel": {"SHA256": checksum, **inp.model_info},
                "Threshold": inp.threshold,
            }
            add_file(
                inp.probsegs[i],
                anat / build_name({**std, "label": "L", "desc": label}, "probseg", ".nii.gz"),
                {"Sources": [image_uri], **cond, **model,
                 "Description": "lesion probability from the 3D U-Net"},
            )
            add_file(
                inp.masks[i],
                anat / build_name({**std, "label": "L", "desc": label}, "mask", ".nii.gz"),
                {"Sources": [image_uri], **cond, **model, "Type": "Lesion",
                 "Description": f"lesion mask: probability >= {inp.threshold}"},
            )
            if deg_masks:
                add_file(
                    deg_masks[i],
                    anat / build_name(
                        {**std, "label": "L", "desc": f"{label}ref"}, "mask", ".nii.gz"
                    ),
                    {"Sources": [_bids_uri(inp.source_mask, inp.bids_dir)], **cond,
                     "Type": "Lesion",
                     "Description": "reference mask degraded by the same geometry (analysis only)"},
                )
            if natives:
                add_file(
                    natives[i],
                    anat / build_name({**base, "label": "L", "desc": label}, "mask", ".nii.gz"),
                    {"Sources": [image_uri, source_uri], **cond, **model, "Type": "Lesion",
                     "Description": f"lesion mask mapped back to the native {suffix} grid "
                                    "(nearest neighbour)"},
                )
        stats_entities = {**std, "label": "L"}
        for attr, table in (("metrics_tsv", "segmetrics"), ("lesions_tsv", "lesions")):
            tsv = getattr(inp, attr)
            if isdefined(tsv):
                add_file(tsv, anat / build_name(stats_entities, table, ".tsv"))
                js = getattr(inp, attr.replace("_tsv", "_json"))
                if isdefined(js):
                    add_file(js, anat / build_name(stats_entities, table, ".json"))
        if inp.registered:
            xfm = {**base, "from": suffix, "to": inp.space_entities.get("space", TEMPLATE),
                   "mode": "image"}
            fwd = list(inp.forward_transforms) if isdefined(inp.forward_transforms) else []
            inv = list(inp.inverse_transforms) if isdefined(inp.inverse_transforms) else []
            for i, src in enumerate(fwd):
                ent = {**xfm, "desc": f"step{i}"} if len(fwd) > 1 else xfm
                add_file(src, anat / build_name(ent, "xfm", _ext(src)))
            inv_xfm = {**xfm, "from": xfm["to"], "to": suffix}
            for i, src in enumerate(inv):
                ent = {**inv_xfm, "desc": f"step{i}"} if len(inv) > 1 else inv_xfm
                add_file(src, anat / build_name(ent, "xfm", _ext(src)))
        if isdefined(inp.report):
            key = "_".join(
                [f"sub-{inp.subject}"] + ([f"ses-{session}"] if session else [])
                + [f"{k}-{inp.entities[k]}" for k in ("acq", "ce", "rec", "run")
                   if k in inp.entities]
            )
            plan.append(("file", Path(f"{key}.html"), inp.report))

        host = socket.gethostname().replace("-", "")
        staging = out_root / (f".staging-{inp.subject}-{session or 'nosession'}-{host}-"
                              f"{os.getpid()}-{uuid.uuid4().hex}")
        staging.mkdir(parents=True)
        try:
            for kind, rel, payload in plan:
                dst = staging / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                if kind == "file":
                    shutil.copyfile(payload, dst)
                else:
                    dst.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str)
                                   + "\n")
                os.chmod(dst, 0o644)
            for _, rel, _ in plan:
                final = out_root / rel
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / rel, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self._results["out_files"] = [rel.as_posix() for _, rel, _ in plan]
        return runtime
