"""Tests of the U-Net, preprocessing, inference, checkpoints and the SegmentImage interface."""

from __future__ import annotations

import pickle
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bids_stroke.model import (
    ModelLoadError,
    PreprocessConfig,
    SegmentationModel,
    UNet3D,
    UNetConfig,
    binarize,
    crop_back,
    export_torchscript,
    load_model,
    pad_to_multiple,
    save_checkpoint,
)
from bids_stroke.model.checkpoint import load_checkpoint
from bids_stroke.model.inference import (
    gaussian_importance_map,
    predict_probabilities,
    resolve_precision,
    select_device,
    sliding_window_starts,
)
from bids_stroke.model.preprocess import normalize_intensity

CPU = torch.device("cpu")


def tiny_net(seed: int = 0, **kw) -> UNet3D:
    torch.manual_seed(seed)
    cfg = {"base_channels": 4, "depth": 3, "norm": "instance", **kw}
    return UNet3D(UNetConfig(**cfg)).eval()


def phantom(shape=(21, 26, 19), seed=0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    img = rng.normal(100.0, 10.0, shape).astype(np.float32)
    zz, yy, xx = np.indices(shape)
    c = [s // 2 for s in shape]
    lesion = ((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2) < 16
    img[lesion] += 60
    img[:2] = 0  # background slab
    return img, lesion.astype(np.uint8)


# ------------------------------------------------------------------------------- network
def test_unet_shapes_and_config_roundtrip():
    net = tiny_net(depth=4, base_channels=2)
    x = torch.randn(2, 1, 16, 24, 8)
    assert net(x).shape == (2, 1, 16, 24, 8)
    assert UNetConfig.from_dict(net.config.to_dict()) == net.config
    with pytest.raises(ValueError, match="divisible by 8"):
        net(torch.randn(1, 1, 12, 16, 16))
    with pytest.raises(ValueError):
        UNetConfig(norm="layer")
    for norm in ("batch", "group"):
        assert tiny_net(norm=norm)(torch.randn(1, 1, 8, 8, 8)).shape == (1, 1, 8, 8, 8)


# ------------------------------------------------------------------------------- preprocess
def test_pad_example_and_crop_back_exact():
    x = np.arange(197 * 233 * 189, dtype=np.float32).reshape(197, 233, 189)
    p, spec = pad_to_multiple(x, 16)
    assert p.shape == (208, 240, 192)
    assert np.array_equal(crop_back(p, spec), x)


@settings(max_examples=25, deadline=None)
@given(
    shape=st.tuples(*[st.integers(1, 23)] * 3),
    mult=st.integers(1, 9),
    lead=st.integers(0, 2),
)
def test_pad_crop_roundtrip_property(shape, mult, lead):
    x = np.random.default_rng(0).random((2,) * lead + shape).astype(np.float32)
    p, spec = pad_to_multiple(x, mult)
    assert all(s % mult == 0 for s in p.shape[-3:])
    assert p.shape[:lead] == x.shape[:lead]
    assert all(0 <= b <= a <= b + 1 for b, a in spec[-3:])  # symmetric split
    assert np.array_equal(crop_back(p, spec), x)


def test_normalize_zscore_and_minmax():
    img, _ = phantom()
    roi = img != 0
    z = normalize_intensity(img, roi, PreprocessConfig(clip_percentiles=None))
    assert abs(z[roi].mean()) < 1e-4 and abs(z[roi].std() - 1) < 1e-3
    assert np.all(z[~roi] == 0)
    m = normalize_intensity(img, roi, PreprocessConfig(method="minmax"))
    assert m[roi].min() == pytest.approx(0) and m[roi].max() == pytest.approx(1)
    # clipping at percentiles bounds the outliers
    spiky = img.copy()
    spiky[10, 10, 10] = 1e6
    c = normalize_intensity(spiky, roi)
    assert c.max() < 10
    # non-finite input does not propagate
    bad = img.copy()
    bad[5, 5, 5] = np.nan
    assert np.isfinite(normalize_intensity(bad)).all()
    with pytest.raises(ValueError):
        PreprocessConfig(method="whiten")


# ------------------------------------------------------------------------------- inference
def test_predict_odd_shape_roundtrip_and_range():
    img, _ = phantom((13, 17, 11))
    model = SegmentationModel(tiny_net(), device="cpu", divisor=4)
    prob = model.predict(img, precision="fp32")
    assert prob.shape == img.shape and prob.dtype == np.float32
    assert np.all((prob >= 0) & (prob <= 1))
    tta = model.predict(img, precision="fp32", tta=True)
    assert tta.shape == img.shape
    assert not np.allclose(tta, prob)  # 8 flips averaged: a different estimate


def test_sliding_window_equals_full_volume_when_receptive_field_fits():
    # 1x1x1 effective convolutions (only the centre tap) + batch-norm in eval mode: each output
    # voxel depends on its own divisor-aligned 2x2x2 pooling cell only, so patches aligned to
    # the divisor give the full-volume result up to floating point.
    net = tiny_net(norm="batch", depth=3, base_channels=4)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Conv3d) and m.kernel_size == (3, 3, 3):
                centre = m.weight[..., 1, 1, 1].clone()
                m.weight.zero_()
                m.weight[..., 1, 1, 1] = centre
    vol = np.random.default_rng(1).normal(size=(16, 24, 12)).astype(np.float32)
    kw = {"device": CPU, "divisor": 4, "autocast_dtype": None}
    full = predict_probabilities(net, vol, mode="full", **kw)
    slid = predict_probabilities(net, vol, mode="sliding", patch_size=(8, 8, 8), overlap=0.5,
                                 **kw)
    np.testing.assert_allclose(slid, full, atol=1e-5)
    # a patch larger than the volume degrades to one full-size window
    whole = predict_probabilities(net, vol, mode="sliding", patch_size=(32, 32, 32), **kw)
    np.testing.assert_allclose(whole, full, atol=1e-6)


def test_sliding_window_starts_cover_and_align():
    for size, patch, ov in [(240, 128, 0.5), (208, 64, 0.25), (192, 128, 0.0), (64, 64, 0.5)]:
        starts = sliding_window_starts(size, patch, ov, align=16)
        covered = np.zeros(size, bool)
        for s in starts:
            covered[s : s + patch] = True
            assert s % 16 == 0 and 0 <= s <= size - patch
        assert covered.all()
    g = gaussian_importance_map((16, 8, 12))
    assert g.max() == pytest.approx(1) and g.min() > 0


def test_binarize_threshold_and_min_size():
    prob = np.zeros((12, 12, 12), np.float32)
    prob[1:4, 1:4, 1:4] = 0.9  # 27 voxels
    prob[8, 8, 8] = 0.6  # 1 voxel
    prob[10, 10, 10] = 0.4  # below threshold
    m = binarize(prob, 0.5)
    assert m.dtype == np.uint8 and m.sum() == 28
    assert binarize(prob, 0.5, min_size=2).sum() == 27
    assert binarize(prob, 0.5, min_size=28).sum() == 0
    assert binarize(prob, 0.3).sum() == 29


def test_precision_and_device_resolution():
    assert resolve_precision("fp32", CPU) is None
    assert resolve_precision("auto", CPU) in (None, torch.bfloat16)
    with pytest.raises(ValueError):
        resolve_precision("int8", CPU)
    assert select_device("cpu") == CPU
    assert select_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            select_device("cuda")


# ------------------------------------------------------------------------------- checkpoints
def test_checkpoint_roundtrip_bitwise(tmp_path):
    net = tiny_net(seed=3)
    pre = PreprocessConfig(method="minmax", clip_percentiles=(1.0, 99.0))
    path = save_checkpoint(tmp_path / "m.pt", net, pre, {"seed": 3, "command": "x"})
    ck = load_checkpoint(path)
    assert ck["format"] == "bids_stroke-unet" and ck["format_version"] == 1
    assert ck["training"]["torch_version"] == torch.__version__
    loaded = load_model(path, device="cpu")
    assert loaded.preprocessing == pre
    assert len(loaded.checksum) == 64 and loaded.info["model_config"] == net.config.to_dict()
    img, _ = phantom((16, 20, 12))
    ref = SegmentationModel(net, pre, divisor=4, device="cpu").predict(img, precision="fp32")
    got = loaded.predict(img, precision="fp32")
    assert np.array_equal(ref, got)


class _Payload:
    """Pickle payload that would create a marker file when unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_malicious_pickle_is_refused_and_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"format": "bids_stroke-unet", "payload": _Payload(marker)}, evil)
    with pytest.raises(ModelLoadError) as err:
        load_model(evil, device="cpu")
    msg = str(err.value)
    assert "not a safe bids_stroke checkpoint" in msg and "pickle" in msg and "\n" not in msg
    assert not marker.exists()
    # a whole pickled nn.Module is refused too
    mod = tmp_path / "module.pt"
    torch.save(tiny_net(), mod)
    with pytest.raises(ModelLoadError, match="not a safe"):
        load_model(mod, device="cpu")
    # plain pickle (not a torch zip) is refused, not executed
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(ModelLoadError):
        load_model(raw, device="cpu")
    assert not marker.exists()


def test_wrong_format_and_missing_files(tmp_path):
    p = tmp_path / "sd.pt"
    torch.save(tiny_net().state_dict(), p)
    with pytest.raises(ModelLoadError, match="not a bids_stroke-unet checkpoint"):
        load_model(p, device="cpu")
    with pytest.raises(ModelLoadError, match="not found"):
        load_model(tmp_path / "nope.pt", device="cpu")
    bad = save_checkpoint(tmp_path / "v.pt", tiny_net(), PreprocessConfig())
    ck = torch.load(bad, weights_only=True)
    ck["format_version"] = 99
    torch.save(ck, bad)
    with pytest.raises(ModelLoadError, match="format_version"):
        load_model(bad, device="cpu")


def test_torchscript_model_loading(tmp_path):
    net = tiny_net(seed=5)
    pre = PreprocessConfig()
    ts = export_torchscript(net, tmp_path / "net.ts", pre, divisor=4)
    model = load_model(ts, device="cpu")
    assert model.info["kind"] == "torchscript" and model.divisor == 4
    img, _ = phantom((16, 20, 12))
    ref = SegmentationModel(net, pre, divisor=4, device="cpu").predict(img, precision="fp32")
    np.testing.assert_allclose(model.predict(img, precision="fp32"), ref, atol=1e-5)
    # a TorchScript archive saved with a .pt extension is detected from its content
    plain = tmp_path / "plain.pt"
    torch.jit.save(torch.jit.script(net), str(plain))
    assert load_model(plain, device="cpu").info["kind"] == "torchscript"


# ------------------------------------------------------------------------------- interface
def test_segment_interface_keeps_grid(tmp_path, monkeypatch):
    from bids_stroke.core.settings import SegmentationSettings
    from bids_stroke.interfaces.segment import SegmentImage
    from bids_stroke.model.request import ModelRequest

    img, _ = phantom((15, 18, 13))
    affine = np.diag([1.5, 1.2, 2.0, 1.0])
    affine[:3, 3] = [-10, 5, 3]
    in_file = tmp_path / "sub-01_T1w.nii.gz"
    nib.Nifti1Image(img.astype(np.int16), affine).to_filename(in_file)
    ckpt = save_checkpoint(tmp_path / "m.pt", tiny_net(), PreprocessConfig())
    monkeypatch.chdir(tmp_path)
    settings = SegmentationSettings(model=ckpt, device="cpu", precision="fp32", threshold=0.5)
    model = ModelRequest.from_settings(settings, threads=1).node_input()
    stored = {}
    for mode, dtype in (("full", np.float32), ("compact", np.uint16)):
        (tmp_path / mode).mkdir()
        monkeypatch.chdir(tmp_path / mode)
        res = SegmentImage(in_file=str(in_file), model=model, probseg=mode).run()
        prob = nib.load(res.outputs.out_probseg)
        mask = nib.load(res.outputs.out_mask)
        for out in (prob, mask):
            assert out.shape == img.shape
            np.testing.assert_allclose(out.affine, affine)
        assert prob.get_data_dtype() == dtype and mask.get_data_dtype() == np.uint8
        p = np.asarray(prob.dataobj)
        # the stored map thresholded at 0.5 gives the mask in both encodings
        np.testing.assert_array_equal(np.asarray(mask.dataobj), (p >= 0.5).astype(np.uint8))
        stored[mode] = (p, np.asarray(mask.dataobj).tobytes())
        assert res.outputs.model_checksum == load_model(ckpt, device="cpu").checksum
        assert res.outputs.model_info["kind"] == "bids_stroke-unet"
    assert stored["full"][1] == stored["compact"][1]  # the same mask, whatever is stored
    assert np.abs(stored["full"][0] - stored["compact"][0]).max() <= 1e-4
    (tmp_path / "none").mkdir()
    monkeypatch.chdir(tmp_path / "none")
    res = SegmentImage(in_file=str(in_file), model=model, probseg="none").run()
    assert np.asarray(nib.load(res.outputs.out_mask).dataobj).tobytes() == stored["full"][1]
    assert not list((tmp_path / "none").rglob("*probseg*"))


# ------------------------------------------------------------------------------- bundled model
def test_bundled_model_loads_with_card():
    from bids_stroke.model.checkpoint import bundled_model_path, file_sha256

    model = load_model(None, device="cpu")
    path = bundled_model_path()
    assert model.checksum == file_sha256(path)
    assert model.info["bundled"] and model.info["kind"] == "bids_stroke-unet"
    assert path.stat().st_size < 5 * 2**20
    training = model.info["training"]
    assert training["command"].startswith("bids_stroke-train") and "seed" in training
    card = (path.parent / "MODEL_CARD.md").read_text()
    assert "not for clinical use" in card.lower()
    assert model.checksum in card


@pytest.mark.slow
def test_bundled_model_segments_a_demo_subject(tmp_path):
    from bids_stroke.demo import make_demo_dataset
    from bids_stroke.model.evaluate import evaluate_dataset

    bids = make_demo_dataset(tmp_path / "bids", n_subjects=1, seed=0, progress=False)
    rows = evaluate_dataset(bids, None, device="cpu")
    assert rows[0]["dice"] > 0.7
