"""Build a tiny nnU-Net v2 trained-model folder with nnunetv2's own tools (test helper).

    python tests/nnunet_tiny.py OUT_DIR      # prints the model folder on the last line

Six synthetic two-channel phantoms (DWI bright / ADC dark lesion, 2 mm, 40x48x40) are written
as an nnU-Net raw dataset (``channel_names`` DWI, ADC); nnU-Net extracts the fingerprint,
plans the experiment (``ExperimentPlanner``) and preprocesses it; ``get_trainer_from_args``
builds the ``nnUNetTrainer`` of the 3d_fullres configuration, whose network (He-initialised
under a fixed seed, not trained: on 2 shared CPU cores one iteration takes ~40 s) is saved with
``nnUNetTrainer.save_checkpoint`` in ``fold_0/checkpoint_final.pth``. The training log gets one
epoch of numpy float64 values, as a trained checkpoint has. It runs in its own process because
nnunetv2 reads its folder variables at import.

The same is saved, beside it, by trainer variants of nnunetv2 (:data:`VARIANTS`, each imported
from its own module in a subpackage of ``training/nnUNetTrainer/variants``): one that changes
only the training (its network is nnU-Net's standard one) and one that builds its own network
(``build_network_architecture`` with batch norm). Their folders are
``<Trainer>__nnUNetPlans__3d_fullres`` under the same dataset (:func:`variant_folder`).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

DATASET_ID = 901
DATASET = f"Dataset{DATASET_ID}_Tiny"
#: trainer variant -> the module of nnunetv2 that defines it
VARIANTS = {
    "nnUNetTrainer_5epochs": "nnunetv2.training.nnUNetTrainer.variants.training_length."
                             "nnUNetTrainer_Xepochs",
    "nnUNetTrainerBN": "nnunetv2.training.nnUNetTrainer.variants.network_architecture."
                       "nnUNetTrainerBN",
}
SHAPE = (40, 48, 40)
AFFINE = np.array([[2.0, 0, 0, -40], [0, 2.0, 0, -48], [0, 0, 2.0, -40], [0, 0, 0, 1]])


def phantom(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dwi, adc, lesion) on the 2 mm grid: ellipsoidal brain, spherical lesion."""
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.meshgrid(*[np.arange(s) for s in SHAPE], indexing="ij")
    brain = ((zz - 20) / 16) ** 2 + ((yy - 24) / 19) ** 2 + ((xx - 20) / 16) ** 2 < 1
    c = rng.integers([12, 14, 12], [28, 34, 28])
    r = rng.uniform(3, 6)
    les = ((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 < r * r) & brain
    dwi = np.where(brain, 300.0, 0) + np.where(les, 500.0, 0) + rng.normal(0, 20, SHAPE) * brain
    adc = np.where(brain, 800.0, 0) - np.where(les, 450.0, 0) + rng.normal(0, 30, SHAPE) * brain
    return dwi.astype(np.float32), adc.astype(np.float32), les.astype(np.uint8)


def write_raw(raw: Path, n: int = 6) -> None:
    for i in range(n):
        dwi, adc, les = phantom(i)
        for ch, arr in enumerate((dwi, adc)):
            p = raw / "imagesTr" / f"case_{i:03d}_{ch:04d}.nii.gz"
            p.parent.mkdir(parents=True, exist_ok=True)
            nib.Nifti1Image(arr, AFFINE).to_filename(p)
        p = raw / "labelsTr" / f"case_{i:03d}.nii.gz"
        p.parent.mkdir(parents=True, exist_ok=True)
        nib.Nifti1Image(les, AFFINE).to_filename(p)
    (raw / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "DWI", "1": "ADC"},
        "labels": {"background": 0, "lesion": 1},
        "numTraining": n,
        "file_ending": ".nii.gz",
    }))


def write_isles_bids(root: Path, n: int = 2, *,
                     cases: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
                     affine: np.ndarray = AFFINE) -> Path:
    """A raw BIDS dataset in the ISLES'22 layout: ``sub-strokecaseNNNN/ses-0001/dwi/
    *_{dwi,adc}.nii.gz``, masks in ``derivatives/``. ``cases``: (dwi, adc, lesion) per
    subject on the grid of ``affine`` (default: ``n`` of these phantoms, seeds 100, 101...)."""
    (root / "derivatives").mkdir(parents=True, exist_ok=True)
    for folder in (root, root / "derivatives"):
        (folder / "dataset_description.json").write_text(json.dumps(
            {"Name": "tiny ISLES-like phantoms", "BIDSVersion": "1.8.0",
             **({"DatasetType": "derivative",
                 "GeneratedBy": [{"Name": "nnunet_tiny"}]} if folder != root else {})}))
    for i, (dwi, adc, les) in enumerate(cases or [phantom(100 + k) for k in range(n)]):
        sub, ses = f"sub-strokecase{i + 1:04d}", "ses-0001"
        anat = root / sub / ses / "dwi"
        anat.mkdir(parents=True)
        nib.Nifti1Image(dwi, affine).to_filename(anat / f"{sub}_{ses}_dwi.nii.gz")
        nib.Nifti1Image(adc, affine).to_filename(anat / f"{sub}_{ses}_adc.nii.gz")
        masks = root / "derivatives" / sub / ses
        masks.mkdir(parents=True)
        nib.Nifti1Image(les, affine).to_filename(masks / f"{sub}_{ses}_msk.nii.gz")
    return root


def variant_folder(default: Path, trainer: str) -> Path:
    """The folder of ``trainer``'s model beside the default trainer's ``default``."""
    return default.with_name(default.name.replace("nnUNetTrainer__", f"{trainer}__", 1))


def _save(trainer, root: Path) -> Path:
    """Save an initialised (untrained) trainer as a trained-model folder with fold 0."""
    trainer.initialize()
    for key, value in (("mean_fg_dice", 0.25), ("ema_fg_dice", 0.25), ("train_losses", 0.7),
                       ("val_losses", 0.6), ("dice_per_class_or_region", [0.25])):
        val = [np.float64(v) for v in value] if isinstance(value, list) else np.float64(value)
        trainer.logger.log(key, val, 0)
    trainer._best_ema = np.float64(0.25)
    out = Path(trainer.output_folder_base)
    (out / "fold_0").mkdir(parents=True, exist_ok=True)
    trainer.save_checkpoint(str(out / "fold_0" / "checkpoint_final.pth"))
    pre = root / "nnUNet_preprocessed" / DATASET
    shutil.copy(pre / "nnUNetPlans.json", out / "plans.json")
    shutil.copy(pre / "dataset.json", out / "dataset.json")
    shutil.copy(pre / "dataset_fingerprint.json", out / "dataset_fingerprint.json")
    return out


def build(root: Path) -> Path:
    for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        os.environ[k] = str(root / k)
    os.environ["nnUNet_n_proc_DA"] = "1"
    write_raw(root / "nnUNet_raw" / DATASET)

    import torch
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (
        extract_fingerprints,
        plan_experiments,
        preprocess,
    )
    from nnunetv2.run.run_training import get_trainer_from_args

    extract_fingerprints([DATASET_ID], num_processes=1, check_dataset_integrity=False)
    plan_experiments([DATASET_ID])
    preprocess([DATASET_ID], configurations=("3d_fullres",), num_processes=(1,))
    torch.manual_seed(0)
    trainer = get_trainer_from_args(str(DATASET_ID), "3d_fullres", 0, "nnUNetTrainer",
                                    "nnUNetPlans", False, device=torch.device("cpu"))
    out = _save(trainer, root)
    # the variants, as run_training makes them but with the class imported from its module
    # (nnU-Net's own lookup would import every trainer module before it)
    import importlib

    from batchgenerators.utilities.file_and_folder_operations import load_json

    pre = root / "nnUNet_preprocessed" / DATASET
    for name, module in VARIANTS.items():
        cls = getattr(importlib.import_module(module), name)
        torch.manual_seed(0)
        plans = {**load_json(str(pre / "nnUNetPlans.json")), "continue_training": False}
        variant = cls(plans=plans, configuration="3d_fullres",
                      fold=0, dataset_json=load_json(str(pre / "dataset.json")),
                      device=torch.device("cpu"))
        assert _save(variant, root) == variant_folder(out, name)
    return out


if __name__ == "__main__":
    print(build(Path(sys.argv[1]).absolute()))
