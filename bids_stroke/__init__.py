"""bids_stroke: how much does MRI spatial resolution change what a stroke lesion model sees?"""

from bids_stroke.__about__ import __version__

__all__ = ["__version__"]
