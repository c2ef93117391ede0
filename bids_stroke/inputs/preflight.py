"""Check every input before any work starts, so bad data fail fast with a one-line reason.

Each image and mask is read once: it must be a readable 3-D NIfTI with finite, non-constant
intensities; the mask must be binary (0/1) and share the image's shape and affine. Inputs that
fail are reported and left out; the others go on.

Resources are bounded: the header's declared data size in bytes (voxels x bytes per voxel) is
checked against a limit before anything is decompressed (:func:`max_image_bytes`: 1 GiB or a
quarter of the available memory, whichever is smaller, or ``--max-image-gb``), and the data are
then read as a stream of small chunks (:func:`scan_data`), so a check holds a few MB whatever
the image (a gzip bomb is refused in microseconds, a valid large image never held whole).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nb
import numpy as np
from nibabel.arrayproxy import ArrayProxy

from bids_stroke.degradation import Condition
from bids_stroke.degradation.nifti import load_nifti
from bids_stroke.inputs.discovery import AFFINE_ATOL, ImageInputs

LOGGER = logging.getLogger("bids_stroke.preflight")
#: largest volume accepted (voxels): 2^28 = 1 GiB as float32, checked on the header before
#: anything is decompressed (a gzip bomb is refused in microseconds)
MAX_VOXELS = 2**28
#: largest data accepted (bytes the header declares), whatever the memory
MAX_IMAGE_BYTES = 2**30
#: raw bytes read at a time by :func:`scan_data` (a chunk in float64: at most 8x this)
CHUNK_BYTES = 4 << 20


def available_memory() -> int:
    """Bytes of memory available now (``MemAvailable``; the physical memory elsewhere)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return MAX_IMAGE_BYTES * 4


def max_image_bytes(limit_gb: float | None = None, mem_gb: float | None = None) -> int:
    """The largest image data accepted: ``limit_gb`` (``--max-image-gb``) when given, else
    :data:`MAX_IMAGE_BYTES` or a quarter of the memory (``--mem-gb``, else what is available
    now), whichever is smaller: every step holds a few float copies of an image."""
    if limit_gb is not None:
        return int(limit_gb * 1e9)
    memory = int(mem_gb * 1e9) if mem_gb else available_memory()
    return max(64 << 20, min(MAX_IMAGE_BYTES, memory // 4))


class InputError(ValueError):
    """A bad input file; the message names the file and the fix."""


def load_3d(path: Path, what: str, max_bytes: int | None = None) -> nb.Nifti1Image:
    """Load a NIfTI header and check it is 3-D (a 4-D file with one volume is refused too:
    every later step, registration included, expects a 3-D image) and not larger than
    ``max_bytes`` (default :func:`max_image_bytes`)."""
    try:
        img = load_nifti(path)
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
    check_header(img, path, what, max_bytes)
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


def check_header(img: nb.Nifti1Image, path: Path, what: str,
                 max_bytes: int | None = None) -> None:
    """Refuse what the header alone shows to be unusable: non-scalar data types, a size
    beyond :data:`MAX_VOXELS` or ``max_bytes`` of data (default :func:`max_image_bytes`),
    non-finite scaling, a singular or non-finite affine."""
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
    limit = max_image_bytes() if max_bytes is None else int(max_bytes)
    n_bytes = n_voxels * dtype.itemsize
    if n_bytes > limit:
        raise InputError(
            f"{path}: {what} of {img.shape} {dtype.name} declares {n_bytes / 1e9:.2f} GB of "
            f"data, larger than bids_stroke accepts here ({limit / 1e9:.2f} GB: "
            "--max-image-gb, by default from the available memory); crop or resample it, or "
            "store it as float32/int16"
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


@dataclass
class DataSummary:
    """What the checks need of an image's data, gathered chunk by chunk."""

    floating: bool = False
    n_bad: int = 0  # NaN/Inf voxels
    peak: float = 0.0  # largest |value|
    vmin: float = np.inf
    vmax: float = -np.inf
    size: int = 0
    values: set[float] = field(default_factory=set)  # distinct values (masks; capped)


def _file_data(img: nb.Nifti1Image, path: Path) -> ArrayProxy:
    """nibabel's proxy of the image's data in its file (an image :func:`load_3d` read)."""
    proxy = img.dataobj
    if not isinstance(proxy, ArrayProxy):
        raise TypeError(f"{path}: the image's data are not read from its file")
    return proxy


def _chunks(img: nb.Nifti1Image, path: Path, what: str) -> Iterator[np.ndarray]:
    """The image's scaled values, :data:`CHUNK_BYTES` of raw data at a time (any order)."""
    from nibabel.openers import ImageOpener

    proxy = _file_data(img, path)
    dtype = np.dtype(proxy.dtype)
    slope, inter = float(proxy.slope), float(proxy.inter)
    scaled = (slope, inter) != (1.0, 0.0)
    remaining = int(np.prod(proxy.shape, dtype=np.int64)) * dtype.itemsize
    step = max(dtype.itemsize, CHUNK_BYTES - CHUNK_BYTES % dtype.itemsize)
    try:
        with ImageOpener(proxy.file_like) as fh:
            fh.seek(int(proxy.offset))
            while remaining > 0:
                want = min(step, remaining)
                buf = fh.read(want)
                if len(buf) < want:
                    raise EOFError(f"{remaining - len(buf)} bytes of data missing")
                remaining -= want
                raw = np.frombuffer(buf, dtype=dtype)
                yield raw.astype(np.float64) * slope + inter if scaled else raw
    except Exception as exc:  # truncated gzip streams fail only here
        raise InputError(
            f"{path}: {what} data cannot be read ({type(exc).__name__}: truncated or corrupt "
            "file?); replace it"
        ) from exc


def scan_data(img: nb.Nifti1Image, path: Path, what: str, *, values: bool = False,
              max_values: int = 64) -> DataSummary:
    """Summarise the data of ``img`` in one streaming pass (memory: a few chunks)."""
    summary = DataSummary(floating=np.dtype(_file_data(img, path).dtype).kind == "f")
    for chunk in _chunks(img, path, what):
        if not chunk.size:
            continue
        summary.size += chunk.size
        if chunk.dtype.kind == "f":
            summary.floating = True
            finite = np.isfinite(chunk)
            bad = int(chunk.size - np.count_nonzero(finite))
            if bad:
                summary.n_bad += bad
                chunk = chunk[finite]
                if not chunk.size:
                    continue
        with np.errstate(over="ignore", invalid="ignore"):
            lo, hi = float(np.min(chunk)), float(np.max(chunk))
        summary.vmin, summary.vmax = min(summary.vmin, lo), max(summary.vmax, hi)
        summary.peak = max(summary.peak, abs(lo), abs(hi))
        if values and len(summary.values) <= max_values:
            summary.values.update(float(v) for v in np.unique(chunk)[: max_values + 1])
    return summary


def check_image(path: Path, max_bytes: int | None = None) -> nb.Nifti1Image:
    """The image must be finite and not constant (its data read as a stream)."""
    img = load_3d(path, "image", max_bytes)
    data = scan_data(img, path, "image")
    if data.floating:
        if data.n_bad:
            raise InputError(
                f"{path}: image has {data.n_bad} NaN/Inf voxels; replace them (e.g. with 0) "
                "first"
            )
        if data.peak >= np.finfo(np.float32).max:
            raise InputError(
                f"{path}: intensities (after scl_slope/scl_inter) overflow float32; fix the "
                "header's scaling"
            )
    if data.size == 0 or data.vmax == data.vmin:
        raise InputError(f"{path}: image is constant (all {data.vmin:g}): not a usable scan")
    return img


def check_mask(path: Path, image_path: Path, image: nb.Nifti1Image,
               max_bytes: int | None = None) -> None:
    """The mask must be binary and on the image's grid (never silently resampled)."""
    mask = load_3d(path, "mask", max_bytes)
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
    data = scan_data(mask, path, "mask", values=True)
    values = sorted(data.values)
    if data.n_bad or not set(values) <= {0.0, 1.0}:
        shown = ", ".join(f"{v:g}" for v in values[:5]) + (" ..." if len(values) > 5 else "")
        if data.n_bad:
            shown = f"NaN/Inf, {shown}" if shown else "NaN/Inf"
        raise InputError(
            f"{path}: lesion mask is not binary (values {shown}); binarise it to 0/1"
        )
    if not values or max(values) == 0:
        LOGGER.warning("%s: lesion mask is empty (no lesion voxel)", path)


GridOf = Callable[[ImageInputs, nb.Nifti1Image], tuple[Sequence[int], Sequence[float]]]


def native_grid(_subject: ImageInputs, img: nb.Nifti1Image
                ) -> tuple[Sequence[int], Sequence[float]]:
    """The grid the conditions apply to when it is the image's own."""
    return img.shape[:3], [float(z) for z in img.header.get_zooms()[:3]]


def check_subject(subject: ImageInputs, conditions: Sequence[Condition | str] = (),
                  grid: GridOf = native_grid, max_bytes: int | None = None) -> None:
    """Raise :class:`InputError` when an input of ``subject`` is unusable."""
    from bids_stroke.degradation import check_condition_fits

    img = check_image(subject.image, max_bytes)
    if subject.mask is not None:
        check_mask(subject.mask, subject.image, img, max_bytes)
    for suffix, path, _ in subject.channels:
        check_image(path, max_bytes)
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
    subjects: Sequence[ImageInputs], nprocs: int = 1, *,
    conditions: Sequence[Condition | str] = (),
    grid: GridOf = native_grid, max_bytes: int | None = None,
) -> tuple[list[ImageInputs], list[tuple[ImageInputs, str]]]:
    """Split the inputs into usable ones and ``(input, reason)`` failures (order kept).

    ``max_bytes``: the largest image data accepted (default :func:`max_image_bytes`).
    """
    limit = max_image_bytes() if max_bytes is None else int(max_bytes)

    def _one(subject: ImageInputs) -> str | None:
        try:
            check_subject(subject, conditions, grid, limit)
        except InputError as exc:
            return str(exc)
        except Exception as exc:  # never let one odd file stop the check of the others
            return (f"{subject.image}: cannot be checked ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else ''}); replace the file")
        return None

    pool = ThreadPoolExecutor(max_workers=max(1, nprocs))
    try:
        reasons = list(pool.map(_one, subjects))
    finally:  # a signal: the checks not started yet are dropped, not waited for
        pool.shutdown(wait=True, cancel_futures=True)
    good = [s for s, r in zip(subjects, reasons, strict=True) if r is None]
    bad = [(s, r) for s, r in zip(subjects, reasons, strict=True) if r is not None]
    return good, bad
