"""Preprocessing options of the original study against hand-computed arrays."""

from __future__ import annotations

import numpy as np
import pytest

from bids_stroke.model.preprocess import (
    PREPROCESS_PRESETS,
    PreprocessConfig,
    normalize_intensity,
    preprocess_preset,
    preprocess_volume,
)

# 2x2x2 volume, values 0 0 0 0 1 2 3 6 in C order
VOLUME = np.array([0, 0, 0, 0, 1, 2, 3, 6], np.float32).reshape(2, 2, 2)
ROI = VOLUME > 0


def test_zscore_volume_hand_computed() -> None:
    # mean = 12 / 8 = 1.5; squared deviations 4 * 2.25 + 0.25 + 0.25 + 2.25 + 20.25 = 32,
    # population variance 32 / 8 = 4, sd = 2  ->  z = (x - 1.5) / 2
    cfg = PreprocessConfig(method="zscore_volume", clip_percentiles=None, mask_background=False)
    z = normalize_intensity(VOLUME, ROI, cfg)
    expected = np.array([-0.75] * 4 + [-0.25, 0.25, 0.75, 2.25], np.float32).reshape(2, 2, 2)
    assert z.dtype == np.float32 and np.array_equal(z, expected)
    # statistics come from the whole volume whatever the ROI; masking only zeroes outside
    masked = normalize_intensity(VOLUME, ROI, PreprocessConfig(method="zscore_volume",
                                                                clip_percentiles=None))
    assert np.array_equal(masked, np.where(ROI, expected, 0))
    # our default z-score uses the ROI statistics instead: mean 3, sd sqrt(3.5)
    ours = normalize_intensity(VOLUME, ROI, PreprocessConfig(clip_percentiles=None))
    roi_vals = np.array([1, 2, 3, 6], float)
    assert np.allclose(ours[ROI], (roi_vals - 3) / np.sqrt(3.5), atol=1e-6)


def test_minmax_roi_hand_computed() -> None:
    # ROI values 1 2 3 6: min 1, max 6 -> (x - 1) / (5 + 1e-7); outside the ROI 0
    cfg = PreprocessConfig(method="minmax_roi", clip_percentiles=None)
    m = normalize_intensity(VOLUME, ROI, cfg)
    den = 5 + 1e-7
    expected = np.array([0, 0, 0, 0, 0 / den, 1 / den, 2 / den, 5 / den]).reshape(2, 2, 2)
    assert np.array_equal(m, expected.astype(np.float32))
    # the epsilon keeps the maximum below 1 in float64 (float32 output rounds it to 1)
    assert 5 / den == pytest.approx(0.99999998, abs=1e-15) and 5 / den < 1.0
    # "minmax" reaches exactly 1 (no epsilon)
    plain = normalize_intensity(VOLUME, ROI, PreprocessConfig(method="minmax",
                                                               clip_percentiles=None))
    assert plain.max() == 1.0
    # a constant ROI gives 0 everywhere instead of a division by zero
    flat = normalize_intensity(np.ones((2, 2, 2), np.float32), None, cfg)
    assert np.array_equal(flat, np.zeros((2, 2, 2), np.float32))


def test_clipping_uses_the_method_statistics() -> None:
    vol = np.arange(1, 101, dtype=np.float32).reshape(4, 5, 5)  # 1..100
    cfg = PreprocessConfig(method="minmax_roi", clip_percentiles=(10.0, 90.0))
    m = normalize_intensity(vol, None, cfg)
    # numpy's linear percentiles of 1..100: 10.9 and 90.1
    lo, hi = 10.9, 90.1
    assert m.min() == 0.0
    assert float(m.max()) == pytest.approx((hi - lo) / (hi - lo + 1e-7), rel=1e-7)
    assert float(m.ravel()[49]) == pytest.approx((50 - lo) / (hi - lo + 1e-7), rel=1e-6)


def test_padding_multiple_and_presets() -> None:
    data = np.random.default_rng(0).random((197, 233, 189)).astype(np.float32)
    padded, spec = preprocess_volume(data, None, preprocess_preset("paper"), 8)
    assert padded.shape == (208, 240, 192)
    assert spec == ((5, 6), (3, 4), (1, 2))
    default, _ = preprocess_volume(data, None, PreprocessConfig(), 8)
    assert default.shape == (200, 240, 192)  # the network's divisor 8
    with pytest.raises(ValueError, match="not a multiple of the network's divisor 32"):
        preprocess_volume(data, None, PreprocessConfig(pad_multiple=16), 32)
    paper = PREPROCESS_PRESETS["paper"]
    assert (paper.method, paper.clip_percentiles, paper.pad_multiple) == (
        "zscore_volume", None, 16)
    assert PREPROCESS_PRESETS["slides"].method == "minmax_roi"
    assert PREPROCESS_PRESETS["default"] == PreprocessConfig()
    with pytest.raises(ValueError, match="default, paper, slides"):
        preprocess_preset("atlas")
    for bad in (0, -16, 2.5, True):
        with pytest.raises(ValueError, match="pad_multiple"):
            PreprocessConfig(pad_multiple=bad)


def test_old_checkpoint_settings_round_trip() -> None:
    """A checkpoint written before these options loads to the same (default) config, and a
    default config still serialises to exactly the old keys."""
    old = {"method": "zscore", "clip_percentiles": [0.5, 99.5], "mask_background": True}
    cfg = PreprocessConfig.from_dict(old)
    assert cfg == PreprocessConfig() and cfg.pad_multiple is None
    assert cfg.to_dict() == old
    for preset in PREPROCESS_PRESETS.values():
        assert PreprocessConfig.from_dict(preset.to_dict()) == preset
    assert PREPROCESS_PRESETS["paper"].to_dict()["pad_multiple"] == 16
    with pytest.raises(ValueError, match="unknown PreprocessConfig keys"):
        PreprocessConfig.from_dict({**old, "padding": 16})
    with pytest.raises(ValueError, match="zscore_volume"):
        PreprocessConfig(method="whiten")


def _normalize_reference(data, brain_mask, cfg):
    """The whole-volume implementation normalize_intensity had until 2026-12-08 (it scales
    every voxel, then zeroes the background): the ROI-only version must equal it bit for bit."""
    from bids_stroke.model.preprocess import _roi, _scale

    x = np.asarray(data, dtype=np.float32)
    roi = _roi(x, brain_mask)
    x = np.where(np.isfinite(x), x, 0.0).astype(np.float32)
    vals = x.ravel() if cfg.method == "zscore_volume" else x[roi]
    if vals.size == 0:
        return np.zeros_like(x)
    if cfg.method in ("zscore_volume", "minmax_roi"):
        x = x.astype(np.float64)
        vals = vals.astype(np.float64)
    if cfg.clip_percentiles is not None:
        lo, hi = np.percentile(vals, cfg.clip_percentiles)
        x = np.clip(x, lo, hi)
        vals = np.clip(vals, lo, hi)
    out = _scale(x, vals, cfg.method)
    if cfg.mask_background:
        out = np.where(roi, out, 0.0)
    return out.astype(np.float32, copy=False)


@pytest.mark.parametrize("method", ["zscore", "minmax", "zscore_volume", "minmax_roi"])
@pytest.mark.parametrize("clip", [None, (0.5, 99.5), (2.0, 98.0)])
@pytest.mark.parametrize("background", [True, False])
@pytest.mark.parametrize("with_mask", [True, False])
def test_normalize_intensity_equals_whole_volume_reference(method, clip, background,
                                                           with_mask) -> None:
    rng = np.random.default_rng(7)
    data = rng.gamma(3.0, 40.0, size=(23, 19, 17)).astype(np.float32)
    data[rng.random(data.shape) < 0.3] = 0.0
    data[1, 2, 3], data[4, 5, 6], data[7, 8, 9] = np.nan, np.inf, -np.inf
    mask = np.zeros(data.shape, bool)
    mask[3:20, 2:16, 4:14] = True
    cfg = PreprocessConfig(method=method, clip_percentiles=clip, mask_background=background)
    got = normalize_intensity(data, mask if with_mask else None, cfg)
    expected = _normalize_reference(data, mask if with_mask else None, cfg)
    assert got.dtype == np.float32 and got.shape == data.shape
    assert np.array_equal(got.view(np.uint32), expected.view(np.uint32))  # bit for bit
