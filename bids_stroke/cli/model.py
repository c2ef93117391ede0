"""Describe, check and export segmentation models.

    bids_stroke model info MODEL [--channels dwi adc] [--json] [--check]
    bids_stroke model export --onnx MODEL OUT [--opset 17]

MODEL is a bids_stroke checkpoint (.pt), a TorchScript (.ts) or ONNX file, an nnU-Net v2
trained-model folder, or 'bundled' (the model shipped with bids_stroke).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from bids_stroke.cli import parser as P
from bids_stroke.cli.formatter import HelpFormatter

__all__ = ["build_parser", "main"]


def _model_arg(value: str) -> str | None:
    return None if value in ("bundled", "") else value


def _add_loading(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=_model_arg, help="model file or nnU-Net folder ('bundled')")
    p.add_argument("--channels", nargs="+", default=None, metavar="SUFFIX",
                   help="input channels as BIDS suffixes in order (e.g. dwi adc); overrides "
                        "the model's own description")
    p.add_argument("--folds", nargs="+", default=None, metavar="FOLD",
                   help="nnU-Net folds to ensemble (default: every fold_N folder present)")
    p.add_argument("--checkpoint", default="final",
                   help="nnU-Net checkpoint: final, best or a file name (default: final)")
    p.add_argument("--trust-model-code", action="store_true",
                   help="unpickle nnU-Net checkpoints that hold Python objects (runs code "
                        "from the file: only for models you trust)")


def build_parser() -> argparse.ArgumentParser:
    parser = P.ArgumentParser(prog="bids_stroke model", description=__doc__,
                              formatter_class=HelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="{info,export}",
                                help="what to do with the model")
    info = sub.add_parser("info", help="print what the model needs (channels, space, ...)",
                          description="Print what the model needs: its input channels, "
                          "space, resolution and threshold, and which of them are assumed.",
                          formatter_class=HelpFormatter)
    _add_loading(info)
    info.add_argument("--json", action="store_true", help="print JSON")
    info.add_argument("--check", action="store_true",
                      help="also run the pre-run checks (dry forward pass)")
    exp = sub.add_parser("export", help="export a bids_stroke checkpoint",
                         description="Export a bids_stroke checkpoint to ONNX, with the "
                         "metadata that makes it predict like the checkpoint.",
                         formatter_class=HelpFormatter)
    exp.add_argument("--onnx", action="store_true", required=True, help="export to ONNX")
    exp.add_argument("model", type=_model_arg, help="bids_stroke checkpoint ('bundled')")
    exp.add_argument("out", type=Path, help="output .onnx file")
    exp.add_argument("--opset", type=int, default=None, help="ONNX opset (default: 17)")
    return parser


def _info(opts: argparse.Namespace) -> int:
    from bids_stroke.model.adapters import open_model
    from bids_stroke.model.check import check_model
    from bids_stroke.model.request import ModelRequest

    seg = open_model(ModelRequest(opts.model, device="cpu", channels=opts.channels,
                                  folds=opts.folds, checkpoint=opts.checkpoint,
                                  trust_model_code=opts.trust_model_code))
    if opts.check:
        check_model(seg)
    if opts.json:
        print(json.dumps({"spec": seg.spec.to_dict(), "info": seg.info}, indent=2, default=str))
    else:
        print(seg.spec.describe())
        if opts.check:
            print("checks:     passed (dry forward pass)")
    return P.EXIT_OK


def _export(opts: argparse.Namespace) -> int:
    from bids_stroke.model.export import DEFAULT_OPSET, export_onnx

    out = export_onnx(opts.model, opts.out, opset=opts.opset or DEFAULT_OPSET)
    print(f"wrote {out}")
    return P.EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``bids_stroke model ...``; returns the exit code."""
    opts = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    # cheap checks before torch and the model back-ends are imported
    if opts.model is not None and not Path(opts.model).exists():
        print(f"bids_stroke model: error: model file not found: {opts.model}", file=sys.stderr)
        return P.EXIT_NO_INPUT
    from bids_stroke.model.check import ModelCheckError
    from bids_stroke.model.checkpoint import ModelLoadError
    from bids_stroke.model.spec import ModelSpecError

    try:
        return _info(opts) if opts.command == "info" else _export(opts)
    except (ModelLoadError, ModelSpecError, ModelCheckError) as exc:
        message = str(exc).strip().splitlines()[0]
        code = P.EXIT_NO_INPUT if "not found" in message else P.EXIT_BAD_DATA
        print(f"bids_stroke model: error: {message}", file=sys.stderr)
        return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
