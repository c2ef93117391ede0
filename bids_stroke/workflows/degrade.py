"""One resolution condition applied to the template-space image."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe


def init_degrade_wf(*, degrade_mask: bool = False, name: str = "degrade_wf") -> pe.Workflow:
    """Degrade ``in_file`` by ``condition`` (a spec such as ``thick:5``).

    The caller sets ``condition`` from an ``iterables`` node, so nipype expands one copy of this
    workflow (and of everything downstream until the join) per condition.

    Outputs: ``out_file`` (degraded image, same grid), ``out_mask`` (reference mask degraded by
    the same geometry, only when ``degrade_mask``), ``label``, ``spec``, ``description``,
    ``params``, ``effective_resolution_mm``.
    """
    from bids_stroke.interfaces.degrade import DegradeImage
    from bids_stroke.interfaces.utility import ConditionInfo

    wf = pe.Workflow(name=name)
    inputnode = pe.Node(
        niu.IdentityInterface(fields=["in_file", "in_mask", "condition"]), name="inputnode"
    )
    outputnode = pe.Node(
        niu.IdentityInterface(
            fields=["out_file", "out_mask", "label", "spec", "description", "params",
                    "effective_resolution_mm"]
        ),
        name="outputnode",
    )
    degrade = pe.Node(DegradeImage(), name="degrade", mem_gb=1.5)
    info = pe.Node(ConditionInfo(), name="condition_info")
    wf.connect([
        (inputnode, degrade, [("in_file", "in_file"), ("condition", "condition")]),
        (inputnode, info, [("in_file", "in_file"), ("condition", "condition")]),
        (degrade, outputnode, [("out_file", "out_file")]),
        (info, outputnode, [("label", "label"), ("spec", "spec"), ("description", "description"),
                            ("params", "params"),
                            ("effective_resolution_mm", "effective_resolution_mm")]),
    ])
    if degrade_mask:
        wf.connect([
            (inputnode, degrade, [("in_mask", "in_mask")]),
            (degrade, outputnode, [("out_mask", "out_mask")]),
        ])
    return wf
