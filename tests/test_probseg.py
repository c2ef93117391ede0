"""How probability maps are stored (bids_stroke.outputs.probseg): bounds checked on hand-made values
and on a written NIfTI, the mask reproduced from the stored map."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from bids_stroke.outputs.probseg import COMPACT_LEVELS, FLOOR, encode_probseg


def _roundtrip(tmp_path, prob, mode):
    enc = encode_probseg(prob, mode)
    img = nib.Nifti1Image(enc.data, np.eye(4))
    img.header.set_slope_inter(enc.slope, enc.inter)
    img.to_filename(tmp_path / f"{mode}.nii.gz")
    back = nib.load(tmp_path / f"{mode}.nii.gz")
    return back.get_data_dtype(), np.asarray(back.get_fdata())


def test_compact_hand_values():
    prob = np.array([0.0, 5e-5, 9.99e-5, 1e-4, 0.25, 0.4999999, 0.5, 0.75, 1.0], np.float32)
    enc = encode_probseg(prob, "compact")
    assert enc.data.dtype == np.uint16 and enc.slope == 1 / 65535 and enc.inter == 0
    # below the floor: 0; 0.5 -> 32767.5 rounds to even 32768 (>= 0.5); just below stays below
    assert enc.data.tolist() == [0, 0, 0, 7, 16384, 32767, 32768, 49151, 65535]
    assert np.abs(enc.data * enc.slope - prob).max() <= FLOOR


def test_compact_is_within_the_floor_and_keeps_the_mask(tmp_path):
    rng = np.random.default_rng(0)
    # a realistic map: mostly tiny values, a few near the threshold, some near 1
    prob = np.concatenate([rng.uniform(0, 1e-3, 4000) ** 2, rng.uniform(0.49, 0.51, 2000),
                           rng.uniform(0, 1, 2000)]).astype(np.float32).reshape(20, 20, 20)
    dtype, stored = _roundtrip(tmp_path, prob, "compact")
    assert dtype == np.uint16
    assert np.abs(stored - prob).max() <= FLOOR
    assert np.abs(stored - prob)[prob >= FLOOR].max() <= 0.5 / COMPACT_LEVELS + 1e-9
    np.testing.assert_array_equal(stored >= 0.5, prob >= 0.5)
    assert (stored[prob < FLOOR] == 0).all()
    dtype, full = _roundtrip(tmp_path, prob, "full")
    assert dtype == np.float32 and np.array_equal(full, prob)
    assert encode_probseg(prob, "none") is None


def test_unknown_mode_refused():
    with pytest.raises(ValueError, match="none, compact, full"):
        encode_probseg(np.zeros(3, np.float32), "lossy")
