"""Two participant runs with the same seed and fresh work directories give identical results."""

from __future__ import annotations

from pathlib import Path

import nibabel as nb
import numpy as np

from .conftest import LABELS, SUBJECTS, output_digests, participant_args, run_subprocess


def test_same_seed_same_outputs(reference_run: dict, models: dict[str, Path],
                                tmp_path: Path) -> None:
    first = reference_run
    assert first["result"].code == 0, first["result"].stderr[-3000:]
    out = tmp_path / "out"
    second = run_subprocess(participant_args(first["bids"], out, tmp_path / "work",
                                             models["random"], "--seed", "0"))
    assert second.code == 0, second.stderr[-4000:]

    a, b = first["out"], out
    tsvs = sorted(p.relative_to(a) for p in a.rglob("*.tsv"))
    assert len([t for t in tsvs if t.name.endswith("_segmetrics.tsv")]) == len(SUBJECTS)
    for rel in tsvs:  # metrics and lesion tables: byte-identical
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel

    masks = sorted(p.relative_to(a) for p in a.rglob("*_mask.nii.gz"))
    assert len(masks) == len(SUBJECTS) * len(LABELS)
    for rel in masks:  # predicted masks: same voxels, same grid
        ia, ib = nb.load(str(a / rel)), nb.load(str(b / rel))
        assert np.array_equal(np.asanyarray(ia.dataobj), np.asanyarray(ib.dataobj)), rel
        assert np.array_equal(ia.affine, ib.affine), rel

    # and every other output, byte for byte (logs/ and the run id in the reports left out)
    da, db = output_digests(a), output_digests(b)
    assert sorted(da) == sorted(db)
    assert [k for k in da if da[k] != db[k]] == []
