"""Lesion segmentation model: 3D U-Net, preprocessing, inference, safe checkpoints, training.

Public API (see ``docs/CONTRACTS.md``)::

    from bids_stroke.model import load_model, binarize
    model = load_model(None)              # bundled default
    prob = model.predict(data, brain_mask)
    mask = binarize(prob, threshold=0.5, min_size=0)

The names below are imported on first use, so that ``bids_stroke.model.spec`` (what a model
needs; no torch) can be imported by the command line without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the submodule that defines it
_EXPORTS = {
    "ModelLoadError": "checkpoint",
    "SegmentationModel": "checkpoint",
    "export_torchscript": "checkpoint",
    "load_checkpoint": "checkpoint",
    "load_model": "checkpoint",
    "save_checkpoint": "checkpoint",
    "binarize": "inference",
    "ModelRequest": "request",
    "PreprocessConfig": "preprocess",
    "crop_back": "preprocess",
    "pad_to_multiple": "preprocess",
    "UNet3D": "unet",
    "UNetConfig": "unet",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bids_stroke.model' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"bids_stroke.model.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
