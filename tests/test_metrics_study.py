"""The original study's metric set: relative volume difference, predicted-lesion fraction and
accuracy/specificity over a declared (native or padded) grid - hand-computed cases."""

from __future__ import annotations

import json
import math

import nibabel as nib
import numpy as np
import pytest

from bids_stroke.core.settings import MetricsSettings
from bids_stroke.metrics import (
    METRIC_COLUMNS,
    METRIC_DESCRIPTIONS,
    MetricsInputError,
    compute_metrics,
    grid_shape,
    parse_grid,
)
from bids_stroke.model.preprocess import pad_to_multiple

# the interface takes the science settings explicitly: the defaults, from settings
METRICS = {"connectivity": MetricsSettings().connectivity,
           "tolerance_mm": MetricsSettings().tolerance_mm, "grid": MetricsSettings().grid}

ATLAS_SHAPE = (197, 233, 189)


def _line(n: int, on: range) -> np.ndarray:
    m = np.zeros((1, 1, n), dtype=bool)
    m[0, 0, list(on)] = True
    return m


def test_grid_specs() -> None:
    assert grid_shape(ATLAS_SHAPE, "padded:16") == (208, 240, 192)  # the study's grid
    assert grid_shape(ATLAS_SHAPE, "native") == ATLAS_SHAPE
    assert grid_shape((16, 17, 1), "padded:16") == (16, 32, 16)
    assert grid_shape(ATLAS_SHAPE, "padded:1") == ATLAS_SHAPE
    assert parse_grid("native") is None and parse_grid(" Padded:8 ") == 8
    for bad in ("padded:0", "padded", "pad:16", "padded:x", "padded:-16", ""):
        with pytest.raises(MetricsInputError, match="'native' or 'padded:<multiple>'"):
            parse_grid(bad)
    with pytest.raises(MetricsInputError, match="grid"):
        compute_metrics(_line(4, range(1)), _line(4, range(1)), (1, 1, 1), grid="full")


def test_hand_computed_line_native_and_padded() -> None:
    # 12 voxels on a line: ref = {0,1,2,3}, pred = {2,...,6}
    # TP = 2, FP = 3, FN = 2; native TN = 12 - 7 = 5
    ref = _line(12, range(0, 4))
    pred = _line(12, range(2, 7))
    nat = compute_metrics(ref, pred, (2.0, 2.0, 2.0))
    assert nat["grid_voxels"] == 12 and nat["tn"] == 5
    assert nat["pred_fraction_pct"] == pytest.approx(100 * 5 / 12)
    assert nat["rel_volume_diff"] == pytest.approx((5 - 4) / 4)
    assert nat["specificity"] == pytest.approx(5 / 8)
    assert nat["accuracy"] == pytest.approx(7 / 12)
    # padded:16: shape (1, 1, 12) -> (16, 16, 16) = 4096 voxels, TN = 4096 - 7 = 4089
    pad = compute_metrics(ref, pred, (2.0, 2.0, 2.0), grid="padded:16")
    assert pad["grid_voxels"] == 4096 and pad["tn"] == 4089
    assert pad["specificity"] == pytest.approx(4089 / 4092, rel=1e-15)
    assert pad["accuracy"] == pytest.approx(4091 / 4096, rel=1e-15)
    assert pad["balanced_accuracy"] == pytest.approx((2 / 4 + 4089 / 4092) / 2, rel=1e-15)
    assert pad["mcc"] == pytest.approx((2 * 4089 - 3 * 2) / math.sqrt(5 * 4 * 4092 * 4091),
                                       rel=1e-12)
    assert pad["pred_fraction_pct"] == 100 * 5 / 4096 == 0.1220703125
    grid_cols = {"tn", "specificity", "accuracy", "balanced_accuracy", "mcc", "grid_voxels",
                 "pred_fraction_pct"}
    for col in METRIC_COLUMNS:
        if col not in grid_cols:
            assert pad[col] == nat[col], col
    assert type(pad["grid_voxels"]) is int and type(pad["pred_fraction_pct"]) is float


def test_atlas_grid_true_negatives_differ_by_the_padding() -> None:
    """On ATLAS v2.0's grid the study's padding adds 909,351 true negatives."""
    ref = np.zeros(ATLAS_SHAPE, bool)
    ref[90:100, 100:110, 80:90] = True  # 1000 voxels
    pred = np.zeros_like(ref)
    pred[90:100, 100:110, 80:85] = True  # 500 of them
    nat = compute_metrics(ref, pred, (1, 1, 1))
    pad = compute_metrics(ref, pred, (1, 1, 1), grid="padded:16")
    n_native, n_padded = 197 * 233 * 189, 208 * 240 * 192
    assert (n_native, n_padded) == (8_675_289, 9_584_640)
    assert (nat["tp"], nat["fp"], nat["fn"]) == (500, 0, 500)
    assert nat["tn"] == n_native - 1000 and pad["tn"] == n_padded - 1000
    assert pad["tn"] - nat["tn"] == 909_351
    assert nat["accuracy"] == pytest.approx((500 + n_native - 1000) / n_native, rel=1e-15)
    assert pad["accuracy"] == pytest.approx((500 + n_padded - 1000) / n_padded, rel=1e-15)
    assert nat["specificity"] == pad["specificity"] == 1.0  # no false positive
    assert nat["pred_fraction_pct"] == pytest.approx(100 * 500 / n_native, rel=1e-15)
    assert pad["pred_fraction_pct"] == pytest.approx(100 * 500 / n_padded, rel=1e-15)
    assert nat["rel_volume_diff"] == -0.5 and nat["dice"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("seed", range(3))
def test_padded_grid_equals_scoring_padded_arrays(seed: int) -> None:
    """Independent route: pad both masks with zeros (as the study's preprocessing did) and
    score them on their own grid; every column must equal ``grid='padded:16'``."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(5, 21, 3))
    ref = rng.random(shape) > 0.7
    pred = rng.random(shape) > 0.6
    padded_ref, _ = pad_to_multiple(ref, 16)
    padded_pred, _ = pad_to_multiple(pred, 16)
    direct = compute_metrics(padded_ref, padded_pred, (1, 1.5, 2))
    declared = compute_metrics(ref, pred, (1, 1.5, 2), grid="padded:16")
    for col in METRIC_COLUMNS:
        assert declared[col] == pytest.approx(direct[col], rel=1e-12, nan_ok=True), col


def test_relative_volume_difference_and_empty_reference() -> None:
    z = np.zeros((4, 4, 4), bool)
    ref = z.copy()
    ref[1, 1, 1:3] = True  # G = 2
    pred = z.copy()
    pred[1, 1:3, 1:3] = True  # P = 4
    assert compute_metrics(ref, pred, (1, 1, 1))["rel_volume_diff"] == 1.0  # (4 - 2) / 2
    assert compute_metrics(pred, ref, (1, 1, 1))["rel_volume_diff"] == -0.5  # (2 - 4) / 4
    assert compute_metrics(ref, z, (1, 1, 1))["rel_volume_diff"] == -1.0  # empty prediction
    # G = 0: undefined whatever the prediction (documented in the data dictionary)
    assert math.isnan(compute_metrics(z, pred, (1, 1, 1))["rel_volume_diff"])
    assert math.isnan(compute_metrics(z, z, (1, 1, 1))["rel_volume_diff"])
    assert "G = 0" in METRIC_DESCRIPTIONS["rel_volume_diff"]["Description"]
    # the fraction of predicted voxels: 0 for an empty prediction, 100 for a full one
    assert compute_metrics(ref, z, (1, 1, 1))["pred_fraction_pct"] == 0.0
    assert compute_metrics(ref, ~z, (1, 1, 1))["pred_fraction_pct"] == 100.0
    assert compute_metrics(ref, pred, (1, 1, 1))["pred_fraction_pct"] == 100 * 4 / 64
    assert "Exact One Percentages" in METRIC_DESCRIPTIONS["pred_fraction_pct"]["Description"]
    assert METRIC_DESCRIPTIONS["pred_fraction_pct"]["Units"] == "%"


def test_interface_grid_option(tmp_path) -> None:
    from bids_stroke.interfaces.metrics import SegmentationMetrics

    ref = np.zeros((10, 8, 6), np.uint8)
    ref[2:5, 2:5, 1:3] = 1
    pred = np.zeros_like(ref)
    pred[3:6, 2:5, 1:3] = 1
    paths = []
    for name, arr in (("ref", ref), ("pred", pred)):
        paths.append(str(tmp_path / f"{name}.nii.gz"))
        nib.Nifti1Image(arr, np.eye(4)).to_filename(paths[-1])

    def run(**kw):
        node = SegmentationMetrics(reference_mask=paths[0], prediction_masks=[paths[1]],
                                   condition_labels=["native"], condition_specs=["native"],
                                   effective_resolutions=[1.0], participant_id="sub-01",
                                   **{**METRICS, **kw})
        work = tmp_path / kw.get("grid", "default").replace(":", "-")
        work.mkdir()
        return node.run(cwd=str(work)).outputs

    out = run(grid="padded:16")
    header, row = open(out.out_tsv, encoding="utf-8").read().splitlines()
    values = dict(zip(header.split("\t"), row.split("\t"), strict=True))
    assert int(values["grid_voxels"]) == 16 ** 3  # 10x8x6 -> 16x16x16
    assert int(values["tn"]) == 16 ** 3 - 12 - 6 - 6  # TP 12, FP 6, FN 6
    assert float(values["pred_fraction_pct"]) == 100 * 18 / 16 ** 3
    sidecar = json.loads(open(out.out_json, encoding="utf-8").read())
    assert "padded:16" in sidecar["tn"]["Description"]
    assert "208x240x192" in sidecar["accuracy"]["Description"]
    assert "Grid used" not in sidecar["dice"]["Description"]
    native = run(grid="native")
    side = json.loads(open(native.out_json, encoding="utf-8").read())
    assert "Grid used: native" in side["specificity"]["Description"]
    with pytest.raises(MetricsInputError, match="padded:<multiple>"):
        run(grid="padded16")
