"""nnU-Net's own prediction of a trained-model folder, and its comparison with bids_stroke's.

    python nnunet_reference.py MODEL_DIR OUT_DIR CHANNEL_0.nii.gz [CHANNEL_1.nii.gz ...]
        [--trainer-module MODULE]

prints one JSON line (``max_abs_diff`` of the lesion probabilities, ``masks_equal``, ``voxels``
and ``lesion_voxels`` of nnU-Net's mask) and exits 0 when bids_stroke's probability is within
1e-5 of ``nnUNetPredictor.predict_from_files``' and its mask (``p >= threshold``) is nnU-Net's
segmentation, voxel for voxel. Used by tests/test_nnunet_parity.py and, inside the image, by
tests/test_image_build.py (it imports nothing from the repository's tests).

``--trainer-module``: the module that defines the checkpoint's trainer. nnU-Net's own lookup
imports every trainer module before it (the Primus trainers need torchvision, which the CPU locks
leave out); with this option the predictor is given the class from that module instead, and
everything else is ``initialize_from_trained_model_folder`` + ``predict_from_files``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import nibabel as nib
import numpy as np


@contextlib.contextmanager
def trainer_from(module: str | None) -> Iterator[None]:
    """nnUNetPredictor finds trainer classes in ``module`` (nothing changes when None)."""
    if module is None:
        yield
        return
    import nnunetv2.inference.predict_from_raw_data as pfr

    original = pfr.recursive_find_trainer_class_by_name

    def lookup(name: str) -> type:
        return getattr(importlib.import_module(module), name)

    pfr.recursive_find_trainer_class_by_name = lookup
    try:
        yield
    finally:
        pfr.recursive_find_trainer_class_by_name = original


def reference(folder: Path, files: Sequence[str], out: Path,
              trainer_module: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """nnU-Net's own prediction: (lesion probability, segmentation) on the input grid."""
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    pred = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=True,
                           device=torch.device("cpu"), allow_tqdm=False)
    with trainer_from(trainer_module):
        pred.initialize_from_trained_model_folder(str(folder), use_folds=(0,),
                                                  checkpoint_name="checkpoint_final.pth")
    pred.predict_from_files([list(files)], [str(out / "ref")], save_probabilities=True,
                            num_processes_preprocessing=1, num_processes_segmentation_export=1)
    seg = np.asarray(nib.load(out / "ref.nii.gz").dataobj)
    # SimpleITK array order (z, y, x) -> NIfTI voxel order (x, y, z)
    prob = np.load(out / "ref.npz")["probabilities"][1].transpose(2, 1, 0)
    return prob, seg


def compare(folder: Path, files: Sequence[str], out: Path,
            trainer_module: str | None = None) -> dict[str, object]:
    """bids_stroke's prediction of ``files`` against :func:`reference`."""
    from bids_stroke.model.adapters import ChannelStack, open_model

    seg = open_model(folder, device="cpu")
    prob = seg.predict(ChannelStack.from_files(list(files)))
    ref_prob, ref_seg = reference(folder, files, out, trainer_module)
    return {
        "trainer": seg.info["trainer"],
        "network_builder": seg.info["network_builder"],
        "max_abs_diff": float(np.abs(prob - ref_prob).max()),
        "masks_equal": bool(np.array_equal(prob >= seg.spec.threshold, ref_seg == 1)),
        "voxels": int(prob.size),
        "lesion_voxels": int((ref_seg == 1).sum()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("files", nargs="+")
    parser.add_argument("--trainer-module", default=None)
    opts = parser.parse_args(argv)
    opts.out.mkdir(parents=True, exist_ok=True)
    result = compare(opts.model, opts.files, opts.out, opts.trainer_module)
    print(json.dumps(result))
    return 0 if result["masks_equal"] and float(result["max_abs_diff"]) <= 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
