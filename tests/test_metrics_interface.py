"""End-to-end test of the SegmentationMetrics nipype interface on tiny NIfTIs."""

from __future__ import annotations

import csv
import json
import math

import nibabel as nib
import numpy as np
import pytest

from bids_stroke.core.settings import MetricsSettings
from bids_stroke.interfaces.metrics import (
    LESIONS_COLUMNS,
    SEGMETRICS_COLUMNS,
    SegmentationMetrics,
)
from bids_stroke.metrics import METRIC_COLUMNS, MetricsInputError, compute_metrics
from bids_stroke.outputs.tsv import format_tsv_cell, tsv_text

# the interface takes the science settings explicitly: the defaults, from settings
METRICS = {"connectivity": MetricsSettings().connectivity,
           "tolerance_mm": MetricsSettings().tolerance_mm, "grid": MetricsSettings().grid}

AFFINE = np.diag([1.0, 2.0, 1.5, 1.0])


def _save(path, data, affine=AFFINE):
    nib.Nifti1Image(np.asarray(data, np.uint8), affine).to_filename(str(path))
    return str(path)


def _read_tsv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


@pytest.fixture
def masks(tmp_path):
    ref = np.zeros((10, 8, 6), np.uint8)
    ref[1:4, 1:4, 1:3] = 1  # lesion 1: 18 voxels
    ref[7, 6, 4] = 1  # lesion 2: 1 voxel
    native = ref.copy()
    native[7, 6, 4] = 0  # misses lesion 2
    coarse = np.zeros_like(ref)
    coarse[2:4, 2:4, 1:2] = 1  # 4 of lesion 1's voxels
    coarse[8, 0, 0] = 1  # a false positive
    empty = np.zeros_like(ref)
    return {
        "ref": _save(tmp_path / "ref.nii.gz", ref),
        "native": _save(tmp_path / "native.nii.gz", native),
        "coarse": _save(tmp_path / "coarse.nii.gz", coarse),
        "empty": _save(tmp_path / "empty.nii.gz", empty),
        "arrays": (ref, native, coarse, empty),
    }


def _run(tmp_path, masks, **kw):
    node = SegmentationMetrics(
        reference_mask=masks["ref"],
        prediction_masks=[masks["native"], masks["coarse"], masks["empty"]],
        condition_labels=["native", "crude2", "thick5mm"],
        condition_specs=["native", "crude:2", "thick:5"],
        effective_resolutions=[1.44, 2.88, 3.2],
        participant_id="sub-01",
        **{**METRICS, **kw},
    )
    workdir = tmp_path / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    return node.run(cwd=str(workdir))


def test_interface_end_to_end(tmp_path, masks):
    res = _run(tmp_path, masks, prefix="sub-01_space-MNI152NLin2009aSym")
    out = res.outputs
    assert out.out_tsv.endswith("sub-01_space-MNI152NLin2009aSym_label-L_segmetrics.tsv")
    assert out.out_lesions_tsv.endswith("_label-L_lesions.tsv")
    rows = _read_tsv(out.out_tsv)
    assert list(rows[0]) == list(SEGMETRICS_COLUMNS)
    assert [r["desc"] for r in rows] == ["native", "crude2", "thick5mm"]
    assert [r["condition"] for r in rows] == ["native", "crude:2", "thick:5"]
    assert {r["participant_id"] for r in rows} == {"sub-01"}
    assert {r["session_id"] for r in rows} == {"n/a"}
    assert float(rows[1]["effective_resolution_mm"]) == 2.88

    ref, native, coarse, _ = masks["arrays"]
    for row, pred in zip(rows, (native, coarse), strict=False):
        expected = compute_metrics(ref, pred, (1.0, 2.0, 1.5), **METRICS)
        for col in METRIC_COLUMNS:
            val = expected[col]
            if isinstance(val, float) and math.isnan(val):
                assert row[col] == "n/a", col
            elif isinstance(val, int):
                assert int(row[col]) == val, col
            else:
                assert float(row[col]) == val, col  # repr round-trips exactly
    # native: 18 of 19 voxels, lesion 2 missed
    assert rows[0]["lesion_tp"] == "1" and rows[0]["lesion_fn"] == "1"
    assert rows[0]["lesion_f1"] == repr(2 / 3)
    # empty prediction: distances undefined, written n/a
    assert rows[2]["hd95"] == "n/a" and rows[2]["distances_undefined"] == "1"
    assert rows[2]["dice"] == "0.0"

    sidecar = json.loads(open(out.out_json, encoding="utf-8").read())
    assert list(sidecar) == list(SEGMETRICS_COLUMNS)
    assert all("Description" in v and "LongName" in v for v in sidecar.values())
    assert "26-connected" in sidecar["lesion_f1"]["Description"]
    assert "2 mm" in sidecar["surface_dice"]["Description"]

    lesions = _read_tsv(out.out_lesions_tsv)
    assert list(lesions[0]) == list(LESIONS_COLUMNS)
    assert len(lesions) == 6  # 3 conditions x 2 reference lesions
    by = {(r["desc"], r["lesion_id"]): r for r in lesions}
    assert by[("native", "1")]["detected"] == "true"
    assert by[("native", "2")]["detected"] == "false"
    assert by[("crude2", "1")]["overlap_fraction"] == repr(4 / 18)
    assert by[("crude2", "1")]["volume_voxels"] == "18"
    assert float(by[("crude2", "1")]["volume_ml"]) == pytest.approx(18 * 3e-3)
    assert by[("thick5mm", "2")]["overlap_fraction"] == "0.0"
    les_sidecar = json.loads(open(out.out_lesions_json, encoding="utf-8").read())
    assert list(les_sidecar) == list(LESIONS_COLUMNS)


def test_interface_deterministic_and_options(tmp_path, masks):
    a = _run(tmp_path / "a", masks)
    first = open(a.outputs.out_tsv, encoding="utf-8").read()
    assert a.outputs.out_tsv.endswith("sub-01_label-L_segmetrics.tsv")
    b = _run(tmp_path / "b", masks)
    assert open(b.outputs.out_tsv, encoding="utf-8").read() == first
    c = _run(tmp_path / "c", masks,
             session_id="ses-02", connectivity=6, tolerance_mm=1.0)
    assert c.outputs.out_tsv.endswith("sub-01_ses-02_label-L_segmetrics.tsv")
    rows = _read_tsv(c.outputs.out_tsv)
    assert {r["session_id"] for r in rows} == {"ses-02"}
    sidecar = json.loads(open(c.outputs.out_json, encoding="utf-8").read())
    assert "6-connected" in sidecar["ref_lesion_count"]["Description"]


def test_interface_rejects_grid_mismatch(tmp_path, masks):
    shifted = AFFINE.copy()
    shifted[0, 3] = 2.0
    bad = _save(tmp_path / "shifted.nii.gz", masks["arrays"][1], shifted)
    node = SegmentationMetrics(
        reference_mask=masks["ref"], prediction_masks=[bad], condition_labels=["native"],
        condition_specs=["native"], effective_resolutions=[1.4], participant_id="sub-01",
        **METRICS)
    with pytest.raises(MetricsInputError, match=r"shifted\.nii\.gz"):
        node.run(cwd=str(tmp_path))
    node = SegmentationMetrics(
        reference_mask=masks["ref"], prediction_masks=[masks["native"]],
        condition_labels=["native", "crude2"], condition_specs=["native"],
        effective_resolutions=[1.4], participant_id="sub-01", **METRICS)
    with pytest.raises(ValueError, match="equally long"):
        node.run(cwd=str(tmp_path))


def test_format_tsv_cell():
    assert format_tsv_cell(float("nan")) == "n/a"
    assert format_tsv_cell(None) == "n/a"
    assert format_tsv_cell(True) == "true" and format_tsv_cell(np.bool_(False)) == "false"
    assert format_tsv_cell(np.int64(7)) == "7"
    assert format_tsv_cell(0.1 + 0.2) == "0.30000000000000004"
    assert float(format_tsv_cell(np.float64(1 / 3))) == 1 / 3
    with pytest.raises(ValueError):
        format_tsv_cell("a\tb")
    text = tsv_text([{"a": 1, "b": float("nan")}, {"a": True, "b": "x"}], ["a", "b"])
    assert text == "a\tb\n1\tn/a\ntrue\tx\n"
    with pytest.raises(KeyError):
        tsv_text([{"a": 1}], ["a", "b"])


def test_interface_writes_atomically(tmp_path, masks, monkeypatch):
    """The interface writes through the one atomic writer (no other file is left)."""
    import bids_stroke.metrics.tables as mod  # the tables are written there

    written = []
    real = mod.atomic_write_text

    def spy(path, text):
        written.append(path.name)
        return real(path, text)

    monkeypatch.setattr(mod, "atomic_write_text", spy)
    res = _run(tmp_path, masks)
    assert sorted(written) == sorted(
        f"sub-01_label-L_{n}" for n in ("segmetrics.tsv", "segmetrics.json", "lesions.tsv",
                                        "lesions.json"))
    assert res.outputs.out_tsv.endswith(written[0])
