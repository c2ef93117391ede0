#!/usr/bin/env python3
"""A stand-in for "another segmentation tool": a tiny BIDS-App that is not bids_stroke.

It knows nothing of bids_stroke (numpy, scipy and nibabel only) and behaves like a
containerised segmenter: ``threshold_tool.py BIDS_DIR OUT_DIR participant`` reads every
``*_<suffix>.nii[.gz]`` image of a BIDS dataset and writes a lesion mask per image into a
BIDS-Derivatives dataset, ``OUT_DIR/sub-X/[ses-Y/]anat/<image name>_label-L_desc-tool_mask.
nii.gz`` (``_probseg`` with ``--probabilities``), on the image's own grid.

The method: chronic stroke lesions on T1w are dark (CSF-like) and one-sided, ventricles are
dark and symmetric. A voxel is lesion when it lies inside the (eroded) brain, is darker than
``--dark`` times the white-matter level (the brain's 90th intensity percentile) and darker
than its mirror image across the x midline by ``--asym`` times that level; the mask is then
opened and components smaller than ``--min-ml`` are dropped. It assumes skull-stripped images
in a left-right symmetric field of view (MNI space, as ATLAS v2.0 and the bids_stroke demo).
It is a demonstration, not a model.

Usage with bids_stroke (see the README, "Score any tool")::

    bids_stroke export BIDS OUT
    for c in OUT/conditions/*/; do
        python threshold_tool.py "$c" "preds/$(basename "$c")" participant
    done
    bids_stroke score BIDS OUT --tool-name threshold_tool \
        --predictions "preds/{condition}/sub-{subject}/ses-{session}/anat/*_mask.nii.gz"
    bids_stroke BIDS OUT group
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import nibabel as nb
import numpy as np
from scipy import ndimage

VERSION = "1.0"


def segment(data: np.ndarray, zooms, *, dark: float, asym: float, min_ml: float
            ) -> tuple[np.ndarray, np.ndarray]:
    """(mask, probability) of dark, one-sided regions inside the brain."""
    brain = ndimage.binary_erosion(data > 0, iterations=2)
    if not brain.any():
        return np.zeros(data.shape, bool), np.zeros(data.shape, np.float32)
    level = float(np.percentile(data[brain], 90))  # white matter
    mirror = data[::-1, :, :]
    darkness = np.clip((dark * level - data) / (dark * level), 0, 1)
    asymmetry = np.clip((mirror - data) / (asym * level), 0, 1)
    prob = np.where(brain, np.sqrt(darkness * asymmetry), 0).astype(np.float32)
    prob = ndimage.gaussian_filter(prob, 0.5)
    mask = ndimage.binary_opening(prob >= 0.5, iterations=1)
    labels, n = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    voxel_ml = float(np.prod(zooms)) / 1000.0
    sizes = ndimage.sum_labels(mask, labels, range(1, n + 1)) if n else np.array([])
    keep = [i + 1 for i, s in enumerate(sizes) if s * voxel_ml >= min_ml]
    return np.isin(labels, keep), np.clip(prob, 0, 1)


def _stem(path: Path) -> str:
    name = path.name
    return name[: -len(".nii.gz")] if name.endswith(".nii.gz") else name[: -len(".nii")]


def run(bids_dir: Path, out_dir: Path, suffix: str, probabilities: bool, **params) -> int:
    images = sorted(p for p in bids_dir.glob(f"sub-*/**/*_{suffix}.nii*")
                    if "derivatives" not in p.parts)
    if not images:
        print(f"threshold_tool: no *_{suffix}.nii[.gz] image in {bids_dir}", file=sys.stderr)
        return 1
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "dataset_description.json").write_text(json.dumps({
        "Name": "threshold_tool lesion masks", "BIDSVersion": "1.10.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "threshold_tool", "Version": VERSION}],
        "SourceDatasets": [{"URL": bids_dir.absolute().as_uri()}]}, indent=2) + "\n")
    for path in images:
        img = nb.load(str(path))
        data = img.get_fdata(dtype=np.float32)
        mask, prob = segment(data, img.header.get_zooms()[:3], **params)
        rel = path.parent.relative_to(bids_dir)
        base = _stem(path)[: -len(suffix) - 1]
        dest = out_dir / rel
        dest.mkdir(parents=True, exist_ok=True)
        if probabilities:
            out = nb.Nifti1Image(prob, img.affine)
            out.to_filename(str(dest / f"{base}_label-L_desc-tool_probseg.nii.gz"))
        else:
            out = nb.Nifti1Image(mask.astype(np.uint8), img.affine)
            out.to_filename(str(dest / f"{base}_label-L_desc-tool_mask.nii.gz"))
        print(f"threshold_tool: {path.name}: {int(mask.sum())} lesion voxel(s)")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="threshold_tool", description=__doc__.split("\n")[0])
    parser.add_argument("bids_dir", type=Path)
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("analysis_level", choices=["participant"])
    parser.add_argument("--suffix", default="T1w", help="image suffix to segment")
    parser.add_argument("--probabilities", action="store_true",
                        help="write probability maps (_probseg) instead of binary masks")
    parser.add_argument("--dark", type=float, default=1.0)
    parser.add_argument("--asym", type=float, default=0.2)
    parser.add_argument("--min-ml", type=float, default=0.2)
    opts = parser.parse_args(argv)
    return run(opts.bids_dir, opts.output_dir, opts.suffix, opts.probabilities,
               dark=opts.dark, asym=opts.asym, min_ml=opts.min_ml)


if __name__ == "__main__":
    sys.exit(main())
