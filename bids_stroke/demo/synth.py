"""One synthetic subject: lesions, chronic-stroke contrast, bias field and Rician noise."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from bids_stroke.demo.lesions import _STRUCT26, _make_lesions, _smooth_noise
from bids_stroke.demo.real_lesions import LesionShape, _check_shape_volume, load_lesion_shape
from bids_stroke.demo.template import _check_resolution, _load_template


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

