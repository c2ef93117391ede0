"""Template resolution: TemplateFlow first, then an offline stand-in bundled with nilearn.

The analysis space of *bids_stroke* is ``MNI152NLin2009aSym`` (the space and grid of
ATLAS v2.0). This module hands out paths to the template T1w image and its brain mask.

Resolution order for ``get_template(template, suffix=..., desc=..., resolution=...)``:

1. Unless ``BIDS_STROKE_OFFLINE=1``: a *valid* (non-empty, loadable, non-zero) file under
   ``$TEMPLATEFLOW_HOME`` with TemplateFlow's exact name is returned directly, without any
   network access. TemplateFlow's pip package ships **empty placeholder** NIfTIs; those are
   detected and never returned.
2. Unless ``BIDS_STROKE_OFFLINE=1``: ``TemplateFlowClient.get`` is asked for the file, in a
   daemon thread bounded by ``BIDS_STROKE_TEMPLATEFLOW_TIMEOUT`` seconds (default 30; the
   HTTP timeout given to TemplateFlow is at most 10 s), so an absent or black-holed network
   can never hang the caller. Before that, a TCP probe of TemplateFlow's S3 host (bounded by
   ``BIDS_STROKE_TEMPLATEFLOW_PROBE_TIMEOUT``, default 5 s, DNS included) runs once per
   process; an unreachable host, or any TemplateFlow error (``requests.ConnectionError``
   offline), disables further TemplateFlow queries in the process. Errors are logged.
3. For ``resolution != 1`` when TemplateFlow has no such file: the resolution-1 file (from
   whichever source) is resampled onto an isotropic grid with the same corner voxel and
   cached (deterministically, gzip ``mtime=0``) under the user cache directory.
4. Otherwise, for ``MNI152NLin2009aSym`` only, the **nilearn stand-in** is used and a
   warning is logged: nilearn's bundled ``mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz``
   (197x233x189, 1 mm, uint8, *skull-stripped*) is the MNI152NLin2009aSym template in
   ATLAS v2.0's space and shape, but it is not byte-identical to TemplateFlow's
   ``tpl-MNI152NLin2009aSym_res-1_T1w.nii.gz`` (193x229x193, with skull). The stand-in brain
   mask is ``(GM + WM probability) > 0.2`` from nilearn's bundled tissue maps, restricted to
   the largest connected component, closed (2 iterations, 3x3x3) and hole-filled (so that
   ventricles are inside), in the spirit of ``nilearn.datasets.load_mni152_brain_mask``.

``python -m bids_stroke.templates fetch [--dest DIR]`` pre-fetches the templates into
``TEMPLATEFLOW_HOME``; when there is no network it installs the nilearn stand-in files under
TemplateFlow's exact names (so that ``templateflow.api.get`` returns them) and records them
in ``tpl-<template>/.bids_stroke-standin.json`` so that provenance still says "stand-in".
``python -m bids_stroke.templates info`` prints :func:`template_provenance` as JSON.

Environment variables: ``TEMPLATEFLOW_HOME``, ``BIDS_STROKE_OFFLINE``,
``BIDS_STROKE_TEMPLATEFLOW_TIMEOUT``, ``BIDS_STROKE_CACHE_DIR`` (else
``$XDG_CACHE_HOME/bids_stroke``, else ``~/.cache/bids_stroke``).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

LOGGER = logging.getLogger(__name__)

DEFAULT_TEMPLATE = "MNI152NLin2009aSym"
#: Templates for which an offline stand-in exists.
STANDIN_TEMPLATES = ("MNI152NLin2009aSym",)
#: Threshold on the GM+WM probability sum (0..1) used to build the stand-in brain mask.
STANDIN_MASK_THRESHOLD = 0.2
#: Name of the marker written by ``fetch`` next to stand-in files installed in TemplateFlow.
STANDIN_MARKER = ".bids_stroke-standin.json"
STANDIN_NOTE = (
    "nilearn's bundled MNI152NLin2009aSym (mni_icbm152_*_tal_nlin_sym_09a_converted, "
    "197x233x189, 1 mm, skull-stripped) used as a stand-in for TemplateFlow's "
    "tpl-MNI152NLin2009aSym (193x229x193); same space, not byte-identical"
)

_NILEARN_FILES = {
    "T1w": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "GM": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "WM": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}

# (template, suffix, desc, resolution) -> record dict (path, source, ...)
_RESOLVED: dict[tuple[str, str, str | None, int], dict[str, Any]] = {}
_WARNED: set[tuple[str, str, str | None, int]] = set()
_LOCK = threading.RLock()
_CLIENTS: dict[str, Any] = {}
# Separate lock: the worker thread must never wait for _LOCK, which the caller holds.
_CLIENT_LOCK = threading.Lock()
# Per-process circuit breaker: None = unknown, False = TemplateFlow unreachable.
_TF_STATE: dict[str, bool | None] = {"reachable": None}
TEMPLATEFLOW_HOST = "templateflow.s3.amazonaws.com"


class TemplateError(RuntimeError):
    """A template file could not be obtained from TemplateFlow nor from a stand-in."""


# --------------------------------------------------------------------------- environment
def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on", "y"}


def is_offline() -> bool:
    """True when ``BIDS_STROKE_OFFLINE`` asks to skip TemplateFlow entirely."""
    return _env_flag("BIDS_STROKE_OFFLINE")


def templateflow_timeout() -> float:
    """Upper bound (s) on one TemplateFlow query (``BIDS_STROKE_TEMPLATEFLOW_TIMEOUT``)."""
    try:
        value = float(os.environ.get("BIDS_STROKE_TEMPLATEFLOW_TIMEOUT", "30"))
    except ValueError:
        value = 30.0
    return max(value, 0.1)


def probe_timeout() -> float:
    """Bound (s) on the one-off reachability probe (``BIDS_STROKE_TEMPLATEFLOW_PROBE_TIMEOUT``)."""
    try:
        value = float(os.environ.get("BIDS_STROKE_TEMPLATEFLOW_PROBE_TIMEOUT", "5"))
    except ValueError:
        value = 5.0
    return max(value, 0.1)


def _probe(host: str, port: int, timeout: float) -> bool:
    import socket

    box: dict[str, bool] = {}

    def _target() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                box["ok"] = True
        except OSError:
            box["ok"] = False

    worker = threading.Thread(target=_target, name="bids_stroke-probe", daemon=True)
    worker.start()
    worker.join(timeout)  # getaddrinfo() is not bounded by the socket timeout
    return bool(box.get("ok", False))


def templateflow_reachable() -> bool:
    """Whether TemplateFlow's S3 server answers a TCP connection (probed once per process).

    A failed TemplateFlow query also marks it unreachable for the rest of the process, so
    an offline run pays the probe timeout at most once.
    """
    with _LOCK:
        state = _TF_STATE["reachable"]
        if state is None:
            proxied = any(os.environ.get(v) for v in
                          ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"))
            # Behind a proxy a direct TCP probe says nothing; rely on the bounded query.
            state = True if proxied else _probe(TEMPLATEFLOW_HOST, 443, probe_timeout())
            _TF_STATE["reachable"] = state
            if not state:
                LOGGER.info("TemplateFlow (%s) is not reachable; using local files only.",
                            TEMPLATEFLOW_HOST)
    return bool(state)


def templateflow_home() -> Path:
    """``$TEMPLATEFLOW_HOME`` or TemplateFlow's default (platform user cache directory)."""
    env = os.environ.get("TEMPLATEFLOW_HOME")
    if env:
        return Path(env).expanduser().absolute()
    try:
        from platformdirs import user_cache_dir

        return Path(user_cache_dir("templateflow")).absolute()
    except ImportError:  # pragma: no cover - platformdirs comes with templateflow
        return (Path.home() / ".cache" / "templateflow").absolute()


def cache_dir() -> Path:
    """Writable cache directory of bids_stroke (never inside site-packages)."""
    env = os.environ.get("BIDS_STROKE_CACHE_DIR")
    if env:
        base = Path(env).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "bids_stroke"
    try:
        base.mkdir(parents=True, exist_ok=True)
        if os.access(base, os.W_OK):
            return base
    except OSError:
        pass
    fallback = Path(tempfile.gettempdir()) / f"bids_stroke-{os.getuid()}"
    fallback.mkdir(parents=True, exist_ok=True)
    return fallback


def nilearn_data_dir() -> Path:
    """Folder of nilearn's bundled data files (holds the MNI152 2009a templates)."""
    import nilearn.datasets

    return Path(nilearn.datasets.__file__).parent / "data"


# --------------------------------------------------------------------------- helpers
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fobj:
        for chunk in iter(lambda: fobj.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@lru_cache(maxsize=64)
def _valid_cached(path: str, size: int, mtime_ns: int) -> bool:
    try:
        img = nib.load(path)
        if len(img.shape) < 3 or min(img.shape[:3]) < 2:
            return False
        data = np.asanyarray(img.dataobj)
        return bool(np.isfinite(data).all() and np.any(data != 0))
    except Exception:
        return False


def is_valid_nifti(path: str | os.PathLike[str] | None) -> bool:
    """True if ``path`` is a non-empty, fully readable 3D NIfTI with non-zero, finite data.

    TemplateFlow's empty placeholders (0 bytes) and truncated downloads are invalid.
    """
    if path is None:
        return False
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return False
    if not p.is_file() or st.st_size == 0:
        return False
    return _valid_cached(str(p.resolve()), st.st_size, st.st_mtime_ns)


def _save_nifti_deterministic(img: nib.Nifti1Image, path: Path) -> Path:
    """Write ``img`` to ``path`` atomically; ``.gz`` output has no mtime nor file name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = img.to_bytes()
    if path.name.endswith(".gz"):
        payload = gzip.compress(payload, compresslevel=6, mtime=0)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".nii.gz")
    try:
        with os.fdopen(fd, "wb") as fobj:
            fobj.write(payload)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def templateflow_filename(template: str, suffix: str, desc: str | None, resolution: int,
                          *, zero_pad: bool = False) -> str:
    """TemplateFlow's file name for the given entities (``res-1`` or ``res-01``)."""
    res = f"{resolution:02d}" if zero_pad else f"{resolution:d}"
    desc_part = f"_desc-{desc}" if desc else ""
    return f"tpl-{template}_res-{res}{desc_part}_{suffix}.nii.gz"


def _local_candidates(template: str, suffix: str, desc: str | None, resolution: int,
                      home: Path | None = None) -> list[Path]:
    folder = (home or templateflow_home()) / f"tpl-{template}"
    return [
        folder / templateflow_filename(template, suffix, desc, resolution, zero_pad=pad)
        for pad in (False, True)
    ]


def _standin_marker_lists(path: Path) -> bool:
    marker = path.parent / STANDIN_MARKER
    if not marker.is_file():
        return False
    try:
        info = json.loads(marker.read_text())
        entry = info.get("files", {}).get(path.name)
    except (OSError, ValueError, AttributeError):
        return False
    if not entry:
        return False
    try:
        st = path.stat()
    except OSError:
        return False
    return int(entry.get("size", -1)) == st.st_size


def _templateflow_record(path: Path) -> dict[str, Any]:
    standin = _standin_marker_lists(path)
    return {
        "path": path,
        "source": "templateflow-standin" if standin else "templateflow",
        "standin": standin,
        "note": STANDIN_NOTE if standin else "TemplateFlow file",
    }


def _client_for(home: Path, timeout: float) -> Any:
    """A TemplateFlow client rooted at ``home`` (honours TEMPLATEFLOW_HOME at call time)."""
    from templateflow import TemplateFlowClient

    key = str(home)
    with _CLIENT_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            client = TemplateFlowClient(root=home, autoupdate=False,
                                        timeout=max(1, min(10, int(timeout))))
            _CLIENTS[key] = client
    return client


def _templateflow_get(template: str, suffix: str, desc: str | None, resolution: int
                      ) -> Path | None:
    """Ask TemplateFlow (network allowed) for one file, bounded in time; None on failure."""
    home = templateflow_home()
    timeout = templateflow_timeout()
    box: dict[str, Any] = {}

    def _target() -> None:
        try:
            client = _client_for(home, timeout)
            box["value"] = client.get(template, resolution=resolution, suffix=suffix,
                                      desc=desc, extension=[".nii.gz"])
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=_target, name="bids_stroke-templateflow", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        _TF_STATE["reachable"] = False
        LOGGER.warning("TemplateFlow did not answer within %.1f s for tpl-%s (%s%s); "
                       "giving up (set BIDS_STROKE_OFFLINE=1 to skip it).", timeout, template,
                       f"desc-{desc}_" if desc else "", suffix)
        return None
    if "error" in box:
        exc = box["error"]
        _TF_STATE["reachable"] = False
        LOGGER.info("TemplateFlow could not provide tpl-%s %s%s: %s: %s", template,
                    f"desc-{desc} " if desc else "", suffix, type(exc).__name__,
                    str(exc).splitlines()[0] if str(exc) else "")
        return None
    value = box.get("value")
    if isinstance(value, (list, tuple)):
        paths = [Path(v) for v in value]
        value = paths[0] if len(paths) == 1 else None
    if value is None:
        return None
    path = Path(value)
    return path if is_valid_nifti(path) else None


def _templateflow_lookup(template: str, suffix: str, desc: str | None, resolution: int
                         ) -> dict[str, Any] | None:
    candidates = _local_candidates(template, suffix, desc, resolution)
    for cand in candidates:
        if is_valid_nifti(cand):
            return _templateflow_record(cand)
    if is_offline():
        return None
    # Only ask TemplateFlow when its skeleton says the file exists (avoids a slow layout
    # query for files TemplateFlow does not have, e.g. MNI152NLin2009aSym at 2 mm).
    home = templateflow_home()
    skeleton_known = home.is_dir() and any(home.iterdir())
    if skeleton_known and not any(c.exists() for c in candidates):
        return None
    if not templateflow_reachable():
        return None
    path = _templateflow_get(template, suffix, desc, resolution)
    return _templateflow_record(path) if path is not None else None


# --------------------------------------------------------------------------- stand-in
def _standin_mask_image() -> nib.Nifti1Image:
    """Brain mask from nilearn's GM+WM probability maps (see module docstring)."""
    from scipy import ndimage

    data_dir = nilearn_data_dir()
    gm_img = nib.load(data_dir / _NILEARN_FILES["GM"])
    wm_img = nib.load(data_dir / _NILEARN_FILES["WM"])
    gm = np.asarray(gm_img.dataobj, dtype=np.float32)
    wm = np.asarray(wm_img.dataobj, dtype=np.float32)
    scale = 255.0 if max(float(gm.max()), float(wm.max())) > 1.5 else 1.0
    prob = (gm + wm) / scale
    mask = prob > STANDIN_MASK_THRESHOLD
    labels, nlab = ndimage.label(mask)
    if nlab > 1:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        mask = labels == int(np.argmax(sizes))
    pad = 3
    padded = np.pad(mask, pad)
    padded = ndimage.binary_closing(padded, structure=np.ones((3, 3, 3), bool), iterations=2)
    mask = ndimage.binary_fill_holes(padded)[pad:-pad, pad:-pad, pad:-pad]
    hdr = gm_img.header.copy()
    hdr.set_data_dtype(np.uint8)
    out = nib.Nifti1Image(mask.astype(np.uint8), gm_img.affine, hdr)
    out.header.set_slope_inter(1.0, 0.0)
    out.set_sform(gm_img.affine, code=4)
    out.set_qform(gm_img.affine, code=4)
    return out


def _standin_file(suffix: str, desc: str | None) -> Path | None:
    """The 1 mm stand-in file for (suffix, desc), creating the mask in the cache if needed."""
    if suffix == "T1w" and desc in (None, ""):
        return nilearn_data_dir() / _NILEARN_FILES["T1w"]
    if suffix == "mask" and desc == "brain":
        src = nilearn_data_dir() / _NILEARN_FILES["GM"]
        tag = _sha256(src)[:12]
        out = (cache_dir() / "templates" / f"nilearn-{tag}"
               / templateflow_filename("MNI152NLin2009aSym", "mask", "brain", 1))
        if not is_valid_nifti(out):
            _save_nifti_deterministic(_standin_mask_image(), out)
        return out
    return None


def _standin_record(template: str, suffix: str, desc: str | None) -> dict[str, Any] | None:
    if template not in STANDIN_TEMPLATES:
        return None
    path = _standin_file(suffix, desc)
    if path is None:
        return None
    return {"path": path, "source": "nilearn-standin", "standin": True, "note": STANDIN_NOTE}


# --------------------------------------------------------------------------- resampling
def resample_isotropic(img: nib.Nifti1Image, resolution: float, *, is_mask: bool
                       ) -> nib.Nifti1Image:
    """Resample ``img`` onto an isotropic ``resolution`` mm grid with the same corner voxel.

    Intensities: Gaussian anti-aliasing (sigma from the FWHM difference) then trilinear.
    Masks: trilinear interpolation of the binary mask, then ``>= 0.5``. Deterministic.
    """
    from scipy import ndimage

    data = np.asarray(img.dataobj, dtype=np.float32)
    zooms = np.asarray(img.header.get_zooms()[:3], dtype=float)
    new_zooms = np.full(3, float(resolution))
    shape = tuple(int(np.ceil(s * z / resolution - 1e-6)) for s, z in
                  zip(img.shape[:3], zooms, strict=True))
    rot = img.affine[:3, :3] / zooms
    new_affine = np.eye(4)
    new_affine[:3, :3] = rot * new_zooms
    new_affine[:3, 3] = img.affine[:3, 3]
    if not is_mask:
        fwhm = np.sqrt(np.clip(new_zooms**2 - zooms**2, 0, None))
        sigma_vox = fwhm / np.sqrt(8 * np.log(2)) / zooms
        if np.any(sigma_vox > 0):
            data = ndimage.gaussian_filter(data, sigma_vox, mode="nearest")
    vox2vox = np.linalg.inv(img.affine) @ new_affine
    out = ndimage.affine_transform(data, vox2vox[:3, :3], offset=vox2vox[:3, 3],
                                   output_shape=shape, order=1, mode="constant", cval=0.0)
    hdr = img.header.copy()
    if is_mask:
        out = (out >= 0.5).astype(np.uint8)
        hdr.set_data_dtype(np.uint8)
    else:
        out = out.astype(np.float32)
        hdr.set_data_dtype(np.float32)
    res = nib.Nifti1Image(out, new_affine, hdr)
    res.header.set_slope_inter(1.0, 0.0)
    res.header.set_zooms(tuple(new_zooms))
    code = int(img.header["sform_code"]) or 4
    res.set_sform(new_affine, code=code)
    res.set_qform(new_affine, code=code)
    return res


def _resampled_record(template: str, suffix: str, desc: str | None, resolution: int,
                      base: dict[str, Any]) -> dict[str, Any]:
    src = Path(base["path"])
    tag = _sha256(src)[:12]
    out = (cache_dir() / "templates" / f"{base['source']}-{tag}"
           / templateflow_filename(template, suffix, desc, resolution))
    if not is_valid_nifti(out):
        img = resample_isotropic(nib.load(src), resolution, is_mask=(suffix == "mask"))
        _save_nifti_deterministic(img, out)
    rec = dict(base)
    rec.update(path=out, resampled_from=str(src),
               note=f"{base['note']}; resampled to {resolution} mm by bids_stroke")
    return rec


# --------------------------------------------------------------------------- public API
def _resolve(template: str, suffix: str, desc: str | None, resolution: int
             ) -> dict[str, Any]:
    rec = _templateflow_lookup(template, suffix, desc, resolution)
    if rec is not None:
        return rec
    if resolution != 1:
        base = _resolve(template, suffix, desc, 1)
        return _resampled_record(template, suffix, desc, resolution, base)
    rec = _standin_record(template, suffix, desc)
    if rec is None:
        raise TemplateError(
            f"tpl-{template} {suffix} (desc={desc}, res-{resolution}) is not in TemplateFlow "
            f"home {templateflow_home()} and has no offline stand-in "
            f"(stand-ins exist for {', '.join(STANDIN_TEMPLATES)}: T1w and desc-brain mask)")
    key = (template, suffix, desc, resolution)
    if key not in _WARNED:
        _WARNED.add(key)
        reason = ("BIDS_STROKE_OFFLINE=1" if is_offline()
                  else f"TemplateFlow unavailable (home: {templateflow_home()})")
        LOGGER.warning("%s: using a STAND-IN for tpl-%s %s%s: %s -> %s", reason, template,
                       f"desc-{desc} " if desc else "", suffix, STANDIN_NOTE, rec["path"])
    return rec


def get_template(template: str = DEFAULT_TEMPLATE, *, suffix: str = "T1w",
                 desc: str | None = None, resolution: int = 1) -> Path:
    """Path to a template file (TemplateFlow, else the offline nilearn stand-in).

    Parameters
    ----------
    template
        TemplateFlow identifier; offline stand-ins exist for ``MNI152NLin2009aSym`` only.
    suffix, desc
        ``suffix="T1w"`` (``desc=None``) or ``suffix="mask", desc="brain"``.
    resolution
        TemplateFlow ``res-`` index, taken as mm for resampled stand-ins (1 or 2 typically).

    Raises
    ------
    TemplateError
        If no valid file can be obtained.
    """
    resolution = int(resolution)
    desc = desc or None
    key = (template, suffix, desc, resolution)
    with _LOCK:
        rec = _RESOLVED.get(key)
        if rec is None or not is_valid_nifti(rec["path"]):
            rec = _resolve(template, suffix, desc, resolution)
            _RESOLVED[key] = rec
    return Path(rec["path"])


def template_source(template: str = DEFAULT_TEMPLATE, *, suffix: str = "T1w",
                    desc: str | None = None, resolution: int = 1) -> str:
    """Source of :func:`get_template`'s file: ``templateflow``, ``templateflow-standin``
    (stand-in installed by ``fetch``) or ``nilearn-standin``."""
    get_template(template, suffix=suffix, desc=desc, resolution=resolution)
    return str(_RESOLVED[(template, suffix, desc or None, int(resolution))]["source"])


def template_provenance(template: str = DEFAULT_TEMPLATE, resolution: int = 1
                        ) -> dict[str, Any]:
    """Which source provides the template T1w and brain mask (for sidecars and reports).

    Resolves both files (see :func:`get_template`) and returns a JSON-serialisable dict with
    ``template``, ``resolution``, ``source`` (``templateflow``, ``templateflow-standin`` or
    ``nilearn-standin``; ``mixed`` if they differ), ``standin`` (bool), ``files`` (per file:
    path, source, sha256, shape, zooms, note), ``templateflow_home`` and ``offline``.
    """
    files: dict[str, dict[str, Any]] = {}
    for name, suffix, desc in (("T1w", "T1w", None), ("brain_mask", "mask", "brain")):
        path = get_template(template, suffix=suffix, desc=desc, resolution=resolution)
        rec = _RESOLVED[(template, suffix, desc, int(resolution))]
        img = nib.load(path)
        files[name] = {
            "path": str(path),
            "source": rec["source"],
            "standin": bool(rec["standin"]),
            "sha256": _sha256(path),
            "shape": [int(s) for s in img.shape[:3]],
            "zooms": [float(z) for z in img.header.get_zooms()[:3]],
            "note": rec["note"],
        }
    sources = {f["source"] for f in files.values()}
    try:
        from importlib.metadata import version

        tf_version = version("templateflow")
    except Exception:
        tf_version = None
    return {
        "template": template,
        "resolution": int(resolution),
        "source": sources.pop() if len(sources) == 1 else "mixed",
        "standin": any(f["standin"] for f in files.values()),
        "files": files,
        "templateflow_home": str(templateflow_home()),
        "templateflow_version": tf_version,
        "offline": is_offline(),
    }


def _load_img(img: nib.Nifti1Image | str | os.PathLike[str]) -> nib.Nifti1Image:
    return img if isinstance(img, nib.spatialimages.SpatialImage) else nib.load(img)


def brain_mask_like(img: nib.Nifti1Image | str | os.PathLike[str], *,
                    template: str = DEFAULT_TEMPLATE) -> nib.Nifti1Image:
    """The template brain mask resampled (nearest neighbour) onto ``img``'s grid.

    ``img`` must already be in the template space (both affines in MNI mm); only its
    affine and first three dimensions are used. Returns a uint8 0/1 image with
    ``img``'s affine; voxels outside the template's field of view are 0.
    """
    from scipy import ndimage

    target = _load_img(img)
    mask_img = nib.load(get_template(template, suffix="mask", desc="brain", resolution=1))
    mask = np.asarray(mask_img.dataobj) > 0
    vox2vox = np.linalg.inv(mask_img.affine) @ target.affine
    out = ndimage.affine_transform(mask.astype(np.uint8), vox2vox[:3, :3],
                                   offset=vox2vox[:3, 3], output_shape=target.shape[:3],
                                   order=0, mode="constant", cval=0)
    hdr = target.header.copy() if isinstance(target, nib.Nifti1Image) else None
    res = nib.Nifti1Image((out > 0).astype(np.uint8), target.affine, hdr)
    res.set_data_dtype(np.uint8)
    res.header.set_slope_inter(1.0, 0.0)
    if hdr is not None and hdr["dim"][0] > 3:
        res.header.set_zooms(target.header.get_zooms()[:3])
    return res


# --------------------------------------------------------------------------- CLI
def fetch(dest: Path | None = None, template: str = DEFAULT_TEMPLATE, *,
          allow_standin: bool = True) -> dict[str, str]:
    """Populate ``dest`` (default ``TEMPLATEFLOW_HOME``) with the template T1w and brain mask.

    TemplateFlow is tried first; files it cannot provide are replaced by the nilearn
    stand-in copied under TemplateFlow's exact name and listed in ``STANDIN_MARKER``, unless
    ``allow_standin`` is false: then :class:`TemplateError` is raised and no stand-in is
    written (image builds that must hold TemplateFlow's real files).
    Returns ``{file name: source}``.
    """
    if dest is not None:
        os.environ["TEMPLATEFLOW_HOME"] = str(Path(dest).absolute())
    home = templateflow_home()
    home.mkdir(parents=True, exist_ok=True)
    folder = home / f"tpl-{template}"
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / STANDIN_MARKER
    try:
        marker_info = json.loads(marker.read_text()) if marker.is_file() else {}
    except (OSError, ValueError):
        marker_info = {}
    marker_files: dict[str, Any] = dict(marker_info.get("files", {}))
    report: dict[str, str] = {}
    for suffix, desc in (("T1w", None), ("mask", "brain")):
        name = templateflow_filename(template, suffix, desc, 1)
        path = None if is_offline() else _templateflow_lookup(template, suffix, desc, 1)
        if path is not None and not path["standin"]:
            marker_files.pop(name, None)
            report[name] = "templateflow"
            continue
        if not allow_standin:
            raise TemplateError(
                f"cannot fetch {name} from TemplateFlow (no network, or TemplateFlow's server "
                "unreachable) and stand-ins are not allowed: build with network, or allow "
                "nilearn's stand-in (Docker: --build-arg ALLOW_TEMPLATE_STANDIN=1)")
        standin = _standin_file(suffix, desc) if template in STANDIN_TEMPLATES else None
        if standin is None:
            raise TemplateError(f"cannot fetch {name} and no stand-in exists for it")
        target = folder / name
        tmp = folder / f".tmp-{name}"
        shutil.copyfile(standin, tmp)
        os.replace(tmp, target)
        marker_files[name] = {"size": target.stat().st_size, "sha256": _sha256(target),
                              "source": str(standin.name)}
        report[name] = "nilearn-standin"
    if marker_files:
        marker.write_text(json.dumps({"note": STANDIN_NOTE, "files": marker_files},
                                     indent=2, sort_keys=True) + "\n")
    elif marker.exists():
        marker.unlink()
    with _LOCK:
        _RESOLVED.clear()
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bids_stroke.templates {fetch,info}``."""
    parser = argparse.ArgumentParser(prog="python -m bids_stroke.templates",
                                     description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_fetch = sub.add_parser("fetch", help="pre-fetch templates into TEMPLATEFLOW_HOME")
    p_fetch.add_argument("--dest", type=Path, default=None,
                         help="TemplateFlow home to populate (default: $TEMPLATEFLOW_HOME)")
    p_fetch.add_argument("--template", default=DEFAULT_TEMPLATE)
    p_fetch.add_argument("--no-standin", action="store_true",
                         help="fail (exit 1) instead of installing the nilearn stand-in when "
                         "TemplateFlow cannot provide a file")
    p_info = sub.add_parser("info", help="print the template provenance as JSON")
    p_info.add_argument("--template", default=DEFAULT_TEMPLATE)
    p_info.add_argument("--resolution", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "fetch":
            report = fetch(args.dest, args.template, allow_standin=not args.no_standin)
            print(json.dumps({"templateflow_home": str(templateflow_home()), "files": report},
                             indent=2))
        else:
            print(json.dumps(template_provenance(args.template, args.resolution), indent=2))
    except TemplateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
