"""Spatial normalisation to MNI152NLin2009aSym (template-space models only)."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_stroke.core.settings import RegistrationSettings

OUTPUT_FIELDS = [
    "channels_std",
    "t1w_std",
    "mask_std",
    "brain_mask",
    "template_info",
    "forward_transforms",
    "inverse_transforms",
    "inverse_invert_flags",
]


def _first(files):
    return files[0]


def init_normalize_wf(
    *,
    register: bool,
    has_mask: bool,
    registration: RegistrationSettings,
    resolution: int = 1,
    seed: int = 0,
    omp_nthreads: int = 1,
    name: str = "normalize_wf",
) -> pe.Workflow:
    """Bring the channels (and the lesion mask) onto the template grid.

    Inputs: ``channels`` (reference first, all on its grid), ``mask``. Outputs:
    ``channels_std`` (every channel on the template grid), ``t1w_std`` (the reference),
    ``mask_std`` (nearest neighbour), ``brain_mask`` (template brain mask on that grid),
    ``template_info``, ``forward_transforms``/``inverse_transforms`` (empty lists without
    registration).

    Without registration (``space-MNI152NLin2009aSym`` in the file name, as in ATLAS v2.0) the
    images and the mask are only brought to RAS+ voxel order (flips/permutations, no
    interpolation; RAS+ inputs such as ATLAS pass unchanged), so metrics are computed on the
    original voxels.
    """
    from bids_stroke.interfaces.templates import TemplateBrainMask

    wf = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=["channels", "mask"]), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=OUTPUT_FIELDS), name="outputnode")
    brainmask = pe.Node(TemplateBrainMask(template=registration.template), name="brain_mask")
    wf.connect([
        (brainmask, outputnode, [("out_mask", "brain_mask"),
                                 ("template_source", "template_info")]),
    ])
    if not register:
        from bids_stroke.interfaces.utility import ConformOrientation

        outputnode.inputs.forward_transforms = []
        outputnode.inputs.inverse_transforms = []
        outputnode.inputs.inverse_invert_flags = []
        conform = pe.MapNode(ConformOrientation(), iterfield=["in_file"], name="conform")
        wf.connect([
            (inputnode, conform, [("channels", "in_file")]),
            (conform, outputnode, [("out_file", "channels_std"),
                                   (("out_file", _first), "t1w_std")]),
            (conform, brainmask, [(("out_file", _first), "in_file")]),
        ])
        if has_mask:
            conform_mask = pe.Node(ConformOrientation(), name="conform_mask")
            wf.connect([
                (inputnode, conform_mask, [("mask", "in_file")]),
                (conform_mask, outputnode, [("out_file", "mask_std")]),
            ])
        return wf

    from bids_stroke.interfaces.registration import ApplyTransforms, RegisterToTemplate
    from bids_stroke.templates import get_template

    template = str(get_template(registration.template, suffix="T1w", resolution=resolution))
    # the similarity counts the template's brain only: a head with skull and neck is matched
    # to a skull-stripped template by its brain, not stretched to fill it with its scalp
    brain = str(get_template(registration.template, suffix="mask", desc="brain",
                             resolution=resolution))
    reg = pe.Node(
        RegisterToTemplate(template_file=template, template_mask=brain, kind=registration.kind,
                           seed=seed),
        name="register", n_procs=omp_nthreads, mem_gb=3,
    )
    to_template = pe.MapNode(
        ApplyTransforms(reference_file=template, interpolation="linear"),
        iterfield=["in_file"], name="channels_to_template",
    )
    wf.connect([
        (inputnode, reg, [(("channels", _first), "in_file")]),
        (inputnode, to_template, [("channels", "in_file")]),
        (reg, to_template, [("forward_transforms", "transforms")]),
        (to_template, outputnode, [("out_file", "channels_std"),
                                   (("out_file", _first), "t1w_std")]),
        (to_template, brainmask, [(("out_file", _first), "in_file")]),
        (reg, outputnode, [("forward_transforms", "forward_transforms"),
                           ("inverse_transforms", "inverse_transforms"),
                           ("inverse_invert_flags", "inverse_invert_flags")]),
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
