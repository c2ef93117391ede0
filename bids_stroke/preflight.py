"""Check every input before any work starts, so bad data fail fast with a one-line reason.

Each image and mask is read once: it must be a readable 3-D NIfTI with finite, non-constant
intensities; the mask must be binary (0/1) and share the image's shape and affine. Inputs that
fail are reported and left out; the others go on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nibabel as nb
import numpy as np

from bids_stroke.discovery import SubjectInputs

LOGGER = logging.getLogger("bids_stroke.preflight")
AFFINE_ATOL = 1e-3


class InputError(ValueError):
    """A bad input file; the message names the file and the fix."""


def load_3d(path: Path, what: str) -> nb.Nifti1Image:
    """Load a NIfTI and check it is 3-D (a 4-D file with one volume is refused too: every
    later step, registration included, expects a 3-D image)."""
    try:
        img = nb.load(str(path))
    except FileNotFoundError as exc:
        raise InputError(f"{path}: file not found") from exc
    except Exception as exc:  # nibabel raises ImageFileError, EOFError, zlib errors...
        raise InputError(
            f"{path}: cannot be read as NIfTI ({type(exc).__name__}); replace the {what} file"
        ) from exc
    shape = img.shape
    if len(shape) == 4 and shape[3] == 1:
        raise InputError(
            f"{path}: {what} is stored as 4-D with one volume {shape}; save it as 3-D "
            "(e.g. nibabel.squeeze_image)"
        )
    if len(shape) != 3:
        raise InputError(
            f"{path}: {what} must be a 3-D volume, got shape {shape}; "
            "extract one volume first (e.g. the first of a 4-D series)"
        )
    if min(img.shape) < 8:
        raise InputError(f"{path}: {what} is too small ({img.shape}); at least 8 voxels per axis")
    return img


def _read_data(img: nb.Nifti1Image, path: Path, what: str) -> np.ndarray:
    try:
        return np.asanyarray(img.dataobj)
    except Exception as exc:  # truncated gzip streams fail only here
        raise InputError(
            f"{path}: {what} data cannot be read ({type(exc).__name__}: truncated or corrupt "
            "file?); replace it"
        ) from exc


def check_image(path: Path) -> nb.Nifti1Image:
    """The image must be finite and not constant."""
    img = load_3d(path, "image")
    data = _read_data(img, path, "image")
    if np.issubdtype(data.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(data)))
        if bad:
            raise InputError(
                f"{path}: image has {bad} NaN/Inf voxels; replace them (e.g. with 0) first"
            )
    if data.size == 0 or float(np.max(data)) == float(np.min(data)):
        raise InputError(f"{path}: image is constant (all {np.min(data)}): not a usable scan")
    return img


def check_mask(path: Path, image_path: Path, image: nb.Nifti1Image) -> None:
    """The mask must be binary and on the image's grid (never silently resampled)."""
    mask = load_3d(path, "mask")
    if mask.shape != image.shape:
        raise InputError(
            f"{path}: mask shape {mask.shape} differs from image {image_path.name} shape "
            f"{image.shape}; resample the mask onto the image grid"
        )
    if not np.allclose(mask.affine, image.affine, atol=AFFINE_ATOL):
        raise InputError(
            f"{path}: mask affine differs from image {image_path.name} affine; "
            "resample the mask onto the image grid (nearest neighbour)"
        )
    data = _read_data(mask, path, "mask")
    values = np.unique(data)
    if not np.all(np.isin(values, (0, 1))):
        shown = ", ".join(f"{v:g}" for v in values[:5]) + (" ..." if len(values) > 5 else "")
        raise InputError(
            f"{path}: lesion mask is not binary (values {shown}); binarise it to 0/1"
        )
    if not values.size or values.max() == 0:
        LOGGER.warning("%s: lesion mask is empty (no lesion voxel)", path)


def check_subject(subject: SubjectInputs) -> None:
    """Raise :class:`InputError` when an input of ``subject`` is unusable."""
    img = check_image(subject.image)
    if subject.mask is not None:
        check_mask(subject.mask, subject.image, img)


def preflight_check(
    subjects: Sequence[SubjectInputs], nprocs: int = 1
) -> tuple[list[SubjectInputs], list[tuple[SubjectInputs, str]]]:
    """Split the inputs into usable ones and ``(input, reason)`` failures (order kept)."""

    def _one(subject: SubjectInputs) -> str | None:
        try:
            check_subject(subject)
        except InputError as exc:
            return str(exc)
        return None

    with ThreadPoolExecutor(max_workers=max(1, nprocs)) as pool:
        reasons = list(pool.map(_one, subjects))
    good = [s for s, r in zip(subjects, reasons, strict=True) if r is None]
    bad = [(s, r) for s, r in zip(subjects, reasons, strict=True) if r is not None]
    return good, bad
