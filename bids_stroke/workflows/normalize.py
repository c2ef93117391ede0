"""Spatial normalisation to MNI152NLin2009aSym (skipped when the image already is there)."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

OUTPUT_FIELDS = [
    "t1w_std",
    "mask_std",
    "brain_mask",
    "template_info",
    "forward_transforms",
    "inverse_transforms",
    "inverse_invert_flags",
]


def init_normalize_wf(
    *,
    register: bool,
    has_mask: bool,
    kind: str = "affine",
    template_resolution: int = 1,
    seed: int = 0,
    omp_nthreads: int = 1,
    name: str = "normalize_wf",
) -> pe.Workflow:
    """Bring the image (and its lesion mask) onto the template grid.

    Inputs: ``t1w``, ``mask``. Outputs: ``t1w_std``, ``mask_std`` (nearest neighbour),
    ``brain_mask`` (template brain mask on the ``t1w_std`` grid), ``template_info``,
    ``forward_transforms``/``inverse_transforms`` (empty lists without registration).

    Without registration (``space-MNI152NLin2009aSym`` in the file name, as in ATLAS v2.0), the
    image and the mask are only brought to RAS+ voxel order (flips/permutations, no
    interpolation; RAS+ inputs such as ATLAS pass unchanged), so metrics are computed on the
    original voxels.
    """
    from bids_stroke.interfaces.templates import TemplateBrainMask

    wf = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=["t1w", "mask"]), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=OUTPUT_FIELDS), name="outputnode")
    brainmask = pe.Node(TemplateBrainMask(), name="brain_mask")
    wf.connect([
        (brainmask, outputnode, [("out_mask", "brain_mask"),
                                 ("template_source", "template_info")]),
    ])
    if not register:
        from bids_stroke.interfaces.utility import ConformOrientation

        outputnode.inputs.forward_transforms = []
        outputnode.inputs.inverse_transforms = []
        outputnode.inputs.inverse_invert_flags = []
        conform = pe.Node(ConformOrientation(), name="conform")
        wf.connect([
            (inputnode, conform, [("t1w", "in_file")]),
            (conform, outputnode, [("out_file", "t1w_std")]),
            (conform, brainmask, [("out_file", "in_file")]),
        ])
        if has_mask:
            wf.connect([
                (inputnode, conform, [("mask", "in_mask")]),
                (conform, outputnode, [("out_mask", "mask_std")]),
            ])
        return wf

    from bids_stroke.interfaces.registration import ApplyTransforms, RegisterToTemplate
    from bids_stroke.templates import get_template

    template = str(get_template(suffix="T1w", resolution=template_resolution))
    reg = pe.Node(
        RegisterToTemplate(template_file=template, kind=kind, seed=seed, threads=omp_nthreads),
        name="register",
        n_procs=omp_nthreads,
        mem_gb=3,
    )
    wf.connect([
        (inputnode, reg, [("t1w", "in_file")]),
        (reg, outputnode, [("out_file", "t1w_std"),
                           ("forward_transforms", "forward_transforms"),
                           ("inverse_transforms", "inverse_transforms"),
                           ("inverse_invert_flags", "inverse_invert_flags")]),
        (reg, brainmask, [("out_file", "in_file")]),
    ])
    if has_mask:
        warp_mask = pe.Node(
            ApplyTransforms(reference_file=template, interpolation="nearestNeighbor"),
            name="warp_mask",
        )
        wf.connect([
            (inputnode, warp_mask, [("mask", "in_file")]),
            (reg, warp_mask, [("forward_transforms", "transforms")]),
            (warp_mask, outputnode, [("out_file", "mask_std")]),
        ])
    return wf
