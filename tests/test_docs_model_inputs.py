"""docs/model-inputs.md says what the code does: the defaults, every method, and the ROI a
native-space model's channels are normalised in."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bids_stroke.model.preprocess import METHODS, PreprocessConfig, normalize_intensity

DOC = (Path(__file__).resolve().parents[1] / "docs" / "model-inputs.md").read_text()


def test_documented_defaults_are_the_code_defaults() -> None:
    cfg = PreprocessConfig()
    assert f"**`{cfg.method}`**" in DOC
    lo, hi = cfg.clip_percentiles
    assert f"**{lo:g} and {hi:g}**" in DOC
    assert f"**`mask_background: {str(cfg.mask_background).lower()}`**" in DOC
    assert all(f"`{m}`" in DOC for m in METHODS)


def test_without_a_brain_mask_the_roi_is_the_non_zero_voxels() -> None:
    """What a native-space model gets: z-score over the non-zero voxels, background 0."""
    rng = np.random.default_rng(0)
    x = np.zeros((12, 12, 12), np.float32)
    x[2:10, 2:10, 2:10] = rng.normal(100, 10, (8, 8, 8))
    out = normalize_intensity(x, None, PreprocessConfig(clip_percentiles=None))
    inside = x != 0
    assert abs(out[inside].mean()) < 1e-5 and abs(out[inside].std() - 1) < 1e-4
    assert not out[~inside].any()
