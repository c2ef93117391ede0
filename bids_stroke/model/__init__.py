"""bids_stroke.model."""
