"""Version information."""

__version__ = "0.1.0"
__packagename__ = "bids_stroke"
