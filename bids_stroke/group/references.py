"""Results scored against different references are analysed apart, and say what they are.

Every committed subject records what its metrics were scored against (its manifest's
``extra["reference"]``, :class:`bids_stroke.metrics.reference.Reference`; none recorded = the lesion
mask). The group level never pools two kinds in one test: :func:`reference_sets` lists the sets
present, the lesion-mask set first, and each set is analysed on its own and written under its own
prefix (:func:`prefix`): ``group_*`` for the mask set (the names it always had),
``group_ref<condition>prediction_*`` for the agreement with the model's own prediction.

:func:`wording` gives what a prediction-referenced report must say (agreement, not accuracy,
and what agreement can and cannot tell); :func:`agreement_findings` states each condition's
agreement in words. The statistics themselves are unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from bids_stroke.metrics.reference import Reference

if TYPE_CHECKING:
    from bids_stroke.group.findings import Namer
    from bids_stroke.outputs.commit import ImageState

__all__ = ["ReferenceWording", "agreement_findings", "prefix", "reference_of", "reference_sets",
           "sidecar_reference", "wording"]


def reference_of(state: ImageState) -> Reference | None:
    """What a committed subject was scored against (``None``: not committed)."""
    if state.manifest is None:
        return None
    return Reference.from_record(state.manifest.extra.get("reference"))


def reference_sets(*state_lists: Iterable[ImageState] | None) -> list[Reference]:
    """The references of the committed subjects with a metric table, mask first, then the
    prediction references in the order of their condition."""
    found: dict[str, Reference] = {}
    for states in state_lists:
        for state in states or ():
            ref = reference_of(state)
            if (ref is not None and state.manifest is not None
                    and "segmetrics" in state.manifest.tables):
                found.setdefault(ref.key, ref)
    return sorted(found.values(), key=lambda r: (r.is_prediction, r.condition or ""))


def prefix(reference: Reference) -> str:
    """File prefix of a set's group outputs: ``group`` or ``group_refnativeprediction``."""
    return "group" if not reference.is_prediction else f"group_{reference.desc}"


def sidecar_reference(reference: Reference) -> dict[str, Any] | None:
    """The ``Reference`` entry of a prediction-referenced set's group sidecars (``None`` for
    the lesion-mask set, whose files keep their content)."""
    if not reference.is_prediction:
        return None
    return {"Description": f"Every metric of this table is {reference.words} (each "
                           f"condition's prediction scored against the prediction at "
                           f"{reference.condition}), not accuracy against a lesion mask.",
            **reference.record()}


@dataclass(frozen=True)
class ReferenceWording:
    """What a set's report says about its reference."""

    title: str
    reference_name: str  # on axes: "reference" / "native-prediction"
    paragraphs: tuple[str, ...]


def wording(reference: Reference, others: Sequence[tuple[Reference, str]] = ()) -> ReferenceWording:
    """The report's words for ``reference``; ``others``: the other sets of this output folder
    and their report file (said: analysed separately, never pooled)."""
    apart = ""
    if others:
        apart = (" This output folder also holds images scored against "
                 + "; ".join(f"{o.reference_words} ({name})" for o, name in others)
                 + ": they are analysed separately and never pooled with these.")
    if not reference.is_prediction:
        paragraphs = (f"Reference: the lesion mask of each image.{apart}",) if others else ()
        return ReferenceWording("bids_stroke group report", "reference", paragraphs)
    cond = reference.condition
    what = reference.reference_words
    return ReferenceWording(
        f"bids_stroke group report: {reference.words}",
        "native-prediction" if cond == "native" else f"{reference.label}-prediction",
        (f"Reference: {what}, not a lesion mask. Every other condition's prediction was scored "
         f"against the model's prediction at {cond} with the same metric code on the same grid, "
         f"so every number below is {reference.words}, not accuracy; {cond} itself is not "
         "scored (its agreement with itself is 1 by definition). Reference volumes, lesion "
         "counts and the lesion-size strata are those of the predicted lesion at "
         f"{cond}.{apart}",
         "What agreement can tell: how much the model's output changes when only the "
         "resolution changes, which conditions change it most, and for which predicted lesion "
         "sizes; a condition with high agreement gives the segmentation the model would have "
         f"given at {cond}. What it cannot tell: whether either is right. A model can be "
         "consistently wrong (missing the same lesion at every resolution agrees perfectly), "
         "and a degraded prediction that happens to be closer to the truth counts as "
         "disagreement. Use it to judge how far results at lower resolution can stand in for "
         f"{cond}-resolution results, not to judge the model's accuracy (see bench/RESULTS.md "
         "for how well agreement predicted the mask-based change on data with masks)."))


def agreement_findings(summary: pd.DataFrame | None, conditions: Sequence[str],
                       phrases: Mapping[str, str], metrics: Sequence[str],
                       reference: Reference) -> list[str]:
    """One sentence per condition and tested metric of a prediction-referenced set, e.g.
    "With linear 2 mm (linear2), Dice agreement with the model's native-resolution
    prediction: median 0.91 (IQR 0.87 to 0.95), n = 6."."""
    from bids_stroke.group.findings import fmt_num
    from bids_stroke.group.labels import metric_short

    if summary is None or not len(summary):
        return []
    out = []
    rows = summary.set_index(["desc", "metric"])
    for c in conditions:
        where = phrases.get(c, c)
        where = where if where == c else f"{where} ({c})"
        for m in metrics:
            if (c, m) not in rows.index:
                continue
            r = rows.loc[(c, m)]
            n = int(r["n"]) if "n" in r and not pd.isna(r["n"]) else 0
            if n == 0:
                continue
            med, q1, q3 = (float(r.get(k, math.nan)) for k in ("median", "q1", "q3"))
            out.append(f"With {where}, {metric_short(m)} {reference.words}: median "
                       f"{fmt_num(med)} (IQR {fmt_num(q1)} to {fmt_num(q3)}), n = {n}.")
    return out


def metric_namer(reference: Reference) -> Namer:
    """How findings name a metric of this set: ``Dice`` (mask) or ``Dice agreement with the
    model's native-resolution prediction``."""
    from bids_stroke.group.labels import metric_short

    if not reference.is_prediction:
        return metric_short
    return lambda metric: f"{metric_short(metric)} {reference.words}"


def _self_rows() -> tuple[dict[str, Any], dict[str, Any]]:
    """What the metric code gives for a mask scored against itself: non-empty, then empty."""
    import numpy as np

    from bids_stroke.metrics import compute_metrics

    mask = np.zeros((8, 8, 8), bool)
    mask[2:5, 2:5, 2:5] = True
    return (compute_metrics(mask, mask, (1.0, 1.0, 1.0)),
            compute_metrics(np.zeros_like(mask), np.zeros_like(mask), (1.0, 1.0, 1.0)))


def with_self_agreement(table: pd.DataFrame | None, reference: Reference
                        ) -> tuple[pd.DataFrame | None, str]:
    """``table`` of a prediction-referenced set with one row per image for the reference
    condition itself: the metric code's values for a prediction scored against itself
    (Dice 1, distances 0, ...; an empty prediction gets the empty-mask conventions), sized by
    that image's reference prediction. The paired tests and the equivalence verdicts then
    compare each condition with the perfect agreement the reference condition has by
    definition. Added in memory only (the participant tables never hold these rows); returns
    the table and a note saying so (empty when nothing was added)."""
    if table is None or not reference.is_prediction or not len(table):
        return table, ""
    if (table["desc"] == reference.label).any():
        return table, ""
    from bids_stroke.degradation import parse_condition
    from bids_stroke.group.resolution import grid_spacing

    full, empty = _self_rows()
    ref_cond = parse_condition(str(reference.condition))
    keys = [k for k in ("dataset", "image_id") if k in table.columns]
    rows = []
    for _, first in table.groupby(keys, sort=False, dropna=False):
        r = first.iloc[0]
        new = dict(r)
        base = full if float(r.get("ref_volume_ml", 0) or 0) > 0 else empty
        new.update({k: v for k, v in base.items() if k in table.columns})
        ref_voxels = float(r["tp"] + r["fn"]) if {"tp", "fn"} <= set(r.index) else math.nan
        sized = {"tp": ref_voxels, "fp": 0, "fn": 0,
                 "tn": float(r["tn"] + r["fp"]) if {"tn", "fp"} <= set(r.index) else math.nan,
                 "ref_volume_ml": r.get("ref_volume_ml"), "pred_volume_ml": r.get("ref_volume_ml"),
                 "ref_lesion_count": r.get("ref_lesion_count"),
                 "pred_lesion_count": r.get("ref_lesion_count"),
                 "lesion_tp": r.get("ref_lesion_count"), "lesion_fp": 0, "lesion_fn": 0}
        if "grid_voxels" in r.index and "pred_fraction_pct" in table.columns:
            sized["pred_fraction_pct"] = 100.0 * ref_voxels / float(r["grid_voxels"])
        new.update({k: v for k, v in sized.items() if k in table.columns})
        spacing = grid_spacing(str(r["condition"]), float(r["effective_resolution_mm"]))
        new.update(desc=reference.label, condition=ref_cond.spec,
                   effective_resolution_mm=(ref_cond.effective_resolution_mm((spacing,) * 3)
                                            if spacing is not None else math.nan))
        rows.append(new)
    added = pd.DataFrame(rows, columns=table.columns).astype(table.dtypes.to_dict(),
                                                              errors="ignore")
    note = (f"{reference.condition} is the reference: its agreement with itself is perfect by "
            f"definition (Dice 1, distances 0), so its rows here are the metric code's values "
            f"for a prediction against itself, added for the paired comparisons only; every "
            f"other condition is compared with them.")
    return pd.concat([added, table], ignore_index=True), note
