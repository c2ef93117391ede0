"""Public path named in the sidecars of ``bids_stroke score`` ("bids_stroke.score.tool_digest");
the scoring lives in :mod:`bids_stroke.external.score`."""
from bids_stroke.external.score import tool_digest as tool_digest
