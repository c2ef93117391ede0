"""Orthogonal slice figures of the subject report: lesion overlays and registration QC.

Arrays are in the closest RAS orientation (``nibabel.as_closest_canonical``): array axis 0
runs towards the subject's Right, 1 Anterior, 2 Superior. Slices are drawn with the first
displayed axis horizontal (``origin="lower"``), so coronal and axial views show the
subject's right on the right of the screen (neurological convention), marked ``L``/``R``;
sagittal views show anterior on the right, marked ``P``/``A``. Slice positions are world
coordinates in mm (the affine applied to the focus voxel), never voxel indices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.lines import Line2D
from scipy import ndimage

from bids_stroke.reports import html as H

__all__ = [
    "PRED_COLOUR",
    "QC_COLOUR",
    "REF_COLOUR",
    "focus_mm",
    "lesion_focus",
    "overlay_figure",
    "registration_qc_figure",
    "resample_like",
    "view_titles",
]

REF_COLOUR = "#56B4E9"  # Okabe-Ito sky blue
PRED_COLOUR = "#E69F00"  # Okabe-Ito orange
QC_COLOUR = "#009E73"  # Okabe-Ito bluish green
#: (name, world axis letter, left marker, right marker) of each view, in display order.
VIEWS: tuple[tuple[str, str, str, str], ...] = (
    ("sagittal", "x", "P", "A"),
    ("coronal", "y", "L", "R"),
    ("axial", "z", "L", "R"),
)


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
    i, j, k = (int(v) for v in np.asarray(idx) + offset)
    return i, j, k


def focus_mm(affine: np.ndarray, focus: Sequence[int]) -> tuple[float, float, float]:
    """World coordinates (mm) of the centre of voxel ``focus``."""
    xyz = np.asarray(affine, float) @ np.array([*(float(v) for v in focus), 1.0])
    return float(xyz[0]), float(xyz[1]), float(xyz[2])


def view_titles(affine: np.ndarray, focus: Sequence[int]) -> tuple[str, str, str]:
    """``("sagittal x = 12.0 mm", "coronal y = ...", "axial z = ...")`` at ``focus``."""
    xyz = focus_mm(affine, focus)
    sagittal, coronal, axial = (f"{name} {axis} = {v:.1f} mm"
                                for (name, axis, _, _), v in zip(VIEWS, xyz, strict=True))
    return sagittal, coronal, axial


def _window(img: np.ndarray) -> tuple[float, float]:
    v = img[np.isfinite(img)]
    nz = v[v != 0]
    v = nz if nz.size > 100 else v
    if v.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(v, [1, 99.5])
    return float(lo), float(hi if hi > lo else lo + 1.0)


def _slicers(focus: Sequence[int], zooms: Sequence[float]
             ) -> list[tuple[tuple[int | slice, ...], float]]:
    """(slicer, aspect = row spacing / column spacing after transpose) per view."""
    i, j, k = (int(v) for v in focus)
    zx, zy, zz = (float(z) for z in zooms)
    return [((i, slice(None), slice(None)), zz / zy),
            ((slice(None), j, slice(None)), zz / zx),
            ((slice(None), slice(None), k), zy / zx)]


def _draw_view(ax: Any, image: np.ndarray, sl: tuple[int | slice, ...], aspect: float,
               window: tuple[float, float],
               outlines: Sequence[tuple[np.ndarray | None, str, str]], view: int,
               title: str) -> None:
    """One slice with its outlines, title and orientation markers."""
    lo, hi = window
    ax.imshow(np.asarray(image[sl], float).T, cmap="gray", vmin=lo, vmax=hi,
              origin="lower", aspect=aspect, interpolation="nearest")
    for mask, colour, style in outlines:
        if mask is None:
            continue
        sl2 = (np.asarray(mask[sl]) > 0).T
        if sl2.any() and not sl2.all():
            ax.contour(sl2.astype(np.float32), levels=[0.5], colors=[colour],
                       linewidths=1.4, linestyles=style, origin="lower")
    _, _, left, right = VIEWS[view]
    for x, text, ha in ((0.02, left, "left"), (0.98, right, "right")):
        ax.text(x, 0.5, text, transform=ax.transAxes, ha=ha, va="center", color="#F0E442",
                fontsize=11, fontweight="bold")
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()


def overlay_figure(
    image: np.ndarray,
    zooms: Sequence[float],
    focus: Sequence[int],
    *,
    affine: np.ndarray,
    reference: np.ndarray | None = None,
    prediction: np.ndarray | None = None,
    title: str = "",
    reference_label: str = "reference",
) -> Any:
    """Sagittal, coronal and axial slices through ``focus`` (RAS voxel order) with the
    reference (sky blue, solid; named ``reference_label`` in the legend) and predicted (orange,
    dashed) lesion outlines."""
    fig = H.new_figure((10.5, 3.9), layout=None)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.08, top=0.86, wspace=0.03)
    axes = fig.subplots(1, 3)
    window = _window(image)
    outlines = [(reference, REF_COLOUR, "solid"), (prediction, PRED_COLOUR, "dashed")]
    titles = view_titles(affine, focus)
    for v, (ax, (sl, aspect)) in enumerate(zip(axes, _slicers(focus, zooms), strict=True)):
        _draw_view(ax, image, sl, aspect, window, outlines, v, titles[v])
    handles = []
    if reference is not None:
        handles.append(Line2D([], [], color=REF_COLOUR, lw=1.8, label=reference_label))
    if prediction is not None:
        handles.append(Line2D([], [], color=PRED_COLOUR, lw=1.8, ls="--", label="prediction"))
    if handles:
        fig.legend(handles=handles, loc="upper right", fontsize=8, ncols=len(handles))
    if title:
        fig.suptitle(title, fontsize=10, x=0.01, ha="left")
    return fig


def resample_like(data: np.ndarray, affine: np.ndarray, shape: Sequence[int],
                  target_affine: np.ndarray, *, order: int) -> np.ndarray:
    """``data`` (on ``affine``) resampled onto the grid (``shape``, ``target_affine``) by
    world coordinates; ``order`` 0 = nearest neighbour, 1 = trilinear; 0 outside."""
    vox2vox = np.linalg.inv(np.asarray(affine, float)) @ np.asarray(target_affine, float)
    out: np.ndarray = ndimage.affine_transform(
        np.asarray(data, np.float32), vox2vox[:3, :3], offset=vox2vox[:3, 3],
        output_shape=tuple(shape), order=order, mode="constant", cval=0.0)
    return out


def registration_qc_figure(
    image: np.ndarray,
    zooms: Sequence[float],
    affine: np.ndarray,
    template_mask: np.ndarray,
    *,
    template_image: np.ndarray | None = None,
    image_label: str = "registered image",
) -> Any:
    """The template brain outline over the registered image (and over the template).

    All arrays share ``image``'s RAS grid. Slices go through the voxel nearest to the
    centroid of the template brain mask.
    """
    mask = np.asarray(template_mask) > 0
    if not mask.any():
        raise ValueError("the template brain mask does not overlap the registered image grid")
    centre = ndimage.center_of_mass(mask)
    focus = tuple(round(float(c)) for c in centre)
    rows = [(image, image_label)]
    if template_image is not None:
        rows.append((template_image, "template"))
    fig = H.new_figure((10.5, 3.6 * len(rows) + 0.3), layout=None)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.03, top=0.9, wspace=0.03,
                        hspace=0.15)
    axes = np.atleast_2d(fig.subplots(len(rows), 3))
    titles = view_titles(affine, focus)
    for r, (data, label) in enumerate(rows):
        window = _window(data)
        for v, (ax, (sl, aspect)) in enumerate(zip(axes[r], _slicers(focus, zooms),
                                                   strict=True)):
            _draw_view(ax, data, sl, aspect, window, [(mask, QC_COLOUR, "solid")], v,
                       f"{label}: {titles[v]}")
    fig.legend(handles=[Line2D([], [], color=QC_COLOUR, lw=1.8,
                               label="template brain outline")],
               loc="upper right", fontsize=8)
    return fig
