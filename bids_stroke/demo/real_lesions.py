"""Real lesion shapes: binary masks in MNI space put on the demo grid."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bids_stroke.degradation.nifti import load_nifti
from bids_stroke.demo.template import _check_resolution, _load_template

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
        img = load_nifti(path)
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

