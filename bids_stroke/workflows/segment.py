"""Segmentation of one (degraded) image by the model."""

from __future__ import annotations

from collections.abc import Sequence

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_stroke.probseg import DEFAULT_MODE
from bids_stroke.settings import SegmentationSettings


def segment_inputs(segmentation: SegmentationSettings, *, model: str = "",
                   threshold: float | None = None, num_threads: int = 1,
                   probseg: str = DEFAULT_MODE) -> dict:
    """The inputs of :class:`~bids_stroke.interfaces.segment.SegmentImage` that carry the
    run's settings (the interface owns no defaults); ``model`` '' is the bundled model,
    ``threshold`` None the model's own and ``probseg`` the run's ``outputs.save_probseg``."""
    inputs = {
        "probseg": probseg,
        "model": model, "device": segmentation.device, "precision": segmentation.precision,
        "engine": segmentation.engine,
        "min_size": segmentation.min_size, "tta": segmentation.tta, "mode": segmentation.mode,
        "checkpoint": segmentation.checkpoint,
        "trust_model_code": segmentation.trust_model_code, "num_threads": num_threads,
    }
    if threshold is not None:
        inputs["threshold"] = threshold
    if segmentation.channels:
        inputs["channels"] = list(segmentation.channels)
    if segmentation.folds:
        inputs["folds"] = list(segmentation.folds)
    return inputs


def init_segment_wf(
    *,
    model: str,
    segmentation: SegmentationSettings,
    threshold: float,
    channel_order: Sequence[int] = (0,),
    omp_nthreads: int = 1,
    mem_gb: float = 4.0,
    progress_dir: str = "",
    probseg: str = DEFAULT_MODE,
    name: str = "segment_wf",
) -> pe.Workflow:
    """Segment ``in_files`` (the channels, reference first) on their own grid.

    ``channel_order[i]`` is the index in ``in_files`` of the model's i-th input channel.
    Outputs: ``probseg`` (probability on the input grid, stored as ``probseg`` says:
    :mod:`bids_stroke.probseg`; undefined for ``none``), ``mask`` (probability >=
    ``threshold``, components smaller than ``min_size`` voxels removed), ``model_checksum``,
    ``model_info``. ``progress_dir``: where the prediction reports its forward passes for the
    progress line (not part of the node's hash).
    """
    from bids_stroke.interfaces.segment import SegmentImage

    wf = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=["in_files", "brain_mask"]),
                        name="inputnode")
    outputnode = pe.Node(
        niu.IdentityInterface(fields=["probseg", "mask", "model_checksum", "model_info"]),
        name="outputnode",
    )
    seg = pe.Node(
        SegmentImage(channel_order=list(channel_order),
                     **segment_inputs(segmentation, model=model, threshold=threshold,
                                      num_threads=omp_nthreads, probseg=probseg),
                     **({"progress_dir": progress_dir} if progress_dir else {})),
        name="unet",
        n_procs=omp_nthreads,
        mem_gb=mem_gb,
    )
    wf.connect([
        (inputnode, seg, [("in_files", "in_files"), ("brain_mask", "brain_mask")]),
        (seg, outputnode, [("out_mask", "mask"), ("model_checksum", "model_checksum"),
                           ("model_info", "model_info")]),
    ])
    if probseg != "none":
        wf.connect(seg, "out_probseg", outputnode, "probseg")
    return wf
