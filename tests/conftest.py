"""Shared fixtures: tiny BIDS skeletons of the supported layouts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BIDS_STROKE_SHARED") or REPO.parent / "shared")
"""Real data (``../shared``; ``BIDS_STROKE_SHARED`` overrides, e.g. in a git worktree)."""

# Tests that call the registration functions in-process get what the command line sets up
# (bids_stroke.cli.run): ITK single-threaded, so transforms are reproducible for a seed.
os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "1")


@pytest.fixture(scope="session")
def nnunet_folder(tmp_path_factory) -> Path:
    """A tiny nnU-Net v2 trained-model folder (DWI + ADC, 2 mm) made by nnunetv2's own tools
    (``tests/nnunet_tiny.py``, in its own process: nnunetv2 reads its folders at import); made
    once per session for the parity tests and the image test."""
    import subprocess
    import sys

    pytest.importorskip("nnunetv2")
    root = tmp_path_factory.mktemp("nnunet")
    run = subprocess.run([sys.executable, str(REPO / "tests" / "nnunet_tiny.py"), str(root)],
                         capture_output=True, text=True, timeout=1200, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    return Path(run.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def nnunet_variant_folders(nnunet_folder: Path) -> dict[str, Path]:
    """The same tiny model saved by trainer variants of nnunetv2 (``VARIANTS`` in
    ``tests/nnunet_tiny.py``: one in ``variants/training_length``, one that builds its own
    network in ``variants/network_architecture``), made with ``nnunet_folder``."""
    from tests.nnunet_tiny import VARIANTS, variant_folder

    folders = {name: variant_folder(nnunet_folder, name) for name in VARIANTS}
    assert all((f / "fold_0" / "checkpoint_final.pth").is_file() for f in folders.values())
    return folders


def write_nifti(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
    """Write a NIfTI (creating folders)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nb.Nifti1Image(data, np.eye(4) if affine is None else affine).to_filename(str(path))
    return path


def tiny_volume(seed: int = 0, shape=(16, 16, 16)) -> tuple[np.ndarray, np.ndarray]:
    """A small image with a dark blob and its mask."""
    rng = np.random.default_rng(seed)
    img = (100 + 10 * rng.standard_normal(shape)).astype(np.float32)
    mask = np.zeros(shape, np.uint8)
    mask[5:9, 6:10, 7:11] = 1
    img[mask > 0] = 30
    return img, mask


def dataset_description(root: Path, **extra) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(
        json.dumps({"Name": root.name, "BIDSVersion": "1.8.0", **extra})
    )


@pytest.fixture
def atlas_layout(tmp_path: Path) -> Path:
    """ATLAS v2.0: cohort folders with their own dataset_description, masks beside the T1w."""
    root = tmp_path / "Training"
    for cohort, subjects in (("R001", ("r001s001", "r001s002")), ("R002", ("r002s001",))):
        croot = root / cohort
        dataset_description(croot)
        for i, sub in enumerate(subjects):
            img, mask = tiny_volume(i)
            anat = croot / f"sub-{sub}" / "ses-1" / "anat"
            stem = f"sub-{sub}_ses-1_space-MNI152NLin2009aSym"
            write_nifti(anat / f"{stem}_T1w.nii.gz", img)
            if sub != "r001s002":  # one subject without mask
                write_nifti(anat / f"{stem}_label-L_desc-T1lesion_mask.nii.gz", mask)
    return root


@pytest.fixture
def isles_layout(tmp_path: Path) -> Path:
    """ISLES'22: FLAIR/DWI/ADC, masks in derivatives/sub-*/ses-*/..._msk.nii.gz."""
    root = tmp_path / "ISLES-2022"
    dataset_description(root)
    for i in (1, 2):
        sub = f"strokecase{i:04d}"
        img, mask = tiny_volume(i)
        base = root / f"sub-{sub}" / "ses-0001"
        write_nifti(base / "anat" / f"sub-{sub}_ses-0001_FLAIR.nii.gz", img)
        write_nifti(base / "dwi" / f"sub-{sub}_ses-0001_dwi.nii.gz", img)
        write_nifti(base / "dwi" / f"sub-{sub}_ses-0001_adc.nii.gz", img)
        write_nifti(
            root / "derivatives" / f"sub-{sub}" / "ses-0001" / f"sub-{sub}_ses-0001_msk.nii.gz",
            mask,
        )
    return root


@pytest.fixture
def plain_layout(tmp_path: Path) -> Path:
    """Plain BIDS, no sessions, two runs for one subject, masks in a derivatives dataset."""
    root = tmp_path / "plain"
    dataset_description(root)
    deriv = root / "derivatives" / "lesions"
    dataset_description(deriv, DatasetType="derivative")
    for sub, runs in (("01", (None,)), ("02", ("1", "2"))):
        for run in runs:
            img, mask = tiny_volume(int(sub))
            ent = f"sub-{sub}" + (f"_run-{run}" if run else "")
            write_nifti(root / f"sub-{sub}" / "anat" / f"{ent}_T1w.nii.gz", img)
            write_nifti(
                deriv / f"sub-{sub}" / "anat" / f"{ent}_label-L_desc-lesion_mask.nii.gz", mask
            )
    return root
