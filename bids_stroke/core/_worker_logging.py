"""Imported by the multiprocessing forkserver: nipype's workers log like the command line.

:func:`bids_stroke.core.progress.setup_logging` adds this module to the forkserver's preload list
and exports ``BIDS_STROKE_VERBOSITY``; the forkserver imports it once, so every MultiProc
worker forked from it starts with the same handler, prefix and quiet nipype loggers. Without
that variable (any other use of the forkserver) importing this module does nothing.
"""

from bids_stroke.core.progress import configure_from_environment

configure_from_environment()
