"""The engine that runs a bids_stroke network in fp32 on the CPU: the fastest exact one.

``bench/bench_engines.py`` measured the bundled U-Net on the demo's 1 mm image (2 shared
cores, same run): OpenVINO fp32 1.40x the speed of torch eager fp32 (54% of the fp32 matmul
peak against 39%), probabilities within 5.3e-6 and the same mask; onnxruntime 0.57x and
``torch.compile`` 0.81x (after 26 s of compilation) were slower; every bf16 engine changed
masks (18-20 voxels), so none is used for fp32 inference.

``segmentation.engine`` (``--engine``):

* ``auto`` (default): OpenVINO when the ``openvino`` package is installed (it is optional:
  ``pip install openvino``), else torch;
* ``openvino``: the same, with a warning when it cannot be used;
* ``torch``: torch eager, as before.

OpenVINO runs the network's ONNX export (written once per model checksum into the
bids_stroke cache folder, ``$BIDS_STROKE_CACHE_DIR/openvino``), compiled once per input
shape. Before it is used, it must reproduce torch on a small synthetic input (every
probability within :data:`EXACT_ATOL`, the same mask at 0.5); otherwise, or when anything
about it fails, the network runs in torch and the log says why. Only fp32 inference on the
CPU of bids_stroke checkpoints goes through an engine: bf16 autocast, CUDA, TorchScript,
ONNX and nnU-Net models run as before.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["ENGINES", "EXACT_ATOL", "EngineUnavailable", "exact_or_none", "network_runner"]

ENGINES = ("auto", "torch", "openvino")
#: largest probability difference from torch fp32 an engine may make (as the ONNX adapter)
EXACT_ATOL = 1e-4
LOGGER = logging.getLogger("bids_stroke.engines")

Net = Callable[[torch.Tensor], torch.Tensor]


class EngineUnavailable(RuntimeError):
    """An engine cannot run this network here (the message says why, in one line)."""


def openvino_available() -> bool:
    from importlib.util import find_spec

    return find_spec("openvino") is not None


def _onnx_file(network: torch.nn.Module, checksum: str, in_channels: int, divisor: int
               ) -> Path:
    """The network's ONNX export in the cache folder (written once per model checksum)."""
    from bids_stroke.templates.resolve import cache_dir

    folder = cache_dir() / "openvino" / checksum
    path = folder / "model.onnx"
    if path.is_file():
        return path
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{checksum}.", dir=folder.parent))
    try:
        d = divisor
        dummy = torch.zeros(1, in_channels, 2 * d, 3 * d, 2 * d)
        axes = {0: "batch", 2: "depth", 3: "height", 4: "width"}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(network.eval(), (dummy,), str(tmp / "model.onnx"),
                              input_names=["image"], output_names=["logits"],
                              dynamic_axes={"image": axes, "logits": axes}, opset_version=17,
                              dynamo=False)
        try:
            os.replace(tmp, folder)  # atomic; another process may have won the race
        except OSError:
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not path.is_file():
        raise EngineUnavailable(f"could not write the ONNX export into {folder}")
    return path


class _OpenVinoNet:
    """Callable network: a torch input tensor -> logits, through OpenVINO (fp32)."""

    def __init__(self, onnx: Path, threads: int) -> None:
        import openvino as ov

        self.core = ov.Core()
        self.model = self.core.read_model(str(onnx))
        self.threads = threads
        self.compiled: dict[tuple[int, ...], Any] = {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        shape = tuple(int(s) for s in x.shape)
        if shape not in self.compiled:
            model = self.model.clone()
            model.reshape({model.inputs[0].any_name: list(shape)})
            compiled = self.core.compile_model(model, "CPU", {
                "INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": self.threads,
                "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"})
            self.compiled[shape] = (compiled, compiled.create_infer_request())
        compiled, request = self.compiled[shape]
        data = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(np.array(request.infer({0: data})[compiled.outputs[0]]))


def exact_or_none(reference: Net, candidate: Net, sample: torch.Tensor) -> str | None:
    """``None`` when ``candidate`` reproduces ``reference`` on ``sample`` (probabilities
    within :data:`EXACT_ATOL`, same mask at 0.5), else why not."""
    with torch.inference_mode():
        want = torch.sigmoid(reference(sample).float())
        got = torch.sigmoid(candidate(sample).float())
    if got.shape != want.shape:
        return f"output shape {list(got.shape)} instead of {list(want.shape)}"
    diff = float((got - want).abs().max())
    if not diff <= EXACT_ATOL or not torch.equal(got >= 0.5, want >= 0.5):
        return f"probabilities differ from torch by up to {diff:.2g} on a test input"
    return None


def network_runner(engine: str, network: torch.nn.Module, *, checksum: str | None,
                   in_channels: int, divisor: int, memory_format: torch.memory_format
                   ) -> tuple[Net, str]:
    """The callable that runs ``network`` in fp32 on the CPU and the engine's name.

    Falls back to torch (with one log line) when the chosen engine cannot be used or does
    not reproduce torch on a test input; ``auto`` without OpenVINO installed is torch.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "torch" or (engine == "auto" and not openvino_available()):
        return network, "torch"
    try:
        if not openvino_available():
            raise EngineUnavailable("the openvino package is not installed (pip install "
                                    "openvino)")
        if not checksum:
            raise EngineUnavailable("the network has no checksum to key its export")
        candidate = _OpenVinoNet(_onnx_file(network, checksum, in_channels, divisor),
                                 torch.get_num_threads())
        d = divisor
        sample = torch.from_numpy(np.random.default_rng(0).standard_normal(
            (1, in_channels, 2 * d, 3 * d, 2 * d)).astype(np.float32))
        why = exact_or_none(network, candidate, sample.contiguous(memory_format=memory_format))
        if why is not None:
            raise EngineUnavailable(why)
    except Exception as exc:  # any failure of the optional engine: torch runs instead
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        LOGGER.warning("OpenVINO not used (%s): the network runs in torch", text)
        return network, "torch"
    return candidate, "openvino"
