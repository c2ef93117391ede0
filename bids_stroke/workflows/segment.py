"""3D U-Net inference on one (degraded) image."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe


def init_segment_wf(
    *,
    model: str = "",
    device: str = "auto",
    precision: str = "auto",
    threshold: float = 0.5,
    min_size: int = 0,
    tta: bool = False,
    mode: str = "auto",
    omp_nthreads: int = 1,
    mem_gb: float = 4.0,
    name: str = "segment_wf",
) -> pe.Workflow:
    """Segment ``in_file`` (intensity-normalised inside ``brain_mask``, padded, cropped back).

    Outputs: ``probseg`` (float32 probability on the input grid), ``mask`` (probability >=
    ``threshold``, components smaller than ``min_size`` voxels removed), ``model_checksum``,
    ``model_info``.
    """
    from bids_stroke.interfaces.segment import SegmentImage

    wf = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=["in_file", "brain_mask"]),
                        name="inputnode")
    outputnode = pe.Node(
        niu.IdentityInterface(fields=["probseg", "mask", "model_checksum", "model_info"]),
        name="outputnode",
    )
    seg = pe.Node(
        SegmentImage(
            model=model,
            device=device,
            precision=precision,
            threshold=threshold,
            min_size=min_size,
            tta=tta,
            mode=mode,
            num_threads=omp_nthreads,
        ),
        name="unet",
        n_procs=omp_nthreads,
        mem_gb=mem_gb,
    )
    wf.connect([
        (inputnode, seg, [("in_file", "in_file"), ("brain_mask", "brain_mask")]),
        (seg, outputnode, [("out_probseg", "probseg"), ("out_mask", "mask"),
                           ("model_checksum", "model_checksum"), ("model_info", "model_info")]),
    ])
    return wf
