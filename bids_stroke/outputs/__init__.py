"""What lands in OUT and how: names, plans, all-or-nothing commits, and OUT's state.

* :mod:`~bids_stroke.outputs.derivatives` - BIDS-Derivatives names, dataset-level files;
* :mod:`~.plan` - every file and sidecar of one image (pure); :mod:`~.probseg` - how
  probability maps are stored; :mod:`~.tsv` - the one TSV cell format;
* :mod:`~.commit` - stage, journal, move, manifest, recovery, committed images only;
  :mod:`~.locks` - flock; :mod:`~.state_files` - files of folders others can write to;
* :mod:`~.fingerprint` - what a committed image was made from (unchanged re-runs);
  :mod:`~.status` - who of a batch submission is complete, failed or missing.
"""
