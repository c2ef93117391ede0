"""Nipype interface applying a resolution condition to a NIfTI image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    TraitedSpec,
    isdefined,
    traits,
)

from bids_stroke.degradation import degrade_mask, parse_condition
from bids_stroke.degradation.nifti import degrade_image, load_nifti, nifti_stem
from bids_stroke.degradation.nifti import like_image as _like
from bids_stroke.interfaces.checksums import ChecksummedInterface

__all__ = ["DegradeImage"]



class _DegradeImageInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="3-D NIfTI image to degrade")
    condition = traits.Str(mandatory=True, desc="condition spec, e.g. 'thick:5' or 'crude:2'")
    in_mask = File(exists=True, desc="optional binary mask degraded by the same geometry")


class _DegradeImageOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="degraded image (float32, same grid as in_file)")
    out_mask = File(exists=True, desc="degraded mask (uint8), only if in_mask was given")
    label = traits.Str(desc="BIDS desc label of the condition")
    spec = traits.Str(desc="canonical condition spec")
    params = traits.Dict(desc="condition parameters")


class DegradeImage(ChecksummedInterface):
    """Apply a resolution condition (see :mod:`bids_stroke.degradation`) to an image.

    The output keeps the input affine and header (data type float32) and is
    written to the node's working directory as ``<stem>_cond-<label>.nii.gz``;
    the optional mask becomes ``<stem>_cond-<label>_mask.nii.gz`` (uint8).
    """

    input_spec = _DegradeImageInputSpec
    output_spec = _DegradeImageOutputSpec

    def _run_interface(self, runtime):
        cond = parse_condition(self.inputs.condition)
        img = load_nifti(self.inputs.in_file)
        if len(img.shape) != 3:
            raise ValueError(f"{self.inputs.in_file}: expected a 3-D image, got shape {img.shape}")
        zooms = tuple(float(z) for z in img.header.get_zooms()[:3])

        cwd = Path(runtime.cwd)
        out_file = cwd / f"{nifti_stem(self.inputs.in_file)}_cond-{cond.label}.nii"
        degrade_image(img, cond).to_filename(out_file)
        self._results["out_file"] = str(out_file)
        self._results["label"] = cond.label
        self._results["spec"] = cond.spec
        self._results["params"] = dict(cond.params)

        if isdefined(self.inputs.in_mask):
            mimg = load_nifti(self.inputs.in_mask)
            if mimg.shape[:3] != img.shape or len(mimg.shape) != 3:
                raise ValueError(
                    f"{self.inputs.in_mask}: mask shape {mimg.shape} differs from image "
                    f"shape {img.shape}"
                )
            mask = degrade_mask(np.asanyarray(mimg.dataobj), zooms, cond)
            out_mask = cwd / f"{nifti_stem(self.inputs.in_file)}_cond-{cond.label}_mask.nii"
            _like(mimg, mask, np.uint8).to_filename(out_mask)
            self._results["out_mask"] = str(out_mask)
        return runtime
