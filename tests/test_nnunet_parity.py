"""nnU-Net v2 adapter against nnU-Net itself (``nnUNetPredictor.predict_from_files``).

The model folder is made by nnunetv2's own tools (``tests/nnunet_tiny.py``: fingerprint, plans,
preprocessing, ``nnUNetTrainer.save_checkpoint``) once per session, in a subprocess
(``nnunet_folder`` in ``tests/conftest.py``).
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from tests.conftest import SHARED

pytest.importorskip("nnunetv2")
pytestmark = pytest.mark.slow
ISLES = SHARED / "data" / "real" / "isles22_case0001"


def _reference(folder: Path, files: list[str], out: Path) -> tuple[np.ndarray, np.ndarray]:
    """nnU-Net's own prediction: (lesion probability, segmentation) on the input grid."""
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    pred = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=True,
                           device=torch.device("cpu"), allow_tqdm=False)
    pred.initialize_from_trained_model_folder(str(folder), use_folds=(0,),
                                              checkpoint_name="checkpoint_final.pth")
    pred.predict_from_files([files], [str(out / "ref")], save_probabilities=True,
                            num_processes_preprocessing=1, num_processes_segmentation_export=1)
    seg = np.asarray(nib.load(out / "ref.nii.gz").dataobj)
    # SimpleITK array order (z, y, x) -> NIfTI voxel order (x, y, z)
    prob = np.load(out / "ref.npz")["probabilities"][1].transpose(2, 1, 0)
    return prob, seg


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
