"""The demo grid and nilearn's MNI152NLin2009aSym template resampled on it."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from bids_stroke.core.settings import TEMPLATE
from bids_stroke.degradation.nifti import load_nifti

SPACE = TEMPLATE
"""Template space of every demo image (that of nilearn's bundled ICBM 2009a sym template)."""

_TEMPLATE_SHAPE = (197, 233, 189)
_TEMPLATE_ORIGIN = (-98.0, -134.0, -72.0)
_NILEARN_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}
_MIN_RES, _MAX_RES = 0.5, 8.0


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
    from bids_stroke.templates.standin import nilearn_data_dir  # without importing nilearn

    data_dir = nilearn_data_dir().resolve()
    paths = {key: data_dir / name for key, name in _NILEARN_FILES.items()}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"nilearn's bundled {TEMPLATE} templates are missing: " + ", ".join(missing)
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
    nx, ny, nz = (math.floor((n - 1) / resolution_mm + 1e-9) + 1 for n in _TEMPLATE_SHAPE)
    affine = np.diag([resolution_mm, resolution_mm, resolution_mm, 1.0])
    affine[:3, 3] = _TEMPLATE_ORIGIN
    return (nx, ny, nz), affine


def _resample(data: np.ndarray, resolution_mm: float, shape: Sequence[int]) -> np.ndarray:
    """Resample a 1 mm template array on the ``resolution_mm`` grid (anti-aliased, linear)."""
    data = data.astype(np.float32)
    if resolution_mm == 1.0:
        return data
    if resolution_mm > 1.0:
        # Gaussian whose FWHM brings the 1 mm point-spread function to ``resolution_mm``.
        sigma = math.sqrt(resolution_mm**2 - 1.0) / (2.0 * math.sqrt(2.0 * math.log(2.0)))
        data = ndimage.gaussian_filter(data, sigma=sigma, mode="constant")
    resampled: np.ndarray = ndimage.affine_transform(
        data,
        matrix=np.diag(np.full(3, resolution_mm)),
        offset=0.0,
        output_shape=tuple(shape),
        order=1,
        mode="constant",
        cval=0.0,
    ).astype(np.float32)
    return resampled


@functools.lru_cache(maxsize=4)
def _load_template(resolution_mm: float) -> _Template:
    paths = demo_template_paths()
    raw = {k: np.asarray(load_nifti(p).dataobj, dtype=np.float32) for k, p in paths.items()}
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


def _check_resolution(resolution_mm: float) -> float:
    res = float(resolution_mm)
    if not math.isfinite(res) or not _MIN_RES <= res <= _MAX_RES:
        raise ValueError(
            f"resolution_mm must be between {_MIN_RES} and {_MAX_RES} mm, got {resolution_mm!r}"
        )
    return res

