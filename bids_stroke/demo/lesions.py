"""Synthetic lesions: smooth irregular blobs in one hemisphere's MCA-like territory."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from bids_stroke.demo.template import _Template

_STRUCT26 = np.ones((3, 3, 3), dtype=bool)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Uniformly distributed 3-D rotation matrix (QR of a Gaussian matrix)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    rotation: np.ndarray = q
    return rotation


def _smooth_noise(rng: np.random.Generator, shape: Sequence[int], sigma_vox: float) -> np.ndarray:
    """Unit-variance Gaussian-smoothed white noise."""
    noise = ndimage.gaussian_filter(
        rng.standard_normal(tuple(shape)).astype(np.float32), sigma=sigma_vox, mode="reflect"
    )
    std = float(noise.std())
    unit: np.ndarray = noise / std if std > 0 else noise
    return unit


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
        ci, cj, ck = (int(c) for c in np.unravel_index(pool[rng.integers(pool.size)], shape))
        centre = (ci, cj, ck)
        if first_xyz is None:
            first_xyz = np.asarray(centre)
        n_vox = max(round(frac * target_ml / voxel_ml), min_voxels)
        lesion |= _grow_blob(rng, tpl, centre, n_vox, free)

    params = {
        "hemisphere": hemisphere,
        "target_volume_ml": round(target_ml, 4),
        "n_components_drawn": n_components,
    }
    return lesion, params

