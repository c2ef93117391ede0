"""Resolution degradations (public import path; they live in :mod:`bids_stroke.degradation`,
one module per condition kind)."""

from bids_stroke.degradation import (
    FWHM_TO_SIGMA,
    apply_condition,
    check_condition_fits,
    crude_decimate,
    degrade_mask,
    kspace_truncate,
    linear_resample,
    thick_slice_stack,
    thick_slices,
)

__all__ = [
    "FWHM_TO_SIGMA",
    "apply_condition",
    "check_condition_fits",
    "crude_decimate",
    "degrade_mask",
    "kspace_truncate",
    "linear_resample",
    "thick_slice_stack",
    "thick_slices",
]
