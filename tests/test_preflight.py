"""Input checks before any work, and the clean-up of staging folders."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import tiny_volume, write_nifti

from bids_stroke.inputs.discovery import ImageInputs
from bids_stroke.inputs.preflight import InputError, check_subject, preflight_check


def _subject(tmp_path, img, mask=None, affine=None):
    image = write_nifti(tmp_path / "sub-01_T1w.nii.gz", img, affine)
    mpath = write_nifti(tmp_path / "sub-01_mask.nii.gz", mask, affine) if mask is not None \
        else None
    return ImageInputs("01", None, image, mpath, None)


def test_good_input_passes(tmp_path):
    img, mask = tiny_volume()
    check_subject(_subject(tmp_path, img, mask))


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda i, m: (i[..., None], m), "4-D with one volume"),
        (lambda i, m: (np.stack([i, i], -1), m), "must be a 3-D volume"),
        (lambda i, m: (np.where(i > 90, np.nan, i), m), "NaN/Inf"),
        (lambda i, m: (np.zeros_like(i), m), "constant"),
        (lambda i, m: (i, m * 255), "not binary"),
        (lambda i, m: (i, m[:-1]), "mask shape"),
    ],
)
def test_bad_inputs_name_file_and_fix(tmp_path, mutate, needle):
    img, mask = tiny_volume()
    img, mask = mutate(img, mask)
    with pytest.raises(InputError) as err:
        check_subject(_subject(tmp_path, img, mask))
    assert needle in str(err.value) and str(tmp_path) in str(err.value)


def test_preflight_splits_good_and_bad(tmp_path):
    img, mask = tiny_volume()
    good = _subject(tmp_path / "a", img, mask)
    bad = _subject(tmp_path / "b", np.zeros_like(img), mask)
    ok, failed = preflight_check([good, bad], nprocs=2)
    assert ok == [good] and failed[0][0] == bad
