"""nnU-Net v2 adapter against nnU-Net itself (``nnUNetPredictor.predict_from_files``,
``tests/nnunet_reference.py``).

The model folder is made by nnunetv2's own tools (``tests/nnunet_tiny.py``: fingerprint, plans,
preprocessing, ``nnUNetTrainer.save_checkpoint``) once per session, in a subprocess
(``nnunet_folder`` in ``tests/conftest.py``); the same model is saved by trainer variants
(``nnunet_variant_folders``).
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from tests.conftest import SHARED
from tests.nnunet_reference import compare
from tests.nnunet_reference import reference as _reference
from tests.nnunet_tiny import VARIANTS

pytest.importorskip("nnunetv2")
pytestmark = pytest.mark.slow
ISLES = SHARED / "data" / "real" / "isles22_case0001"


def test_parity_with_predict_from_files(nnunet_folder: Path, tmp_path: Path) -> None:
    from bids_stroke.model.adapters import ChannelStack, open_model
    from bids_stroke.model.check import check_model
    from tests.nnunet_tiny import AFFINE, phantom

    dwi, adc, _ = phantom(42)
    files = []
    for ch, arr in enumerate((dwi, adc)):
        files.append(str(tmp_path / f"case_{ch:04d}.nii.gz"))
        nib.Nifti1Image(arr, AFFINE).to_filename(files[-1])
    seg = open_model(nnunet_folder, device="cpu")
    spec = seg.spec
    assert spec.kind == "nnunet" and spec.channels == ("dwi", "adc")
    assert spec.space == "native" and spec.assumed == ("space",) and spec.lesion_labels == (1,)
    assert seg.info["mirroring"] and seg.info["folds"] == ["0"]
    check_model(seg, channels_available=["dwi", "adc"], image_shape=dwi.shape,
                spacing_mm=(2.0, 2.0, 2.0))
    stack = ChannelStack.from_files(files)
    from_files = seg.predict(stack)
    in_memory = seg.predict(ChannelStack(stack.data, stack.affine))
    ref_prob, ref_seg = _reference(nnunet_folder, files, tmp_path)
    assert from_files.shape == ref_prob.shape == dwi.shape
    assert np.abs(from_files - ref_prob).max() <= 1e-5
    assert np.abs(in_memory - ref_prob).max() <= 1e-5
    np.testing.assert_array_equal(from_files >= spec.threshold, ref_seg == 1)
    np.testing.assert_array_equal(in_memory >= spec.threshold, ref_seg == 1)
    assert 0 < (ref_seg == 1).sum() < ref_seg.size  # a non-trivial mask


@pytest.mark.parametrize("trainer", sorted(VARIANTS))
def test_trainer_variants_match_predict_from_files(nnunet_variant_folders: dict[str, Path],
                                                   tmp_path: Path, trainer: str) -> None:
    """A model saved by a trainer variant in a subpackage of nnunetv2 runs, in this environment
    (whose lock has no torchvision, so nnU-Net's own lookup cannot reach the variants), with
    the masks of nnUNetPredictor: the standard network for a variant that only changes the
    training, the trainer's own ``build_network_architecture`` for one that overrides it."""
    from tests.nnunet_tiny import AFFINE, phantom

    dwi, adc, _ = phantom(43)
    files = []
    for ch, arr in enumerate((dwi, adc)):
        files.append(str(tmp_path / f"case_{ch:04d}.nii.gz"))
        nib.Nifti1Image(arr, AFFINE).to_filename(files[-1])
    result = compare(nnunet_variant_folders[trainer], files, tmp_path, VARIANTS[trainer])
    assert result["trainer"] == trainer
    overrides = trainer == "nnUNetTrainerBN"
    assert result["network_builder"] == (trainer if overrides else "nnUNetTrainer")
    assert result["max_abs_diff"] <= 1e-5 and result["masks_equal"], result
    assert 0 < result["lesion_voxels"] < result["voxels"]


def test_missing_checkpoint_and_fold_are_one_line_errors(nnunet_folder: Path) -> None:
    from bids_stroke.model.adapters import ModelLoadError, open_model

    with pytest.raises(ModelLoadError, match=r"no fold_\*/checkpoint_best\.pth") as e1:
        open_model(nnunet_folder, device="cpu", checkpoint="best")
    with pytest.raises(ModelLoadError, match=r"fold 3 has no .*\(folds with it: 0\)") as e2:
        open_model(nnunet_folder, device="cpu", folds=[3])
    assert "\n" not in str(e1.value) + str(e2.value)


@pytest.mark.skipif(not ISLES.is_dir(), reason="real ISLES'22 case not available")
def test_isles_dwi_adc_native_stays_on_grid(nnunet_folder: Path) -> None:
    from bids_stroke.model.adapters import ChannelStack, open_model

    files = [next(ISLES.glob(f"*_{s}.nii.gz")) for s in ("dwi", "adc")]
    stack = ChannelStack.from_files(files)
    prob = open_model(nnunet_folder, device="cpu", tta=False).predict(stack)
    assert prob.shape == stack.shape == (112, 112, 73)
    assert prob.dtype == np.float32 and np.isfinite(prob).all()
    assert 0 <= prob.min() and prob.max() <= 1
