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

Modules: :mod:`~bids_stroke.demo.template` (grid and template),
:mod:`~bids_stroke.demo.lesions` (synthetic lesions), :mod:`~bids_stroke.demo.real_lesions`
(real lesion shapes), :mod:`~bids_stroke.demo.synth` (one subject) and
:mod:`~bids_stroke.demo.dataset` (writing the dataset).
"""

from __future__ import annotations

from bids_stroke.demo.dataset import Layout, make_demo_dataset, subject_label
from bids_stroke.demo.real_lesions import (
    MIN_REAL_LESION_ML,
    LesionMaskError,
    LesionShape,
    find_lesion_masks,
    load_lesion_shape,
)
from bids_stroke.demo.synth import DemoSubject, generate_subject
from bids_stroke.demo.template import SPACE, demo_template_paths
from bids_stroke.demo.template import _grid as _grid  # re-exported (tests use it)

__all__ = [
    "MIN_REAL_LESION_ML",
    "SPACE",
    "DemoSubject",
    "Layout",
    "LesionMaskError",
    "LesionShape",
    "demo_template_paths",
    "find_lesion_masks",
    "generate_subject",
    "load_lesion_shape",
    "make_demo_dataset",
    "subject_label",
]
