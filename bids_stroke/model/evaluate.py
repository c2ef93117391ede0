"""Dice of a model on every subject with a lesion mask of a BIDS dataset.

Usage::

    python -m bids_stroke.model.evaluate BIDS_DIR [--model FILE] [--precision fp32] [--tsv OUT]

Used to produce the numbers of the bundled model card (``bids_stroke/data/models/``).
Prints one line per subject and the mean; ``--tsv`` also writes them.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from bids_stroke.model.checkpoint import load_model
from bids_stroke.model.inference import binarize
from bids_stroke.model.spec import DEFAULT_THRESHOLD
from bids_stroke.model.train import dice_score

__all__ = ["evaluate_dataset", "main"]


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
    from bids_stroke.discovery import collect_subjects

    model = load_model(model_path, device=device)
    rows = []
    for s in collect_subjects(bids_dir, participant_label=participant_label):
        if s.mask is None:
            continue
        data = np.asarray(nib.load(str(s.image)).dataobj, dtype=np.float32)
        ref = np.asarray(nib.load(str(s.mask)).dataobj) > 0.5
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


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description="Dice of a lesion model on a BIDS dataset")
    p.add_argument("bids_dir", type=Path)
    p.add_argument("--model", default=None, help="checkpoint/TorchScript (default: bundled)")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"))
    p.add_argument("--mode", default="auto", choices=("auto", "full", "sliding"))
    p.add_argument("--tta", action="store_true")
    p.add_argument("--brain-mask", default="none", choices=("none", "template"))
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--tsv", type=Path, default=None)
    args = p.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    rows = evaluate_dataset(
        args.bids_dir,
        args.model,
        device=args.device,
        precision=args.precision,
        mode=args.mode,
        tta=args.tta,
        brain_mask=args.brain_mask,
    )
    if not rows:
        print("no subjects with a lesion mask found", file=sys.stderr)
        return 1
    cols = list(rows[0])
    lines = ["\t".join(cols)]
    for r in rows:
        lines.append(
            "\t".join(f"{r[c]:.4f}" if isinstance(r[c], float) else str(r[c]) for c in cols)
        )
    dice = [r["dice"] for r in rows]
    print("\n".join(lines))
    print(f"mean Dice {np.mean(dice):.4f} (min {np.min(dice):.4f}, n={len(dice)})")
    if args.tsv:
        args.tsv.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
