"""Model adapters: one :class:`Segmenter` interface over every model format.

    from bids_stroke.model.adapters import ChannelStack, open_model
    seg = open_model("nnUNet_results/Dataset001/nnUNetTrainer__nnUNetPlans__3d_fullres")
    prob = seg.predict(ChannelStack.from_files([dwi, adc]))   # float32 (X, Y, Z)

Kinds (detected from the path): an nnU-Net v2 trained-model folder (``dataset.json`` +
``plans.json``), an ``.onnx`` file, a TorchScript archive, or a bids_stroke checkpoint;
``None`` is the bundled model. Loaded models are cached per process (load once, predict many):
a checkpoint or TorchScript network is read once per file and device, whatever precision,
mode or thread count each caller asks for (the participant level's checks and its
segmentation steps share it); :func:`clear_model_cache` empties the cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bids_stroke.model.adapters.base import ChannelStack, Segmenter, synthetic_stack
from bids_stroke.model.checkpoint import ModelLoadError, _is_torchscript, bundled_model_path
from bids_stroke.model.inference import ModelOutputError
from bids_stroke.model.spec import ModelSpec, ModelSpecError

__all__ = [
    "ChannelStack",
    "ModelLoadError",
    "ModelOutputError",
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


def open_model(
    path: str | Path | None,
    *,
    device: str = "auto",
    precision: str = "auto",
    mode: str = "auto",
    tta: bool | None = None,
    engine: str = "torch",
    num_threads: int = 0,
    channels: Sequence[str] | None = None,
    folds: Sequence[int | str] | None = None,
    checkpoint: str = "final",
    trust_model_code: bool = False,
) -> Segmenter:
    """Load (or fetch from the per-process cache) the model at ``path``.

    Args:
        path: model file or nnU-Net folder; ``None``/``''`` = the bundled model.
        device: ``auto``, ``cpu`` or ``cuda``.
        precision, mode: bids_stroke/TorchScript inference settings (``mode`` also for ONNX).
        engine: fp32 CPU engine of bids_stroke checkpoints (:mod:`~bids_stroke.model.engines`;
            ``torch`` by default here, the participant level passes ``segmentation.engine``).
        tta: mirror test-time augmentation; ``None`` = the model's own default (off for
            bids_stroke/TorchScript/ONNX, nnU-Net's mirroring on for nnU-Net).
        num_threads: torch/onnxruntime CPU threads (0: library default).
        channels: override of the model's input channels (BIDS suffixes, in order).
        folds: nnU-Net folds (default: every fold with the checkpoint).
        checkpoint: nnU-Net ``final``, ``best`` or a checkpoint file name.
        trust_model_code: allow nnU-Net checkpoints that need full unpickling.

    Raises:
        ModelLoadError, ModelSpecError: one-line messages naming the file and the fix.
    """
    bundled = path is None or str(path) == ""
    p = bundled_model_path() if bundled else Path(path).expanduser().absolute()  # type: ignore[arg-type]
    kind = detect_kind(p)
    if num_threads > 0:
        import torch

        torch.set_num_threads(int(num_threads))
    chans = None if channels is None else tuple(channels)
    fold_key = None if folds is None else tuple(str(f) for f in folds)
    key = (kind, str(p), _stamp(p), device, precision, mode, tta, num_threads, chans, fold_key,
           checkpoint, trust_model_code, engine)
    if key not in _CACHE:
        _CACHE[key] = _load(kind, p, bundled, device=device, precision=precision, mode=mode,
                            tta=tta, num_threads=num_threads, channels=chans, folds=folds,
                            checkpoint=checkpoint, trust_model_code=trust_model_code,
                            stamp=key[2], engine=engine)
    return _CACHE[key]


def _load(kind: str, p: Path, bundled: bool, **kw: Any) -> Segmenter:
    if kind == "nnunet":
        from bids_stroke.model.adapters.nnunet import NnUNetSegmenter

        return NnUNetSegmenter(p, device=kw["device"], tta=kw["tta"], folds=kw["folds"],
                               checkpoint=kw["checkpoint"],
                               trust_model_code=kw["trust_model_code"], channels=kw["channels"])
    if kind == "onnx":
        from bids_stroke.model.adapters.onnx import OnnxSegmenter

        return OnnxSegmenter(p, device=kw["device"], mode=kw["mode"], tta=bool(kw["tta"]),
                             num_threads=kw["num_threads"], channels=kw["channels"])
    if kind == "torchscript":
        from bids_stroke.model.adapters.torchscript import TorchScriptSegmenter as cls
    else:
        from bids_stroke.model.adapters.bids_stroke import BidsStrokeSegmenter as cls
    from bids_stroke.model.checkpoint import load_model
    from bids_stroke.model.inference import select_device

    net_key = (str(p), kw["stamp"], str(select_device(kw["device"])))
    if net_key not in _NETWORKS:
        _NETWORKS[net_key] = load_model(None if bundled else p, device=kw["device"])
    return cls(None if bundled else p, device=kw["device"], precision=kw["precision"],
               mode=kw["mode"], tta=bool(kw["tta"]), channels=kw["channels"],
               loaded=_NETWORKS[net_key], engine=kw["engine"])


def clear_model_cache() -> None:
    """Forget every loaded model (the next :func:`open_model` loads from disk)."""
    _CACHE.clear()
    _NETWORKS.clear()
