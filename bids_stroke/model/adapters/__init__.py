"""Model adapters: one :class:`Segmenter` interface over every model format.

    from bids_stroke.model.adapters import ChannelStack, ModelRequest, open_model
    request = ModelRequest("nnUNet_results/Dataset001/nnUNetTrainer__nnUNetPlans__3d_fullres",
                           device="cpu", folds=["0", "1"])
    seg = open_model(request)
    prob = seg.predict(ChannelStack.from_files([dwi, adc]))   # float32 (X, Y, Z)

Kinds (detected from the path): an nnU-Net v2 trained-model folder (``dataset.json`` +
``plans.json``), an ``.onnx`` file, a TorchScript archive, or a bids_stroke checkpoint; a
:class:`~bids_stroke.model.request.ModelRequest` with ``path=None`` is the bundled model.
Loaded models are cached per process (load once, predict many): a checkpoint or TorchScript
network is read once per file and device, whatever precision, mode or thread count each
caller asks for (the participant level's checks and its segmentation steps share it);
:func:`clear_model_cache` empties the cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bids_stroke.model.adapters.base import ChannelStack, Segmenter, synthetic_stack
from bids_stroke.model.checkpoint import ModelLoadError, _is_torchscript, bundled_model_path
from bids_stroke.model.inference import ModelOutputError
from bids_stroke.model.request import ModelRequest
from bids_stroke.model.spec import ModelSpec, ModelSpecError

__all__ = [
    "ChannelStack",
    "ModelLoadError",
    "ModelOutputError",
    "ModelRequest",
    "ModelSpec",
    "ModelSpecError",
    "Segmenter",
    "clear_model_cache",
    "detect_kind",
    "open_model",
    "synthetic_stack",
]

_CACHE: dict[tuple[Any, ...], Segmenter] = {}
#: loaded checkpoint/TorchScript networks by (path, stamp, device): shared by the segmenters
_NETWORKS: dict[tuple[Any, ...], Any] = {}


def detect_kind(path: Path) -> str:
    """``nnunet``, ``onnx``, ``torchscript`` or ``bids_stroke`` for an existing ``path``.

    Raises:
        ModelLoadError: missing path, or a folder that is not an nnU-Net trained-model folder
            (with a hint when it is a results folder above or a fold folder below one).
    """
    from bids_stroke.model.adapters.nnunet import is_nnunet_folder

    if path.is_dir():
        if is_nnunet_folder(path):
            return "nnunet"
        inner = sorted(p.name for p in path.iterdir() if is_nnunet_folder(p))
        if inner:
            raise ModelLoadError(
                f"{path} holds several nnU-Net models; pass one folder: {', '.join(inner[:4])}"
            )
        if is_nnunet_folder(path.parent) and path.name.startswith("fold_"):
            raise ModelLoadError(
                f"{path} is one fold; pass its parent {path.parent} with --folds {path.name[5:]}"
            )
        raise ModelLoadError(
            f"{path} is a folder but not an nnU-Net trained-model folder (dataset.json and "
            "plans.json missing); give a model file or an nnU-Net folder"
        )
    if not path.is_file():
        raise ModelLoadError(f"model file not found: {path}")
    if path.suffix.lower() == ".onnx":
        return "onnx"
    return "torchscript" if _is_torchscript(path) else "bids_stroke"


def _stamp(path: Path) -> tuple[Any, ...]:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)


def open_model(request: ModelRequest | str | Path | None = None, /, **options: Any
               ) -> Segmenter:
    """Load (or fetch from the per-process cache) the model of ``request``.

    ``request``: a :class:`~bids_stroke.model.request.ModelRequest` (what to open and how to
    run it; see its attributes). The keyword form of earlier releases,
    ``open_model(path | None, device=..., precision=..., mode=..., tta=..., engine=...,
    num_threads=..., channels=..., folds=..., checkpoint=..., trust_model_code=...)``, builds
    that request from a path (``None``/``''`` = the bundled model) and the same defaults.

    A model is opened once per process for what changes the loaded object: the file (and its
    timestamps), the device it resolves to, precision, mode, tta, engine, channels, folds,
    checkpoint, trust, and (ONNX sessions only) the thread count. The threshold, the
    model's description and the memory estimate do not reopen it.

    Raises:
        ModelLoadError, ModelSpecError: one-line messages naming the file and the fix.
    """
    if isinstance(request, ModelRequest):
        if options:
            raise TypeError("open_model(request) takes no options: set them in the request")
    else:
        if "num_threads" in options:
            options["threads"] = options.pop("num_threads")
        request = ModelRequest(path=None if request in (None, "") else str(request), **options)
    p = bundled_model_path() if request.bundled else Path(str(request.path))
    kind = detect_kind(p)
    if request.threads > 0:
        import torch

        torch.set_num_threads(int(request.threads))
    from bids_stroke.model.inference import select_device

    key = (kind, str(p), _stamp(p), str(select_device(request.device)), request.precision,
           request.mode, request.tta, request.threads if kind == "onnx" else None,
           request.channels, request.folds, request.checkpoint, request.trust_model_code,
           request.engine)
    if key not in _CACHE:
        _CACHE[key] = _load(kind, p, request, stamp=key[2])
    return _CACHE[key]


def _load(kind: str, p: Path, request: ModelRequest, stamp: tuple[Any, ...]) -> Segmenter:
    r = request
    if kind == "nnunet":
        from bids_stroke.model.adapters.nnunet import NnUNetSegmenter

        return NnUNetSegmenter(p, device=r.device, tta=r.tta, folds=r.folds,
                               checkpoint=r.checkpoint, trust_model_code=r.trust_model_code,
                               channels=r.channels)
    if kind == "onnx":
        from bids_stroke.model.adapters.onnx import OnnxSegmenter

        return OnnxSegmenter(p, device=r.device, mode=r.mode, tta=bool(r.tta),
                             num_threads=r.threads, channels=r.channels)
    from bids_stroke.model.adapters.bids_stroke import BidsStrokeSegmenter

    cls: type[BidsStrokeSegmenter] = BidsStrokeSegmenter
    if kind == "torchscript":
        from bids_stroke.model.adapters.torchscript import TorchScriptSegmenter

        cls = TorchScriptSegmenter
    from bids_stroke.model.checkpoint import load_model
    from bids_stroke.model.inference import select_device

    net_key = (str(p), stamp, str(select_device(r.device)))
    if net_key not in _NETWORKS:
        _NETWORKS[net_key] = load_model(None if r.bundled else p, device=r.device)
    return cls(None if r.bundled else p, device=r.device, precision=r.precision, mode=r.mode,
               tta=bool(r.tta), channels=r.channels, loaded=_NETWORKS[net_key],
               engine=r.engine)


def clear_model_cache() -> None:
    """Forget every loaded model (the next :func:`open_model` loads from disk)."""
    _CACHE.clear()
    _NETWORKS.clear()
