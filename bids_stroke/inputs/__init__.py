"""The input images: found in a BIDS dataset (:mod:`~bids_stroke.inputs.discovery`, pybids)
and checked before any work starts (:mod:`~bids_stroke.inputs.preflight`)."""
