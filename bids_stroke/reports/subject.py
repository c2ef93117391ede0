"""Per-subject HTML report: overlays of reference vs predicted lesion for every condition.

The reference is the lesion mask, or (``reference_label``) the model's own prediction at the
reference condition, when the metrics are agreement with it rather than accuracy: the report
says which, and an image without any reference says so instead of describing an outline.

For each condition the (degraded) image is shown at three orthogonal slices through the
centroid of the largest reference lesion (or of the largest predicted lesion when there is no
reference), with the reference outline in sky blue (solid) and the prediction in orange
(dashed) - distinguishable with any colour vision and in greyscale. Slice positions are
world coordinates in mm, with L/R markers (see :mod:`bids_stroke.reports.slices`). For
registered inputs a registration check draws the template brain outline over the registered
image. The report also holds every column of the subject's metrics table (one row per
metric, one column per condition, so that it fits the screen and the printed page) and a
provenance section with the full command line. Everything is embedded: the HTML file is
self-contained.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from bids_stroke.metrics.columns import METRIC_DESCRIPTIONS
from bids_stroke.reports import html as H
from bids_stroke.reports.slices import (
    lesion_focus,
    overlay_figure,
    registration_qc_figure,
    resample_like,
)

__all__ = ["build_subject_report", "lesion_focus", "metrics_table", "overlay_figure"]

REPORT_CSS = """
pre.cmd{white-space:pre-wrap;overflow-wrap:anywhere;background:#f4f4f4;padding:.5em}
"""


def _load_ras(path: str | os.PathLike[str]
              ) -> tuple[np.ndarray, tuple[float, float, float], np.ndarray]:
    """Load a 3-D NIfTI reoriented to the closest RAS orientation (for display only).

    Returns ``(data, zooms, affine)`` of the reoriented image.
    """
    img = nib.as_closest_canonical(nib.load(str(path)))
    data = np.asanyarray(img.dataobj)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f"{path}: expected a 3-D image, got shape {data.shape}")
    zx, zy, zz = (float(z) for z in img.header.get_zooms()[:3])
    return data, (zx, zy, zz), np.asarray(img.affine)


NOT_SCORED = ("Not scored: this image has no lesion mask and the run scored against lesion "
              "masks (--reference mask), so it was segmented without metrics; --reference "
              "prediction (or auto) scores it against the model's own native-resolution "
              "prediction.")


def metrics_table(metrics_tsv: str | os.PathLike[str] | None, name: str | None = None,
                  earlier: Sequence[Mapping[str, str]] = (), *, scored: bool = True,
                  reference_words: str | None = None) -> str:
    """Every column of the metrics TSV: one row per column, one column per condition.

    ``name`` is the file name shown in the caption (the derivative's name; default the
    given file's name). ``earlier``: rows of conditions kept from earlier runs (same
    columns), shown after this run's, headed ``<desc> (earlier run)``. ``scored=False``: the
    image had no reference, said as such. ``reference_words``: what the values are when
    they are not accuracy against a lesion mask (e.g. agreement with the model's
    native-resolution prediction).
    """
    if metrics_tsv is None:
        return H.paragraph(NOT_SCORED if not scored else "No metrics table was given.",
                           cls="note")
    path = Path(metrics_tsv)
    shown = name or path.name
    if not path.is_file():
        return H.paragraph(f"Metrics table {shown} not found.", cls="note")
    df = pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False)
    heads = [str(v) for v in (df["desc"] if "desc" in df.columns else df.index)]
    if earlier and "desc" in df.columns:
        # the rows are TSV text: parse them with the same reader as this run's table
        old = pd.read_csv(io.StringIO(pd.DataFrame(list(earlier)).to_csv(sep="\t",
                                                                        index=False)),
                          sep="\t", na_values=["n/a"], keep_default_na=False)
        old = old[[c for c in df.columns if c in old.columns]]
        heads += [f"{d} (earlier run)" for d in old["desc"]]
        df = pd.concat([df, old], ignore_index=True)
    rows = []
    for col in df.columns:
        entry = METRIC_DESCRIPTIONS.get(col, {})
        unit = f" ({entry['Units']})" if entry.get("Units") else ""
        rows.append({"column": col, "meaning": f"{entry.get('LongName', '')}{unit}",
                     **{h: v for h, v in zip(heads, df[col].tolist(), strict=True)}})
    table = pd.DataFrame(rows, columns=["column", "meaning", *heads])
    what = (f"{reference_words[0].upper()}{reference_words[1:]}, per condition"
            if reference_words else "All metrics per condition")
    return H.table_html(table, caption=f"{what} ({shown}); definitions in its JSON data "
                                       "dictionary", table_id="metrics")


def _registration_section(image: np.ndarray, zooms: tuple[float, float, float],
                          affine: np.ndarray, template_mask: str | os.PathLike[str],
                          template_file: str | os.PathLike[str] | None,
                          modality: str) -> str:
    mask, _, mask_aff = _load_ras(template_mask)
    mask_on = resample_like(mask > 0, mask_aff, image.shape, affine, order=0) > 0.5
    tpl_on = None
    if template_file is not None:
        tpl, _, tpl_aff = _load_ras(template_file)
        tpl_on = resample_like(tpl, tpl_aff, image.shape, affine, order=1)
    fig = registration_qc_figure(image, zooms, affine, mask_on, template_image=tpl_on,
                                 image_label=f"registered {modality}")
    names = Path(template_mask).name + (f", {Path(template_file).name}" if template_file
                                        else "")
    caption = ("The template brain outline (green) over the registered image"
               + (" (top) and over the template itself (bottom)" if tpl_on is not None
                  else "")
               + ". A good registration puts the brain's edge, ventricles and midline of the "
               f"image on the outline as on the template. Template files: {names}.")
    return H.img_tag(H.fig_to_png(fig, dpi=90), alt="registration check", caption=caption)


def _predicted(cond: Mapping[str, Any], threshold: float | None) -> np.ndarray | None:
    """A condition's predicted lesion (its mask, else probability >= threshold)."""
    if cond.get("mask"):
        return _load_ras(cond["mask"])[0] > 0
    if cond.get("probseg"):
        if threshold is None:
            raise ValueError(f"condition {cond.get('label', 'condition')}: a probability map "
                             "without a mask needs the run's threshold (threshold=...)")
        return _load_ras(cond["probseg"])[0] >= threshold  # probability >= threshold: lesion
    return None


def _legend_caption(ref: np.ndarray | None, ref_name: str | None, is_reference: bool) -> str:
    if is_reference:
        return ("This condition's prediction (orange dashed) is the reference the other "
                "conditions are scored against; it is not scored itself.")
    if ref is None:
        return "Prediction: orange dashed (no reference: the image has no lesion mask)."
    if ref_name:
        return f"Reference, {ref_name}: sky blue solid; prediction: orange dashed."
    return "Reference: sky blue solid; prediction: orange dashed."


def _condition_block(cond: Mapping[str, Any], base: np.ndarray, zooms: tuple[float, ...],
                     affine: np.ndarray,
                     ref: np.ndarray | None, ref_focus: tuple[int, int, int] | None,
                     name: str, modality: str, threshold: float | None,
                     ref_name: str | None = None, is_reference: bool = False) -> str:
    """One condition's overlay; ``ref_focus`` is :func:`lesion_focus` of ``ref`` (the same
    for every condition, so computed once by the caller)."""
    label = str(cond.get("label", "condition"))
    img = base
    if cond.get("image"):
        img = _load_ras(cond["image"])[0]
    pred = _predicted(cond, threshold)
    if is_reference:
        ref = None  # the reference itself: one outline
    for arr, what in ((img, "image"), (pred, "mask")):
        if arr is not None and arr.shape != base.shape:
            raise ValueError(f"condition {label}: {what} shape {arr.shape} differs from the "
                             f"{modality} image {base.shape}")
    focus = ref_focus or lesion_focus(pred) or tuple(s // 2 for s in base.shape)
    where = ("largest reference lesion" if ref_focus else
             "largest predicted lesion" if pred is not None and pred.any() else
             "image centre")
    fig = overlay_figure(img, zooms, focus, affine=affine, reference=ref, prediction=pred,
                         title=f"{label} ({cond.get('spec', '')})"
                         + (" - the reference" if is_reference else ""),
                         reference_label=("reference (" + ref_name + ")") if ref_name
                         else "reference")
    desc = str(cond.get("description", "") or "")
    return (f"<h3>{H.escape(label)} <small><code>{H.escape(cond.get('spec', ''))}</code>"
            f"</small></h3>" + (H.paragraph(desc) if desc else "")
            + H.img_tag(H.fig_to_png(fig, dpi=90), alt=f"{name} {label} overlay",
                        caption=f"Slices through the {where}; positions in mm (world "
                                "coordinates), L/R = subject's left/right. "
                                + _legend_caption(ref, ref_name, is_reference)))


def _provenance_section(provenance: Mapping[str, Any] | None, command_line: str | None) -> str:
    parts = []
    if command_line:
        parts.append("<p>Command line:</p><pre class=\"cmd\"><code>"
                     f"{H.escape(command_line)}</code></pre>")
    if provenance:
        parts.append(H.kv_table(dict(provenance), caption="Provenance"))
    if not parts:
        parts.append(H.paragraph("No provenance recorded.", cls="note"))
    from bids_stroke.reports.citation import citation_lines

    return "".join(parts) + "".join(H.paragraph(line) for line in citation_lines())


def _reference_sentence(reference_label: str | None, ref_name: str | None,
                        reference_mask: Any, scored: bool) -> str:
    """What the metrics of this report were scored against, in one sentence."""
    if reference_label:
        return (f" Reference: {ref_name} (condition {reference_label}), not a lesion mask: "
                "the metrics are agreement with it, which says how much the prediction changes "
                "with resolution, not whether it is right (a model can be consistently "
                f"wrong); {reference_label} itself is not scored.")
    if reference_mask is not None:
        return " Reference: the lesion mask."
    return "" if scored else " Reference: none (no lesion mask)."


def _earlier_note(earlier: Sequence[Mapping[str, str]]) -> str:
    if not earlier:
        return ""
    labels = ", ".join(str(r.get("desc")) for r in earlier)
    return H.paragraph(
        f"This output folder also keeps condition(s) {labels} from an earlier run (same model "
        "and settings): their metrics are in the table and the TSV, their images beside this "
        "report; the overlays below show this run's conditions only. Re-run with them in "
        "--conditions to see them here, or with --clean to remove them.", cls="note")


def build_subject_report(
    out_html: str | os.PathLike[str],
    *,
    subject: str,
    session: str | None = None,
    image: str | os.PathLike[str],
    suffix: str | None = None,
    reference_mask: str | os.PathLike[str] | None = None,
    conditions: Sequence[Mapping[str, Any]],
    metrics_tsv: str | os.PathLike[str] | None = None,
    metrics_name: str | None = None,
    earlier_metrics: Sequence[Mapping[str, str]] = (),
    provenance: Mapping[str, Any] | None = None,
    command_line: str | None = None,
    template_mask: str | os.PathLike[str] | None = None,
    template_file: str | os.PathLike[str] | None = None,
    threshold: float | None = None,
    warnings: Sequence[str] = (),
    reference_label: str | None = None,
    reference_condition: str | None = None,
    scored: bool = True,
) -> Path:
    """Write the self-contained HTML report of one subject (or subject-session).

    Parameters
    ----------
    out_html : path
        Output file (written atomically).
    subject, session : str
        Labels (with or without the ``sub-``/``ses-`` prefix).
    image : path
        Preprocessed image (all images share its grid).
    suffix : str, optional
        The input's BIDS suffix (``T1w``, ``T2w``, ``FLAIR``, ``dwi``...), used in the text;
        without it the report says "image".
    reference_mask : path, optional
        Manual lesion mask.
    conditions : sequence of dict
        One dict per condition with keys ``label``, ``spec``, ``description``, ``image``
        (degraded image), ``mask`` (binary prediction) and ``probseg`` (probability map;
        lesion where ``>= threshold`` when ``mask`` is missing). Missing image -> ``image``.
    metrics_tsv : path, optional
        The subject's metrics TSV; ``metrics_name`` is its name in the derivatives (shown).
    earlier_metrics : sequence of dict, optional
        Metrics rows of conditions an earlier run committed and this one keeps: listed in
        the metrics table (marked) with a note that they have no overlays here.
    provenance : dict, optional
        E.g. model checksum, versions; shown as a key/value table.
    command_line : str, optional
        The full command line of the run, shown verbatim.
    template_mask, template_file : path, optional
        For registered inputs: the template brain mask (and T1w) the image was registered
        to; adds the registration check (template outline over the registered image).
    threshold : float, optional
        The run's lesion threshold; needed only for a condition given as ``probseg`` alone.
    warnings : sequence of str, optional
        The run's warnings (e.g. a modality the model does not declare, the bundled demo model
        on other data): shown highlighted at the top.
    reference_label, reference_condition : str, optional
        The condition whose prediction is the reference (agreement, no lesion mask): its
        prediction is outlined as the reference in the other conditions' overlays, and the
        report says the values are agreement with it, not accuracy.
    scored : bool
        False when the image had no reference at all (no metrics, said as such).

    Returns
    -------
    pathlib.Path
        ``out_html``.
    """
    sub = str(subject).removeprefix("sub-")
    ses = None if session in (None, "", "n/a") else str(session).removeprefix("ses-")
    name = f"sub-{sub}" + (f" ses-{ses}" if ses else "")
    modality = suffix or "input"
    base, zooms, affine = _load_ras(image)
    ref = None
    if reference_mask is not None:
        ref = _load_ras(reference_mask)[0]
        if ref.shape != base.shape:
            raise ValueError(f"{reference_mask}: shape {ref.shape} differs from the "
                             f"{modality} image {base.shape}")
        ref = ref > 0
    ref_name = words = None
    if reference_label:
        from bids_stroke.metrics.reference import Reference

        reference = Reference.prediction(reference_condition or reference_label)
        ref_name, words = reference.reference_words, reference.words
        ref_cond = next((c for c in conditions if c.get("label") == reference_label), None)
        if ref_cond is None:
            raise ValueError(f"reference condition {reference_label} is not among the "
                             "conditions shown")
        ref = _predicted(ref_cond, threshold)
        if ref is not None and ref.shape != base.shape:
            raise ValueError(f"reference condition {reference_label}: mask shape {ref.shape} "
                             f"differs from the {modality} image {base.shape}")
    ref_focus = lesion_focus(ref)
    blocks = [_condition_block(c, base, zooms, affine, ref, ref_focus, name, modality,
                               threshold, ref_name, is_reference=bool(reference_label)
                               and c.get("label") == reference_label)
              for c in conditions]
    body = [
        H.paragraph(f"Participant {sub}" + (f", session {ses}" if ses else "")
                    + f"; {len(conditions)} condition(s); {suffix or 'image'} grid "
                    + " x ".join(str(s) for s in base.shape) + " voxels at "
                    + " x ".join(f"{z:g}" for z in zooms) + " mm."
                    + _reference_sentence(reference_label, ref_name, reference_mask, scored)),
        H.warnings_box(warnings),
        H.section("Metrics", metrics_table(metrics_tsv, metrics_name, earlier_metrics,
                                           scored=scored, reference_words=words)
                  + _earlier_note(earlier_metrics), anchor="metrics"),
    ]
    if template_mask is not None:
        body.append(H.section("Registration check", _registration_section(
            base, zooms, affine, template_mask, template_file, modality),
            anchor="registration"))
    body += [
        H.section("Segmentations", "".join(blocks) or H.paragraph("No condition."),
                  anchor="segmentations"),
        H.section("Provenance", _provenance_section(provenance, command_line),
                  anchor="provenance"),
    ]
    out = Path(out_html)
    H.atomic_write_text(out, H.page(f"bids_stroke report: {name}", "".join(body),
                                    extra_css=REPORT_CSS))
    return out
