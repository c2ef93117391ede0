"""Model adapters: bids_stroke/TorchScript unchanged, multi-channel, ONNX export parity."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from bids_stroke.cli.model import main as model_main
from bids_stroke.model import PreprocessConfig, UNet3D, UNetConfig, load_model, save_checkpoint
from bids_stroke.model.adapters import (
    ChannelStack,
    clear_model_cache,
    open_model,
    synthetic_stack,
)
from bids_stroke.model.check import check_model, modality_mismatch
from bids_stroke.model.preprocess import normalize_intensity
from tests.conftest import SHARED

ISLES = SHARED / "data" / "real" / "isles22_case0001"


def _two_channel_ckpt(path: Path) -> Path:
    torch.manual_seed(1)
    net = UNet3D(UNetConfig(in_channels=2, base_channels=4, depth=2))
    save_checkpoint(path, net, PreprocessConfig(),
                    model_spec={"channels": ["dwi", "adc"], "space": "native"})
    return path


def test_bundled_adapter_is_todays_model_and_cached() -> None:
    clear_model_cache()
    seg = open_model(None, device="cpu", precision="fp32")
    assert open_model(None, device="cpu", precision="fp32") is seg
    assert seg.spec.channels == ("T1w",) and seg.spec.assumed == ()  # bundled sidecar
    stack = synthetic_stack(1, (40, 48, 40), seed=2)
    old = load_model(None, device="cpu").predict(stack.data[0], stack.brain_mask,
                                                  precision="fp32")
    np.testing.assert_array_equal(seg.predict(stack), old)
    check_model(seg, channels_available=["T1w"], image_shape=(197, 233, 189))
    clear_model_cache()
    assert open_model(None, device="cpu", precision="fp32") is not seg


def test_two_channel_checkpoint_matches_hand_computation(tmp_path: Path) -> None:
    seg = open_model(_two_channel_ckpt(tmp_path / "two.pt"), device="cpu", precision="fp32",
                     mode="full")
    assert seg.spec.channels == ("dwi", "adc") and seg.spec.space == "native"
    assert seg.spec.assumed == ("threshold",)
    stack = synthetic_stack(2, (13, 17, 11), seed=4)
    got = seg.predict(stack)
    # reference: each channel normalised, zero-padded to 16x20x12 (divisor 2, symmetric)
    norm = np.stack([normalize_intensity(c, stack.brain_mask) for c in stack.data])
    padded = np.pad(norm, [(0, 0), (0, 1), (0, 1), (0, 1)])
    with torch.no_grad():
        logits = seg.model.network(torch.from_numpy(padded[None]))
    ref = torch.sigmoid(logits)[0, 0, :13, :17, :11].numpy()
    np.testing.assert_allclose(got, ref, atol=1e-6)
    assert modality_mismatch(seg.spec, ["dwi", "adc", "FLAIR"]) is None
    assert "missing adc" in modality_mismatch(seg.spec, ["dwi"])


def test_torchscript_two_logit_output_is_softmax(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = UNet3D(UNetConfig(base_channels=4, depth=2)).eval()

    class TwoLogits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            lesion = self.net(x)
            return torch.cat([-0.5 * lesion, 0.5 * lesion], dim=1)

    one, two = tmp_path / "one.ts", tmp_path / "two.ts"
    torch.jit.save(torch.jit.script(net), str(one))
    torch.jit.save(torch.jit.script(TwoLogits().eval()), str(two))
    stack = synthetic_stack(1, (16, 16, 16), seed=1)
    p1 = open_model(one, device="cpu", precision="fp32").predict(stack)
    seg2 = open_model(two, device="cpu", precision="fp32")
    assert seg2.spec.kind == "torchscript" and "channels" in seg2.spec.assumed
    np.testing.assert_allclose(seg2.predict(stack), p1, atol=1e-6)


@pytest.mark.slow
def test_onnx_export_matches_torch(tmp_path: Path, capsys) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from bids_stroke.demo import generate_subject

    out = tmp_path / "bundled.onnx"
    assert model_main(["export", "--onnx", "bundled", str(out)]) == 0
    subj = generate_subject(1, seed=0, resolution_mm=2.0)
    stack = ChannelStack(subj.t1w[None].astype(np.float32), subj.affine,
                         brain_mask=subj.brain_mask)
    ref = open_model(None, device="cpu", precision="fp32").predict(stack)
    onx = open_model(out, device="cpu")
    got = onx.predict(stack)
    assert onx.info["exported_by_bids_stroke"] and onx.spec.assumed == ()
    assert np.abs(got - ref).max() < 1e-4
    np.testing.assert_array_equal(got >= 0.5, ref >= 0.5)
    assert (ref >= 0.5).sum() > 100  # a real lesion, not an empty mask
    check_model(onx, image_shape=subj.t1w.shape)
    capsys.readouterr()
    assert model_main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["spec"]["channels"] == ["T1w"] and info["spec"]["kind"] == "onnx"


@pytest.mark.skipif(not ISLES.is_dir(), reason="real ISLES'22 case not available")
def test_two_channel_native_isles_stays_on_grid(tmp_path: Path) -> None:
    files = [next(ISLES.glob(f"*_{s}.nii.gz")) for s in ("dwi", "adc")]
    stack = ChannelStack.from_files(files)
    assert stack.shape == (112, 112, 73)
    seg = open_model(_two_channel_ckpt(tmp_path / "two.pt"), device="cpu")
    prob = seg.predict(stack)
    assert prob.shape == stack.shape and prob.dtype == np.float32
    assert np.isfinite(prob).all() and 0 <= prob.min() and prob.max() <= 1
    assert nib.load(str(files[0])).shape[:3] == prob.shape


def test_segment_interface_two_channels(tmp_path: Path, monkeypatch) -> None:
    from bids_stroke.core.settings import SegmentationSettings
    from bids_stroke.interfaces.segment import SegmentImage
    from bids_stroke.model.request import ModelRequest

    stack = synthetic_stack(2, (12, 14, 10), seed=5)
    affine = np.diag([2.0, 2.0, 2.5, 1.0])
    files = []
    for c, name in enumerate(("dwi", "adc")):
        files.append(str(tmp_path / f"sub-01_{name}.nii.gz"))
        nib.Nifti1Image(stack.data[c], affine).to_filename(files[-1])
    ckpt = _two_channel_ckpt(tmp_path / "two.pt")
    monkeypatch.chdir(tmp_path)
    settings = SegmentationSettings(model=ckpt, device="cpu", precision="fp32", engine="torch")
    request = ModelRequest.from_settings(settings, threads=1)
    res = SegmentImage(in_files=files, model=request.node_input(), probseg="full").run()
    prob = nib.load(res.outputs.out_probseg)
    assert prob.shape == stack.shape and np.allclose(prob.affine, affine)
    assert res.outputs.model_spec["channels"] == ["dwi", "adc"]
    assert res.outputs.threshold == 0.5
    direct = open_model(ckpt, device="cpu", precision="fp32").predict(
        ChannelStack(stack.data, affine))
    np.testing.assert_allclose(np.asarray(prob.dataobj), direct, atol=1e-6)


def test_torchscript_embedded_spec_as_in_readme(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = UNet3D(UNetConfig(base_channels=4, depth=2)).eval()
    path = tmp_path / "flair_unet.ts"
    meta = {"model_spec": {"channels": ["FLAIR"], "space": "MNI152NLin2009aSym",
                           "resolution_mm": 1}}
    torch.jit.save(torch.jit.script(net), str(path),
                   _extra_files={"bids_stroke.json": json.dumps(meta)})
    spec = open_model(path, device="cpu").spec
    assert spec.channels == ("FLAIR",) and spec.assumed == ("threshold",)
    assert dict(spec.origin)["channels"] == "model"


# VmHWM (peak RSS of this process's address space) is reset by exec; ru_maxrss is not: a
# child of a large pytest process would start at its parent's peak and measure no growth.
_MEASURE = """
import re, torch
from bids_stroke.model.adapters import open_model, synthetic_stack

def hwm_kib():
    with open("/proc/self/status") as f:
        return int(re.search(r"VmHWM:\\s+(\\d+) kB", f.read()).group(1))

torch.set_num_threads(1)
seg = open_model(None, device="cpu", precision="fp32", mode="full")
seg.predict(synthetic_stack(1, (16, 16, 16)))
stack = synthetic_stack(1, (160, 160, 160))
base = hwm_kib()
seg.predict(stack)
print((hwm_kib() - base) / 1024**2)
"""


def test_memory_estimate_against_measured_peak() -> None:
    """Independent check of bids_stroke.model.memory: the peak RSS growth of a full-volume
    prediction in a fresh process (Linux VmHWM, KiB)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _MEASURE], capture_output=True, text=True,
                         check=True, timeout=600)
    measured = float(out.stdout.strip().splitlines()[-1])
    estimate = open_model(None, device="cpu", precision="fp32",
                          mode="full").estimate_memory_gb((160, 160, 160))
    assert 0.9 * measured <= estimate <= 3 * measured, (measured, estimate)
