"""bids_stroke.workflows."""
