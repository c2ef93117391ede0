"""Nipype interface running the lesion segmentation model on one image."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    InputMultiObject,
    TraitedSpec,
    isdefined,
    traits,
)

from bids_stroke.interfaces.checksums import ChecksummedInterface

__all__ = ["SegmentImage"]


class _SegmentImageInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, xor=["in_files"], desc="3D image to segment (NIfTI)")
    in_files = InputMultiObject(File(exists=True), xor=["in_file"],
                                desc="the channels (reference first), all on one grid")
    channel_order = traits.List(traits.Int, value=[0], usedefault=True,
                                desc="index in in_files of each model input channel")
    brain_mask = File(exists=True, desc="brain mask for intensity normalisation (same grid)")
    model = traits.Str(
        "", usedefault=True, desc="model file (checkpoint/TorchScript); '' = bundled"
    )
    device = traits.Str("auto", usedefault=True, desc="auto, cpu or cuda")
    precision = traits.Enum("auto", "fp32", "bf16", "fp16", usedefault=True)
    threshold = traits.Float(0.5, usedefault=True, desc="probability threshold")
    min_size = traits.Int(0, usedefault=True, desc="drop components smaller than this (voxels)")
    tta = traits.Bool(False, usedefault=True, desc="mirror test-time augmentation")
    mode = traits.Enum("auto", "full", "sliding", usedefault=True, desc="inference mode")
    out_prefix = traits.Str("", usedefault=True, desc="output file prefix (default: input name)")
    num_threads = traits.Int(0, usedefault=True, desc="torch CPU threads (0: torch's default)")


class _SegmentImageOutputSpec(TraitedSpec):
    out_probseg = File(exists=True, desc="lesion probability map (float32, input grid)")
    out_mask = File(exists=True, desc="binary lesion mask (uint8, input grid)")
    model_checksum = traits.Str(desc="sha256 of the model file")
    model_info = traits.Dict(desc="model description (kind, configs, provenance)")


def _stem(path: str) -> str:
    name = Path(path).name
    for ext in (".nii.gz", ".nii"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return Path(name).stem


class SegmentImage(ChecksummedInterface):
    """Segment a lesion with a :class:`bids_stroke.model.SegmentationModel`.

    Outputs are written in the node's working directory with the input affine and header
    (data type set to float32 / uint8, scaling removed).
    """

    input_spec = _SegmentImageInputSpec
    output_spec = _SegmentImageOutputSpec

    def _run_interface(self, runtime):
        from bids_stroke.model import binarize, load_model

        if self.inputs.num_threads > 0:
            import torch

            torch.set_num_threads(self.inputs.num_threads)

        files = (list(self.inputs.in_files) if isdefined(self.inputs.in_files)
                 else [self.inputs.in_file])
        order = list(self.inputs.channel_order)
        img = nib.load(files[0])
        stack = [np.asarray(nib.load(files[k]).dataobj, dtype=np.float32) for k in order]
        if len(stack) != 1:
            raise ValueError(f"this model takes one channel, {len(stack)} were given")
        data = stack[0]
        if data.ndim == 4 and data.shape[-1] == 1:
            data = data[..., 0]
        mask = None
        if isdefined(self.inputs.brain_mask):
            mask = np.asarray(nib.load(self.inputs.brain_mask).dataobj) > 0
        model = load_model(self.inputs.model or None, device=self.inputs.device)
        prob = model.predict(
            data,
            mask,
            mode=self.inputs.mode,
            tta=self.inputs.tta,
            precision=self.inputs.precision,
        )
        seg = binarize(prob, self.inputs.threshold, self.inputs.min_size)
        prefix = self.inputs.out_prefix or _stem(files[0])
        out_prob = os.path.join(runtime.cwd, f"{prefix}_probseg.nii.gz")
        out_mask = os.path.join(runtime.cwd, f"{prefix}_mask.nii.gz")
        for arr, dtype, path in ((prob, np.float32, out_prob), (seg, np.uint8, out_mask)):
            hdr = img.header.copy()
            hdr.set_data_dtype(dtype)
            hdr.set_slope_inter(1.0, 0.0)
            out = img.__class__(arr.astype(dtype), img.affine, hdr)
            out.to_filename(path)
        self._results["out_probseg"] = out_prob
        self._results["out_mask"] = out_mask
        self._results["model_checksum"] = model.checksum or ""
        self._results["model_info"] = model.info
        return runtime
