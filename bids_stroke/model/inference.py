"""Network inference: device/precision selection, full-volume and sliding-window prediction.

* :func:`select_device` - ``'auto'`` picks CUDA when present, else CPU.
* :func:`resolve_precision` - ``'auto'`` uses bf16 (or fp16 where bf16 is unsupported) autocast
  on CUDA and bf16 autocast on CPUs where oneDNN has native bf16 kernels (``avx512_bf16`` or
  AMX; about 2x faster than fp32 for the 3D U-Net, see ``bench/bench_inference.py``);
  ``'fp32'`` forces full precision, ``'bf16'``/``'fp16'`` force autocast.
* :func:`predict_probabilities` - full-volume or sliding-window inference with Gaussian
  importance blending (nnU-Net style), optional mirror test-time augmentation, under
  :func:`torch.inference_mode`: the network's logits turned into probabilities.
* :func:`preferred_memory_format` - ``channels_last_3d`` on CPU for narrow networks (first
  level of at most 8 feature maps, like the bundled model), where oneDNN's 3D convolutions
  ran 1.6x faster in that layout; the default layout otherwise (a base-16 U-Net ran 0.9x in
  channels-last). ``bench/bench_inference.py`` measures both layouts in one run; fp32
  outputs agree to ~1e-5 in logits.
* :func:`binarize` - threshold + removal of connected components smaller than ``min_size``.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from bids_stroke.model.spec import DEFAULT_OVERLAP, DEFAULT_PATCH_SIZE

__all__ = [
    "AUTO_FULL_MAX_VOXELS",
    "ModelOutputError",
    "binarize",
    "binary_logits",
    "cpu_supports_bf16",
    "gaussian_importance_map",
    "predict_probabilities",
    "preferred_memory_format",
    "resolve_precision",
    "select_device",
    "sliding_window_starts",
]

#: ``mode='auto'`` runs the whole (padded) volume at once below this many voxels on CPU
#: (~ 256^3; a 1 mm MNI volume padded to 208x240x192 is 9.6 M voxels).
AUTO_FULL_MAX_VOXELS = 256**3

Model = Callable[[torch.Tensor], torch.Tensor]


class ModelOutputError(RuntimeError):
    """The network returned something that is not one logits tensor of the input's size."""


def binary_logits(
    net: Callable[[torch.Tensor], Any], where: str
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Wrap a network so that it returns one ``(N, 1, *spatial)`` logits tensor.

    One output channel is taken as the lesion logit; two channels as background/lesion logits
    of a softmax (``l1 - l0`` so that the sigmoid gives the softmax lesion probability
    exactly). Anything else - tuples or lists (deep supervision heads), other sizes or
    channel counts - raises :class:`ModelOutputError` naming ``where``.
    """

    def call(x: torch.Tensor) -> torch.Tensor:
        out = net(x)
        if isinstance(out, tuple | list):
            raise ModelOutputError(
                f"{where}: the network returns a {type(out).__name__} of {len(out)} outputs, "
                "not one logits tensor; export it with a single output (deep supervision off)"
            )
        if not isinstance(out, torch.Tensor):
            raise ModelOutputError(
                f"{where}: the network returns {type(out).__name__}, not a tensor of logits"
            )
        if out.ndim != x.ndim or out.shape[0] != x.shape[0] or out.shape[2:] != x.shape[2:]:
            raise ModelOutputError(
                f"{where}: output shape {list(out.shape)} does not match input "
                f"{list(x.shape)} (expected (N, 1, {', '.join(str(s) for s in x.shape[2:])})); "
                "the model must return logits on the input grid"
            )
        if out.shape[1] == 1:
            return out
        if out.shape[1] == 2:
            return out[:, 1:2] - out[:, 0:1]
        raise ModelOutputError(
            f"{where}: output has {out.shape[1]} channels; bids_stroke reads 1 (lesion logit) "
            "or 2 (background, lesion logits)"
        )

    return call


def select_device(device: str | torch.device = "auto") -> torch.device:
    """Resolve ``'auto' | 'cpu' | 'cuda' | 'cuda:N'`` to a :class:`torch.device`.

    Raises:
        ValueError: ``'cuda'`` requested but not available, or unknown device string.
    """
    if isinstance(device, torch.device):
        return device
    dev = str(device).lower()
    if dev == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' requested but CUDA is not available")
        return torch.device(dev)
    if dev == "cpu":
        return torch.device("cpu")
    raise ValueError(f"unknown device {device!r}; use auto, cpu or cuda")


@lru_cache(maxsize=1)
def cpu_supports_bf16() -> bool:
    """True when oneDNN reports native bf16 support and a tiny bf16 autocast conv runs."""
    try:
        if not torch.backends.mkldnn.is_available():
            return False
        if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return False
        with torch.autocast("cpu", dtype=torch.bfloat16):
            torch.nn.functional.conv3d(torch.ones(1, 1, 4, 4, 4), torch.ones(1, 1, 3, 3, 3))
        return True
    except Exception:
        return False


#: Widest first level (feature maps) that runs faster in ``channels_last_3d`` on CPU.
CHANNELS_LAST_MAX_WIDTH = 8


def preferred_memory_format(device: torch.device,
                            width: int | None = None) -> torch.memory_format:
    """The tensor layout a 3D U-Net whose first level has ``width`` feature maps runs
    fastest in on ``device``: ``channels_last_3d`` on CPU up to
    :data:`CHANNELS_LAST_MAX_WIDTH` (measured: base 8 1.6x faster, base 16 0.9x), the
    default layout for wider or unknown networks and on GPUs (not measured here). A rule
    of the network's shape, never a timing, so a model always runs the same way."""
    if device.type == "cpu" and width is not None and width <= CHANNELS_LAST_MAX_WIDTH:
        return torch.channels_last_3d
    return torch.contiguous_format


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for ``precision`` on ``device`` (``None`` = fp32, no autocast).

    ``precision`` is ``'auto'``, ``'fp32'``, ``'bf16'`` or ``'fp16'``.
    """
    p = str(precision).lower()
    if p not in ("auto", "fp32", "bf16", "fp16"):
        raise ValueError(f"precision must be auto, fp32, bf16 or fp16, got {precision!r}")
    if p == "fp32":
        return None
    if device.type == "cuda":
        if p == "fp16":
            return torch.float16
        if p == "bf16" or torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float16
    # CPU
    if p == "fp16":
        return torch.float16
    if p == "bf16":
        if not cpu_supports_bf16():
            raise ValueError("bf16 requested but this CPU has no native bf16 support")
        return torch.bfloat16
    return torch.bfloat16 if cpu_supports_bf16() else None


def _autocast(device: torch.device, dtype: torch.dtype | None
              ) -> contextlib.AbstractContextManager[Any]:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def gaussian_importance_map(patch_size: Sequence[int], sigma_scale: float = 1.0 / 8) -> np.ndarray:
    """nnU-Net Gaussian weight map: centre-weighted, max 1, no zeros (float32)."""
    grids = []
    for s in patch_size:
        c = (s - 1) / 2.0
        sigma = max(s * sigma_scale, 1e-3)
        grids.append(np.exp(-0.5 * ((np.arange(s) - c) / sigma) ** 2))
    g = grids[0][:, None, None] * grids[1][None, :, None] * grids[2][None, None, :]
    g = g / g.max()
    g[g == 0] = g[g > 0].min()
    weights: np.ndarray = g.astype(np.float32)
    return weights


def sliding_window_starts(size: int, patch: int, overlap: float, align: int = 1) -> list[int]:
    """Evenly spaced patch starts covering ``[0, size)``; steps of at most
    ``patch * (1 - overlap)``, starts rounded down to multiples of ``align`` (so that the
    pooling grid of every patch coincides with the full-volume one) and the last patch flush
    with the end."""
    if patch >= size:
        return [0]
    step = max(1, int(patch * (1.0 - overlap)))
    n = int(np.ceil((size - patch) / step)) + 1
    raw = np.linspace(0, size - patch, n)
    starts = sorted({int(r // align) * align for r in raw[:-1]} | {size - patch})
    return starts


def _flip_sets(tta: bool) -> list[tuple[int, ...]]:
    if not tta:
        return [()]
    axes = (2, 3, 4)
    return [c for r in range(4) for c in itertools.combinations(axes, r)]


def _run(model: Model, x: torch.Tensor, flips: list[tuple[int, ...]]) -> torch.Tensor:
    """Mean over mirror augmentations of sigmoid probabilities (float32)."""
    acc = None
    for f in flips:
        xi = torch.flip(x, f) if f else x  # flip keeps the layout (channels-last stays)
        p = torch.sigmoid(model(xi).float())
        if f:
            p = torch.flip(p, f)
        acc = p if acc is None else acc + p
    assert acc is not None
    return acc / len(flips)


def _patches(
    shape: Sequence[int], patch: Sequence[int], overlap: float, align: int
) -> Iterator[tuple[slice, slice, slice]]:
    starts = [
        sliding_window_starts(s, p, overlap, align) for s, p in zip(shape, patch, strict=True)
    ]
    for z, y, x in itertools.product(*starts):
        yield (
            slice(z, z + patch[0]),
            slice(y, y + patch[1]),
            slice(x, x + patch[2]),
        )


def predict_probabilities(
    model: Model,
    volume: np.ndarray,
    *,
    device: torch.device,
    mode: str = "auto",
    patch_size: Sequence[int] = DEFAULT_PATCH_SIZE,
    overlap: float = DEFAULT_OVERLAP,
    tta: bool = False,
    autocast_dtype: torch.dtype | None = None,
    divisor: int = 16,
    batch_size: int = 1,
    full_max_voxels: int | None = None,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> np.ndarray:
    """Probability map (float32, same shape) of a *preprocessed, padded* 3D ``volume``.

    Sigmoid probabilities of the network's lesion logits, averaged over mirror augmentations
    when ``tta`` and blended with a Gaussian importance map in sliding mode.

    Args:
        model: callable mapping ``(N, 1, D, H, W)`` float tensors to logits of the same
            spatial shape (a :class:`~bids_stroke.model.unet.UNet3D` in eval mode or a
            TorchScript module).
        volume: 3D array ``(D, H, W)`` (one channel) or 4D ``(C, D, H, W)`` whose spatial
            sizes are multiples of ``divisor``.
        device: where to run.
        mode: ``'full'``, ``'sliding'`` or ``'auto'`` (full below ``full_max_voxels``, default
            :data:`AUTO_FULL_MAX_VOXELS` on CPU and 192^3 on CUDA).
        patch_size: sliding-window patch (clipped to the volume; multiples of ``divisor``).
        overlap: fraction of overlap between neighbouring patches (0 <= overlap < 1).
        tta: average over the 8 mirror flips.
        autocast_dtype: autocast dtype or ``None`` for fp32.
        divisor: network divisor (patch starts are aligned to it).
        batch_size: patches per forward pass in sliding mode.
        memory_format: layout of the tensors handed to ``model`` (the layout its weights
            are in, e.g. ``torch.channels_last_3d``; see :func:`preferred_memory_format`).
    """
    if volume.ndim == 3:
        volume = volume[None]
    if volume.ndim != 4:
        raise ValueError(f"expected a 3D or (C, D, H, W) volume, got shape {volume.shape}")
    if mode not in ("auto", "full", "sliding"):
        raise ValueError(f"mode must be auto, full or sliding, got {mode!r}")
    if not 0.0 <= overlap < 1.0:
        raise ValueError("overlap must be in [0, 1)")
    if full_max_voxels is None:
        full_max_voxels = AUTO_FULL_MAX_VOXELS if device.type == "cpu" else 192**3
    if mode == "auto":
        mode = "full" if volume[0].size <= full_max_voxels else "sliding"
    flips = _flip_sets(tta)
    x = torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32))[None].to(device)
    x = x.contiguous(memory_format=memory_format)
    spatial = volume.shape[1:]
    with torch.inference_mode(), _autocast(device, autocast_dtype):
        if mode == "full":
            return _run(model, x, flips)[0, 0].cpu().numpy().astype(np.float32, copy=False)
        patch = [min(int(p), s) for p, s in zip(patch_size, spatial, strict=True)]
        patch = [max(divisor, p - p % divisor) for p in patch]
        weight = torch.from_numpy(gaussian_importance_map(patch)).to(device)
        acc = torch.zeros(spatial, dtype=torch.float32, device=device)
        norm = torch.zeros_like(acc)
        slices = list(_patches(spatial, patch, overlap, divisor))
        for i in range(0, len(slices), batch_size):
            chunk = slices[i : i + batch_size]
            batch = torch.cat([x[(0, slice(None), *s)][None] for s in chunk], dim=0)
            batch = batch.contiguous(memory_format=memory_format)
            probs = _run(model, batch, flips)
            for j, s in enumerate(chunk):
                acc[s] += probs[j, 0] * weight
                norm[s] += weight
        return (acc / norm).cpu().numpy().astype(np.float32, copy=False)


def binarize(prob: np.ndarray, threshold: float, min_size: int = 0) -> np.ndarray:
    """Threshold ``prob`` (voxels ``>= threshold`` are foreground) and drop 26-connected
    components with fewer than ``min_size`` voxels.  Returns uint8."""
    mask = np.asarray(prob) >= threshold
    if min_size > 0 and mask.any():
        labels, n = ndimage.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
        sizes = np.bincount(labels.ravel(), minlength=n + 1)
        keep = sizes >= min_size
        keep[0] = False
        mask = keep[labels]
    return mask.astype(np.uint8)
