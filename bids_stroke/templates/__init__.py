"""Template files: TemplateFlow's when ``TEMPLATEFLOW_HOME`` holds them, else a stand-in.

Modules: :mod:`~bids_stroke.templates.resolve` (which file), :mod:`~.standin` (nilearn's
copy), :mod:`~.resample` (other grids), :mod:`~.install` (``fetch``); the command line
``python -m bids_stroke.templates`` is :mod:`bids_stroke.cli.templates`.

The analysis space of *bids_stroke* is ``MNI152NLin2009aSym`` (the space and grid of
ATLAS v2.0). :func:`get_template` hands out the path of the template T1w or brain mask:

1. The file under ``$TEMPLATEFLOW_HOME`` with TemplateFlow's exact name, when it is a *real*
   file (non-empty, loadable, non-zero data). This is what ``templateflow.api.get`` returns
   for a populated home; it is looked up by name, because TemplateFlow's layout index costs
   ~10 s of CPU per process. TemplateFlow's pip package ships **empty placeholder** NIfTIs:
   those are never returned, and nothing is downloaded at run time.
2. For ``resolution != 1`` without such a file: the resolution-1 file (from whichever
   source) resampled onto an isotropic grid with the same corner voxel, cached
   deterministically under :func:`cache_dir`.
3. Otherwise, for ``MNI152NLin2009aSym`` only, nilearn's bundled copy (see
   :mod:`bids_stroke.templates.standin`); :func:`template_statement` is the one line a run
   logs about it (a warning) and its reports repeat.

``python -m bids_stroke.templates fetch [--dest DIR]`` populates ``TEMPLATEFLOW_HOME`` with
``templateflow.api``'s ``get`` (a download) and, when that fails (no network: TemplateFlow
raises ``requests.ConnectionError``), installs the stand-in under TemplateFlow's exact names
and lists it in ``tpl-<template>/.bids_stroke-standin.json`` so that provenance still says
"stand-in". ``python -m bids_stroke.templates info`` prints :func:`template_provenance`.

Resolved files are cached per process (``functools.lru_cache``); :func:`clear_cache` resets
the cache. Environment: ``TEMPLATEFLOW_HOME``, ``BIDS_STROKE_CACHE_DIR`` (else
``$XDG_CACHE_HOME/bids_stroke``, else ``~/.cache/bids_stroke``); for ``fetch`` also
``BIDS_STROKE_OFFLINE`` and ``BIDS_STROKE_TEMPLATEFLOW_TIMEOUT``.
"""

from __future__ import annotations

from bids_stroke.templates.install import fetch
from bids_stroke.templates.resample import resample_isotropic
from bids_stroke.templates.resolve import (
    DEFAULT_TEMPLATE,
    STANDIN_MARKER,
    TemplateError,
    TemplateFile,
    brain_mask_like,
    clear_cache,
    get_template,
    is_valid_nifti,
    resolve_template,
    template_provenance,
    template_source,
    template_statement,
)
from bids_stroke.templates.standin import (
    NILEARN_FILES,
    STANDIN_MASK_THRESHOLD,
    nilearn_data_dir,
    templateflow_filename,
)

__all__ = [
    "DEFAULT_TEMPLATE",
    "NILEARN_FILES",
    "STANDIN_MARKER",
    "STANDIN_MASK_THRESHOLD",
    "TemplateError",
    "TemplateFile",
    "brain_mask_like",
    "clear_cache",
    "fetch",
    "get_template",
    "is_valid_nifti",
    "nilearn_data_dir",
    "resample_isotropic",
    "resolve_template",
    "template_provenance",
    "template_source",
    "template_statement",
    "templateflow_filename",
]
