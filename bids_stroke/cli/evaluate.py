"""``python -m bids_stroke.model.evaluate BIDS_DIR [--model FILE] [--tsv OUT]``: Dice of a model.

Prints one line per subject with a lesion mask and the mean Dice (the numbers of the bundled
model card); ``--tsv`` also writes them. The computation is
:func:`bids_stroke.model.evaluate.evaluate_dataset`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m bids_stroke.model.evaluate``."""
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
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    args = build_parser().parse_args(argv)
    import numpy as np

    from bids_stroke.model.evaluate import evaluate_dataset

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
        from bids_stroke.core.atomic import atomic_write_text

        atomic_write_text(args.tsv, "\n".join(lines) + "\n")
    return 0
