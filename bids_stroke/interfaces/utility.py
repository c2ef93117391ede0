"""Small interfaces that describe a condition and gather inputs."""

from __future__ import annotations

import nibabel as nb
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    TraitedSpec,
    traits,
)

from bids_stroke.degradation import parse_condition
from bids_stroke.degradation.nifti import load_nifti
from bids_stroke.interfaces.checksums import ChecksummedInterface


class _ConditionInfoInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="image the condition is applied to")
    condition = traits.Str(mandatory=True, desc="condition spec, e.g. thick:5")


class _ConditionInfoOutputSpec(TraitedSpec):
    label = traits.Str(desc="BIDS desc label")
    spec = traits.Str(desc="canonical spec")
    description = traits.Str()
    params = traits.Dict()
    effective_resolution_mm = traits.Float(desc="cube root of the effective voxel volume")


class ConditionInfo(ChecksummedInterface):
    """Label, description, parameters and effective resolution of a condition on an image."""

    input_spec = _ConditionInfoInputSpec
    output_spec = _ConditionInfoOutputSpec

    def _run_interface(self, runtime):
        cond = parse_condition(self.inputs.condition)
        zooms = tuple(float(z) for z in load_nifti(self.inputs.in_file).header.get_zooms()[:3])
        self._results.update(
            label=cond.label,
            spec=cond.spec,
            description=cond.description,
            params=dict(cond.params),
            effective_resolution_mm=float(cond.effective_resolution_mm(zooms)),
        )
        return runtime


class _ConformInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="image in template space")
    in_mask = File(exists=True, desc="lesion mask on the same grid")


class _ConformOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="image in RAS+ voxel order (the input file if it already is)")
    out_mask = File(exists=True, desc="mask in RAS+ voxel order")
    reoriented = traits.Bool(desc="whether the voxel order was changed")


class ConformOrientation(ChecksummedInterface):
    """Bring a template-space image (and its mask) to RAS+ voxel order.

    The degradations work along voxel axes and the model was trained on RAS+ volumes, so an
    LPS or PIR file of the same physical image would otherwise give different results. Only
    axis flips and permutations are applied (no interpolation); a RAS+ input is passed on as
    the same file.
    """

    input_spec = _ConformInputSpec
    output_spec = _ConformOutputSpec

    def _run_interface(self, runtime):
        import os

        from nipype.interfaces.base import isdefined

        def conform(path: str, tag: str) -> tuple[str, bool]:
            img = load_nifti(path)
            if nb.aff2axcodes(img.affine) == ("R", "A", "S"):
                return path, False
            out = nb.as_closest_canonical(img)
            name = os.path.basename(path).replace(".nii.gz", "").replace(".nii", "")
            dest = os.path.join(runtime.cwd, f"{name}_{tag}RAS.nii")
            out.to_filename(dest)
            return dest, True

        self._results["out_file"], changed = conform(self.inputs.in_file, "")
        if isdefined(self.inputs.in_mask):
            self._results["out_mask"], _ = conform(self.inputs.in_mask, "mask")
        self._results["reoriented"] = changed
        return runtime
