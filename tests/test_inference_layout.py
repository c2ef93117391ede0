"""The fast CPU paths of the bundled U-Net change no result: channels-last weights and inputs
give the same masks as the default layout in fp32, and bf16 autocast agrees with fp32 to
Dice >= 0.999, on a demo subject at 1 mm (what the bundled model was trained on).

Times are measured by ``bench/bench_inference.py`` (ratios in one run), never here.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from bids_stroke.demo import make_demo_dataset
from bids_stroke.model.checkpoint import load_model
from bids_stroke.model.inference import cpu_supports_bf16, preferred_memory_format


@pytest.fixture(scope="module")
def demo_t1w(tmp_path_factory) -> tuple[np.ndarray, np.ndarray]:
    root = make_demo_dataset(tmp_path_factory.mktemp("demo") / "bids", n_subjects=1, seed=3,
                             progress=False)
    t1w = next(root.rglob("*_T1w.nii.gz"))
    mask = next(p for p in root.rglob("*_mask.nii.gz") if "label-L" in p.name)
    return (np.asarray(nib.load(t1w).dataobj, dtype=np.float32),
            np.asarray(nib.load(mask).dataobj) > 0)


@pytest.fixture(scope="module")
def fp32_default_layout(demo_t1w) -> np.ndarray:
    model = load_model(None, device="cpu")
    model.set_memory_format(torch.contiguous_format)
    return model.predict(demo_t1w[0], mode="full", precision="fp32")


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.logical_and(a, b).sum() / max(1, a.sum() + b.sum())


def test_cpu_runs_narrow_networks_channels_last() -> None:
    model = load_model(None, device="cpu")
    cpu = torch.device("cpu")
    assert preferred_memory_format(cpu, 8) == torch.channels_last_3d
    assert preferred_memory_format(cpu, 16) == torch.contiguous_format  # measured slower
    assert preferred_memory_format(cpu, None) == torch.contiguous_format  # unknown network
    assert model.network.config.base_channels == 8
    assert model.memory_format == torch.channels_last_3d
    conv = next(m for m in model.network.modules() if isinstance(m, torch.nn.Conv3d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last_3d)


def test_channels_last_gives_the_same_masks_in_fp32(demo_t1w, fp32_default_layout) -> None:
    image, lesion = demo_t1w
    model = load_model(None, device="cpu")
    prob = model.predict(image, mode="full", precision="fp32")
    assert np.abs(prob - fp32_default_layout).max() < 1e-4
    assert np.array_equal(prob >= 0.5, fp32_default_layout >= 0.5)
    assert _dice(prob >= 0.5, lesion) > 0.5  # the model sees the demo lesion at all


@pytest.mark.parametrize("mode, tta", [("sliding", False), ("full", True)])
def test_channels_last_sliding_window_and_mirroring_match(demo_t1w, mode, tta) -> None:
    image = demo_t1w[0][50:130, 60:156, 50:130]
    model = load_model(None, device="cpu")
    fast = model.predict(image, mode=mode, patch_size=(64, 64, 64), tta=tta, precision="fp32")
    model.set_memory_format(torch.contiguous_format)
    slow = model.predict(image, mode=mode, patch_size=(64, 64, 64), tta=tta, precision="fp32")
    assert np.abs(fast - slow).max() < 1e-4
    assert np.array_equal(fast >= 0.5, slow >= 0.5)


@pytest.mark.skipif(not cpu_supports_bf16(), reason="this CPU has no native bf16 kernels")
def test_bf16_agrees_with_fp32(demo_t1w, fp32_default_layout) -> None:
    model = load_model(None, device="cpu")
    prob = model.predict(demo_t1w[0], mode="full", precision="bf16")
    assert _dice(prob >= 0.5, fp32_default_layout >= 0.5) >= 0.999
