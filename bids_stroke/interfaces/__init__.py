"""bids_stroke.interfaces."""
