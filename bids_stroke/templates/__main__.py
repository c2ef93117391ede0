"""``python -m bids_stroke.templates {fetch,info}``: :mod:`bids_stroke.cli.templates`."""

import sys

from bids_stroke.cli.templates import main

sys.exit(main())
