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

from bids_stroke.core.resources import release_memory
from bids_stroke.degradation.nifti import load_nifti, nifti_stem
from bids_stroke.interfaces.checksums import ChecksummedInterface
from bids_stroke.outputs.probseg import encode_probseg

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
    model = traits.Dict(
        mandatory=True,
        desc="the model and how it is run: ModelRequest.node_input() "
             "(bids_stroke.model.request); a threshold of None is the model's own",
    )
    probseg = traits.Enum("none", "compact", "full", mandatory=True,
                          desc="how the probability map is written (bids_stroke.outputs.probseg)")
    out_prefix = traits.Str(desc="output file prefix (default: the input's name)")
    progress_dir = traits.Str(nohash=True, desc="folder where the prediction reports its "
                                               "forward passes for the progress line "
                                               "(bids_stroke.core.progress.StepFile); not hashed")


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

    ``model`` is the run's :class:`~bids_stroke.model.request.ModelRequest` as one dict (the
    model is opened once per process). Give ``in_file`` (one channel, as before) or
    ``in_files`` with ``channel_order`` picking the model's channels in its order. Outputs are
    written in the node's working directory with the first (reference) input's affine and
    header (float32 / uint8, scaling removed).
    """

    input_spec = _SegmentImageInputSpec
    output_spec = _SegmentImageOutputSpec

    def _run_interface(self, runtime):
        from bids_stroke.model import binarize
        from bids_stroke.model.adapters import ChannelStack, ModelRequest, open_model

        inp = self.inputs
        files = list(inp.in_files) if isdefined(inp.in_files) else [inp.in_file]
        if not files or not all(isdefined(f) for f in files):
            raise ValueError("SegmentImage needs in_file or in_files")
        order = (list(inp.channel_order) if isdefined(inp.channel_order) and inp.channel_order
                 else list(range(len(files))))
        stack = ChannelStack.from_files(
            [files[k] for k in order], inp.brain_mask if isdefined(inp.brain_mask) else None
        )
        request = ModelRequest.from_dict(inp.model)
        model = open_model(request)
        steps = None
        if isdefined(inp.progress_dir) and inp.progress_dir:
            from bids_stroke.core.progress import StepFile

            steps = StepFile(os.path.join(inp.progress_dir, f"{os.getpid()}-{id(self)}.json"))
            model.progress = steps
        try:
            prob = model.predict(stack)
        finally:
            if steps is not None:
                steps.remove()
                model.progress = None
        threshold = request.threshold_for(model.spec)
        # the mask (and every metric) comes from the full-precision probability
        seg = binarize(prob, threshold, request.min_size)
        encoded = encode_probseg(prob, inp.probseg)
        del prob
        img = load_nifti(files[0])
        prefix = (inp.out_prefix if isdefined(inp.out_prefix) and inp.out_prefix
                  else nifti_stem(files[0]))
        out_mask = os.path.join(runtime.cwd, f"{prefix}_mask.nii")
        _write_like(img, seg, 1.0, out_mask)
        if encoded is not None:
            out_prob = os.path.join(runtime.cwd, f"{prefix}_probseg.nii")
            _write_like(img, encoded.data, encoded.slope, out_prob)
            self._results["out_probseg"] = out_prob
        del seg, encoded, stack
        release_memory(collect=False)  # the arrays went with their last reference
        self._results["out_mask"] = out_mask
        self._results["model_checksum"] = model.checksum or ""
        self._results["model_info"] = model.info
        self._results["model_spec"] = model.spec.to_dict()
        self._results["threshold"] = float(threshold)
        return runtime
