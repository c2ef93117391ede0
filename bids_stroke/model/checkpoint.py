"""Safe checkpoints and the :class:`SegmentationModel` wrapper.

Checkpoint format (``format_version`` 1)
---------------------------------------
A plain ``dict`` written with :func:`torch.save` and read back with
``torch.load(..., weights_only=True)`` (no pickle code execution, ever)::

    {
      "format": "bids_stroke-unet",
      "format_version": 1,
      "state_dict": {name: tensor, ...},          # UNet3D.state_dict()
      "model_config": {...},                      # UNetConfig.to_dict()
      "preprocessing": {...},                     # PreprocessConfig.to_dict()
      "inference": {"patch_size": [D, H, W], "overlap": 0.5},   # sliding-window defaults
      "training": {                               # provenance (free-form, JSON types only)
        "command": "...", "seed": 0, "epochs": 40, "data": "...", "val_dice": 0.9,
        "date": "ISO-8601", "torch_version": "2.x", ...
      },
    }

A file that cannot be read with ``weights_only=True`` (a pickled ``nn.Module``, or anything
that would need to import/run code) is refused with :class:`ModelLoadError`.

TorchScript models
------------------
Any segmentation network can be evaluated by exporting it to TorchScript
(``torch.jit.save``; extension ``.ts``/``.pt``/``.pth``, detected from the archive content).
Contract: input ``(1, 1, D, H, W)`` float32, intensity-normalised as described by
:class:`~bids_stroke.model.preprocess.PreprocessConfig` (default: z-score in the brain mask,
clipped at the 0.5/99.5 percentiles, background 0), ``D, H, W`` multiples of 16; output
*logits* of shape ``(1, 1, D, H, W)``.  Optional metadata can be embedded as the extra file
``bids_stroke.json`` (keys ``preprocessing``, ``divisor``, ``inference``); see
:func:`export_torchscript`.
"""

from __future__ import annotations

import datetime as _dt
import json
import pickle
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bids_stroke.core.atomic import atomic_path
from bids_stroke.core.digest import file_sha256
from bids_stroke.model.bundled import BUNDLED_MODEL_NAME, bundled_model_path
from bids_stroke.model.inference import (
    binary_logits,
    predict_probabilities,
    preferred_memory_format,
    resolve_precision,
    select_device,
)
from bids_stroke.model.preprocess import PreprocessConfig, crop_back, preprocess_volume
from bids_stroke.model.spec import DEFAULT_OVERLAP, DEFAULT_PATCH_SIZE
from bids_stroke.model.unet import UNet3D, UNetConfig

__all__ = [
    "BUNDLED_MODEL_NAME",
    "CHECKPOINT_FORMAT",
    "FORMAT_VERSION",
    "ModelLoadError",
    "SegmentationModel",
    "bundled_model_path",
    "export_torchscript",
    "file_sha256",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "bids_stroke-unet"
FORMAT_VERSION = 1
TS_EXTRA_FILE = "bids_stroke.json"
DEFAULT_INFERENCE: dict[str, Any] = {"patch_size": list(DEFAULT_PATCH_SIZE),
                                     "overlap": DEFAULT_OVERLAP}


class ModelLoadError(RuntimeError):
    """A model file is missing, malformed or unsafe.  The message is a single line."""


def _jsonable(obj: Any) -> Any:
    """Round-trip through JSON so that only plain types reach ``torch.save``."""
    return json.loads(json.dumps(obj, default=str))


def save_checkpoint(
    path: str | Path,
    model: UNet3D,
    preprocessing: PreprocessConfig,
    training: Mapping[str, Any] | None = None,
    *,
    inference: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    model_spec: Mapping[str, Any] | None = None,
) -> Path:
    """Write a format-1 checkpoint (see module docstring).  Returns ``path``.

    ``model_spec`` (optional) records what the model needs, with the keys of a model sidecar
    (``channels``, ``space``, ``resolution_mm``, ``threshold``; see
    :mod:`bids_stroke.model.spec`); it is stored under ``"model_spec"``.

    ``extra`` entries (e.g. optimizer state for ``--resume``) are stored at the top level;
    they must themselves be ``weights_only``-loadable (tensors and plain containers).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    train_info = {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "torch_version": torch.__version__,
    }
    train_info.update(dict(training or {}))
    ckpt: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "format_version": FORMAT_VERSION,
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "model_config": model.config.to_dict(),
        "preprocessing": preprocessing.to_dict(),
        "inference": _jsonable(dict(inference or DEFAULT_INFERENCE)),
        "training": _jsonable(train_info),
    }
    if model_spec:
        ckpt["model_spec"] = _jsonable(dict(model_spec))
    if extra:
        ckpt.update(extra)
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return path


def _is_torchscript(path: Path) -> bool:
    if path.suffix == ".ts":
        return True
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    return any(n.endswith("constants.pkl") or "/code/" in n for n in names)


def _refuse(path: Path, reason: str) -> ModelLoadError:
    return ModelLoadError(
        f"{path} is not a safe bids_stroke checkpoint ({reason}); re-export it with "
        "bids_stroke.model.checkpoint.save_checkpoint (a weights-only state_dict) or as "
        "TorchScript (torch.jit.save)"
    )


_CODE_OPCODES = {"GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE", "NEWOBJ", "NEWOBJ_EX"}


def _pickle_references_code(path: Path) -> bool:
    """True when the file is a pickle stream (raw or a torch zip's ``data.pkl``) that imports
    callables. The opcodes are only *read* with :mod:`pickletools`; nothing is executed."""
    import pickletools
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if n.endswith("data.pkl")]
                if not names:
                    return False
                data = zf.read(names[0])
        else:
            data = path.read_bytes()
        return any(op.name in _CODE_OPCODES for op, _, _ in pickletools.genops(data))
    except Exception:  # not a pickle stream at all
        return False


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and validate a format-1 checkpoint dict with ``weights_only=True``.

    Raises:
        ModelLoadError: missing file, unsafe pickle, wrong format or version.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"model file not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "GLOBAL" in str(exc) or _pickle_references_code(path):
            raise _refuse(path, "needs pickle code execution") from exc
        raise ModelLoadError(
            f"cannot read model file {path}: not a PyTorch checkpoint (corrupt or another "
            "format); give a bids_stroke checkpoint (.pt) or a TorchScript file (.ts)"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError, AttributeError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "weights_only" in str(exc) or "Unsupported" in str(exc):
            raise _refuse(path, "needs pickle code execution") from exc
        raise ModelLoadError(f"cannot read model file {path}: {msg}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ModelLoadError(
            f"{path} is not a {CHECKPOINT_FORMAT} checkpoint (no 'format' key); "
            "save it with bids_stroke.model.checkpoint.save_checkpoint"
        )
    version = ckpt.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelLoadError(
            f"{path} has checkpoint format_version {version!r}; this bids_stroke reads "
            f"version {FORMAT_VERSION}"
        )
    for key in ("state_dict", "model_config", "preprocessing"):
        if key not in ckpt:
            raise ModelLoadError(f"{path} is missing checkpoint key {key!r}")
    return ckpt


def build_unet(ckpt: Mapping[str, Any], path: str | Path = "<checkpoint>") -> UNet3D:
    """Instantiate a :class:`UNet3D` from a checkpoint dict and load its weights (strict)."""
    try:
        net = UNet3D(UNetConfig.from_dict(dict(ckpt["model_config"])))
        net.load_state_dict(ckpt["state_dict"], strict=True)
    except (ValueError, TypeError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"{path}: weights do not match the model config: {first}") from exc
    return net


def export_torchscript(
    model: torch.nn.Module,
    path: str | Path,
    preprocessing: PreprocessConfig | None = None,
    *,
    divisor: int = 16,
    inference: Mapping[str, Any] | None = None,
    example_shape: Sequence[int] | None = None,
    model_spec: Mapping[str, Any] | None = None,
) -> Path:
    """Script (or trace, when scripting fails) ``model`` and save it with embedded metadata
    (``preprocessing``, ``divisor``, ``inference``, ``in_channels`` when known, and the
    optional ``model_spec`` with the keys of a model sidecar)."""
    path = Path(path)
    model = model.eval()
    config = getattr(model, "config", None)
    try:
        scripted = torch.jit.script(model)
    except Exception:
        c_in = config.in_channels if isinstance(config, UNetConfig) else 1
        shape = tuple(example_shape or (1, c_in, divisor * 2, divisor * 2, divisor * 2))
        with torch.no_grad():
            scripted = torch.jit.trace(model, torch.zeros(shape))
    meta = {
        "preprocessing": (preprocessing or PreprocessConfig()).to_dict(),
        "divisor": int(divisor),
        "inference": dict(inference or DEFAULT_INFERENCE),
    }
    config = getattr(model, "config", None)
    if isinstance(config, UNetConfig):
        meta["in_channels"] = config.in_channels
    if model_spec:
        meta["model_spec"] = _jsonable(dict(model_spec))
    torch.jit.save(scripted, str(path), _extra_files={TS_EXTRA_FILE: json.dumps(meta)})
    return path


class SegmentationModel:
    """A network plus the preprocessing it was trained with.

    Attributes:
        network: the module (``UNet3D`` or a TorchScript module), in eval mode.
        preprocessing: :class:`PreprocessConfig`.
        divisor: spatial sizes are padded to multiples of this.
        device: :class:`torch.device`.
        memory_format: layout of the weights and inputs (by default
            :func:`~bids_stroke.model.inference.preferred_memory_format` of the device and
            the network's width: ``channels_last_3d`` for the bundled model on CPU); change
            it with :meth:`set_memory_format`.
        checksum: sha256 of the model file (``None`` for in-memory models).
        info: JSON-serialisable description (path, kind, configs, training provenance).
    """

    def __init__(
        self,
        network: torch.nn.Module,
        preprocessing: PreprocessConfig | None = None,
        *,
        divisor: int = 16,
        device: str | torch.device = "auto",
        inference: Mapping[str, Any] | None = None,
        checksum: str | None = None,
        info: Mapping[str, Any] | None = None,
        memory_format: torch.memory_format | None = None,
    ):
        self.device = select_device(device)
        self.engine_used = "torch"
        self.network = network.to(self.device).eval()
        self.memory_format = torch.contiguous_format
        config = getattr(network, "config", None)
        width = getattr(config, "base_channels", None)
        self.set_memory_format(memory_format or preferred_memory_format(self.device, width))
        self.preprocessing = preprocessing or PreprocessConfig()
        self.divisor = int(divisor)
        self.inference = {**DEFAULT_INFERENCE, **dict(inference or {})}
        self.checksum = checksum
        self.info: dict[str, Any] = {
            "checksum": checksum,
            "divisor": self.divisor,
            "preprocessing": self.preprocessing.to_dict(),
            "inference": self.inference,
            "device": str(self.device),
            **dict(info or {}),
        }

    def predict(
        self,
        data: np.ndarray,
        brain_mask: np.ndarray | None = None,
        *,
        mode: str = "auto",
        tta: bool = False,
        precision: str = "auto",
        patch_size: Sequence[int] | None = None,
        overlap: float | None = None,
    ) -> np.ndarray:
        """Lesion probability map (float32) on the grid of the 3D array ``data``.

        Args:
            data: 3D image (any intensity scale; normalised here).
            brain_mask: optional ROI for intensity normalisation (non-zero voxels otherwise).
            mode: ``'auto'``, ``'full'`` or ``'sliding'``.
            tta: mirror test-time augmentation (8 flips).
            precision: ``'auto'``, ``'fp32'``, ``'bf16'`` or ``'fp16'``.
            patch_size, overlap: sliding-window settings (checkpoint defaults otherwise).
        """
        data = np.asarray(data)
        if data.ndim == 4 and data.shape[-1] == 1:
            data = data[..., 0]
        if data.ndim != 3:
            raise ValueError(f"expected a 3D image, got shape {data.shape}")
        return self.predict_channels(
            data[None], brain_mask, mode=mode, tta=tta, precision=precision,
            patch_size=patch_size, overlap=overlap,
        )

    def predict_channels(
        self,
        data: np.ndarray,
        brain_mask: np.ndarray | None = None,
        *,
        mode: str = "auto",
        tta: bool = False,
        precision: str = "auto",
        patch_size: Sequence[int] | None = None,
        overlap: float | None = None,
        engine: str = "torch",
    ) -> np.ndarray:
        """Like :meth:`predict` for a channel stack ``(C, X, Y, Z)``: every channel is
        normalised on its own (same ROI), then the stack is padded and predicted.

        ``engine`` (:mod:`bids_stroke.model.engines`) runs fp32 CPU inference of a
        bids_stroke checkpoint; :attr:`engine_used` says which engine ran last."""
        data = np.asarray(data)
        if data.ndim != 4:
            raise ValueError(f"expected a (C, X, Y, Z) stack, got shape {data.shape}")
        chans, spec = [], None
        for c in range(data.shape[0]):
            padded, spec = preprocess_volume(data[c], brain_mask, self.preprocessing, self.divisor)
            chans.append(padded)
        assert spec is not None
        autocast = resolve_precision(precision, self.device)
        network, self.engine_used = self._runner(engine if autocast is None else "torch")
        net = binary_logits(network, str(self.info.get("path", "model")))
        prob = predict_probabilities(
            net,
            np.stack(chans),
            device=self.device,
            mode=mode,
            patch_size=tuple(patch_size or self.inference["patch_size"]),
            overlap=float(self.inference["overlap"] if overlap is None else overlap),
            tta=tta,
            autocast_dtype=autocast,
            divisor=self.divisor,
            memory_format=self.memory_format,
        )
        return np.ascontiguousarray(crop_back(prob, spec), dtype=np.float32)

    def set_memory_format(self, memory_format: torch.memory_format) -> None:
        """Put the network's weights (and from then on its inputs) in ``memory_format``."""
        # nn.Module.to accepts memory_format alone; torch's overloads of it do not say so
        self.network = self.network.to(memory_format=memory_format)  # type: ignore[call-overload]
        self.memory_format = memory_format
        self._runners: dict[str, tuple[Any, str]] = {}

    def _runner(self, engine: str) -> tuple[Any, str]:
        """The network as ``engine`` runs it (fp32), set up once: ``(callable, name)``."""
        if engine == "torch" or self.device.type != "cpu" or \
                self.info.get("kind") != "bids_stroke-unet":
            return self.network, "torch"
        if engine not in self._runners:
            from bids_stroke.model.engines import network_runner

            cfg = self.info.get("model_config") or {}
            self._runners[engine] = network_runner(
                engine, self.network, checksum=self.checksum,
                in_channels=int(cfg.get("in_channels", 1)), divisor=self.divisor,
                memory_format=self.memory_format)
        return self._runners[engine]

    def __repr__(self) -> str:
        return (
            f"SegmentationModel(kind={self.info.get('kind')!r}, "
            f"path={self.info.get('path')!r}, device={self.device})"
        )


def load_model(path: str | Path | None = None, device: str | torch.device = "auto"
               ) -> SegmentationModel:
    """Load a checkpoint or TorchScript file as a :class:`SegmentationModel`.

    ``path=None`` (or ``''``) loads the bundled default model.

    Raises:
        ModelLoadError: missing, malformed or unsafe file (one-line message).
    """
    bundled = path is None or str(path) == ""
    p = bundled_model_path() if path is None or bundled else Path(path).expanduser()
    if not p.is_file():
        if bundled:
            raise ModelLoadError(f"bundled default model missing: {p} (reinstall bids_stroke)")
        raise ModelLoadError(f"model file not found: {p}")
    dev = select_device(device)
    checksum = file_sha256(p)
    if _is_torchscript(p):
        extra = {TS_EXTRA_FILE: ""}
        try:
            net = torch.jit.load(str(p), map_location=dev, _extra_files=extra)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"cannot load TorchScript model {p}: {first}") from exc
        meta = json.loads(extra[TS_EXTRA_FILE]) if extra[TS_EXTRA_FILE] else {}
        pre = PreprocessConfig.from_dict(meta.get("preprocessing", {}))
        return SegmentationModel(
            net,
            pre,
            divisor=int(meta.get("divisor", 16)),
            device=dev,
            inference=meta.get("inference"),
            checksum=checksum,
            info={
                "kind": "torchscript",
                "path": str(p),
                "bundled": bundled,
                "in_channels": meta.get("in_channels"),
                "model_spec": meta.get("model_spec"),
            },
        )
    ckpt = load_checkpoint(p)
    net = build_unet(ckpt, p)
    cfg = net.config
    return SegmentationModel(
        net,
        PreprocessConfig.from_dict(dict(ckpt["preprocessing"])),
        divisor=cfg.divisor,
        device=dev,
        inference=ckpt.get("inference"),
        checksum=checksum,
        info={
            "kind": "bids_stroke-unet",
            "path": str(p),
            "bundled": bundled,
            "format_version": ckpt["format_version"],
            "model_config": cfg.to_dict(),
            "n_parameters": net.n_parameters(),
            "training": ckpt.get("training", {}),
            "model_spec": ckpt.get("model_spec"),
        },
    )
