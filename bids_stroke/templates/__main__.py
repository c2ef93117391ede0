"""``python -m bids_stroke.templates {fetch,info}``."""

import sys

from bids_stroke.templates.install import main

sys.exit(main())
