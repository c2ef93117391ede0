"""The offline stand-in for ``MNI152NLin2009aSym``: nilearn's bundled copy of the template.

nilearn ships ``mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz`` (197x233x189, 1 mm, uint8,
*skull-stripped*): the MNI152NLin2009aSym template in ATLAS v2.0's space and shape, but not
byte-identical to TemplateFlow's ``tpl-MNI152NLin2009aSym_res-1_T1w.nii.gz`` (193x229x193,
with skull) - so it is always labelled a stand-in. The stand-in brain mask is
``(GM + WM probability) > 0.2`` from nilearn's bundled tissue maps, restricted to the
largest connected component, closed (2 iterations, 3x3x3) and hole-filled (so that the
ventricles are inside), in the spirit of ``nilearn.datasets.load_mni152_brain_mask``; it is
built once into the cache directory.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_stroke.core.atomic import atomic_write_bytes
from bids_stroke.core.digest import file_sha256
from bids_stroke.core.settings import TEMPLATE
from bids_stroke.degradation.nifti import load_nifti

#: Templates for which an offline stand-in exists.
STANDIN_TEMPLATES = (TEMPLATE,)
#: Threshold on the GM+WM probability sum (0..1) used to build the stand-in brain mask.
STANDIN_MASK_THRESHOLD = 0.2
STANDIN_NOTE = (
    f"nilearn's bundled {TEMPLATE} (mni_icbm152_*_tal_nlin_sym_09a_converted, "
    "197x233x189, 1 mm, skull-stripped) used as a stand-in for TemplateFlow's "
    f"tpl-{TEMPLATE} (193x229x193); same space, not byte-identical"
)
#: each template source in words, for the log and the reports (one short, true sentence)
SOURCE_TEXT = {
    "templateflow": "TemplateFlow's file",
    "templateflow-standin": "the offline stand-in installed in TEMPLATEFLOW_HOME (nilearn's "
                            "bundled copy: the same space, not byte-identical to TemplateFlow's "
                            "file)",
    "nilearn-standin": "the offline stand-in (nilearn's bundled copy: the same space, not "
                       "byte-identical to TemplateFlow's file)",
}


def describe_source(template: str, source: str) -> str:
    """``"MNI152NLin2009aSym: TemplateFlow's file"`` and the like (``source`` as recorded in
    the ``TemplateSource`` of the sidecars)."""
    return f"{template}: {SOURCE_TEXT.get(source, source)}"


NILEARN_FILES = {
    "T1w": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "GM": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "WM": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}


def nilearn_data_dir() -> Path:
    """Folder of nilearn's bundled data files (holds the MNI152 2009a templates).

    Located with :func:`importlib.util.find_spec`: importing ``nilearn.datasets`` only to find
    the folder costs ~5 s (it imports sklearn, joblib and more); this costs milliseconds.
    """
    import importlib.util

    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"nilearn is not installed: its bundled {TEMPLATE} "
                                "template is the offline stand-in")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


def templateflow_filename(template: str, suffix: str, desc: str | None, resolution: int,
                          *, zero_pad: bool = False) -> str:
    """TemplateFlow's file name for the given entities (``res-1`` or ``res-01``)."""
    res = f"{resolution:02d}" if zero_pad else f"{resolution:d}"
    desc_part = f"_desc-{desc}" if desc else ""
    return f"tpl-{template}_res-{res}{desc_part}_{suffix}.nii.gz"


def save_nifti_deterministic(img: nib.Nifti1Image, path: Path) -> Path:
    """Write ``img`` atomically; ``.gz`` output carries no mtime (identical bytes)."""
    payload = img.to_bytes()
    if path.name.endswith(".gz"):
        payload = gzip.compress(payload, compresslevel=6, mtime=0)
    return atomic_write_bytes(path, payload)


def standin_mask_image() -> nib.Nifti1Image:
    """Brain mask from nilearn's GM+WM probability maps (see the module docstring)."""
    from scipy import ndimage

    data_dir = nilearn_data_dir()
    gm_img = load_nifti(data_dir / NILEARN_FILES["GM"])
    wm_img = load_nifti(data_dir / NILEARN_FILES["WM"])
    gm = np.asarray(gm_img.dataobj, dtype=np.float32)
    wm = np.asarray(wm_img.dataobj, dtype=np.float32)
    scale = 255.0 if max(float(gm.max()), float(wm.max())) > 1.5 else 1.0
    mask = (gm + wm) / scale > STANDIN_MASK_THRESHOLD
    labels, nlab = ndimage.label(mask)
    if nlab > 1:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        mask = labels == int(np.argmax(sizes))
    pad = 3
    padded = ndimage.binary_closing(np.pad(mask, pad), structure=np.ones((3, 3, 3), bool),
                                    iterations=2)
    mask = ndimage.binary_fill_holes(padded)[pad:-pad, pad:-pad, pad:-pad]
    hdr = gm_img.header.copy()
    hdr.set_data_dtype(np.uint8)
    out = nib.Nifti1Image(mask.astype(np.uint8), gm_img.affine, hdr)
    out.header.set_slope_inter(1.0, 0.0)
    out.set_sform(gm_img.affine, code=4)
    out.set_qform(gm_img.affine, code=4)
    return out


def standin_file(template: str, suffix: str, desc: str | None, cache: Path) -> Path | None:
    """The 1 mm stand-in file for (template, suffix, desc), or None when there is none.

    The T1w is nilearn's own file; the brain mask is built under ``cache`` (keyed by the
    nilearn file's checksum) on first use.
    """
    if template not in STANDIN_TEMPLATES:
        return None
    if suffix == "T1w" and not desc:
        return nilearn_data_dir() / NILEARN_FILES["T1w"]
    if suffix == "mask" and desc == "brain":
        tag = file_sha256(nilearn_data_dir() / NILEARN_FILES["GM"])[:12]
        out = (cache / "templates" / f"nilearn-{tag}"
               / templateflow_filename(template, "mask", "brain", 1))
        if not out.is_file():
            save_nifti_deterministic(standin_mask_image(), out)
        return out
    return None
