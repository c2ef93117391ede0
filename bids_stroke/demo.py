"""Synthetic stroke-lesion BIDS datasets for demos, tests and model training.

The generator writes a small, valid BIDS dataset that mimics the layout and the file
naming of ATLAS v2.0 (Anatomical Tracings of Lesions After Stroke): skull-stripped T1w
images already in ``MNI152NLin2009aSym`` space with a manual-looking binary lesion mask
beside each image.  Because the images are preprocessed (skull-stripped, in MNI space)
and carry the ``space-`` entity, which raw BIDS forbids, the dataset declares
``DatasetType: derivative``; the bids-validator then accepts it with warnings only.

Images are built from the MNI152NLin2009aSym (ICBM 2009a symmetric) template that nilearn
bundles (no download): the T1w template supplies the anatomy, the grey/white-matter
probability maps supply the brain mask and the tissue in which lesions may grow.  Each
synthetic subject receives

* one to four smooth irregular lesions (total volume log-uniform in 1-100 ml; about one
  subject in three is multi-focal) centred in the white matter of one hemisphere's
  middle-cerebral-artery-like territory, grown into white matter and adjacent cortex,
  never outside the brain mask nor across the midline;
* chronic-stroke contrast: a CSF-like hypointense core and a partial-volume rim.  The rim
  lies *inside* the mask, so the mask is exactly the set of darkened voxels;
* subject-specific acquisition variation: contrast gamma, smooth multiplicative bias field
  (low-order polynomial, 10-20 % peak), global intensity scale and offset, Rician noise
  (SNR 20-40 relative to white matter).

Resolution
----------
``resolution_mm=1`` reproduces the template grid (197 x 233 x 189 voxels, 1 mm).  Any other
resolution ``r`` keeps the *same file names* (no ``res-`` entity) and writes the images on
a coarser (or finer) isotropic grid with the same field of view: the first voxel centre
stays at MNI (-98, -134, -72) mm, the voxel size is ``r`` mm and the shape is
``floor(196 / r) + 1`` etc., so the affine (``diag(r, r, r)`` plus that origin, qform and
sform code 4 = MNI) maps every voxel to its correct MNI coordinate.  Lesions are designed
in millimetres, so their volumes are comparable across resolutions.

Determinism
-----------
Subject ``n`` (the number in its identifier, i.e. ``subject_offset + i + 1``) is generated
from ``np.random.default_rng([seed, n])``, so the same ``seed`` always yields the same
subject whatever ``n_subjects`` or ``subject_offset`` is, different seeds or numbers give
independent subjects, and ``subject_offset`` yields disjoint training sets.  Files are
gzip-compressed with ``mtime=0`` and no file name, so they are byte-identical across runs.

Examples
--------
>>> from bids_stroke.demo import make_demo_dataset
>>> make_demo_dataset("/tmp/demo", n_subjects=2, resolution_mm=3.0)  # doctest: +SKIP
PosixPath('/tmp/demo')
"""

from __future__ import annotations

import functools
import gzip
import json
import logging
import math
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import nibabel as nib
import numpy as np
from scipy import ndimage

from bids_stroke.__about__ import __version__

__all__ = [
    "SPACE",
    "DemoSubject",
    "LesionMaskError",
    "LesionShape",
    "demo_template_paths",
    "find_lesion_masks",
    "generate_subject",
    "load_lesion_shape",
    "make_demo_dataset",
    "subject_label",
]

LOGGER = logging.getLogger(__name__)

SPACE = "MNI152NLin2009aSym"
"""Template space of every demo image (that of nilearn's bundled ICBM 2009a sym template)."""

_TEMPLATE_SHAPE = (197, 233, 189)
_TEMPLATE_ORIGIN = (-98.0, -134.0, -72.0)
_NILEARN_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}
_MIN_RES, _MAX_RES = 0.5, 8.0
_GZIP_LEVEL = 6

Layout = Literal["atlas", "plain"]


# --------------------------------------------------------------------------------------
# Template
# --------------------------------------------------------------------------------------
def demo_template_paths() -> dict[str, Path]:
    """Locate nilearn's bundled MNI152NLin2009aSym T1w, GM and WM templates.

    Returns
    -------
    dict of str to Path
        Keys ``t1``, ``gm`` and ``wm``.

    Raises
    ------
    FileNotFoundError
        If the installed nilearn does not ship the files (they are never downloaded).
    """
    import nilearn.datasets

    data_dir = Path(nilearn.datasets.__file__).resolve().parent / "data"
    paths = {key: data_dir / name for key, name in _NILEARN_FILES.items()}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            "nilearn's bundled MNI152NLin2009aSym templates are missing: " + ", ".join(missing)
        )
    return paths


@dataclass(frozen=True)
class _Template:
    """Template resampled on the demo grid (arrays are read-only)."""

    t1: np.ndarray  # float32, white matter ~= 1
    gm: np.ndarray  # float32 probability
    wm: np.ndarray  # float32 probability
    brain: np.ndarray  # bool, gm + wm > 0.2
    head: np.ndarray  # bool, voxels that carry signal (t1 > 0 or brain)
    affine: np.ndarray
    zooms: tuple[float, float, float]
    csf_level: float  # normalised T1 intensity of ventricular CSF
    x_mm: np.ndarray  # MNI x coordinate of each index along axis 0 (etc.)
    y_mm: np.ndarray
    z_mm: np.ndarray


def _grid(resolution_mm: float) -> tuple[tuple[int, int, int], np.ndarray]:
    """Shape and affine of the isotropic demo grid at ``resolution_mm``."""
    shape = tuple(math.floor((n - 1) / resolution_mm + 1e-9) + 1 for n in _TEMPLATE_SHAPE)
    affine = np.diag([resolution_mm, resolution_mm, resolution_mm, 1.0])
    affine[:3, 3] = _TEMPLATE_ORIGIN
    return shape, affine  # type: ignore[return-value]


def _resample(data: np.ndarray, resolution_mm: float, shape: Sequence[int]) -> np.ndarray:
    """Resample a 1 mm template array on the ``resolution_mm`` grid (anti-aliased, linear)."""
    data = data.astype(np.float32)
    if resolution_mm == 1.0:
        return data
    if resolution_mm > 1.0:
        # Gaussian whose FWHM brings the 1 mm point-spread function to ``resolution_mm``.
        sigma = math.sqrt(resolution_mm**2 - 1.0) / (2.0 * math.sqrt(2.0 * math.log(2.0)))
        data = ndimage.gaussian_filter(data, sigma=sigma, mode="constant")
    return ndimage.affine_transform(
        data,
        matrix=np.diag(np.full(3, resolution_mm)),
        offset=0.0,
        output_shape=tuple(shape),
        order=1,
        mode="constant",
        cval=0.0,
    ).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _load_template(resolution_mm: float) -> _Template:
    paths = demo_template_paths()
    raw = {k: np.asarray(nib.load(p).dataobj, dtype=np.float32) for k, p in paths.items()}
    shape, affine = _grid(resolution_mm)
    gm = np.clip(_resample(raw["gm"] / 255.0, resolution_mm, shape), 0.0, 1.0)
    wm = np.clip(_resample(raw["wm"] / 255.0, resolution_mm, shape), 0.0, 1.0)
    wm_level = float(np.median(raw["t1"][raw["wm"] > 0.9 * 255.0]))
    t1 = np.clip(_resample(raw["t1"] / wm_level, resolution_mm, shape), 0.0, None)
    brain = (gm + wm) > 0.2
    head = (t1 > 0.02) | brain
    x_mm, y_mm, z_mm = (affine[a, a] * np.arange(shape[a]) + affine[a, 3] for a in range(3))
    # Ventricular CSF: low tissue probability in a box around the lateral ventricles.
    box = (
        (np.abs(x_mm)[:, None, None] < 25)
        & (np.abs(y_mm)[None, :, None] < 40)
        & ((z_mm > 0) & (z_mm < 30))[None, None, :]
    )
    ventricles = box & ((gm + wm) < 0.1) & (t1 > 0.05)
    csf_level = float(np.median(t1[ventricles])) if ventricles.any() else 0.3
    for arr in (t1, gm, wm, brain, head):
        arr.setflags(write=False)
    return _Template(
        t1=t1,
        gm=gm,
        wm=wm,
        brain=brain,
        head=head,
        affine=affine,
        zooms=(resolution_mm,) * 3,
        csf_level=csf_level,
        x_mm=x_mm,
        y_mm=y_mm,
        z_mm=z_mm,
    )


# --------------------------------------------------------------------------------------
# Lesions
# --------------------------------------------------------------------------------------
_STRUCT26 = np.ones((3, 3, 3), dtype=bool)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Uniformly distributed 3-D rotation matrix (QR of a Gaussian matrix)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _smooth_noise(rng: np.random.Generator, shape: Sequence[int], sigma_vox: float) -> np.ndarray:
    """Unit-variance Gaussian-smoothed white noise."""
    noise = ndimage.gaussian_filter(
        rng.standard_normal(tuple(shape)).astype(np.float32), sigma=sigma_vox, mode="reflect"
    )
    std = float(noise.std())
    return noise / std if std > 0 else noise


def _grow_blob(
    rng: np.random.Generator,
    tpl: _Template,
    centre: tuple[int, int, int],
    n_voxels: int,
    allowed: np.ndarray,
) -> np.ndarray:
    """Grow one irregular lesion of about ``n_voxels`` voxels around ``centre``.

    The blob is the ``n_voxels`` allowed voxels with the smallest value of
    ``rho + a * noise`` where ``rho`` is the normalised radius of a randomly oriented
    ellipsoid and ``noise`` smooth Gaussian noise (an irregular, noise-perturbed boundary),
    restricted to its largest 26-connected component.
    """
    res = tpl.zooms[0]
    voxel_mm3 = res**3
    r_eq = (3.0 * n_voxels * voxel_mm3 / (4.0 * math.pi)) ** (1.0 / 3.0)
    scales = np.exp(np.clip(rng.normal(0.0, 0.22, 3), -0.5, 0.5))
    axes = r_eq * scales / np.prod(scales) ** (1.0 / 3.0)
    rot = _random_rotation(rng)
    amp = rng.uniform(0.2, 0.45)
    noise_sigma_mm = max(0.3 * r_eq, 2.0)

    half = math.ceil((1.6 * axes.max() + 2.0 * noise_sigma_mm) / res) + 1
    lo = [max(c - half, 0) for c in centre]
    hi = [min(c + half + 1, s) for c, s in zip(centre, allowed.shape, strict=True)]
    sl = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    box_shape = tuple(b - a for a, b in zip(lo, hi, strict=True))

    offsets = [(np.arange(a, b) - c) * res for a, b, c in zip(lo, hi, centre, strict=True)]
    dx, dy, dz = np.meshgrid(*offsets, indexing="ij", sparse=True)
    # Coordinates in the ellipsoid frame: u = R^T d / axes.
    rho2 = np.zeros(box_shape, dtype=np.float32)
    for k in range(3):
        u = (rot[0, k] * dx + rot[1, k] * dy + rot[2, k] * dz) / axes[k]
        rho2 += (u * u).astype(np.float32)
    field_ = np.sqrt(rho2) + amp * _smooth_noise(rng, box_shape, noise_sigma_mm / res)
    field_[~allowed[sl]] = np.inf

    flat = field_.ravel()
    n_finite = int(np.isfinite(flat).sum())
    k = min(n_voxels, n_finite)
    blob_box = np.zeros(box_shape, dtype=bool)
    if k > 0:
        thr = np.partition(flat, k - 1)[k - 1]
        blob_box = field_ <= thr
        labels, n_lab = ndimage.label(blob_box, structure=_STRUCT26)
        if n_lab > 1:
            sizes = np.bincount(labels.ravel())[1:]
            blob_box = labels == (int(np.argmax(sizes)) + 1)
    out = np.zeros(allowed.shape, dtype=bool)
    out[sl] = blob_box
    return out


def _mca_candidates(tpl: _Template, sign: float) -> np.ndarray:
    """Flat indices of deep white-matter voxels in one hemisphere's MCA-like territory."""
    x = sign * tpl.x_mm
    box = (
        ((x >= 18) & (x <= 46))[:, None, None]
        & ((tpl.y_mm >= -45) & (tpl.y_mm <= 25))[None, :, None]
        & ((tpl.z_mm >= -8) & (tpl.z_mm <= 40))[None, None, :]
    )
    return np.flatnonzero(box & (tpl.wm > 0.6))


def _make_lesions(rng: np.random.Generator, tpl: _Template) -> tuple[np.ndarray, dict[str, Any]]:
    """Draw the lesion mask of one subject and the parameters that produced it."""
    res = tpl.zooms[0]
    voxel_ml = res**3 / 1000.0
    hemisphere = "L" if rng.random() < 0.55 else "R"  # ATLAS is mildly left-dominant
    sign = -1.0 if hemisphere == "L" else 1.0  # RAS: left is x < 0
    target_ml = float(math.exp(rng.uniform(math.log(1.0), math.log(100.0))))
    n_components = int(rng.integers(2, 5)) if rng.random() < 1.0 / 3.0 else 1
    fractions = np.sort(rng.dirichlet(np.full(n_components, 1.5)))[::-1]

    x_side = (sign * tpl.x_mm > 2.0)[:, None, None]
    allowed = tpl.brain & ((tpl.gm + tpl.wm) > 0.5) & x_side
    candidates = _mca_candidates(tpl, sign)
    shape = tpl.brain.shape

    lesion = np.zeros(shape, dtype=bool)
    first_xyz: np.ndarray | None = None
    min_voxels = max(4, math.ceil(0.05 / voxel_ml))
    for frac in fractions:
        pool = candidates
        free = allowed
        if first_xyz is not None:
            # Satellites: elsewhere in the same territory, never touching earlier lesions
            # (excluding the 26-neighbourhood keeps them separate connected components).
            taken = ndimage.binary_dilation(lesion, structure=_STRUCT26, iterations=1)
            free = allowed & ~taken
            far = ndimage.binary_dilation(
                lesion, structure=_STRUCT26, iterations=max(1, round(4.0 / res))
            )
            ijk = np.stack(np.unravel_index(candidates, shape), axis=1)
            dist = np.linalg.norm((ijk - first_xyz) * res, axis=1)
            ok = (dist > 12.0) & (dist < 50.0) & ~far.ravel()[candidates]
            pool = candidates[ok] if ok.any() else candidates[~far.ravel()[candidates]]
            if pool.size == 0:
                break
        centre = tuple(int(c) for c in np.unravel_index(pool[rng.integers(pool.size)], shape))
        if first_xyz is None:
            first_xyz = np.asarray(centre)
        n_vox = max(round(frac * target_ml / voxel_ml), min_voxels)
        lesion |= _grow_blob(rng, tpl, centre, n_vox, free)  # type: ignore[arg-type]

    params = {
        "hemisphere": hemisphere,
        "target_volume_ml": round(target_ml, 4),
        "n_components_drawn": n_components,
    }
    return lesion, params


# --------------------------------------------------------------------------------------
# Real lesion shapes
# --------------------------------------------------------------------------------------
MIN_REAL_LESION_ML = 0.5
"""Real masks with less than this volume inside the brain mask (on the demo grid) are skipped."""

_NIFTI_SUFFIXES = (".nii", ".nii.gz")


class LesionMaskError(ValueError):
    """A real lesion mask cannot be used (unreadable, not 3-D, or too small in the brain)."""


@dataclass(frozen=True)
class LesionShape:
    """A real lesion mask resampled on the demo grid.

    Attributes
    ----------
    mask : numpy.ndarray
        bool mask on the demo grid, already intersected with the template brain mask.
    source : str
        File name (not the path) of the source mask.
    source_volume_ml : float
        Volume of the source mask on its own grid.
    hemisphere : str
        ``"L"`` or ``"R"``: side of the centroid of ``mask`` (RAS: left is x < 0).
    voxel_ml : float
        Volume of one voxel of the demo grid in millilitres.
    """

    mask: np.ndarray
    source: str
    source_volume_ml: float
    hemisphere: str
    voxel_ml: float

    @property
    def volume_ml(self) -> float:
        """Volume of :attr:`mask` in millilitres."""
        return float(self.mask.sum()) * self.voxel_ml


def _is_nifti(path: Path) -> bool:
    return path.name.lower().endswith(_NIFTI_SUFFIXES)


def find_lesion_masks(spec: str | Path) -> list[Path]:
    """NIfTI files named by ``spec``: a folder (its ``*.nii``/``*.nii.gz``), a glob or a file.

    Returns
    -------
    list of Path
        Sorted by file name (then path), so the order does not depend on the file system.

    Raises
    ------
    ValueError
        When ``spec`` names no NIfTI file.
    """
    import glob as _glob

    text = str(spec)
    path = Path(text).expanduser()
    if path.is_dir():
        found = [p for p in path.iterdir() if p.is_file() and _is_nifti(p)]
    elif path.is_file():
        found = [path] if _is_nifti(path) else []
    else:
        found = [Path(p) for p in _glob.glob(str(path)) if Path(p).is_file()]
        found = [p for p in found if _is_nifti(p)]
    if not found:
        raise ValueError(f"no NIfTI lesion masks (*.nii, *.nii.gz) found in {text}")
    return sorted(found, key=lambda p: (p.name, str(p)))


def _nearest_resample(
    data: np.ndarray, src_affine: np.ndarray, shape: Sequence[int], affine: np.ndarray
) -> np.ndarray:
    """Nearest-neighbour resampling of a bool array through the voxel-to-world affines.

    Each target voxel centre is mapped into source voxel coordinates and rounded half up
    (``floor(x + 0.5)``); points outside the source grid are False.
    """
    matrix = np.linalg.inv(src_affine) @ affine
    out = np.zeros(tuple(shape), dtype=bool)
    j = np.arange(shape[1], dtype=np.float64)[:, None]
    k = np.arange(shape[2], dtype=np.float64)[None, :]
    for i in range(shape[0]):
        idx = []
        for a in range(3):
            coord = matrix[a, 0] * i + matrix[a, 1] * j + matrix[a, 2] * k + matrix[a, 3]
            idx.append(np.floor(coord + 0.5).astype(np.int64))
        inside = np.ones(idx[0].shape, dtype=bool)
        for a in range(3):
            inside &= (idx[a] >= 0) & (idx[a] < data.shape[a])
        if inside.any():
            out[i][inside] = data[idx[0][inside], idx[1][inside], idx[2][inside]]
    return out


def load_lesion_shape(path: str | Path, resolution_mm: float = 1.0) -> LesionShape:
    """Read a real lesion mask and put it on the demo grid of ``resolution_mm``.

    The mask (voxels >= 0.5) is resampled with nearest neighbour through the affines of the
    mask and of the demo grid (both taken to be MNI millimetres), then intersected with the
    template brain mask.

    Raises
    ------
    LesionMaskError
        When the file cannot be read as a 3-D image.
    """
    path = Path(path)
    res = _check_resolution(resolution_mm)
    try:
        img = nib.load(path)
        data = np.asarray(img.dataobj, dtype=np.float32)
        src_affine = np.asarray(img.affine, dtype=np.float64)
    except Exception as exc:  # nibabel raises many kinds of errors for a bad file
        raise LesionMaskError(f"cannot read lesion mask {path.name}: {exc}") from None
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise LesionMaskError(f"lesion mask {path.name} is not 3-D (shape {data.shape})")
    src = np.nan_to_num(data, nan=0.0) >= 0.5
    src_voxel_ml = abs(float(np.linalg.det(src_affine[:3, :3]))) / 1000.0
    tpl = _load_template(res)
    mask = _nearest_resample(src, src_affine, tpl.brain.shape, tpl.affine) & tpl.brain
    hemisphere = "L"
    if mask.any():
        hemisphere = "L" if float(tpl.x_mm[np.nonzero(mask)[0]].mean()) < 0 else "R"
    return LesionShape(
        mask=mask,
        source=path.name,
        source_volume_ml=float(src.sum()) * src_voxel_ml,
        hemisphere=hemisphere,
        voxel_ml=res**3 / 1000.0,
    )


def _check_shape_volume(shape: LesionShape, res: float) -> None:
    volume = shape.volume_ml
    if volume < MIN_REAL_LESION_ML:
        raise LesionMaskError(
            f"lesion mask {shape.source} has {volume:.3g} ml inside the brain mask at "
            f"{res:g} mm (< {MIN_REAL_LESION_ML} ml)"
        )


class _MaskPicker:
    """Deterministic assignment of real masks to subject numbers.

    The masks (sorted by name) are shuffled once with ``default_rng([seed, 0])`` (subject
    numbers start at 1, so this stream is never a subject's). The usable masks (readable,
    >= 0.5 ml in the brain) in that order are then dealt out: subject ``n`` takes the
    ``(n - 1) mod U``-th usable one, so no mask repeats while ``n <= U`` and the choice
    depends only on the seed, the subject number, the mask set and the resolution.
    Unusable masks are skipped with a warning, once each.
    """

    def __init__(self, masks: Sequence[Path], seed: int, res: float) -> None:
        order = np.random.default_rng([seed, 0]).permutation(len(masks))
        self._queue = [masks[int(i)] for i in order]
        self._res = res
        self._usable: list[Path] = []
        self._next = 0  # position in the queue of the next mask to examine
        self._cache: tuple[Path, LesionShape] | None = None

    def _examine(self) -> LesionShape | None:
        path = self._queue[self._next]
        self._next += 1
        try:
            shape = load_lesion_shape(path, self._res)
            _check_shape_volume(shape, self._res)
        except LesionMaskError as exc:
            warnings.warn(f"skipping {exc}", UserWarning, stacklevel=4)
            return None
        self._usable.append(path)
        self._cache = (path, shape)
        return shape

    def shape_for(self, number: int) -> LesionShape:
        k = number - 1
        while len(self._usable) <= k and self._next < len(self._queue):
            self._examine()
        if not self._usable:
            raise ValueError(
                f"none of the {len(self._queue)} lesion masks has >= {MIN_REAL_LESION_ML} ml "
                f"inside the brain mask at {self._res:g} mm"
            )
        path = self._usable[k % len(self._usable)]
        if self._cache is not None and self._cache[0] == path:
            return self._cache[1]
        return load_lesion_shape(path, self._res)


# --------------------------------------------------------------------------------------
# Subject synthesis
# --------------------------------------------------------------------------------------
@dataclass
class DemoSubject:
    """One synthetic subject on the demo grid.

    Attributes
    ----------
    number : int
        Subject number (1-based, includes any offset).
    t1w : numpy.ndarray
        int16 T1-weighted image (skull-stripped, background 0).
    mask : numpy.ndarray
        uint8 lesion mask (0/1), exactly the darkened voxels.
    brain_mask : numpy.ndarray
        bool template brain mask on the same grid.
    affine : numpy.ndarray
        4 x 4 voxel-to-MNI affine.
    lesion_volume_ml : float
        Volume of the mask in millilitres.
    n_lesions : int
        Number of 26-connected components of the mask.
    params : dict
        JSON-serialisable generation parameters (hemisphere, SNR, bias, gamma, ...).
    """

    number: int
    t1w: np.ndarray
    mask: np.ndarray
    brain_mask: np.ndarray
    affine: np.ndarray
    lesion_volume_ml: float
    n_lesions: int
    params: dict[str, Any] = field(default_factory=dict)


def _check_resolution(resolution_mm: float) -> float:
    res = float(resolution_mm)
    if not math.isfinite(res) or not _MIN_RES <= res <= _MAX_RES:
        raise ValueError(
            f"resolution_mm must be between {_MIN_RES} and {_MAX_RES} mm, got {resolution_mm!r}"
        )
    return res


def generate_subject(
    number: int,
    *,
    seed: int = 0,
    resolution_mm: float = 1.0,
    lesion_mask: str | Path | None = None,
) -> DemoSubject:
    """Synthesise one subject in memory (what :func:`make_demo_dataset` writes).

    Parameters
    ----------
    number : int
        Subject number (>= 1); with ``seed`` it fully determines the subject.
    seed : int
        Dataset seed.
    resolution_mm : float
        Isotropic voxel size of the output grid (0.5-8 mm).
    lesion_mask : str or Path, optional
        A real binary lesion mask (NIfTI, any grid in MNI space) whose *shape* replaces the
        synthetic lesions: it is resampled with nearest neighbour through the affines onto
        the demo grid and intersected with the brain mask (see :func:`load_lesion_shape`);
        contrast, bias field and noise follow the same model as synthetic lesions.

    Returns
    -------
    DemoSubject

    Raises
    ------
    LesionMaskError
        When ``lesion_mask`` is unreadable or has less than 0.5 ml inside the brain mask.
    """
    if int(number) < 1:
        raise ValueError(f"subject number must be >= 1, got {number!r}")
    if int(seed) < 0:
        raise ValueError(f"seed must be >= 0, got {seed!r}")
    res = _check_resolution(resolution_mm)
    shape = None
    if lesion_mask is not None:
        shape = load_lesion_shape(lesion_mask, res)
        _check_shape_volume(shape, res)
    return _synthesise(int(number), int(seed), res, shape)


def _synthesise(number: int, seed: int, res: float, shape: LesionShape | None) -> DemoSubject:
    tpl = _load_template(res)
    rng = np.random.default_rng([seed, number])

    if shape is None:
        lesion, lesion_params = _make_lesions(rng, tpl)
    else:
        lesion = shape.mask
        lesion_params = {
            "lesion_source": shape.source,
            "hemisphere": shape.hemisphere,
            "source_volume_ml": round(shape.source_volume_ml, 4),
        }

    # Chronic-stroke contrast: CSF-like core, partial-volume rim inside the mask.
    img = tpl.t1.copy()
    rim_mm = float(rng.uniform(1.5, 3.0))
    rim_floor = float(rng.uniform(0.45, 0.6))
    core_level = tpl.csf_level * float(rng.uniform(0.9, 1.3))
    if lesion.any():
        idx = np.nonzero(lesion)
        lo = [max(int(i.min()) - 1, 0) for i in idx]
        hi = [int(i.max()) + 2 for i in idx]
        sl = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        sub = lesion[sl]
        depth = ndimage.distance_transform_edt(sub, sampling=tpl.zooms)  # >= res inside
        alpha = np.clip(rim_floor + (1.0 - rim_floor) * (depth - res) / rim_mm, rim_floor, 1.0)
        alpha = np.where(sub, alpha, 0.0).astype(np.float32)
        texture = 1.0 + 0.1 * _smooth_noise(rng, sub.shape, 3.0 / res)
        core = (core_level * texture).astype(np.float32)
        img[sl] = img[sl] * (1.0 - alpha) + core * alpha

    # Acquisition variation, computed on signal-carrying voxels only.
    head = tpl.head | lesion
    hi_idx = np.nonzero(head)
    values = img[hi_idx].astype(np.float64)
    gamma = float(rng.uniform(0.85, 1.15))
    values = np.power(np.clip(values, 0.0, None), gamma)

    coords = [
        (tpl.x_mm[hi_idx[0]]) / 100.0,
        (tpl.y_mm[hi_idx[1]] + 18.0) / 100.0,
        (tpl.z_mm[hi_idx[2]] - 18.0) / 100.0,
    ]
    terms = [
        coords[0], coords[1], coords[2],
        coords[0] * coords[1], coords[0] * coords[2], coords[1] * coords[2],
        coords[0] ** 2, coords[1] ** 2, coords[2] ** 2,
    ]  # fmt: skip
    poly = np.zeros_like(values)
    for term, coef in zip(terms, rng.standard_normal(len(terms)), strict=True):
        poly += coef * term
    bias_amplitude = float(rng.uniform(0.10, 0.20))
    peak = float(np.abs(poly).max())
    if peak > 0:
        poly *= math.log1p(bias_amplitude) / peak
    values *= np.exp(poly)

    wm_intensity = float(rng.uniform(500.0, 1200.0))
    offset = float(rng.uniform(0.0, 40.0))
    snr = float(rng.uniform(20.0, 40.0))
    sigma = wm_intensity / snr
    values = values * wm_intensity + offset
    n1 = rng.standard_normal(values.shape) * sigma
    n2 = rng.standard_normal(values.shape) * sigma
    values = np.sqrt((values + n1) ** 2 + n2**2)  # Rician magnitude noise

    t1w = np.zeros(img.shape, dtype=np.int16)
    t1w[hi_idx] = np.clip(np.rint(values), 0, np.iinfo(np.int16).max).astype(np.int16)

    mask = lesion.astype(np.uint8)
    _, n_lesions = ndimage.label(lesion, structure=_STRUCT26)
    volume_ml = float(mask.sum()) * res**3 / 1000.0
    params = {
        **lesion_params,
        "lesion_core_level": round(core_level, 4),
        "rim_width_mm": round(rim_mm, 4),
        "rim_floor": round(rim_floor, 4),
        "gamma": round(gamma, 4),
        "bias_field_amplitude": round(bias_amplitude, 4),
        "white_matter_intensity": round(wm_intensity, 2),
        "intensity_offset": round(offset, 2),
        "snr": round(snr, 2),
    }
    return DemoSubject(
        number=int(number),
        t1w=t1w,
        mask=mask,
        brain_mask=np.array(tpl.brain),
        affine=tpl.affine.copy(),
        lesion_volume_ml=volume_ml,
        n_lesions=int(n_lesions),
        params=params,
    )


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------
def subject_label(number: int, layout: Layout = "atlas", *, width: int = 2) -> str:
    """BIDS subject label (without ``sub-``) of subject ``number``.

    ``atlas``: ATLAS v2.0 style ``r001s001`` (cohort R001); ``plain``: zero-padded number.
    """
    if layout == "atlas":
        return f"r001s{number:03d}"
    return f"{number:0{width}d}"


def _write_nifti(path: Path, data: np.ndarray, affine: np.ndarray) -> None:
    img = nib.Nifti1Image(data, affine)
    img.set_sform(affine, code="mni")
    img.set_qform(affine, code="mni")
    img.header.set_xyzt_units("mm")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(img.to_bytes(), compresslevel=_GZIP_LEVEL, mtime=0))


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def _generated_by(
    seed: int, n_subjects: int, res: float, layout: str, offset: int, n_masks: int | None = None
) -> list:
    what = "Synthetic stroke lesions" if n_masks is None else "Real stroke lesion shapes"
    masks = "" if n_masks is None else f", lesion_masks=<{n_masks} files>"
    return [
        {
            "Name": "bids_stroke demo",
            "Version": __version__,
            "Description": (
                f"{what} on the {SPACE} template: "
                f"bids_stroke.demo.make_demo_dataset(n_subjects={n_subjects}, seed={seed}, "
                f"resolution_mm={res:g}, layout='{layout}', subject_offset={offset}{masks})"
            ),
        }
    ]


_README = """\
bids_stroke synthetic stroke demo dataset
=========================================

Synthetic chronic-stroke T1-weighted MRI with binary lesion masks, generated by
`{call}`.

Layout: {layout_text}

* Images are skull-stripped, already in {space} space ({res:g} mm isotropic grid,
  first voxel centre at MNI (-98, -134, -72) mm; at 1 mm this is the 197x233x189
  grid of the ICBM 2009a symmetric template). File names do not change with the
  resolution.
* Anatomy comes from the ICBM 2009a symmetric template bundled with nilearn; every
  subject differs by its lesions, contrast gamma, bias field, intensity scale/offset and
  Rician noise (SNR 20-40).
{lesion_text}* The dataset is declared a BIDS derivative (DatasetType "derivative") because the
  images are preprocessed and carry the `space-` entity, which raw BIDS does not allow.
* participants.tsv lists the lesion volume and number of connected lesions per subject.

{origin_text}
"""


_SYNTHETIC_LESION_TEXT = """\
* Lesions: 1-4 smooth irregular components (total 1-100 ml, log-uniform) in one
  hemisphere's MCA-like territory, with a CSF-like core and a partial-volume rim. The
  mask is exactly the set of darkened voxels.
"""
_REAL_LESION_TEXT = """\
* Lesions: real stroke lesion shapes. Each subject takes one binary mask from a set of
  {n_masks} real masks (named in the `lesion_source` column of participants.tsv),
  resampled with nearest neighbour onto this grid and intersected with the brain mask,
  then rendered with a CSF-like core and a partial-volume rim. The mask is exactly the
  set of darkened voxels.
"""
_SYNTHETIC_ORIGIN = "These data are synthetic and contain no information about any real person."
_REAL_ORIGIN = (
    "The images are synthetic; only the lesion shapes come from the real masks named in\n"
    "participants.tsv. Check the license of those masks before sharing this dataset."
)


def _check_mask_paths(lesion_masks: Sequence[str | Path]) -> list[Path]:
    if isinstance(lesion_masks, (str, Path)):
        raise ValueError("lesion_masks must be a sequence of paths (see find_lesion_masks)")
    paths = [Path(p).expanduser() for p in lesion_masks]
    if not paths:
        raise ValueError("lesion_masks is empty: no NIfTI lesion masks given")
    for path in paths:
        if not _is_nifti(path):
            raise ValueError(f"lesion mask {path} is not a NIfTI file (*.nii, *.nii.gz)")
        if not path.is_file():
            raise ValueError(f"lesion mask {path} does not exist")
    return sorted(paths, key=lambda p: (p.name, str(p)))


def _is_nonempty_dir(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


def make_demo_dataset(
    out_dir: str | Path,
    *,
    n_subjects: int = 6,
    seed: int = 0,
    resolution_mm: float = 1.0,
    layout: Layout = "atlas",
    sessions: bool | None = None,
    subject_offset: int = 0,
    progress: bool = True,
    lesion_masks: Sequence[str | Path] | None = None,
) -> Path:
    """Write a synthetic stroke-lesion BIDS dataset.

    Parameters
    ----------
    out_dir : str or Path
        Dataset root (created; existing files of the same name are overwritten, nothing
        is deleted).
    n_subjects : int
        Number of subjects (>= 1).
    seed : int
        Dataset seed (>= 0). Subject ``n`` uses ``np.random.default_rng([seed, n])``.
    resolution_mm : float
        Isotropic voxel size in mm (0.5-8). File names do not change; the affine does.
    layout : {"atlas", "plain"}
        ``atlas``: ATLAS v2.0 naming, ``sub-r001s001/ses-1/anat/
        sub-r001s001_ses-1_space-MNI152NLin2009aSym_T1w.nii.gz`` with the mask
        ``..._space-MNI152NLin2009aSym_label-L_desc-T1lesion_mask.nii.gz`` beside it.
        ``plain``: ``sub-01/anat/sub-01_space-MNI152NLin2009aSym_T1w.nii.gz`` with the
        mask in ``derivatives/lesions/sub-01/anat/
        sub-01_space-MNI152NLin2009aSym_label-L_desc-lesion_mask.nii.gz``.
    sessions : bool or None
        Whether to add the ``ses-1`` level. ``None`` (default): yes for ``atlas``, no for
        ``plain``.
    subject_offset : int
        Subjects are numbered ``subject_offset + 1 ... subject_offset + n_subjects``.
        Different offsets give disjoint, independent subjects.
    progress : bool
        Show a progress bar on stderr.
    lesion_masks : sequence of str or Path, optional
        Real binary lesion masks (NIfTI in MNI space, e.g. from :func:`find_lesion_masks`)
        whose shapes replace the synthetic lesions. Subject ``n`` takes one of them, chosen
        from ``seed`` and ``n`` without replacement while there are masks left (see
        ``_MaskPicker``); it is resampled with nearest neighbour onto the demo grid,
        intersected with the brain mask and rendered with the synthetic intensity model.
        Masks with less than 0.5 ml inside the brain are skipped with a warning. The source
        file name is recorded in the sidecars and in the ``lesion_source`` column of
        ``participants.tsv``. ``None`` (default): synthetic lesions.

    Returns
    -------
    Path
        The dataset root.

    Raises
    ------
    ValueError
        On an invalid argument, an empty ``lesion_masks``, or when no mask is usable.
    """
    if layout not in ("atlas", "plain"):
        raise ValueError(f"layout must be 'atlas' or 'plain', got {layout!r}")
    if int(n_subjects) < 1:
        raise ValueError(f"n_subjects must be >= 1, got {n_subjects!r}")
    if int(subject_offset) < 0:
        raise ValueError(f"subject_offset must be >= 0, got {subject_offset!r}")
    if int(seed) < 0:
        raise ValueError(f"seed must be >= 0, got {seed!r}")
    res = _check_resolution(resolution_mm)
    n_subjects, seed, subject_offset = int(n_subjects), int(seed), int(subject_offset)
    if sessions is None:
        sessions = layout == "atlas"
    if layout == "atlas" and subject_offset + n_subjects > 999:
        raise ValueError("atlas layout supports subject numbers up to 999")
    picker = None
    if lesion_masks is not None:
        mask_paths = _check_mask_paths(lesion_masks)
        picker = _MaskPicker(mask_paths, seed, res)
        # Fail before anything is written when no mask is usable.
        picker.shape_for(subject_offset + 1)

    root = Path(out_dir).expanduser().absolute()
    root.mkdir(parents=True, exist_ok=True)
    numbers = list(range(subject_offset + 1, subject_offset + n_subjects + 1))
    width = max(2, len(str(numbers[-1])))
    generated_by = _generated_by(
        seed,
        n_subjects,
        res,
        layout,
        subject_offset,
        None if lesion_masks is None else len(mask_paths),
    )
    mask_desc = "T1lesion" if layout == "atlas" else "lesion"
    lesion_root = root if layout == "atlas" else root / "derivatives" / "lesions"

    rows: list[tuple[str, float, int, str]] = []
    from tqdm.auto import tqdm

    bar = tqdm(
        numbers, desc="bids_stroke demo", unit="subject", disable=not progress, file=sys.stderr
    )
    for number in bar:
        shape = None if picker is None else picker.shape_for(number)
        subj = _synthesise(number, seed, res, shape)
        label = subject_label(number, layout, width=width)
        parts = [f"sub-{label}"] + (["ses-1"] if sessions else [])
        rel = Path(*parts, "anat")
        prefix = "_".join(parts) + f"_space-{SPACE}"
        t1_path = root / rel / f"{prefix}_T1w.nii.gz"
        mask_path = lesion_root / rel / f"{prefix}_label-L_desc-{mask_desc}_mask.nii.gz"
        _write_nifti(t1_path, subj.t1w, subj.affine)
        _write_nifti(mask_path, subj.mask, subj.affine)
        t1_desc = "Synthetic chronic-stroke T1w image (bids_stroke demo)."
        mask_meta: dict[str, Any] = {
            "Type": "Lesion",
            "Description": "Binary lesion mask: exactly the voxels darkened in the T1w.",
            "Sources": [f"bids::{(rel / t1_path.name).as_posix()}"],
            "LesionVolume": round(subj.lesion_volume_ml, 4),
            "NumberOfLesions": subj.n_lesions,
        }
        if shape is not None:
            t1_desc = (
                "Synthetic chronic-stroke T1w image (bids_stroke demo) with the shape of the "
                f"real lesion mask {shape.source}."
            )
            mask_meta["LesionSource"] = shape.source
            mask_meta["SourceLesionVolume"] = round(shape.source_volume_ml, 4)
        _write_json(
            t1_path.with_name(f"{prefix}_T1w.json"),
            {
                "SkullStripped": True,
                "Description": t1_desc,
                "SyntheticParameters": {"seed": seed, "subject_number": number, **subj.params},
            },
        )
        _write_json(mask_path.with_name(mask_path.name.replace(".nii.gz", ".json")), mask_meta)
        source = "synthetic" if shape is None else shape.source
        rows.append((f"sub-{label}", subj.lesion_volume_ml, subj.n_lesions, source))
        LOGGER.debug("sub-%s: %.2f ml, %d lesion(s)", label, subj.lesion_volume_ml, subj.n_lesions)
    bar.close()

    _write_json(
        root / "dataset_description.json",
        {
            "Name": "bids_stroke synthetic stroke demo"
            + (" (ATLAS v2.0 layout)" if layout == "atlas" else ""),
            "BIDSVersion": "1.8.0",
            # The images are already preprocessed (skull-stripped, in MNI space): BIDS only
            # allows the ``space-`` entity (and lesion masks) in derivative datasets, so
            # declaring it a derivative makes the bids-validator accept the ATLAS naming.
            "DatasetType": "derivative",
            "License": "CC0",
            "Authors": ["bids_stroke developers"],
            "GeneratedBy": generated_by,
        },
    )
    if picker is None:
        lines = ["participant_id\tlesion_volume_ml\tn_lesions\tseed"]
        lines += [f"{pid}\t{vol:.4f}\t{n}\t{seed}" for pid, vol, n, _ in rows]
    else:
        lines = ["participant_id\tlesion_volume_ml\tn_lesions\tseed\tlesion_source"]
        lines += [f"{pid}\t{vol:.4f}\t{n}\t{seed}\t{src}" for pid, vol, n, src in rows]
    (root / "participants.tsv").write_text("\n".join(lines) + "\n")
    participants_meta: dict[str, Any] = {
        "participant_id": {"Description": "Synthetic subject identifier."},
        "lesion_volume_ml": {
            "LongName": "Lesion volume",
            "Description": "Volume of the lesion mask.",
            "Units": "ml",
        },
        "n_lesions": {
            "LongName": "Number of lesions",
            "Description": "Number of 26-connected components of the lesion mask.",
        },
        "seed": {
            "Description": "Dataset seed; the subject generator is "
            "numpy.random.default_rng([seed, subject_number]).",
        },
    }
    if picker is not None:
        participants_meta["lesion_source"] = {
            "Description": "File name of the real lesion mask whose shape the subject's "
            "lesion takes ('synthetic' for a generated lesion).",
        }
    _write_json(root / "participants.json", participants_meta)
    if layout == "atlas":
        layout_text = (
            "ATLAS v2.0 naming; lesion masks (`_label-L_desc-T1lesion_mask`) lie beside the "
            "T1w images."
        )
    else:
        layout_text = "lesion masks are in the derivative dataset derivatives/lesions."
        _write_json(
            lesion_root / "dataset_description.json",
            {
                "Name": "bids_stroke synthetic stroke demo: lesion masks",
                "BIDSVersion": "1.8.0",
                "DatasetType": "derivative",
                "License": "CC0",
                "GeneratedBy": generated_by,
                "SourceDatasets": [{"URL": "../../"}],
            },
        )
    call = generated_by[0]["Description"].split(": ", 1)[1]
    lesion_text = (
        _SYNTHETIC_LESION_TEXT
        if picker is None
        else _REAL_LESION_TEXT.format(n_masks=len(mask_paths))
    )
    origin_text = _SYNTHETIC_ORIGIN if picker is None else _REAL_ORIGIN
    (root / "README").write_text(
        _README.format(
            call=call,
            layout_text=layout_text,
            space=SPACE,
            res=res,
            lesion_text=lesion_text,
            origin_text=origin_text,
        )
    )
    return root
