"""Small NIfTI helpers (pure: no nipype): the typed loaders every module reads images with,
and the degraded image the participant level and the export share."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import nibabel as nib
import numpy as np
from nibabel.spatialimages import SpatialImage

if TYPE_CHECKING:
    from bids_stroke.degradation import Condition

__all__ = ["degrade_image", "like_image", "load_nifti", "load_spatial"]


def load_nifti(path: str | os.PathLike[str]) -> nib.Nifti1Image:
    """``nibabel.load`` for a NIfTI file, typed: NIfTI-1 or NIfTI-2 (nibabel's ``Nifti2Image``
    is a ``Nifti1Image``), which is what nibabel returns for every ``.nii``/``.nii.gz`` it reads;
    another kind of image raises nibabel's ``ImageFileError``."""
    img = nib.load(path)
    if not isinstance(img, nib.Nifti1Image):
        raise nib.filebasedimages.ImageFileError(
            f"{path}: not a NIfTI image (nibabel reads it as {type(img).__name__})")
    return img


def load_spatial(path: str | os.PathLike[str]) -> SpatialImage:
    """``nibabel.load`` for any image with an affine (NIfTI, Analyze, MGH...), typed; a file
    without one raises nibabel's ``ImageFileError``."""
    img = nib.load(path)
    if not isinstance(img, SpatialImage):
        raise nib.filebasedimages.ImageFileError(
            f"{path}: not a spatial image (nibabel reads it as {type(img).__name__})")
    return img


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


def degrade_image(img: nib.Nifti1Image, condition: Condition | str) -> nib.Nifti1Image:
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
