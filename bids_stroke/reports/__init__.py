"""bids_stroke.reports."""
