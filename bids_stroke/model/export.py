"""Export a bids_stroke checkpoint to ONNX with everything needed to predict like it.

The ONNX graph maps ``image`` ``(N, C, D, H, W)`` (dynamic batch and spatial sizes, multiples of
the divisor) to ``logits`` ``(N, 1, D, H, W)``. The ``metadata_props`` entry ``bids_stroke``
holds JSON with ``format``, ``format_version``, ``preprocessing``, ``divisor``, ``inference``,
``model_config``, ``model_spec`` (only the fields read from the model or its sidecar, so that
defaults stay flagged as assumed) and ``source`` (checkpoint path and sha256). The
:class:`~bids_stroke.model.adapters.onnx.OnnxSegmenter` reads it and applies the same
normalisation, padding and full/sliding inference as the checkpoint.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch

from bids_stroke.core.atomic import atomic_path
from bids_stroke.model.adapters.onnx import META_KEY, ONNX_FORMAT
from bids_stroke.model.checkpoint import ModelLoadError, load_model

__all__ = ["DEFAULT_OPSET", "export_onnx"]

DEFAULT_OPSET = 17


def _spec_metadata(checkpoint_path: Path | None) -> dict[str, Any]:
    from bids_stroke.model.adapters import open_model
    from bids_stroke.model.request import ModelRequest

    path = str(checkpoint_path) if checkpoint_path else None  # None: the bundled model
    spec = open_model(ModelRequest(path, device="cpu")).spec
    full = spec.to_dict()
    keys = ("channels", "space", "resolution_mm", "threshold")
    return {k: full[k] for k in keys if k not in spec.assumed and full[k] is not None}


def export_onnx(
    checkpoint_path: str | Path | None,
    out_path: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Write ``checkpoint_path`` (a bids_stroke checkpoint; ``None`` = bundled) as ONNX.

    Raises:
        ModelLoadError: the checkpoint cannot be read, is TorchScript, or ``onnx`` is missing.
    """
    try:
        import onnx
    except ImportError as exc:
        raise ModelLoadError("ONNX export needs onnx: pip install 'bids_stroke[onnx]'") from exc
    src = None if checkpoint_path in (None, "") else Path(checkpoint_path)
    model = load_model(src, device="cpu")
    if model.info.get("kind") != "bids_stroke-unet":
        raise ModelLoadError(
            f"{src}: only bids_stroke checkpoints can be exported here; export TorchScript or "
            "other networks with torch.onnx.export directly"
        )
    cfg = dict(model.info["model_config"])
    net = model.network.eval()
    d = model.divisor
    dummy = torch.zeros(1, int(cfg["in_channels"]), 2 * d, 3 * d, 2 * d)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    axes = {0: "batch", 2: "depth", 3: "height", 4: "width"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net, (dummy,), str(out), input_names=["image"], output_names=["logits"],
            dynamic_axes={"image": axes, "logits": axes}, opset_version=int(opset),
            dynamo=False,
        )
    meta = {
        "format": ONNX_FORMAT,
        "format_version": 1,
        "preprocessing": model.preprocessing.to_dict(),
        "divisor": d,
        "inference": model.inference,
        "model_config": cfg,
        "model_spec": _spec_metadata(src),
        "source": {"path": str(model.info["path"]), "sha256": model.checksum},
        "opset": int(opset),
    }
    proto = onnx.load(str(out))
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(meta)
    proto.producer_name = "bids_stroke"
    onnx.checker.check_model(proto)
    with atomic_path(out) as tmp:
        onnx.save(proto, str(tmp))
    return out
