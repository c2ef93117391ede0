"""bids_stroke.group."""
