"""Input handling of the metrics: binary masks, voxel grids, spacing, file loading.

Binarisation
    Without ``threshold`` the inputs must already be binary (boolean, or only the values
    0 and 1); anything else raises :class:`MetricsInputError`. With ``threshold`` a voxel
    is lesion when ``value >= threshold`` (applied to both masks) - the project-wide rule
    "probability >= threshold is lesion", identical to
    :func:`bids_stroke.model.inference.binarize`. NaN or infinite values are rejected.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from bids_stroke.inputs.discovery import AFFINE_ATOL

__all__ = [
    "CONNECTIVITY_RANK",
    "MetricsInputError",
    "as_binary_mask",
    "check_same_grid",
    "check_spacing",
    "load_mask_image",
    "load_pair",
    "prepare",
    "spacing_from_affine",
    "union_crop",
]

#: Lesion connectivity -> rank of ``scipy.ndimage.generate_binary_structure(3, rank)``.
CONNECTIVITY_RANK = {6: 1, 18: 2, 26: 3}


class MetricsInputError(ValueError):
    """Invalid input to the metrics (non-binary mask, shape or grid mismatch, ...)."""


def as_binary_mask(mask: np.ndarray, threshold: float | None = None, *, name: str = "mask"
                   ) -> np.ndarray:
    """Return ``mask`` as a boolean array, validating that it is binary.

    Parameters
    ----------
    mask : numpy.ndarray
        Input mask.
    threshold : float, optional
        When given, lesion is ``mask >= threshold``. When None, ``mask`` must contain
        only 0 and 1 (or be boolean).
    name : str
        Name used in error messages.

    Returns
    -------
    numpy.ndarray
        Boolean array of the same shape.

    Raises
    ------
    MetricsInputError
        If the mask has non-finite values, or is not binary and no threshold is given.
    """
    arr = np.asarray(mask)
    if arr.dtype == np.bool_:
        return arr
    if arr.dtype.kind not in "biuf":
        raise MetricsInputError(f"{name} has unsupported dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise MetricsInputError(f"{name} contains NaN or infinite values")
    if threshold is not None:
        return arr >= threshold
    nonzero: np.ndarray = arr != 0
    if not np.all(arr[nonzero] == 1):
        vals = np.unique(arr[nonzero])
        raise MetricsInputError(
            f"{name} is not binary (non-zero values other than 1, e.g. "
            f"{', '.join(f'{v:g}' for v in vals[:3])}); pass threshold=<value> to binarise "
            "it (lesion = value >= threshold)"
        )
    return nonzero


def check_spacing(spacing: Sequence[float], ndim: int) -> np.ndarray:
    """``spacing`` as a float64 array of ``ndim`` positive finite voxel sizes (mm)."""
    sp = np.asarray(spacing, dtype=np.float64).ravel()
    if sp.size != ndim or not np.all(np.isfinite(sp)) or np.any(sp <= 0):
        raise MetricsInputError(
            f"spacing must be {ndim} positive finite voxel sizes in mm, got {list(spacing)}"
        )
    return sp


def prepare(reference: np.ndarray, prediction: np.ndarray, spacing: Sequence[float],
            threshold: float | None, connectivity: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate both masks, the spacing and the connectivity; return boolean masks."""
    ref = as_binary_mask(reference, threshold, name="reference")
    pred = as_binary_mask(prediction, threshold, name="prediction")
    if ref.shape != pred.shape:
        raise MetricsInputError(
            f"shape mismatch: reference {ref.shape} vs prediction {pred.shape}; resample "
            "the prediction onto the reference grid first"
        )
    if ref.ndim != 3:
        raise MetricsInputError(f"masks must be 3-D, got {ref.ndim}-D arrays")
    if connectivity not in CONNECTIVITY_RANK:
        raise MetricsInputError(f"connectivity must be 6, 18 or 26, got {connectivity!r}")
    return ref, pred, check_spacing(spacing, ref.ndim)


def union_crop(ref: np.ndarray, pred: np.ndarray, margin: int = 1
               ) -> tuple[np.ndarray, np.ndarray]:
    """Crop both masks to the bounding box of their union plus ``margin`` voxels.

    Exact for every metric here: outside that box both masks are background, so erosions,
    connected components and nearest-surface distances are unchanged (true negatives are
    counted from the grid size, not from the crop).
    """
    union = ref | pred
    slices = []
    for axis in range(union.ndim):
        other = tuple(a for a in range(union.ndim) if a != axis)
        idx = np.flatnonzero(union.any(axis=other))
        if idx.size == 0:  # both empty
            return ref[:0, :0, :0], pred[:0, :0, :0]
        lo = max(int(idx[0]) - margin, 0)
        hi = min(int(idx[-1]) + margin + 1, union.shape[axis])
        slices.append(slice(lo, hi))
    sl = tuple(slices)
    return ref[sl], pred[sl]


def spacing_from_affine(affine: np.ndarray) -> tuple[float, ...]:
    """Voxel size (mm) along each array axis: the column norms of the affine's 3x3 part."""
    aff = np.asarray(affine, dtype=np.float64)
    return tuple(float(v) for v in np.sqrt((aff[:3, :3] ** 2).sum(axis=0)))


def load_mask_image(path: str | PathLike[str]) -> tuple[Any, np.ndarray]:
    """Load a NIfTI mask; returns ``(image, data)`` with 3-D data (a single-volume 4-D
    image is squeezed). Raises :class:`MetricsInputError` for other shapes."""
    from bids_stroke.degradation.nifti import load_nifti

    img = load_nifti(path)
    data = np.asanyarray(img.dataobj)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise MetricsInputError(f"{path}: expected a 3-D mask, got shape {data.shape}")
    return img, data


def check_same_grid(ref_path: str | PathLike[str], ref_shape: tuple[int, ...],
                    ref_affine: np.ndarray, pred_path: str | PathLike[str],
                    pred_shape: tuple[int, ...], pred_affine: np.ndarray,
                    atol: float = AFFINE_ATOL) -> None:
    """Raise :class:`MetricsInputError` unless both images share shape and affine."""
    fix = (
        "Resample the prediction onto the reference grid (nearest neighbour, e.g. "
        "nilearn.image.resample_to_img(pred, ref, interpolation='nearest')); the reference "
        "mask is never resampled silently."
    )
    if tuple(ref_shape) != tuple(pred_shape):
        raise MetricsInputError(
            f"Grid mismatch: reference {Path(ref_path).name} has shape {tuple(ref_shape)} "
            f"but prediction {Path(pred_path).name} has shape {tuple(pred_shape)}. {fix}"
        )
    if not np.allclose(ref_affine, pred_affine, rtol=0, atol=atol):
        diff = float(np.max(np.abs(np.asarray(ref_affine) - np.asarray(pred_affine))))
        raise MetricsInputError(
            f"Grid mismatch: affines of reference {Path(ref_path).name} and prediction "
            f"{Path(pred_path).name} differ by up to {diff:.4g} (atol={atol}). {fix}"
        )


def load_pair(reference_path: str | PathLike[str], prediction_path: str | PathLike[str],
              threshold: float | None = None, atol: float = AFFINE_ATOL
              ) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """Load a reference and a predicted mask, checking they share one voxel grid.

    Parameters
    ----------
    reference_path, prediction_path : path-like
        NIfTI masks (3-D, or 4-D with a single volume).
    threshold : float, optional
        Binarise both as ``value >= threshold``; without it both must be binary.
    atol : float
        Absolute tolerance on the affine comparison (mm).

    Returns
    -------
    reference, prediction : numpy.ndarray
        Boolean arrays.
    spacing : tuple of float
        Voxel size in mm from the reference affine.

    Raises
    ------
    MetricsInputError
        Shapes or affines differ (message names both files and the fix), or a mask is
        not binary and no threshold is given.
    """
    ref_img, ref_data = load_mask_image(reference_path)
    pred_img, pred_data = load_mask_image(prediction_path)
    check_same_grid(reference_path, ref_data.shape, ref_img.affine,
                    prediction_path, pred_data.shape, pred_img.affine, atol=atol)
    ref = as_binary_mask(ref_data, threshold, name=f"reference {Path(reference_path).name}")
    pred = as_binary_mask(pred_data, threshold,
                          name=f"prediction {Path(prediction_path).name}")
    sp = spacing_from_affine(ref_img.affine)
    return ref, pred, (sp[0], sp[1], sp[2])
