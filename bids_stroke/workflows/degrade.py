"""One resolution condition applied to every channel of a subject, identically."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe


def _first(files):
    return files[0]


def init_degrade_wf(*, degrade_mask: bool = False, mem_gb: float = 1.5,
                    name: str = "degrade_wf") -> pe.Workflow:
    """Degrade every file of ``in_files`` by ``condition`` (a spec such as ``thick:5``).

    The caller sets ``condition`` from an ``iterables`` node, so nipype expands one copy of this
    workflow (and of everything downstream until the join) per condition. All channels share a
    grid, so the same geometry applies to each.

    Outputs: ``out_files`` (degraded channels, same grid, same order), ``out_mask`` (reference
    mask degraded by the same geometry, only when ``degrade_mask``), ``label``, ``spec``,
    ``description``, ``params``, ``effective_resolution_mm``.
    """
    from bids_stroke.interfaces.degrade import DegradeImage
    from bids_stroke.interfaces.utility import ConditionInfo

    wf = pe.Workflow(name=name)
    inputnode = pe.Node(
        niu.IdentityInterface(fields=["in_files", "in_mask", "condition"]), name="inputnode"
    )
    outputnode = pe.Node(
        niu.IdentityInterface(
            fields=["out_files", "out_mask", "label", "spec", "description", "params",
                    "effective_resolution_mm"]
        ),
        name="outputnode",
    )
    degrade = pe.MapNode(DegradeImage(), iterfield=["in_file"], name="degrade", mem_gb=mem_gb)
    info = pe.Node(ConditionInfo(), name="condition_info")
    wf.connect([
        (inputnode, degrade, [("in_files", "in_file"), ("condition", "condition")]),
        (inputnode, info, [(("in_files", _first), "in_file"), ("condition", "condition")]),
        (degrade, outputnode, [("out_file", "out_files")]),
        (info, outputnode, [("label", "label"), ("spec", "spec"), ("description", "description"),
                            ("params", "params"),
                            ("effective_resolution_mm", "effective_resolution_mm")]),
    ])
    if degrade_mask:
        mask = pe.Node(DegradeImage(), name="degrade_mask", mem_gb=mem_gb)
        wf.connect([
            (inputnode, mask, [(("in_files", _first), "in_file"), ("in_mask", "in_mask"),
                               ("condition", "condition")]),
            (mask, outputnode, [("out_mask", "out_mask")]),
        ])
    return wf
