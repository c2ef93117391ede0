"""The condition spec language (public import path; lives in :mod:`bids_stroke.degradation`)."""

from bids_stroke.degradation import (
    KINDS,
    VALID_FORMS,
    Condition,
    ConditionError,
    parse_condition,
    parse_conditions,
    resolve_slice_axis,
)

__all__ = [
    "KINDS",
    "VALID_FORMS",
    "Condition",
    "ConditionError",
    "parse_condition",
    "parse_conditions",
    "resolve_slice_axis",
]
