"""Nipype interfaces wrapping :mod:`bids_stroke.templates.registration` (ANTsPy, no ANTs CLI
needed)."""

from __future__ import annotations

from pathlib import Path

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    InputMultiObject,
    TraitedSpec,
    isdefined,
    traits,
)

from bids_stroke.degradation.nifti import nifti_stem
from bids_stroke.interfaces.checksums import ChecksummedInterface
from bids_stroke.templates.registration import apply_transforms, register_to_template


class _RegisterToTemplateInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="moving image (e.g. subject T1w)")
    template_file = File(exists=True, mandatory=True, desc="fixed image (template T1w)")
    kind = traits.Enum("affine", "rigid", "syn", mandatory=True,
                       desc="transform model (syn = affine then SyN)")
    seed = traits.Int(mandatory=True, desc="random seed (ANTs seed is seed + 1)")
    in_mask = File(exists=True, desc="optional cost-function mask on the moving image")
    template_mask = File(exists=True, desc="optional cost-function mask on the template")


class _RegisterToTemplateOutputSpec(TraitedSpec):
    # traits.List (not OutputMultiObject): always lists, even with a single transform
    out_file = File(exists=True, desc="moving image resampled onto the template grid")
    forward_transforms = traits.List(File(exists=True),
                                           desc="moving->template transforms (ANTs order)")
    forward_invert_flags = traits.List(traits.Bool, desc="invert flags (all False)")
    inverse_transforms = traits.List(File(exists=True),
                                           desc="template->moving transforms (ANTs order)")
    inverse_invert_flags = traits.List(traits.Bool,
                                             desc="invert flags for inverse_transforms")


class RegisterToTemplate(ChecksummedInterface):
    """Register ``in_file`` to ``template_file`` with ANTsPy; outputs in the node folder."""

    input_spec = _RegisterToTemplateInputSpec
    output_spec = _RegisterToTemplateOutputSpec

    def _run_interface(self, runtime):
        res = register_to_template(
            self.inputs.in_file,
            self.inputs.template_file,
            Path(runtime.cwd),
            kind=self.inputs.kind,
            seed=self.inputs.seed,
            moving_mask=self.inputs.in_mask if isdefined(self.inputs.in_mask) else None,
            fixed_mask=(self.inputs.template_mask if isdefined(self.inputs.template_mask)
                        else None),
        )
        self._results["out_file"] = str(res.warped)
        self._results["forward_transforms"] = [str(p) for p in res.forward_transforms]
        self._results["forward_invert_flags"] = list(res.forward_invert_flags)
        self._results["inverse_transforms"] = [str(p) for p in res.inverse_transforms]
        self._results["inverse_invert_flags"] = list(res.inverse_invert_flags)
        return runtime


class _ApplyTransformsInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="image to resample")
    reference_file = File(exists=True, mandatory=True, desc="grid of the output")
    transforms = InputMultiObject(File(exists=True), mandatory=True,
                                  desc="transform files in ANTs order (last applied first)")
    interpolation = traits.Enum("linear", "nearestNeighbor", "genericLabel", "bSpline",
                                "lanczosWindowedSinc", usedefault=True,
                                desc="interpolator (genericLabel/nearestNeighbor keep labels)")
    invert_flags = InputMultiObject(traits.Bool, desc="one flag per transform")
    default_value = traits.Float(0.0, usedefault=True, desc="value outside the moving FOV")
    out_file = File(desc="output file name (default: <in_file stem>_trans.nii)")


class _ApplyTransformsOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="resampled image")


class ApplyTransforms(ChecksummedInterface):
    """Resample ``in_file`` onto ``reference_file`` through ANTs transforms (ANTsPy)."""

    input_spec = _ApplyTransformsInputSpec
    output_spec = _ApplyTransformsOutputSpec

    def _run_interface(self, runtime):
        if isdefined(self.inputs.out_file):
            out_file = Path(self.inputs.out_file)
            if not out_file.is_absolute():
                out_file = Path(runtime.cwd) / out_file
        else:
            out_file = Path(runtime.cwd) / f"{nifti_stem(self.inputs.in_file)}_trans.nii"
        flags = list(self.inputs.invert_flags) if isdefined(self.inputs.invert_flags) else None
        written = apply_transforms(
            self.inputs.in_file,
            self.inputs.reference_file,
            list(self.inputs.transforms),
            interpolation=self.inputs.interpolation,
            invert=flags,
            out_file=out_file,
            default_value=self.inputs.default_value,
        )
        self._results["out_file"] = str(written)
        return runtime
