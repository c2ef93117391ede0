"""Per-subject HTML report: overlays of reference vs predicted lesion for every condition.

For each condition the (degraded) image is shown at three orthogonal slices through the
centroid of the largest reference lesion (or of the largest predicted lesion when there is no
reference), with the reference outline in sky blue (solid) and the prediction in orange
(dashed) - distinguishable with any colour vision and in greyscale. The report also holds the
subject's key metrics per condition and a provenance section. Everything is embedded: the HTML
file is self-contained.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from scipy import ndimage

from bids_stroke.reports import html as H

__all__ = ["KEY_METRICS", "build_subject_report", "lesion_focus", "overlay_figure"]

REF_COLOUR = "#56B4E9"  # Okabe-Ito sky blue
PRED_COLOUR = "#E69F00"  # Okabe-Ito orange
KEY_METRICS: tuple[str, ...] = (
    "desc", "condition", "effective_resolution_mm", "dice", "hd95", "assd", "lesion_f1",
    "detection_rate", "ref_volume_ml", "pred_volume_ml", "abs_volume_diff_ml",
    "ref_lesion_count", "pred_lesion_count",
)


def _load_ras(path: str | os.PathLike[str]) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Load a 3-D NIfTI reoriented to the closest RAS orientation (for display only)."""
    img = nib.as_closest_canonical(nib.load(str(path)))
    data = np.asanyarray(img.dataobj)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f"{path}: expected a 3-D image, got shape {data.shape}")
    zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
    return data, zooms  # type: ignore[return-value]


def lesion_focus(mask: np.ndarray | None) -> tuple[int, int, int] | None:
    """Voxel index of the centroid of the largest 26-connected component of ``mask``.

    Returns None for an empty or missing mask. When the centroid falls outside the component
    (curved lesion), the component voxel closest to it is returned instead, so the three
    slices always cut the lesion.
    """
    if mask is None:
        return None
    m = np.asarray(mask) > 0
    if not m.any():
        return None
    lab, _ = ndimage.label(m, structure=np.ones((3, 3, 3), bool))
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    biggest = int(np.argmax(sizes))
    box = ndimage.find_objects(lab, max_label=biggest)[biggest - 1]
    comp = lab[box] == biggest  # work in the bounding box only
    offset = np.array([s.start for s in box])
    pts = np.argwhere(comp)
    c = pts.mean(axis=0)
    idx = tuple(round(float(v)) for v in c)
    if not comp[idx]:
        idx = tuple(int(v) for v in pts[np.argmin(((pts - c) ** 2).sum(axis=1))])
    return tuple(int(v) for v in np.asarray(idx) + offset)  # type: ignore[return-value]


def _window(img: np.ndarray) -> tuple[float, float]:
    v = img[np.isfinite(img)]
    nz = v[v != 0]
    v = nz if nz.size > 100 else v
    if v.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(v, [1, 99.5])
    return float(lo), float(hi if hi > lo else lo + 1.0)


def overlay_figure(
    image: np.ndarray,
    zooms: Sequence[float],
    focus: Sequence[int],
    *,
    reference: np.ndarray | None = None,
    prediction: np.ndarray | None = None,
    title: str = "",
) -> Any:
    """Figure with sagittal, coronal and axial slices through ``focus`` (RAS voxel order)."""
    fig = H.new_figure((10.5, 3.9), layout=None)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.08, top=0.86, wspace=0.03)
    axes = fig.subplots(1, 3)
    lo, hi = _window(image)
    i, j, k = (int(v) for v in focus)
    zx, zy, zz = (float(z) for z in zooms)
    views = [  # (slicer, aspect = row spacing / column spacing after transpose, label)
        ((i, slice(None), slice(None)), zz / zy, f"sagittal x={i}"),
        ((slice(None), j, slice(None)), zz / zx, f"coronal y={j}"),
        ((slice(None), slice(None), k), zy / zx, f"axial z={k}"),
    ]
    for ax, (sl, aspect, label) in zip(axes, views, strict=True):
        ax.imshow(np.asarray(image[sl], float).T, cmap="gray", vmin=lo, vmax=hi,
                  origin="lower", aspect=aspect, interpolation="nearest")
        for mask, colour, style in ((reference, REF_COLOUR, "solid"),
                                    (prediction, PRED_COLOUR, "dashed")):
            if mask is None:
                continue
            sl2 = (np.asarray(mask[sl]) > 0).T
            if sl2.any() and not sl2.all():
                ax.contour(sl2.astype(np.float32), levels=[0.5], colors=[colour],
                           linewidths=1.4, linestyles=style, origin="lower")
        ax.set_title(label, fontsize=9)
        ax.set_axis_off()
    handles = []
    if reference is not None:
        handles.append(Line2D([], [], color=REF_COLOUR, lw=1.8, label="reference"))
    if prediction is not None:
        handles.append(Line2D([], [], color=PRED_COLOUR, lw=1.8, ls="--", label="prediction"))
    if handles:
        fig.legend(handles=handles, loc="upper right", fontsize=8, ncols=len(handles))
    if title:
        fig.suptitle(title, fontsize=10, x=0.01, ha="left")
    return fig


def _metrics_table(metrics_tsv: str | os.PathLike[str] | None) -> str:
    if metrics_tsv is None:
        return H.paragraph("No metrics table was given.", cls="note")
    path = Path(metrics_tsv)
    if not path.is_file():
        return H.paragraph(f"Metrics table {path.name} not found.", cls="note")
    df = pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False)
    cols = [c for c in KEY_METRICS if c in df.columns]
    return H.table_html(df[cols], caption=f"Key metrics per condition ({path.name})",
                        table_id="metrics")


def build_subject_report(
    out_html: str | os.PathLike[str],
    *,
    subject: str,
    session: str | None = None,
    t1w: str | os.PathLike[str],
    reference_mask: str | os.PathLike[str] | None = None,
    conditions: Sequence[Mapping[str, Any]],
    metrics_tsv: str | os.PathLike[str] | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """Write the self-contained HTML report of one subject (or subject-session).

    Parameters
    ----------
    out_html : path
        Output file (written atomically).
    subject, session : str
        Labels (with or without the ``sub-``/``ses-`` prefix).
    t1w : path
        Preprocessed native image (all images share its grid).
    reference_mask : path, optional
        Manual lesion mask.
    conditions : sequence of dict
        One dict per condition with keys ``label``, ``spec``, ``description``, ``image``
        (degraded image), ``mask`` (binary prediction) and ``probseg`` (probability map;
        thresholded at 0.5 when ``mask`` is missing). Missing image -> ``t1w`` is shown.
    metrics_tsv : path, optional
        The subject's ``*_label-L_segmetrics.tsv``.
    provenance : dict, optional
        E.g. model checksum, versions, command line; shown as a key/value table.

    Returns
    -------
    pathlib.Path
        ``out_html``.
    """
    sub = str(subject).removeprefix("sub-")
    ses = None if session in (None, "", "n/a") else str(session).removeprefix("ses-")
    name = f"sub-{sub}" + (f" ses-{ses}" if ses else "")
    t1, zooms = _load_ras(t1w)
    ref = None
    if reference_mask is not None:
        ref, _ = _load_ras(reference_mask)
        if ref.shape != t1.shape:
            raise ValueError(f"{reference_mask}: shape {ref.shape} differs from T1w {t1.shape}")
        ref = ref > 0
    ref_focus = lesion_focus(ref)

    blocks = []
    for cond in conditions:
        label = str(cond.get("label", "condition"))
        img = t1
        if cond.get("image"):
            img, _ = _load_ras(cond["image"])
        pred = None
        if cond.get("mask"):
            pred = _load_ras(cond["mask"])[0] > 0
        elif cond.get("probseg"):
            pred = _load_ras(cond["probseg"])[0] >= 0.5
        for arr, what in ((img, "image"), (pred, "mask")):
            if arr is not None and arr.shape != t1.shape:
                raise ValueError(f"condition {label}: {what} shape {arr.shape} differs from "
                                 f"T1w {t1.shape}")
        focus = ref_focus or lesion_focus(pred) or tuple(s // 2 for s in t1.shape)
        where = ("largest reference lesion" if ref_focus else
                 "largest predicted lesion" if pred is not None and pred.any() else
                 "image centre")
        fig = overlay_figure(img, zooms, focus, reference=ref, prediction=pred,
                             title=f"{label} ({cond.get('spec', '')})")
        png = H.fig_to_png(fig, dpi=90)
        desc = str(cond.get("description", "") or "")
        blocks.append(
            f"<h3>{H.escape(label)} <small><code>{H.escape(cond.get('spec', ''))}</code>"
            f"</small></h3>" + (H.paragraph(desc) if desc else "")
            + H.img_tag(png, alt=f"{name} {label} overlay",
                        caption=f"Slices through the {where} (voxel {tuple(focus)}). Reference: "
                                "sky blue solid; prediction: orange dashed."))
    body = [
        H.paragraph(f"Participant {sub}" + (f", session {ses}" if ses else "")
                    + f"; {len(conditions)} condition(s); T1w grid {t1.shape} at "
                    + " x ".join(f"{z:g}" for z in zooms) + " mm."),
        H.section("Metrics", _metrics_table(metrics_tsv), anchor="metrics"),
        H.section("Segmentations", "".join(blocks) or H.paragraph("No condition."),
                  anchor="segmentations"),
        H.section("Provenance", H.kv_table(dict(provenance or {}), caption="Provenance")
                  if provenance else H.paragraph("No provenance recorded.", cls="note"),
                  anchor="provenance"),
    ]
    out = Path(out_html)
    H.atomic_write_text(out, H.page(f"bids_stroke report: {name}", "".join(body)))
    return out
