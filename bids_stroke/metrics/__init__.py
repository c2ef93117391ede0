"""Segmentation metrics comparing a predicted lesion mask with a reference mask.

Everything here is pure numpy/scipy and deterministic. The reference is the native-grid
manual lesion mask, the prediction a binary mask on the *same* voxel grid; ``spacing`` is
the voxel size in millimetres (from the affine). One module per job:

* :mod:`~bids_stroke.metrics.inputs` - binary masks (lesion = ``value >= threshold``),
  grids, spacing, loading NIfTI pairs;
* :mod:`~bids_stroke.metrics.overlap` - voxel-wise counts and ratios over a declared grid
  (native or padded as the original study), volumes;
* :mod:`~bids_stroke.metrics.distance` - HD, HD95, ASSD, surface Dice (as medpy);
* :mod:`~bids_stroke.metrics.lesionwise` - connected lesions, lesion F1 (as ISLES'22);
* :mod:`~bids_stroke.metrics.columns` - table columns and their data dictionary;
* :mod:`~bids_stroke.metrics.compute` - :func:`compute_metrics`, all of the above.

Each submodule's docstring states its conventions exactly.
"""

from __future__ import annotations

from bids_stroke.metrics.columns import LESION_TABLE_COLUMNS, METRIC_COLUMNS, METRIC_DESCRIPTIONS
from bids_stroke.metrics.compute import compute_metrics
from bids_stroke.metrics.distance import surface_distances
from bids_stroke.metrics.inputs import (
    MetricsInputError,
    as_binary_mask,
    check_same_grid,
    load_mask_image,
    load_pair,
    spacing_from_affine,
)
from bids_stroke.metrics.lesionwise import lesion_table
from bids_stroke.metrics.overlap import GRID_COLUMNS, GRID_NATIVE, grid_note, grid_shape, parse_grid

__all__ = [
    "GRID_COLUMNS",
    "GRID_NATIVE",
    "LESION_TABLE_COLUMNS",
    "METRIC_COLUMNS",
    "METRIC_DESCRIPTIONS",
    "MetricsInputError",
    "as_binary_mask",
    "check_same_grid",
    "compute_metrics",
    "grid_note",
    "grid_shape",
    "lesion_table",
    "load_mask_image",
    "load_pair",
    "parse_grid",
    "spacing_from_affine",
    "surface_distances",
]
