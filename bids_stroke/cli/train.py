"""``bids_stroke train BIDS_DIR OUT_DIR [options]`` / ``bids_stroke-train``: train the lesion U-Net.

Trains on every subject of ``BIDS_DIR`` that has a lesion mask (see
:mod:`bids_stroke.model.train` for the recipe), writes ``OUT_DIR/split.tsv``,
``OUT_DIR/training_log.tsv`` and ``OUT_DIR/checkpoints/{best,last}.pt`` (safe checkpoints usable
with ``bids_stroke ... --model OUT_DIR/checkpoints/best.pt``).
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["build_parser", "main"]


def _patch(value: str) -> tuple[int, int, int]:
    parts = [int(v) for v in value.replace("x", ",").split(",") if v.strip()]
    if len(parts) == 1:
        parts *= 3
    if len(parts) != 3 or any(p < 1 for p in parts):
        raise argparse.ArgumentTypeError(f"patch size must be N or DxHxW, got {value!r}")
    return parts[0], parts[1], parts[2]


def build_parser(prog: str = "bids_stroke-train") -> argparse.ArgumentParser:
    """Argument parser of the training command."""
    p = argparse.ArgumentParser(
        prog=prog,
        description="Train the bids_stroke 3D U-Net on subjects with lesion masks.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("bids_dir", type=Path, help="BIDS dataset with images and lesion masks")
    p.add_argument("out_dir", type=Path, help="output folder (checkpoints, split, log)")
    g = p.add_argument_group("data")
    g.add_argument("--participant-label", "--participant_label", nargs="+", default=None)
    g.add_argument(
        "--derivatives",
        nargs="+",
        type=Path,
        default=[],
        help="extra folders searched for lesion masks",
    )
    g.add_argument("--modality", default="T1w", help="BIDS suffix of the training image")
    g.add_argument(
        "--test-list",
        type=Path,
        default=None,
        help="file of held-out subject labels (one per line or TSV participant_id)",
    )
    g.add_argument("--val-fraction", type=float, default=0.2)
    g = p.add_argument_group("model")
    g.add_argument("--base-channels", type=int, default=8)
    g.add_argument("--depth", type=int, default=4)
    g.add_argument("--norm", choices=("instance", "batch", "group"), default="instance")
    g.add_argument("--normalization", choices=("zscore", "minmax"), default="zscore")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=40)
    g.add_argument("--steps-per-epoch", type=int, default=50)
    g.add_argument("--patch-size", type=_patch, default=(96, 96, 96), help="N or DxHxW")
    g.add_argument("--batch-size", type=int, default=2)
    g.add_argument("--lr", type=float, default=3e-3)
    g.add_argument("--loss", choices=("bce", "dice", "bce+dice"), default="bce+dice")
    g.add_argument(
        "--fg-fraction",
        type=float,
        default=1.0 / 3.0,
        help="fraction of patches centred on a lesion voxel",
    )
    g.add_argument("--no-augment", action="store_true", help="disable flips/intensity aug")
    g.add_argument(
        "--augment-resolution",
        action="store_true",
        help="random crude/linear/thick/kspace degradations of the image",
    )
    g.add_argument("--val-every", type=int, default=1, help="validate every N epochs")
    g = p.add_argument_group("runtime")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="auto", help="auto, cpu or cuda")
    g.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16", "auto"),
        default="fp32",
        help="training autocast precision",
    )
    g.add_argument("--val-precision", choices=("fp32", "bf16", "fp16", "auto"), default="auto")
    g.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    g.add_argument("--resume", action="store_true", help="continue from checkpoints/last.pt")
    g.add_argument(
        "--stop-after",
        type=int,
        default=None,
        help="stop this invocation after N epochs (continue later with --resume)",
    )
    g.add_argument("--no-progress", action="store_true")
    g.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["train"]:
        args_list = args_list[1:]
    args = build_parser().parse_args(args_list)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    from bids_stroke.model.checkpoint import ModelLoadError
    from bids_stroke.model.train import TrainConfig, train

    try:
        cfg = TrainConfig(
            bids_dir=args.bids_dir,
            out_dir=args.out_dir,
            participant_label=args.participant_label,
            derivatives=tuple(args.derivatives),
            suffix=args.modality,
            test_list=args.test_list,
            val_fraction=args.val_fraction,
            epochs=args.epochs,
            steps_per_epoch=args.steps_per_epoch,
            patch_size=args.patch_size,
            batch_size=args.batch_size,
            lr=args.lr,
            loss=args.loss,
            base_channels=args.base_channels,
            depth=args.depth,
            norm=args.norm,
            fg_fraction=args.fg_fraction,
            augment=not args.no_augment,
            augment_resolution=args.augment_resolution,
            normalization=args.normalization,
            seed=args.seed,
            device=args.device,
            precision=args.precision,
            val_every=args.val_every,
            val_precision=args.val_precision,
            threads=args.threads,
            resume=args.resume,
            stop_after=args.stop_after,
            progress=not args.no_progress,
            command=shlex.join(["bids_stroke-train", *args_list]),
        )
        summary = train(cfg)
    except (ValueError, RuntimeError, ModelLoadError, OSError) as exc:
        code = getattr(exc, "exit_code", 1)
        print(f"bids_stroke-train: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return int(code)
    print(f"best validation Dice {summary['best_val_dice']:.4f}; best checkpoint {summary['best']}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
