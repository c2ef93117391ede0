"""The fp32 CPU engine (bids_stroke.model.engines): used only when it reproduces torch,
torch otherwise, and never part of the results key."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from bids_stroke.model import engines
from bids_stroke.model.unet import UNet3D, UNetConfig


def _net(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return UNet3D(UNetConfig(base_channels=4, depth=2)).eval()


def test_exactness_guard_compares_probabilities_and_masks():
    net = _net()
    x = torch.randn(1, 1, 16, 24, 16)
    assert engines.exact_or_none(net, net, x) is None
    assert engines.exact_or_none(net, lambda t: net(t) + 1e-6, x) is None  # well within 1e-4
    why = engines.exact_or_none(net, lambda t: net(t) + 0.05, x)
    assert why is not None and "differ from torch" in why
    assert "shape" in engines.exact_or_none(net, lambda t: net(t)[..., :-1], x)


def test_torch_when_asked_or_when_openvino_is_missing(monkeypatch, caplog):
    net = _net()
    kw = dict(checksum="ab" * 32, in_channels=1, divisor=4,
              memory_format=torch.contiguous_format)
    assert engines.network_runner("torch", net, **kw) == (net, "torch")
    monkeypatch.setattr(engines, "openvino_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="bids_stroke.engines"):
        assert engines.network_runner("auto", net, **kw) == (net, "torch")
        assert not caplog.records  # auto without OpenVINO: torch, nothing to say
        assert engines.network_runner("openvino", net, **kw) == (net, "torch")
    assert "openvino package is not installed" in caplog.records[0].getMessage()
    with pytest.raises(ValueError, match="engine must be one of"):
        engines.network_runner("tensorrt", net, **kw)


def test_an_engine_that_changes_results_is_not_used(monkeypatch, caplog, tmp_path):
    net = _net()

    class Biased:
        def __init__(self, onnx, threads):
            pass

        def __call__(self, x):
            return net(x) + 0.5

    monkeypatch.setattr(engines, "openvino_available", lambda: True)
    monkeypatch.setattr(engines, "_onnx_file", lambda *a, **k: tmp_path / "m.onnx")
    monkeypatch.setattr(engines, "_OpenVinoNet", Biased)
    with caplog.at_level(logging.WARNING, logger="bids_stroke.engines"):
        runner, name = engines.network_runner(
            "auto", net, checksum="cd" * 32, in_channels=1, divisor=4,
            memory_format=torch.contiguous_format)
    assert (runner, name) == (net, "torch")
    assert "differ from torch" in caplog.text


def test_engine_is_not_part_of_the_results_key():
    from bids_stroke.core.settings import Settings

    base = Settings()
    assert base.segmentation.engine == "auto"
    for engine in ("torch", "openvino"):
        assert base.replace(segmentation={"engine": engine}).results_key() == \
            base.results_key()
    assert base.replace(segmentation={"precision": "fp32"}).results_key() != \
        base.results_key()


def test_openvino_reproduces_torch_when_installed(tmp_path, monkeypatch):
    """Runs where the optional ``openvino`` package is installed (``pip install openvino``;
    not in the test lock): the bundled checkpoint's fp32 prediction through OpenVINO has
    torch's mask and probabilities within 1e-4."""
    pytest.importorskip("openvino")
    from bids_stroke.model import load_model
    from bids_stroke.model.adapters import synthetic_stack

    monkeypatch.setenv("BIDS_STROKE_CACHE_DIR", str(tmp_path))
    model = load_model(None, device="cpu")
    stack = synthetic_stack(1, (48, 64, 48), seed=3)
    want = model.predict_channels(stack.data, stack.brain_mask, precision="fp32",
                                  engine="torch")
    got = model.predict_channels(stack.data, stack.brain_mask, precision="fp32",
                                 engine="openvino")
    assert model.engine_used == "openvino"
    assert np.abs(got - want).max() <= 1e-4
    np.testing.assert_array_equal(got >= 0.5, want >= 0.5)
    assert list((tmp_path / "openvino").glob("*/model.onnx"))  # exported once, cached
