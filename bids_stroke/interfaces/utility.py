"""Small interfaces that describe a condition and gather inputs."""

from __future__ import annotations

import nibabel as nb
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from bids_stroke.conditions import parse_condition


class _ConditionInfoInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="image the condition is applied to")
    condition = traits.Str(mandatory=True, desc="condition spec, e.g. thick:5")


class _ConditionInfoOutputSpec(TraitedSpec):
    label = traits.Str(desc="BIDS desc label")
    spec = traits.Str(desc="canonical spec")
    description = traits.Str()
    params = traits.Dict()
    effective_resolution_mm = traits.Float(desc="cube root of the effective voxel volume")


class ConditionInfo(SimpleInterface):
    """Label, description, parameters and effective resolution of a condition on an image."""

    input_spec = _ConditionInfoInputSpec
    output_spec = _ConditionInfoOutputSpec

    def _run_interface(self, runtime):
        cond = parse_condition(self.inputs.condition)
        zooms = tuple(float(z) for z in nb.load(self.inputs.in_file).header.get_zooms()[:3])
        self._results.update(
            label=cond.label,
            spec=cond.spec,
            description=cond.description,
            params=dict(cond.params),
            effective_resolution_mm=float(cond.effective_resolution_mm(zooms)),
        )
        return runtime
