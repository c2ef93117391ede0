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

from bids_stroke.__about__ import __version__
from bids_stroke.cli.formatter import HelpFormatter
from bids_stroke.cli.parser import ArgumentParser

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
    p = ArgumentParser(  # usage errors exit 64
        prog=prog,
        description="Train the bids_stroke 3D U-Net on the subjects of a BIDS dataset that have "
        "a lesion mask. Writes OUT_DIR/split.tsv, OUT_DIR/training_log.tsv and "
        "OUT_DIR/checkpoints/{best,last}.pt; use one with 'bids_stroke ... --model "
        "OUT_DIR/checkpoints/best.pt'.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("bids_dir", type=Path, help="BIDS dataset with images and lesion masks")
    p.add_argument("out_dir", type=Path, help="output folder (checkpoints, split, log)")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    g = p.add_argument_group("data")
    g.add_argument("--participant-label", "--participant_label", nargs="+", default=None,
                   metavar="LABEL", help="subjects to use, with or without 'sub-' (default: all "
                   "with a lesion mask)")
    g.add_argument(
        "--derivatives",
        nargs="+",
        type=Path,
        default=[],
        metavar="PATH",
        help="extra folders searched for lesion masks",
    )
    g.add_argument("--modality", default="T1w", help="BIDS suffix of the training image")
    g.add_argument(
        "--test-list",
        type=Path,
        default=None,
        metavar="FILE",
        help="file of held-out subject labels (one per line or TSV participant_id), never "
        "used for training or validation",
    )
    g.add_argument("--val-fraction", type=float, default=0.2, metavar="F",
                   help="fraction of the subjects held out for validation (seeded split)")
    g = p.add_argument_group("model")
    g.add_argument("--base-channels", type=int, default=8, metavar="N",
                   help="feature maps of the first level (doubled at every level)")
    g.add_argument("--depth", type=int, default=4, metavar="N",
                   help="resolution levels of the U-Net (inputs are padded to a multiple of "
                   "2^depth)")
    g.add_argument("--norm", choices=("instance", "batch", "group"), default="instance",
                   help="normalisation layer")
    g.add_argument("--normalization", choices=("zscore", "minmax"), default="zscore",
                   help="intensity normalisation inside the brain mask")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=40, metavar="N", help="training epochs")
    g.add_argument("--steps-per-epoch", type=int, default=50, metavar="N",
                   help="optimiser steps per epoch")
    g.add_argument("--patch-size", type=_patch, default=(96, 96, 96), metavar="N|DxHxW",
                   help="training patch size in voxels (default: 96x96x96)")
    g.add_argument("--batch-size", type=int, default=2, metavar="N", help="patches per step")
    g.add_argument("--lr", type=float, default=3e-3, metavar="LR", help="Adam learning rate")
    g.add_argument("--loss", choices=("bce", "dice", "bce+dice"), default="bce+dice",
                   help="training loss")
    g.add_argument(
        "--fg-fraction",
        type=float,
        default=1.0 / 3.0,
        metavar="F",
        help="fraction of patches centred on a lesion voxel (default: 1/3)",
    )
    g.add_argument("--no-augment", action="store_true",
                   help="disable the flip and intensity augmentation")
    g.add_argument(
        "--augment-resolution",
        action="store_true",
        help="random crude/linear/thick/kspace degradations of the image",
    )
    g.add_argument("--val-every", type=int, default=1, metavar="N", help="validate every N epochs")
    g = p.add_argument_group("runtime")
    g.add_argument("--seed", type=int, default=0, metavar="N",
                   help="seed of the split, sampling and initialisation (bit-exact re-runs)")
    g.add_argument("--device", default="auto", metavar="DEVICE",
                   help="where to train: auto (CUDA when available, else the CPU), cpu, cuda or "
                   "cuda:N")
    g.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16", "auto"),
        default="fp32",
        help="training autocast precision",
    )
    g.add_argument("--val-precision", choices=("fp32", "bf16", "fp16", "auto"), default="auto",
                   help="validation inference precision")
    g.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch CPU threads (default: torch's choice)")
    g.add_argument("--resume", action="store_true", help="continue from checkpoints/last.pt")
    g.add_argument(
        "--stop-after",
        type=int,
        default=None,
        metavar="N",
        help="stop this invocation after N epochs (continue later with --resume)",
    )
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("-v", "--verbose", action="store_true", help="log every epoch's details")
    return p


def main(argv: Sequence[str] | None = None, *, prog: str = "bids_stroke-train") -> int:
    """Entry point; returns the exit status (``prog``: name in usage and messages)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["train"] and not Path("train").exists():
        args_list = args_list[1:]
    args = build_parser(prog).parse_args(args_list)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    # cheap checks (file system only) before torch is imported: a wrong folder or label
    # is refused in milliseconds
    from bids_stroke.inputs.discovery import DiscoveryError, check_participant_labels

    try:
        check_participant_labels(args.bids_dir, args.participant_label or ())
        if not args.participant_label:
            from bids_stroke.inputs.discovery import find_dataset_roots

            find_dataset_roots(args.bids_dir)
    except DiscoveryError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
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
            command=shlex.join([prog, *args_list]),
        )
        summary = train(cfg)
    except (ValueError, RuntimeError, ModelLoadError, OSError) as exc:
        code = getattr(exc, "exit_code", 1)
        print(f"{prog}: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return int(code)
    print(f"best validation Dice {summary['best_val_dice']:.4f}; best checkpoint {summary['best']}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
