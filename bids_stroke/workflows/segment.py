"""Segmentation of one (degraded) image by the model."""

from __future__ import annotations

from collections.abc import Sequence

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_stroke.model.request import ModelRequest
from bids_stroke.outputs.probseg import DEFAULT_MODE


def init_segment_wf(
    *,
    model: ModelRequest,
    channel_order: Sequence[int] = (0,),
    progress_dir: str = "",
    probseg: str = DEFAULT_MODE,
    name: str = "segment_wf",
) -> pe.Workflow:
    """Segment ``in_files`` (the channels, reference first) on their own grid.

    ``model``: the run's request (model, how it runs, threshold, ``min_size``); the node gets
    it as one input (:meth:`ModelRequest.node_input`), ``model.threads`` cores and the memory
    of the model's estimate (:func:`bids_stroke.core.resources.segment_mem_gb`).
    ``channel_order[i]`` is the index in ``in_files`` of the model's i-th input channel.
    Outputs: ``probseg`` (probability on the input grid, stored as ``probseg`` says:
    :mod:`bids_stroke.outputs.probseg`; undefined for ``none``), ``mask`` (probability >= the
    threshold, components smaller than ``min_size`` voxels removed), ``model_checksum``,
    ``model_info``. ``progress_dir``: where the prediction reports its forward passes for the
    progress line (not part of the node's hash).
    """
    from bids_stroke.core.resources import segment_mem_gb
    from bids_stroke.interfaces.segment import SegmentImage

    wf = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=["in_files", "brain_mask"]),
                        name="inputnode")
    outputnode = pe.Node(
        niu.IdentityInterface(fields=["probseg", "mask", "model_checksum", "model_info"]),
        name="outputnode",
    )
    seg = pe.Node(
        SegmentImage(channel_order=list(channel_order), model=model.node_input(),
                     probseg=probseg,
                     **({"progress_dir": progress_dir} if progress_dir else {})),
        name="unet",
        n_procs=max(1, model.threads),
        mem_gb=segment_mem_gb(model.predict_gb),
    )
    wf.connect([
        (inputnode, seg, [("in_files", "in_files"), ("brain_mask", "brain_mask")]),
        (seg, outputnode, [("out_mask", "mask"), ("model_checksum", "model_checksum"),
                           ("model_info", "model_info")]),
    ])
    if probseg != "none":
        wf.connect(seg, "out_probseg", outputnode, "probseg")
    return wf
