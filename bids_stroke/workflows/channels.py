"""The input channels of a subject, on the reference image's grid.

The reference image (``--modality``; the grid its lesion mask is drawn on) comes first, then
the model's other channels. A channel already on the reference grid (ISLES'22 DWI and ADC) is
used as is; any other is registered to the reference (rigid, ANTsPy) and resampled onto its
grid (linear), which the subject's provenance records.
"""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_stroke.inputs.discovery import ImageInputs


def init_channels_wf(subject: ImageInputs, *, seed: int = 0, omp_nthreads: int = 1,
                     name: str = "channels_wf") -> pe.Workflow:
    """Inputs: ``reference``. Outputs: ``channels`` (reference first, every file on its grid).

    ``subject.channels`` lists ``(suffix, path, on_reference_grid)`` of every channel after
    the reference (see :func:`bids_stroke.inputs.discovery.attach_channels`).
    """
    wf = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=["reference"]), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=["channels"]), name="outputnode")
    extra = list(subject.channels)
    merge = pe.Node(niu.Merge(1 + len(extra)), name="merge_channels")
    wf.connect(inputnode, "reference", merge, "in1")
    for i, (suffix, path, on_grid) in enumerate(extra, start=2):
        if on_grid:
            setattr(merge.inputs, f"in{i}", str(path))
            continue
        from bids_stroke.interfaces.registration import RegisterToTemplate

        reg = pe.Node(RegisterToTemplate(in_file=str(path), kind="rigid", seed=seed),
                      name=f"coregister_{suffix}", n_procs=omp_nthreads, mem_gb=2)
        wf.connect([(inputnode, reg, [("reference", "template_file")]),
                    (reg, merge, [("out_file", f"in{i}")])])
    wf.connect(merge, "out", outputnode, "channels")
    return wf
