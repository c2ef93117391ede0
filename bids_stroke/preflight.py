"""Check every input before any work starts, so bad data fail fast with a one-line reason.

Each image and mask is read once: it must be a readable 3-D NIfTI with finite, non-constant
intensities; the mask must be binary (0/1) and share the image's shape and affine. Inputs that
fail are reported and left out; the others go on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nibabel as nb
import numpy as np

from bids_stroke.discovery import SubjectInputs

LOGGER = logging.getLogger("bids_stroke.preflight")
AFFINE_ATOL = 1e-3
#: largest volume accepted (voxels): 2^28 = 1 GiB as float32, checked on the header before
#: anything is decompressed (a gzip bomb is refused in microseconds)
MAX_VOXELS = 2**28


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
    check_header(img, path, what)
    return img


def _raw_scaling(path: Path, img: nb.Nifti1Image) -> tuple[float, float]:
    """``scl_slope``/``scl_inter`` exactly as stored (nibabel's loader repairs them)."""
    if not isinstance(img, nb.Nifti1Image | nb.Nifti2Image):
        return 1.0, 0.0
    from nibabel.openers import ImageOpener

    try:
        with ImageOpener(str(path)) as fh:
            header = type(img.header).from_fileobj(fh, check=False)
        return float(header["scl_slope"]), float(header["scl_inter"])
    except Exception:  # the loader already read this header once; be lenient here
        return float(img.header["scl_slope"]), float(img.header["scl_inter"])


def check_header(img: nb.Nifti1Image, path: Path, what: str) -> None:
    """Refuse what the header alone shows to be unusable: non-scalar data types, a size
    beyond :data:`MAX_VOXELS`, non-finite scaling, a singular or non-finite affine."""
    dtype = img.header.get_data_dtype()
    if dtype.kind not in "biuf" or dtype.fields is not None:
        raise InputError(
            f"{path}: {what} has data type {dtype} (RGB/complex/structured); save it as a "
            "scalar (e.g. float32) volume"
        )
    n_voxels = int(np.prod(img.shape, dtype=np.int64))
    if n_voxels > MAX_VOXELS:
        raise InputError(
            f"{path}: {what} of {img.shape} = {n_voxels} voxels is larger than bids_stroke "
            f"accepts ({MAX_VOXELS}); crop or resample it first"
        )
    # raw header values: NIfTI reads slope 0/NaN as "no scaling" and nibabel silently "fixes"
    # +-inf on load, but other readers (ITK/ANTs) apply what the file says
    slope, inter = _raw_scaling(path, img)
    scaled = np.isfinite(slope) and slope != 0
    if np.isinf(slope) or (scaled and np.isinf(inter)):
        raise InputError(
            f"{path}: {what} has non-finite intensity scaling (scl_slope={slope}, "
            f"scl_inter={inter}); fix the header (e.g. slope 1, intercept 0)"
        )
    affine = np.asarray(img.affine, dtype=np.float64)
    det = np.linalg.det(affine[:3, :3]) if np.isfinite(affine).all() else np.nan
    if not np.isfinite(det) or abs(det) < 1e-6:
        raise InputError(
            f"{path}: {what} has a singular or non-finite affine (voxel-to-world matrix); fix "
            "the header's sform/qform"
        )


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
        with np.errstate(over="ignore", invalid="ignore"):
            peak = float(np.max(np.abs(data))) if data.size else 0.0
        if peak >= np.finfo(np.float32).max:
            raise InputError(
                f"{path}: intensities (after scl_slope/scl_inter) overflow float32; fix the "
                "header's scaling"
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


GridOf = Callable[[SubjectInputs, nb.Nifti1Image], tuple[Sequence[int], Sequence[float]]]


def native_grid(_subject: SubjectInputs, img: nb.Nifti1Image
                ) -> tuple[Sequence[int], Sequence[float]]:
    """The grid the conditions apply to when it is the image's own."""
    return img.shape[:3], [float(z) for z in img.header.get_zooms()[:3]]


def check_subject(subject: SubjectInputs, conditions: Sequence[str] = (),
                  grid: GridOf = native_grid) -> None:
    """Raise :class:`InputError` when an input of ``subject`` is unusable."""
    from bids_stroke.degradation import check_condition_fits

    img = check_image(subject.image)
    if subject.mask is not None:
        check_mask(subject.mask, subject.image, img)
    for suffix, path, _ in subject.channels:
        check_image(path)
        LOGGER.debug("%s: channel %s ok", subject.key, suffix)
    if conditions:
        shape, zooms = grid(subject, img)
        for spec in conditions:
            try:
                check_condition_fits(spec, shape, zooms)
            except ValueError as exc:
                raise InputError(
                    f"{subject.image}: condition {exc} (grid {tuple(shape)}); drop the "
                    "condition or use a smaller factor"
                ) from None


def preflight_check(
    subjects: Sequence[SubjectInputs], nprocs: int = 1, *, conditions: Sequence[str] = (),
    grid: GridOf = native_grid,
) -> tuple[list[SubjectInputs], list[tuple[SubjectInputs, str]]]:
    """Split the inputs into usable ones and ``(input, reason)`` failures (order kept)."""

    def _one(subject: SubjectInputs) -> str | None:
        try:
            check_subject(subject, conditions, grid)
        except InputError as exc:
            return str(exc)
        except Exception as exc:  # never let one odd file stop the check of the others
            return (f"{subject.image}: cannot be checked ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else ''}); replace the file")
        return None

    with ThreadPoolExecutor(max_workers=max(1, nprocs)) as pool:
        reasons = list(pool.map(_one, subjects))
    good = [s for s, r in zip(subjects, reasons, strict=True) if r is None]
    bad = [(s, r) for s, r in zip(subjects, reasons, strict=True) if r is not None]
    return good, bad
