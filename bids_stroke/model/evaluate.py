"""Dice of a model on every subject with a lesion mask of a BIDS dataset.

Usage::

    python -m bids_stroke.model.evaluate BIDS_DIR [--model FILE] [--precision fp32] [--tsv OUT]

Used to produce the numbers of the bundled model card (``bids_stroke/data/models/``).
Prints one line per subject and the mean; ``--tsv`` also writes them. The command line is
:mod:`bids_stroke.cli.evaluate`; this module is the computation.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bids_stroke.degradation.nifti import load_nifti
from bids_stroke.model.checkpoint import load_model
from bids_stroke.model.inference import binarize
from bids_stroke.model.spec import DEFAULT_THRESHOLD
from bids_stroke.model.train import dice_score

__all__ = ["evaluate_dataset"]


def evaluate_dataset(
    bids_dir: str | Path,
    model_path: str | Path | None = None,
    *,
    device: str = "auto",
    precision: str = "auto",
    mode: str = "auto",
    tta: bool = False,
    threshold: float = DEFAULT_THRESHOLD,
    min_size: int = 0,
    participant_label: Sequence[str] | None = None,
    brain_mask: str = "none",
) -> list[dict[str, Any]]:
    """Per-subject Dice (and timing) of ``model_path`` (bundled when ``None``).

    ``brain_mask``: ``'none'`` (normalise over the non-zero voxels, as in training) or
    ``'template'`` (the template brain mask resampled on the image, as the participant
    workflow does; needs :mod:`bids_stroke.templates`).
    """
    from bids_stroke.inputs.discovery import collect_images

    model = load_model(model_path, device=device)
    rows = []
    for s in collect_images(bids_dir, participant_label=participant_label):
        if s.mask is None:
            continue
        data = np.asarray(load_nifti(s.image).dataobj, dtype=np.float32)
        ref = np.asarray(load_nifti(s.mask).dataobj) > 0.5
        roi = None
        if brain_mask == "template":
            from bids_stroke.templates import brain_mask_like

            roi = np.asarray(brain_mask_like(str(s.image)).dataobj) > 0
        t0 = time.perf_counter()
        prob = model.predict(data, roi, mode=mode, tta=tta, precision=precision)
        secs = time.perf_counter() - t0
        pred = binarize(prob, threshold, min_size)
        rows.append(
            {
                "participant_id": f"sub-{s.subject}",
                "session_id": f"ses-{s.session}" if s.session else "n/a",
                "dice": dice_score(ref, pred),
                "ref_voxels": int(ref.sum()),
                "pred_voxels": int(pred.sum()),
                "seconds": secs,
            }
        )
    return rows


if __name__ == "__main__":  # pragma: no cover - the command line lives in the CLI
    from bids_stroke.cli.evaluate import main

    raise SystemExit(main())
