"""Nipype interfaces around :mod:`bids_stroke.templates`."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    TraitedSpec,
    traits,
)
from nipype.utils.filemanip import split_filename

from bids_stroke.interfaces.checksums import ChecksummedInterface
from bids_stroke.templates import brain_mask_like, resolve_template


class _TemplateBrainMaskInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True,
                   desc="image already in template space: defines the output grid")
    template = traits.Str(mandatory=True, desc="TemplateFlow identifier")


class _TemplateBrainMaskOutputSpec(TraitedSpec):
    out_mask = File(exists=True, desc="template brain mask on in_file's grid (uint8 0/1)")
    template_source = traits.Str(
        desc="templateflow, templateflow-standin or nilearn-standin")
    template_mask_file = File(exists=True, desc="the template mask that was resampled")


class TemplateBrainMask(ChecksummedInterface):
    """Template brain mask resampled (nearest neighbour) onto ``in_file``'s grid."""

    input_spec = _TemplateBrainMaskInputSpec
    output_spec = _TemplateBrainMaskOutputSpec

    def _run_interface(self, runtime):
        found = resolve_template(self.inputs.template, suffix="mask", desc="brain")
        out = brain_mask_like(self.inputs.in_file, template=self.inputs.template)
        _, name, _ = split_filename(self.inputs.in_file)  # knows .nii.gz
        out_path = Path(runtime.cwd) / f"{name}_brainmask.nii"
        nib.save(out, out_path)
        self._results["out_mask"] = str(out_path)
        self._results["template_source"] = found.source
        self._results["template_mask_file"] = str(found.path)
        return runtime
