"""Resolution of template files (see :mod:`bids_stroke.templates`)."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import zlib
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from bids_stroke.core.digest import file_sha256
from bids_stroke.core.settings import TEMPLATE
from bids_stroke.degradation.nifti import load_nifti, load_spatial
from bids_stroke.templates.resample import nearest_onto_grid, resample_isotropic
from bids_stroke.templates.standin import (
    STANDIN_NOTE,
    STANDIN_TEMPLATES,
    describe_source,
    save_nifti_deterministic,
    standin_file,
    templateflow_filename,
)

LOGGER = logging.getLogger(__name__)
DEFAULT_TEMPLATE = TEMPLATE
#: Marker written by ``fetch`` next to stand-in files installed in TemplateFlow's home.
STANDIN_MARKER = ".bids_stroke-standin.json"


class TemplateError(RuntimeError):
    """A template file could not be obtained from TemplateFlow nor from a stand-in."""


@dataclass(frozen=True)
class TemplateFile:
    """A resolved template file and where it comes from.

    ``source`` is ``templateflow``, ``templateflow-standin`` (a stand-in installed in
    TemplateFlow's home by ``fetch``) or ``nilearn-standin``.
    """

    path: Path
    source: str
    note: str
    resampled_from: str | None = None

    @property
    def standin(self) -> bool:
        return self.source != "templateflow"


# --------------------------------------------------------------------------- environment
def is_offline() -> bool:
    """True when ``BIDS_STROKE_OFFLINE`` asks ``fetch`` not to try TemplateFlow's server."""
    flag = os.environ.get("BIDS_STROKE_OFFLINE", "").strip().lower()
    return flag in {"1", "true", "yes", "on", "y"}


def templateflow_home() -> Path:
    """``$TEMPLATEFLOW_HOME`` or TemplateFlow's default (platform user cache directory)."""
    env = os.environ.get("TEMPLATEFLOW_HOME")
    if env:
        return Path(env).expanduser().absolute()
    from platformdirs import user_cache_dir  # a dependency of templateflow

    return Path(user_cache_dir("templateflow")).absolute()


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


# --------------------------------------------------------------------------- validity
_READ_ERRORS = (OSError, EOFError, ValueError, zlib.error, nib.filebasedimages.ImageFileError)


@lru_cache(maxsize=64)
def _valid_cached(path: str, size: int, mtime_ns: int) -> bool:
    try:
        img = load_spatial(path)
        if len(img.shape) < 3 or min(img.shape[:3]) < 2:
            return False
        data = np.asanyarray(img.dataobj)
    except _READ_ERRORS:
        return False
    return bool(np.isfinite(data).all() and np.any(data != 0))


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


# --------------------------------------------------------------------------- resolution
def read_marker(folder: Path) -> dict[str, Any]:
    """``{file name: {size, sha256, source}}`` of the stand-ins ``fetch`` installed."""
    marker = folder / STANDIN_MARKER
    try:
        files = json.loads(marker.read_text()).get("files", {})
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, AttributeError) as exc:
        LOGGER.warning("ignoring unreadable %s: %s", marker, exc)
        return {}
    return dict(files) if isinstance(files, dict) else {}


def local_file(home: Path, template: str, suffix: str, desc: str | None, resolution: int
               ) -> TemplateFile | None:
    """The real file with TemplateFlow's name under ``home`` (``res-1`` or ``res-01``)."""
    folder = home / f"tpl-{template}"
    for pad in (False, True):
        path = folder / templateflow_filename(template, suffix, desc, resolution, zero_pad=pad)
        if is_valid_nifti(path):
            entry = read_marker(folder).get(path.name)
            if entry and int(entry.get("size", -1)) == path.stat().st_size:
                return TemplateFile(path, "templateflow-standin", STANDIN_NOTE)
            return TemplateFile(path, "templateflow", "TemplateFlow file")
    return None


def _resampled(base: TemplateFile, template: str, suffix: str, desc: str | None,
               resolution: int, cache: Path) -> TemplateFile:
    tag = file_sha256(base.path)[:12]
    out = (cache / "templates" / f"{base.source}-{tag}"
           / templateflow_filename(template, suffix, desc, resolution))
    if not is_valid_nifti(out):
        img = resample_isotropic(load_nifti(base.path), resolution, is_mask=(suffix == "mask"))
        save_nifti_deterministic(img, out)
    return TemplateFile(out, base.source,
                        f"{base.note}; resampled to {resolution} mm by bids_stroke",
                        resampled_from=str(base.path))


@lru_cache(maxsize=64)
def _resolve(template: str, suffix: str, desc: str | None, resolution: int, home: Path,
             cache: Path) -> TemplateFile:
    found = local_file(home, template, suffix, desc, resolution)
    if found is not None:
        return found
    if resolution != 1:
        base = _resolve(template, suffix, desc, 1, home, cache)
        return _resampled(base, template, suffix, desc, resolution, cache)
    path = standin_file(template, suffix, desc, cache)
    if path is None:
        raise TemplateError(
            f"tpl-{template} {suffix} (desc={desc}, res-{resolution}) is not in TemplateFlow "
            f"home {home} and has no offline stand-in (stand-ins exist for "
            f"{', '.join(STANDIN_TEMPLATES)}: T1w and desc-brain mask); run "
            "`python -m bids_stroke.templates fetch --template "
            f"{template}` with network, or set TEMPLATEFLOW_HOME to a populated copy")
    # said once per run, in one short line, by the command (template_statement): here only
    # the details, since every worker process resolves the files again
    LOGGER.debug(
        "TEMPLATEFLOW_HOME (%s) holds no real %s (TemplateFlow's pip package ships empty "
        "placeholders): using the stand-in, %s -> %s", home,
        templateflow_filename(template, suffix, desc, resolution), STANDIN_NOTE, path)
    return TemplateFile(path, "nilearn-standin", STANDIN_NOTE)


def clear_cache() -> None:
    """Forget every resolved file (e.g. after ``fetch`` or a change of TEMPLATEFLOW_HOME)."""
    _resolve.cache_clear()
    _valid_cached.cache_clear()


def resolve_template(template: str = DEFAULT_TEMPLATE, *, suffix: str = "T1w",
                     desc: str | None = None, resolution: int = 1) -> TemplateFile:
    """The :class:`TemplateFile` :func:`get_template` returns the path of."""
    args = (template, suffix, desc or None, int(resolution), templateflow_home(), cache_dir())
    found = _resolve(*args)
    if not found.path.is_file():  # removed since it was resolved
        clear_cache()
        found = _resolve(*args)
    return found


def get_template(template: str = DEFAULT_TEMPLATE, *, suffix: str = "T1w",
                 desc: str | None = None, resolution: int = 1) -> Path:
    """Path to a template file (TemplateFlow's, else the offline nilearn stand-in).

    Parameters
    ----------
    template
        TemplateFlow identifier; offline stand-ins exist for ``MNI152NLin2009aSym`` only.
    suffix, desc
        ``suffix="T1w"`` (``desc=None``) or ``suffix="mask", desc="brain"``.
    resolution
        TemplateFlow ``res-`` index, taken as mm for resampled files (1 or 2 typically).

    Raises
    ------
    TemplateError
        If no valid file can be obtained.
    """
    return resolve_template(template, suffix=suffix, desc=desc, resolution=resolution).path


def template_source(template: str = DEFAULT_TEMPLATE, *, suffix: str = "T1w",
                    desc: str | None = None, resolution: int = 1) -> str:
    """Source of :func:`get_template`'s file: ``templateflow``, ``templateflow-standin``
    (stand-in installed by ``fetch``) or ``nilearn-standin``."""
    return resolve_template(template, suffix=suffix, desc=desc, resolution=resolution).source


def template_statement(template: str = DEFAULT_TEMPLATE, resolution: int = 1
                       ) -> tuple[bool, str]:
    """``(stand-in?, one line)`` saying where the template T1w and brain mask come from: what
    a run logs once (a warning for a stand-in) and its reports repeat."""
    found = [resolve_template(template, suffix=s, desc=d, resolution=resolution)
             for s, d in (("T1w", None), ("mask", "brain"))]
    sources = list(dict.fromkeys(f.source for f in found))
    text = "; ".join(describe_source(template, s) for s in sources)
    if any(f.standin for f in found):
        text += " (details: python -m bids_stroke.templates info)"
    return any(f.standin for f in found), text


def template_provenance(template: str = DEFAULT_TEMPLATE, resolution: int = 1
                        ) -> dict[str, Any]:
    """Which source provides the template T1w and brain mask (for sidecars and reports).

    Returns a JSON-serialisable dict with ``template``, ``resolution``, ``source``
    (``templateflow``, ``templateflow-standin`` or ``nilearn-standin``; ``mixed`` if they
    differ), ``standin`` (bool), ``files`` (per file: path, source, sha256, shape, zooms,
    note), ``templateflow_home``, ``templateflow_version`` and ``offline``.
    """
    files: dict[str, dict[str, Any]] = {}
    for name, suffix, desc in (("T1w", "T1w", None), ("brain_mask", "mask", "brain")):
        found = resolve_template(template, suffix=suffix, desc=desc, resolution=resolution)
        img = load_nifti(found.path)
        files[name] = {
            "path": str(found.path),
            "source": found.source,
            "standin": found.standin,
            "sha256": file_sha256(found.path),
            "shape": [int(s) for s in img.shape[:3]],
            "zooms": [float(z) for z in img.header.get_zooms()[:3]],
            "note": found.note,
        }
    sources = {f["source"] for f in files.values()}
    try:
        tf_version: str | None = version("templateflow")
    except PackageNotFoundError:
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


def brain_mask_like(img: nib.spatialimages.SpatialImage | str | os.PathLike[str], *,
                    template: str = DEFAULT_TEMPLATE) -> nib.Nifti1Image:
    """The template brain mask resampled (nearest neighbour) onto ``img``'s grid.

    ``img`` must already be in the template space (both affines in MNI mm); only its
    affine and first three dimensions are used. Returns a uint8 0/1 image with
    ``img``'s affine (and header); voxels outside the template's field of view are 0.
    """
    target = img if isinstance(img, nib.spatialimages.SpatialImage) else load_spatial(img)
    mask = load_nifti(get_template(template, suffix="mask", desc="brain", resolution=1))
    on_grid = nearest_onto_grid(np.asarray(mask.dataobj), mask.affine, target.affine,
                                target.shape[:3])
    hdr = target.header.copy() if isinstance(target, nib.Nifti1Image) else None
    out = nib.Nifti1Image((on_grid > 0).astype(np.uint8), target.affine, hdr)
    out.set_data_dtype(np.uint8)
    out.header.set_slope_inter(1.0, 0.0)
    if hdr is not None and hdr["dim"][0] > 3:
        out.header.set_zooms(target.header.get_zooms()[:3])
    return out
