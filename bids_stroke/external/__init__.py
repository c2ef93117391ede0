"""Other segmentation tools: the resolution conditions exported as BIDS datasets they can
read (:mod:`~bids_stroke.external.export`) and their predictions scored like the model's
(:mod:`~bids_stroke.external.score`)."""
