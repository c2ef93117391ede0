"""Small NIfTI helpers shared by the participant level and the export (pure: no nipype)."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np

__all__ = ["degrade_image", "like_image"]


def nifti_stem(path: str | os.PathLike[str]) -> str:
    """File name without ``.nii.gz``/``.nii`` (any other suffix: without that one)."""
    name = Path(path).name
    for ext in (".nii.gz", ".nii"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return Path(name).stem


def like_image(img: nib.Nifti1Image, data: np.ndarray, dtype: type) -> nib.Nifti1Image:
    """New image with ``img``'s affine and header (qform/sform codes kept), data ``dtype``,
    no intensity scaling: how every degraded image of bids_stroke is written."""
    header = img.header.copy()
    header.set_data_dtype(dtype)
    out = nib.Nifti1Image(np.asarray(data, dtype=dtype), img.affine, header)
    qform, qcode = img.get_qform(coded=True)
    sform, scode = img.get_sform(coded=True)
    if qform is not None:
        out.set_qform(qform, code=int(qcode))
    if sform is not None:
        out.set_sform(sform, code=int(scode))
    out.header.set_slope_inter(None, None)
    return out


def degrade_image(img: nib.Nifti1Image, condition: object) -> nib.Nifti1Image:
    """``img`` degraded by ``condition`` (a spec or :class:`~bids_stroke.degradation.Condition`)
    on its own grid: :func:`bids_stroke.degradation.apply_condition` on the float32 data with the
    header's voxel size, written like the input (float32, same affine and header).

    The one code path of the participant level (``DegradeImage``) and of ``bids_stroke
    export``, so an exported image is the image a native-space model run degrades.
    """
    from bids_stroke.degradation import apply_condition

    if len(img.shape) != 3:
        raise ValueError(f"expected a 3-D image, got shape {img.shape}")
    zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
    data = apply_condition(img.get_fdata(dtype=np.float32), zooms, condition)
    return like_image(img, data, np.float32)
