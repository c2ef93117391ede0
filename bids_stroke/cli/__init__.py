"""bids_stroke.cli."""
