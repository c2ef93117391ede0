"""Spatial normalisation with ANTsPy (``antspyx``), deterministic and file based.

Debian ships no ANTs command-line tools, so nipype's ANTs interfaces cannot run; this
module calls the ANTs library bundled in ``antspyx`` instead.

Conventions
-----------
* Images cross the nibabel/ANTsPy boundary **only as files** (``ants.image_read`` on a path,
  ``ants.image_write`` to a path): ANTs works in LPS physical space and keeps the on-disk
  voxel order, nibabel in RAS; going through NIfTI files lets ITK do the conversion.
* ITK reads the NIfTI *qform* in some situations where nibabel reads the *sform*. Inputs
  whose qform and sform disagree (or whose qform is unset) are rewritten to a temporary
  copy with ``qform = sform`` before ANTs sees them, so both libraries agree on the grid.
* Determinism: ANTsPy's ``config._random_seed`` (passed as ``--random-seed``) is set from
  ``seed`` for the duration of one call. ANTs reads a seed of 0 as "seed from the clock", so
  the ANTs seed is ``seed + 1`` (:func:`ants_seed`). ITK reads its thread count from
  ``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS`` once per process, at its first multi-threaded
  call; this module never writes the environment: the command-line entry point sets it
  (``--omp-nthreads``, default 1: bit-reproducible transforms for a given seed) before any
  worker process starts.
* Transform files get stable names in ``out_dir`` (``prefix`` defaults to ``xfm_``):
  ``<prefix>affine.mat`` (ITK MatrixOffsetTransform, LPS) and for ``kind='syn'``
  ``<prefix>warp.nii.gz`` / ``<prefix>inverse_warp.nii.gz`` (displacement fields);
  the moving image resampled on the fixed grid is ``<prefix>warped.nii`` (uncompressed:
  a work-folder intermediate).
  ``forward_transforms`` map moving -> fixed (use with ``reference=fixed``), in ANTs order
  (last applied first): ``[warp, affine]``. ``inverse_transforms`` map fixed -> moving (use
  with ``reference=moving``) with ``inverse_invert_flags``: ``[affine (inverted),
  inverse_warp]``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import nibabel as nib
import numpy as np

from bids_stroke.core.settings import TEMPLATE
from bids_stroke.degradation.nifti import load_nifti, load_spatial

RegistrationKind = Literal["rigid", "affine", "syn"]
Interpolation = Literal["linear", "nearestNeighbor", "genericLabel", "bSpline",
                        "lanczosWindowedSinc"]

_ANTS_KINDS = {"rigid": "Rigid", "affine": "Affine", "syn": "SyN"}
_LABEL_INTERPOLATIONS = {"nearestNeighbor", "genericLabel", "multiLabel"}
_ALL_INTERPOLATIONS = {"linear", "nearestNeighbor", "genericLabel", "multiLabel", "bSpline",
                       "lanczosWindowedSinc", "gaussian", "cosineWindowedSinc",
                       "welchWindowedSinc", "hammingWindowedSinc"}
_ANTS_LOCK = threading.RLock()
#: Voxel size (mm) of the grid rigid and affine transforms are estimated on (on a real head T1
#: it lands within 1 mm of the full-grid registration: tests/test_registration.py).
COARSE_GRID_MM = 2.0
#: Pyramid on the coarse grid: shrink factors, smoothing sigmas (voxels), iterations.
_COARSE_PYRAMID = {"aff_shrink_factors": (4, 2, 1), "aff_smoothing_sigmas": (2, 1, 0),
                   "aff_iterations": (2100, 1200, 300)}


class RegistrationError(RuntimeError):
    """Registration or resampling failed; the message is one line naming the file."""


@dataclass(frozen=True)
class RegistrationResult:
    """Outputs of :func:`register_to_template` (all paths inside ``out_dir``)."""

    warped: Path
    forward_transforms: list[Path]
    inverse_transforms: list[Path]
    inverse_invert_flags: list[bool]
    kind: str
    seed: int
    moving: Path
    fixed: Path
    forward_invert_flags: list[bool] = field(default_factory=list)


# --------------------------------------------------------------------------- helpers
def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def ants_seed(seed: int) -> int:
    """The ANTs ``--random-seed`` for a user ``seed``: ``seed + 1`` (ANTs treats 0 as
    "seed from the clock", which is not reproducible)."""
    if int(seed) < 0:
        raise RegistrationError(f"seed must be >= 0, got {seed}")
    return int(seed) + 1


def _import_ants() -> Any:
    import ants

    return ants


def _normalised_input(path: Path, tmpdir: Path, tag: str) -> Path:
    """``path`` itself, or a copy whose qform equals its sform and that is 3D.

    Avoids nibabel (sform) and ITK (often qform) reading different grids.
    """
    img = load_spatial(path)
    if not isinstance(img, nib.Nifti1Image | nib.Nifti2Image):
        img = nib.Nifti1Image(np.asanyarray(img.dataobj), img.affine)
        needs = True
    else:
        needs = False
    hdr = img.header
    affine = img.affine
    qform, qcode = img.get_qform(coded=True)
    sform, scode = img.get_sform(coded=True)
    if int(scode) > 0 and (qform is None or int(qcode) == 0
                          or not np.allclose(qform, sform, atol=1e-4)):
        needs = True
    if int(scode) == 0 and (qform is None or int(qcode) == 0):
        needs = True
    data_shape = img.shape
    if len(data_shape) > 3:
        if int(np.prod(data_shape[3:])) != 1:
            raise RegistrationError(f"{path}: expected a 3D image, got shape {data_shape}")
        needs = True
    if not needs:
        return path
    data = np.asanyarray(img.dataobj)
    data = data.reshape(data.shape[:3])
    new_hdr = hdr.copy()
    new_hdr.set_data_shape(data.shape)
    out = nib.Nifti1Image(data, affine, new_hdr)
    code = int(scode) or int(qcode or 0) or 1
    out.set_sform(affine, code=code)
    out.set_qform(affine, code=code)
    dest = tmpdir / f"{tag}.nii.gz"
    nib.save(out, dest)
    return dest


def _read(ants: Any, path: Path, tmpdir: Path, tag: str) -> Any:
    return ants.image_read(str(_normalised_input(Path(path), tmpdir, tag)), pixeltype="float")


def _coarse(ants: Any, img: Any, voxel_mm: float) -> Any:
    """``img`` resampled (linear) to voxels of at least ``voxel_mm`` along every axis."""
    spacing = tuple(max(float(s), float(voxel_mm)) for s in img.spacing)
    if spacing == tuple(float(s) for s in img.spacing):
        return img
    return ants.resample_image(img, spacing, False, 0)


def _read_mask(ants: Any, path: Path, tmpdir: Path, tag: str) -> Any:
    img = _read(ants, path, tmpdir, tag)
    return ants.threshold_image(img, 0.5, 1e30, 1, 0) if img.max() > 0.5 else img


# --------------------------------------------------------------------------- registration
def register_to_template(
    moving: str | os.PathLike[str],
    fixed: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    kind: RegistrationKind = "affine",
    seed: int = 0,
    coarse_mm: float | None = COARSE_GRID_MM,
    moving_mask: str | os.PathLike[str] | None = None,
    fixed_mask: str | os.PathLike[str] | None = None,
    prefix: str = "xfm_",
) -> RegistrationResult:
    """Register ``moving`` onto ``fixed`` with ANTs (Mattes MI; rigid, affine or affine+SyN).

    Parameters
    ----------
    moving, fixed
        NIfTI files (e.g. subject T1w and template T1w).
    out_dir
        Folder receiving the transforms and the warped image (created if needed).
    kind
        ``'rigid'``, ``'affine'`` or ``'syn'`` (affine then symmetric normalisation).
    seed
        Random seed for ANTs' metric sampling (determinism; see the module notes on
        ITK's thread count).
    coarse_mm
        For ``rigid`` and ``affine``: estimate the transform on copies of both images (and
        masks) resampled to voxels of at least this size, with a 4x/2x/1x pyramid on that
        grid (:data:`COARSE_GRID_MM`; ``None`` = ANTsPy's defaults on the full grids). An
        affine has 12 parameters: a 2 mm grid fixes them as well as the full 1 mm grid
        (0.24 mm mean difference on a real head T1: ``bench/bench_registration.py``,
        checked in ``tests/test_registration.py``) in an eighth of the voxels. The warped
        image is resampled from the full-resolution moving image onto the full fixed grid.
    moving_mask, fixed_mask
        Optional cost-function masks (non-zero = used), applied at all stages.
    prefix
        File-name prefix of the outputs inside ``out_dir``.

    Raises
    ------
    RegistrationError
        With a one-line message naming the moving file.
    """
    moving = Path(moving)
    fixed = Path(fixed)
    out_dir = Path(out_dir)
    kind_l = _checked_kind(kind, moving)
    for label, p in (("moving", moving), ("fixed", fixed), ("moving_mask", moving_mask),
                     ("fixed_mask", fixed_mask)):
        if p is not None and not Path(p).is_file():
            raise RegistrationError(f"{p}: {label} image not found")
    out_dir.mkdir(parents=True, exist_ok=True)
    ants_seed(seed)  # refuses a negative seed before any work
    try:
        ants = _import_ants()
    except ImportError as exc:  # pragma: no cover - antspyx is a dependency
        raise RegistrationError(f"{moving}: antspyx is not importable ({exc})") from exc

    warped_path = out_dir / f"{prefix}warped.nii"
    affine_path = out_dir / f"{prefix}affine.mat"
    warp_path = out_dir / f"{prefix}warp.nii.gz"
    iwarp_path = out_dir / f"{prefix}inverse_warp.nii.gz"
    tmpdir = Path(tempfile.mkdtemp(prefix=".ants-", dir=out_dir))
    try:
        with _ANTS_LOCK:
            fixed_img = _read(ants, fixed, tmpdir, "fixed")
            moving_img = _read(ants, moving, tmpdir, "moving")
            grid_mm = coarse_mm if kind_l != "syn" else None  # the coarse grid, if any
            coarse = grid_mm is not None
            reg_fixed = fixed_img if grid_mm is None else _coarse(ants, fixed_img, grid_mm)
            reg_moving = moving_img if grid_mm is None else _coarse(ants, moving_img, grid_mm)
            kwargs: dict[str, Any] = dict(_COARSE_PYRAMID) if coarse else {}
            kwargs.update(_mask_options(ants, tmpdir, coarse, (fixed_mask, reg_fixed),
                                        (moving_mask, reg_moving)))
            previous_seed = getattr(ants.config, "_random_seed", None)
            ants.config._random_seed = ants_seed(seed)
            try:
                reg = ants.registration(
                    fixed=reg_fixed, moving=reg_moving, type_of_transform=_ANTS_KINDS[kind_l],
                    outprefix=str(tmpdir / "reg_"), verbose=False, **kwargs)
            finally:
                ants.config._random_seed = previous_seed
            forward, inverse, inverse_flags = _keep_transforms(reg, affine_path, warp_path,
                                                               iwarp_path)
            warped = (ants.apply_transforms(fixed=fixed_img, moving=moving_img,
                                            transformlist=[str(p) for p in forward],
                                            interpolator="linear")
                      if coarse else reg["warpedmovout"])
            ants.image_write(warped, str(warped_path))
    except RegistrationError:
        raise
    except Exception as exc:
        raise RegistrationError(
            f"{moving}: {kind_l} registration to {fixed.name} failed ({_one_line(exc)})"
        ) from exc
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return RegistrationResult(
        warped=warped_path,
        forward_transforms=forward,
        inverse_transforms=inverse,
        inverse_invert_flags=inverse_flags,
        forward_invert_flags=[False] * len(forward),
        kind=kind_l,
        seed=int(seed),
        moving=moving,
        fixed=fixed,
    )


def _checked_kind(kind: str, moving: Path) -> str:
    """``kind`` in lower case, refused unless it is one of :data:`_ANTS_KINDS`."""
    kind_l = str(kind).lower()
    if kind_l not in _ANTS_KINDS:
        raise RegistrationError(f"{moving}: unknown registration kind {kind!r} "
                                f"(valid: {', '.join(_ANTS_KINDS)})")
    return kind_l


def _mask_options(ants: Any, tmpdir: Path, coarse: bool,
                  fixed: tuple[str | os.PathLike[str] | None, Any],
                  moving: tuple[str | os.PathLike[str] | None, Any]) -> dict[str, Any]:
    """``ants.registration``'s cost-function masks: each given mask (``(path, image it
    goes with)``), on that image's grid when registering on the coarse grid, applied at all
    stages."""
    kwargs: dict[str, Any] = {}
    for key, tag, (path, image) in (("mask", "fixed_mask", fixed),
                                    ("moving_mask", "moving_mask", moving)):
        if path is not None:
            mask = _read_mask(ants, Path(path), tmpdir, tag)
            kwargs[key] = ants.resample_image_to_target(
                mask, image, interp_type="nearestNeighbor") if coarse else mask
    if kwargs:
        kwargs["mask_all_stages"] = True
    return kwargs


def _keep_transforms(reg: Mapping[str, Any], affine_path: Path, warp_path: Path,
                     iwarp_path: Path) -> tuple[list[Path], list[Path], list[bool]]:
    """Move ANTs' transforms to their output names (removing a warp an earlier run left);
    returns the forward and inverse transform lists and the inverse's invert flags."""
    fwd = [Path(p) for p in reg["fwdtransforms"]]
    inv = [Path(p) for p in reg["invtransforms"]]
    affines = [p for p in fwd if p.name.endswith(".mat")]
    warps = [p for p in fwd if p.name.endswith("Warp.nii.gz")]
    iwarps = [p for p in inv if p.name.endswith("InverseWarp.nii.gz")]
    if len(affines) != 1 or len(warps) > 1 or len(iwarps) != len(warps):
        raise RuntimeError(f"unexpected ANTs outputs {fwd} / {inv}")
    shutil.move(str(affines[0]), affine_path)
    if not warps:
        for stale in (warp_path, iwarp_path):
            stale.unlink(missing_ok=True)
        return [affine_path], [affine_path], [True]
    shutil.move(str(warps[0]), warp_path)
    shutil.move(str(iwarps[0]), iwarp_path)
    return [warp_path, affine_path], [affine_path, iwarp_path], [True, False]


# --------------------------------------------------------------------------- resampling
def apply_transforms(
    moving: str | os.PathLike[str],
    reference: str | os.PathLike[str],
    transforms: Sequence[str | os.PathLike[str]],
    *,
    interpolation: Interpolation | str = "linear",
    invert: Sequence[bool] | None = None,
    out_file: str | os.PathLike[str] | None = None,
    default_value: float = 0.0,
) -> nib.Nifti1Image | Path:
    """Resample ``moving`` onto ``reference``'s grid through ``transforms`` (ANTs order).

    ``invert`` gives one flag per transform (``True`` inverts a ``.mat``; warps cannot be
    inverted, use the inverse warp). With ``nearestNeighbor``/``genericLabel`` the values
    are rounded and cast back to ``moving``'s data type, so labels stay labels. The output
    has ``reference``'s affine and header geometry. Returns the written ``out_file`` path
    when given, else an in-memory ``Nifti1Image``.
    """
    moving = Path(moving)
    reference = Path(reference)
    tlist = [Path(t) for t in transforms]
    if interpolation not in _ALL_INTERPOLATIONS:
        raise RegistrationError(f"{moving}: unknown interpolation {interpolation!r}")
    flags = _invert_flags(moving, reference, tlist, invert)
    ants = _import_ants()
    mov_nib = load_spatial(moving)
    ref_nib = load_spatial(reference)
    tmpdir = Path(tempfile.mkdtemp(prefix="bids_stroke-ants-"))
    try:
        with _ANTS_LOCK:
            ref_img = _read(ants, reference, tmpdir, "reference")
            mov_img = _read(ants, moving, tmpdir, "moving")
            if tlist:
                out = ants.apply_transforms(
                    fixed=ref_img, moving=mov_img, transformlist=[str(t) for t in tlist],
                    interpolator=interpolation, whichtoinvert=flags,
                    defaultvalue=default_value)
            else:
                out = ants.resample_image_to_target(mov_img, ref_img,
                                                    interp_type=interpolation)
            tmp_out = tmpdir / "out.nii.gz"
            ants.image_write(out, str(tmp_out))
        written = load_nifti(tmp_out)
        data = np.asarray(written.dataobj, dtype=np.float32).reshape(ref_nib.shape[:3])
    except RegistrationError:
        raise
    except Exception as exc:
        raise RegistrationError(
            f"{moving}: applying {len(tlist)} transform(s) onto {reference.name} failed "
            f"({_one_line(exc)})") from exc
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)

    if interpolation in _LABEL_INTERPOLATIONS:
        data = _as_labels(data, np.dtype(mov_nib.get_data_dtype()))
    hdr = ref_nib.header.copy() if isinstance(ref_nib, nib.Nifti1Image) else None
    result = nib.Nifti1Image(data, ref_nib.affine, hdr)
    result.set_data_dtype(data.dtype)
    result.header.set_slope_inter(1.0, 0.0)
    result.header.set_data_shape(data.shape)
    result.header.set_zooms(ref_nib.header.get_zooms()[:3])
    if out_file is None:
        return result
    out_path = Path(out_file)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(result, out_path)
    return out_path


def _invert_flags(moving: Path, reference: Path, tlist: Sequence[Path],
                  invert: Sequence[bool] | None) -> list[bool]:
    """One invert flag per transform (default: none inverted), after checking that every
    file is there and that only affine (``.mat``) transforms are inverted."""
    flags = [False] * len(tlist) if invert is None else [bool(f) for f in invert]
    if len(flags) != len(tlist):
        raise RegistrationError(f"{moving}: {len(flags)} invert flags for {len(tlist)} "
                                "transforms")
    for p in (moving, reference, *tlist):
        if not p.is_file():
            raise RegistrationError(f"{p}: file not found (applying transforms to {moving})")
    for p, flag in zip(tlist, flags, strict=True):
        if flag and not p.name.endswith(".mat"):
            raise RegistrationError(f"{p}: only affine (.mat) transforms can be inverted")
    return flags


def _as_labels(data: np.ndarray, src_dtype: np.dtype) -> np.ndarray:
    """Resampled labels rounded, in the moving image's integer type (``bool``: uint8;
    clipped to its range), else float32."""
    data = np.rint(data)
    if np.issubdtype(src_dtype, np.integer) or src_dtype == np.bool_:
        out_dtype = src_dtype if src_dtype != np.bool_ else np.dtype(np.uint8)
        info = np.iinfo(out_dtype)
        return np.clip(data, info.min, info.max).astype(out_dtype)
    return data.astype(np.float32)


# --------------------------------------------------------------------------- BIDS space
_SPACE_RE = re.compile(r"(?:^|_)space-([a-zA-Z0-9]+)(?=_|\.|$)")


def bids_space(img_path: str | os.PathLike[str]) -> str | None:
    """The BIDS ``space-`` entity of a file name, or None."""
    match = _SPACE_RE.search(Path(img_path).name)
    return match.group(1) if match else None


def is_in_template_space(img_path: str | os.PathLike[str],
                         template: str = TEMPLATE) -> bool:
    """True if the file name carries ``space-<template>`` (BIDS entity).

    Only the file name is used: NIfTI ``sform_code`` 4 (MNI_152) cannot tell
    MNI152NLin2009aSym from other MNI variants, so the BIDS entity is the contract. Images
    without a ``space-`` entity are taken as native (not in template space).
    """
    return bids_space(img_path) == template
