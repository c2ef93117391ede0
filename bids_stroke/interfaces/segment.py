"""Nipype interface running a lesion segmentation model on one image (one or more channels)."""

from __future__ import annotations

import os

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
from bids_stroke.nifti import nifti_stem
from bids_stroke.probseg import encode_probseg
from bids_stroke.resources import release_memory

__all__ = ["SegmentImage"]


class _SegmentImageInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, xor=["in_files"], desc="3D image to segment (one channel)")
    in_files = InputMultiObject(
        File(exists=True), xor=["in_file"],
        desc="the channels (reference first), all on one grid",
    )
    channel_order = traits.List(
        traits.Int, desc="index in in_files of each model input channel (default: all, in order)"
    )
    brain_mask = File(exists=True, desc="brain mask for intensity normalisation (same grid)")
    # the run's settings (bids_stroke.settings.SegmentationSettings): mandatory, no defaults here
    model = traits.Str(
        mandatory=True,
        desc="model file (checkpoint/TorchScript/ONNX) or nnU-Net folder; '' = bundled",
    )
    channels = traits.List(traits.Str, desc="override of the model's input channels")
    folds = traits.List(traits.Str, desc="nnU-Net folds (default: all)")
    checkpoint = traits.Enum("final", "best", mandatory=True,
                             desc="nnU-Net checkpoint: final or best")
    trust_model_code = traits.Bool(mandatory=True,
                                   desc="allow nnU-Net checkpoints that need full unpickling")
    device = traits.Str(mandatory=True, desc="auto, cpu, cuda or cuda:N")
    precision = traits.Enum("auto", "fp32", "bf16", "fp16", mandatory=True)
    engine = traits.Enum("auto", "torch", "openvino", mandatory=True,
                         desc="engine of fp32 CPU inference (bids_stroke.model.engines)")
    threshold = traits.Float(desc="probability threshold (default: the model's own, 0.5 for "
                                  "bids_stroke models)")
    min_size = traits.Int(mandatory=True, desc="drop components smaller than this (voxels)")
    tta = traits.Bool(mandatory=True, desc="force mirror test-time augmentation (off: the "
                                           "model's own, e.g. nnU-Net's configured mirroring)")
    mode = traits.Enum("auto", "full", "sliding", mandatory=True, desc="inference mode")
    num_threads = traits.Int(mandatory=True, desc="torch CPU threads (0: torch's default)")
    probseg = traits.Enum("none", "compact", "full", mandatory=True,
                          desc="how the probability map is written (bids_stroke.probseg)")
    out_prefix = traits.Str(desc="output file prefix (default: the input's name)")
    progress_dir = traits.Str(nohash=True, desc="folder where the prediction reports its "
                                               "forward passes for the progress line "
                                               "(bids_stroke.progress.StepFile); not hashed")


class _SegmentImageOutputSpec(TraitedSpec):
    out_probseg = File(exists=True, desc="lesion probability map (input grid; encoded as "
                                         "the probseg input says; undefined for none)")
    out_mask = File(exists=True, desc="binary lesion mask (uint8, input grid)")
    model_checksum = traits.Str(desc="sha256 of the model file (nnU-Net: of its folder)")
    model_info = traits.Dict(desc="model description (kind, configs, provenance, spec)")
    model_spec = traits.Dict(desc="ModelSpec.to_dict(): channels, space, threshold, assumed")
    threshold = traits.Float(desc="threshold used for the mask")


def _write_like(img: nib.Nifti1Image, data: np.ndarray, slope: float, path: str) -> None:
    """``data`` on ``img``'s grid and header, with scaling ``slope`` (intercept 0)."""
    hdr = img.header.copy()
    hdr.set_data_dtype(data.dtype)
    out = img.__class__(data, img.affine, hdr)
    out.header.set_slope_inter(slope, 0.0)
    out.to_filename(path)


class SegmentImage(ChecksummedInterface):
    """Segment a lesion with :func:`bids_stroke.model.adapters.open_model`.

    Give ``in_file`` (one channel, as before) or ``in_files`` with ``channel_order`` picking the
    model's channels in its order. Outputs are written in the node's working directory with the
    first (reference) input's affine and header (float32 / uint8, scaling removed).
    """

    input_spec = _SegmentImageInputSpec
    output_spec = _SegmentImageOutputSpec

    def _run_interface(self, runtime):
        from bids_stroke.model import binarize
        from bids_stroke.model.adapters import ChannelStack, open_model

        inp = self.inputs
        files = list(inp.in_files) if isdefined(inp.in_files) else [inp.in_file]
        if not files or not all(isdefined(f) for f in files):
            raise ValueError("SegmentImage needs in_file or in_files")
        order = (list(inp.channel_order) if isdefined(inp.channel_order) and inp.channel_order
                 else list(range(len(files))))
        stack = ChannelStack.from_files(
            [files[k] for k in order], inp.brain_mask if isdefined(inp.brain_mask) else None
        )
        model = open_model(
            inp.model or None,
            device=inp.device,
            precision=inp.precision,
            engine=inp.engine,
            mode=inp.mode,
            tta=True if inp.tta else None,
            num_threads=inp.num_threads,
            channels=list(inp.channels) if isdefined(inp.channels) and inp.channels else None,
            folds=list(inp.folds) if isdefined(inp.folds) and inp.folds else None,
            checkpoint=inp.checkpoint,
            trust_model_code=inp.trust_model_code,
        )
        steps = None
        if isdefined(inp.progress_dir) and inp.progress_dir:
            from bids_stroke.progress import StepFile

            steps = StepFile(os.path.join(inp.progress_dir, f"{os.getpid()}-{id(self)}.json"))
            model.progress = steps
        try:
            prob = model.predict(stack)
        finally:
            if steps is not None:
                steps.remove()
                model.progress = None
        threshold = inp.threshold if isdefined(inp.threshold) else model.spec.threshold
        # the mask (and every metric) comes from the full-precision probability
        seg = binarize(prob, threshold, inp.min_size)
        encoded = encode_probseg(prob, inp.probseg)
        del prob
        img = nib.load(files[0])
        prefix = (inp.out_prefix if isdefined(inp.out_prefix) and inp.out_prefix
                  else nifti_stem(files[0]))
        out_mask = os.path.join(runtime.cwd, f"{prefix}_mask.nii")
        _write_like(img, seg, 1.0, out_mask)
        if encoded is not None:
            out_prob = os.path.join(runtime.cwd, f"{prefix}_probseg.nii")
            _write_like(img, encoded.data, encoded.slope, out_prob)
            self._results["out_probseg"] = out_prob
        del seg, encoded, stack
        release_memory()
        self._results["out_mask"] = out_mask
        self._results["model_checksum"] = model.checksum or ""
        self._results["model_info"] = model.info
        self._results["model_spec"] = model.spec.to_dict()
        self._results["threshold"] = float(threshold)
        return runtime
