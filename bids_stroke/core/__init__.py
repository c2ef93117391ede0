"""Run-wide pieces every stage uses, importing no other part of bids_stroke's pipeline.

* :mod:`~bids_stroke.core.settings` - the one typed, immutable settings object (every
  default); :mod:`~.study_files` - study files read into it; :mod:`~.cpus` - the default
  processes and threads;
* :mod:`~.progress` - logging and the progress bar (:mod:`~._worker_logging`: the same in
  nipype's worker processes); :mod:`~.interrupt` - SIGTERM/SIGINT; :mod:`~.write_errors` -
  full disk, quota, permissions -> exit 73; :mod:`~.resources` - node memory and threads;
* :mod:`~.atomic` - the atomic file writers; :mod:`~.digest` - the file sha256;
  :mod:`~.versions`, :mod:`~.provenance` - the software and container a run used.

Nothing is imported here: ``bids_stroke.core.settings`` is read by the command line before
any heavy import.
"""
