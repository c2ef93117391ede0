"""Lesion segmentation model: 3D U-Net, preprocessing, inference, safe checkpoints, training.

Public API (see ``docs/CONTRACTS.md``)::

    from bids_stroke.model import load_model, binarize
    model = load_model(None)              # bundled default
    prob = model.predict(data, brain_mask)
    mask = binarize(prob, threshold=0.5, min_size=0)
"""

from bids_stroke.model.checkpoint import (
    ModelLoadError,
    SegmentationModel,
    export_torchscript,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from bids_stroke.model.inference import binarize
from bids_stroke.model.preprocess import PreprocessConfig, crop_back, pad_to_multiple
from bids_stroke.model.unet import UNet3D, UNetConfig

__all__ = [
    "ModelLoadError",
    "PreprocessConfig",
    "SegmentationModel",
    "UNet3D",
    "UNetConfig",
    "binarize",
    "crop_back",
    "export_torchscript",
    "load_checkpoint",
    "load_model",
    "pad_to_multiple",
    "save_checkpoint",
]
