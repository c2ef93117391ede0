"""ONNX models through onnxruntime (CPU; CUDA when the CUDA provider is present).

Files written by :func:`bids_stroke.model.export.export_onnx` carry their preprocessing, divisor,
sliding-window defaults, network config and :class:`ModelSpec` in the ``metadata_props`` entry
``bids_stroke``; they predict exactly like the checkpoint they came from (same normalisation,
padding, full/sliding inference, mirroring). Other ONNX files follow the TorchScript contract
(input ``(N, C, D, H, W)`` normalised as :class:`PreprocessConfig` defaults; output logits with
one lesion channel or background/lesion channels); a file with a fixed spatial input size is run
in sliding windows of that size.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bids_stroke.core.digest import file_sha256
from bids_stroke.model.adapters.base import ChannelStack, Segmenter, synthetic_stack
from bids_stroke.model.adapters.bids_stroke import template_defaults
from bids_stroke.model.checkpoint import DEFAULT_INFERENCE, ModelLoadError
from bids_stroke.model.inference import (
    binary_logits,
    predict_probabilities,
    select_device,
)
from bids_stroke.model.memory import unet_memory_gb
from bids_stroke.model.preprocess import PreprocessConfig, crop_back, preprocess_volume
from bids_stroke.model.spec import ModelSpec, resolve_spec

__all__ = ["META_KEY", "OnnxSegmenter", "import_onnxruntime"]

META_KEY = "bids_stroke"
ONNX_FORMAT = "bids_stroke-onnx"


def import_onnxruntime() -> Any:
    """onnxruntime, or a one-line error saying how to install it."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise ModelLoadError(
            "ONNX models need onnxruntime: pip install 'bids_stroke[onnx]'"
        ) from exc
    return onnxruntime


def _providers(ort: Any, device: torch.device) -> list[str]:
    available = ort.get_available_providers()
    if device.type == "cuda" and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class _OrtNet:
    """Callable mapping a torch tensor to the session's outputs (as torch tensors)."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.input_name = session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> Any:
        outs = self.session.run(None, {self.input_name: x.detach().cpu().numpy()})
        tensors = [torch.from_numpy(np.asarray(o)) for o in outs]
        return tensors[0] if len(tensors) == 1 else tuple(tensors)


class OnnxSegmenter(Segmenter):
    """An ``.onnx`` file run with onnxruntime."""

    def __init__(
        self,
        path: Path,
        *,
        device: str = "auto",
        mode: str = "auto",
        tta: bool = False,
        num_threads: int = 0,
        channels: Sequence[str] | None = None,
    ) -> None:
        ort = import_onnxruntime()
        if not path.is_file():
            raise ModelLoadError(f"model file not found: {path}")
        self.device = select_device(device)
        opts = ort.SessionOptions()
        if num_threads > 0:
            opts.intra_op_num_threads = int(num_threads)
        try:
            sess = ort.InferenceSession(
                str(path), sess_options=opts, providers=_providers(ort, self.device)
            )
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"cannot load ONNX model {path}: {first}") from exc
        self.session, self.net = sess, _OrtNet(sess)
        meta_txt = sess.get_modelmeta().custom_metadata_map.get(META_KEY)
        try:
            self.meta: dict[str, Any] = json.loads(meta_txt) if meta_txt else {}
        except json.JSONDecodeError as exc:
            raise ModelLoadError(f"{path}: metadata '{META_KEY}' is not valid JSON") from exc
        self.ours = self.meta.get("format") == ONNX_FORMAT
        self.preprocessing = PreprocessConfig.from_dict(self.meta.get("preprocessing", {}))
        self.divisor = int(self.meta.get("divisor", 16))
        self.inference = {**DEFAULT_INFERENCE, **dict(self.meta.get("inference") or {})}
        dims = sess.get_inputs()[0].shape
        self.fixed_patch = (
            tuple(int(d) for d in dims[2:])
            if len(dims) == 5 and all(isinstance(d, int) for d in dims[2:])
            else None
        )
        self.mode, self.tta = mode, bool(tta)
        self.spec: ModelSpec = resolve_spec(
            kind="onnx",
            source=path,
            checksum=file_sha256(path),
            embedded=dict(self.meta.get("model_spec") or {}),
            defaults=template_defaults(self.input_channels()),
            channels=channels,
        )
        self.info: dict[str, Any] = {
            "kind": "onnx",
            "path": str(path),
            "checksum": self.spec.checksum,
            "exported_by_bids_stroke": self.ours,
            "providers": sess.get_providers(),
            "preprocessing": self.preprocessing.to_dict(),
            "divisor": self.divisor,
            "inference": self.inference,
            "fixed_input_size": list(self.fixed_patch) if self.fixed_patch else None,
            "model_config": self.meta.get("model_config"),
            "source_checkpoint": self.meta.get("source"),
            "mode": mode,
            "tta": self.tta,
            "spec": self.spec.to_dict(),
        }

    def input_channels(self) -> int | None:
        dims = self.session.get_inputs()[0].shape
        return int(dims[1]) if len(dims) == 5 and isinstance(dims[1], int) else None

    def _predict(
        self, data: np.ndarray, mask: np.ndarray | None, mode: str, tta: bool
    ) -> np.ndarray:
        chans, spec = [], None
        for c in range(data.shape[0]):
            padded, spec = preprocess_volume(data[c], mask, self.preprocessing, self.divisor)
            chans.append(padded)
        assert spec is not None
        vol = np.stack(chans)
        patch = tuple(self.inference["patch_size"])
        spec2 = None
        if self.fixed_patch is not None:  # pad up to the fixed size, then slide that window
            short = [max(0, p - s) for p, s in zip(self.fixed_patch, vol.shape[1:], strict=True)]
            pads = [(0, 0)] + [(k // 2, k - k // 2) for k in short]
            vol, spec2 = np.pad(vol, pads), tuple(pads[1:])
            mode, patch = "sliding", self.fixed_patch
        prob = predict_probabilities(
            binary_logits(self.net, self.spec.source),
            vol,
            device=torch.device("cpu"),
            mode=mode,
            patch_size=patch,
            overlap=float(self.inference["overlap"]),
            tta=tta,
            autocast_dtype=None,
            divisor=self.divisor if self.fixed_patch is None else 1,
        )
        if spec2 is not None:
            prob = crop_back(prob, spec2)
        return np.ascontiguousarray(crop_back(prob, spec), dtype=np.float32)

    def predict(self, image: ChannelStack) -> np.ndarray:
        self._check_stack(image)
        return self._predict(image.data, image.brain_mask, self.mode, self.tta)

    def dry_run(self) -> tuple[tuple[int, int, int], np.ndarray]:
        d = self.divisor
        stack = synthetic_stack(self.spec.n_channels, (2 * d, 3 * d, 2 * d))
        return stack.shape, self._predict(stack.data, stack.brain_mask, "full", False)

    def estimate_memory_gb(
        self, shape: Sequence[int], spacing_mm: Sequence[float] | None = None
    ) -> float | None:
        cfg = self.meta.get("model_config")
        if not cfg or self.fixed_patch is not None:
            return None
        return unet_memory_gb(
            cfg, shape, divisor=self.divisor, mode=self.mode,
            patch_size=self.inference["patch_size"],
        )

