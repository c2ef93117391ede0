"""Rough peak-memory estimates for inference, used to refuse a run that cannot fit.

The estimates count the float32 tensors alive at the peak of a forward pass of an
encoder-decoder network under :func:`torch.inference_mode` (no gradients): the retained skip
connections of every level plus about eight full-resolution feature maps at the top level
(decoder input, concatenation, convolution and normalisation outputs), and the whole-volume
buffers of the prediction (input channels, probability, sliding-window accumulators). Under
bf16/fp16 autocast the activations take 2 bytes a value (the whole-volume buffers stay float32).
They are deliberately on the high side (no credit for in-place operations):
``tests/test_resources.py`` checks them against the measured peak of the bundled model in fp32
and, where the CPU has it, bf16.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bids_stroke.model.spec import DEFAULT_PATCH_SIZE

__all__ = ["GB", "encoder_decoder_bytes", "nnunet_memory_gb", "unet_memory_gb"]

GB = 1024**3
_BYTES = 4  # float32
_TOP_MAPS = 8


def encoder_decoder_bytes(features: Sequence[int], voxels_per_level: Sequence[float], *,
                          value_bytes: int = _BYTES) -> float:
    """Peak bytes of the activations of one forward pass (``value_bytes`` per value: 4 in
    float32, 2 under bf16/fp16 autocast)."""
    skips = sum(f * v for f, v in zip(features, voxels_per_level, strict=True))
    return value_bytes * (_TOP_MAPS * features[0] * voxels_per_level[0] + skips)


def _padded(shape: Sequence[int], divisor: int) -> list[int]:
    return [int(-(-int(s) // divisor) * divisor) for s in shape]


def unet_memory_gb(
    config: Mapping[str, Any],
    shape: Sequence[int],
    *,
    divisor: int,
    mode: str = "auto",
    patch_size: Sequence[int] = DEFAULT_PATCH_SIZE,
    full_max_voxels: int = 256**3,
    activation_bytes: int = _BYTES,
) -> float:
    """Peak GB to predict a ``shape`` image with a :class:`~bids_stroke.model.unet.UNet3D`
    described by ``config`` (``UNetConfig.to_dict()``), in ``mode`` as
    :func:`~bids_stroke.model.inference.predict_probabilities` resolves it
    (``activation_bytes``: 2 under bf16/fp16 autocast)."""
    padded = _padded(shape, divisor)
    n_vox = float(np.prod(padded))
    if mode == "auto":
        mode = "full" if n_vox <= full_max_voxels else "sliding"
    net_vox = n_vox
    if mode == "sliding":
        patch = [max(divisor, min(int(p), s) - min(int(p), s) % divisor)
                 for p, s in zip(patch_size, padded, strict=True)]
        net_vox = float(np.prod(patch))
    depth = int(config.get("depth", 4))
    base = int(config.get("base_channels", 16))
    cap = int(config.get("max_channels", 320))
    feats = [min(base * 2**i, cap) for i in range(depth)]
    vox = [net_vox / 8**i for i in range(depth)]
    c_in = int(config.get("in_channels", 1))
    volume = _BYTES * n_vox * (c_in + 4)  # normalised input, probability, accumulators
    return (encoder_decoder_bytes(feats, vox, value_bytes=activation_bytes) + volume) / GB


def nnunet_memory_gb(
    features: Sequence[int],
    strides: Sequence[Sequence[int]],
    patch_size: Sequence[int],
    resampled_shape: Sequence[int],
    n_channels: int,
    n_classes: int,
) -> float:
    """Peak GB of nnU-Net's sliding-window prediction of an image that measures
    ``resampled_shape`` at the model's target spacing: one patch through the network plus the
    whole-volume data, logits, prediction counts and the resampled probabilities."""
    vox, level_vox = float(np.prod(patch_size)), []
    for s in strides:
        vox /= float(np.prod(s))
        level_vox.append(vox)
    net = encoder_decoder_bytes(features, level_vox)
    n_vox = float(np.prod(resampled_shape))
    volume = _BYTES * n_vox * (n_channels + 3 * n_classes + 1)
    return (net + volume) / GB
