"""Tests for bids_stroke.metrics (hand-computed cases, brute force, medpy)."""

from __future__ import annotations

import math

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from bids_stroke.metrics import (
    METRIC_COLUMNS,
    METRIC_DESCRIPTIONS,
    MetricsInputError,
    as_binary_mask,
    compute_metrics,
    lesion_table,
    load_pair,
    spacing_from_affine,
    surface_distances,
)

EXPECTED_COLUMNS = (
    "tp fp fn tn dice jaccard precision recall specificity accuracy balanced_accuracy mcc "
    "ref_volume_ml pred_volume_ml volume_diff_ml abs_volume_diff_ml abs_volume_diff_voxels "
    "rel_volume_diff volume_ratio hd hd95 assd surface_dice distances_undefined "
    "ref_lesion_count pred_lesion_count abs_lesion_count_diff lesion_tp lesion_fp lesion_fn "
    "lesion_f1 detection_rate grid_voxels pred_fraction_pct"
).split()


def _line(n: int, on: range) -> np.ndarray:
    m = np.zeros((1, 1, n), dtype=bool)
    m[0, 0, list(on)] = True
    return m


def _blobs(rng: np.random.Generator, shape: tuple[int, ...], n: int, sigma: float = 1.5,
           frac: float = 0.25) -> np.ndarray:
    """Random smooth blobs (possibly several components, possibly touching the border)."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    mask = field > np.quantile(field, 1 - frac)
    if n == 1:
        lab, _ = ndimage.label(mask, ndimage.generate_binary_structure(3, 3))
        mask = lab == (np.argmax(np.bincount(lab.ravel())[1:]) + 1)
    return mask


def _brute_surface(mask: np.ndarray) -> np.ndarray:
    """Independent surface: a voxel with any of its 6 face neighbours outside the mask
    (outside the array counts as outside)."""
    p = np.pad(mask, 1, constant_values=False)
    interior = p.copy()
    for axis in range(3):
        for shift in (1, -1):
            interior &= np.roll(p, shift, axis=axis)
    return (mask & ~interior[1:-1, 1:-1, 1:-1])


def _brute_distances(a: np.ndarray, b: np.ndarray, spacing) -> np.ndarray:
    """Pooled all-pairs nearest surface distances, both directions."""
    sp = np.asarray(spacing, float)
    pa = np.argwhere(_brute_surface(a)) * sp
    pb = np.argwhere(_brute_surface(b)) * sp
    d = np.sqrt(((pa[:, None, :] - pb[None, :, :]) ** 2).sum(-1))
    return np.concatenate([d.min(axis=1), d.min(axis=0)])


# --------------------------------------------------------------------------- columns
def test_columns_exact_order_and_descriptions():
    assert list(METRIC_COLUMNS) == EXPECTED_COLUMNS
    m = compute_metrics(_line(6, range(2)), _line(6, range(1, 3)), (1, 1, 1))
    assert list(m) == EXPECTED_COLUMNS
    for col in METRIC_COLUMNS:
        entry = METRIC_DESCRIPTIONS[col]
        assert entry["LongName"] and entry["Description"]
    assert METRIC_DESCRIPTIONS["hd95"]["Units"] == "mm"
    assert METRIC_DESCRIPTIONS["ref_volume_ml"]["Units"] == "ml"


# --------------------------------------------------------------------------- hand cases
def test_hand_computed_line():
    # 12 voxels on a line, spacing 2 mm along the line (8 mm^3 = 0.008 ml per voxel).
    # ref = {0,1,2,3}, pred = {2,3,4,5,6}
    # TP = {2,3} = 2, FP = {4,5,6} = 3, FN = {0,1} = 2, TN = {7..11} = 5
    ref = _line(12, range(0, 4))
    pred = _line(12, range(2, 7))
    m = compute_metrics(ref, pred, (2.0, 2.0, 2.0))
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (2, 3, 2, 5)
    assert m["dice"] == pytest.approx(4 / 9)  # 2*2 / (2*2 + 3 + 2)
    assert m["jaccard"] == pytest.approx(2 / 7)  # 2 / (2 + 3 + 2)
    assert m["precision"] == pytest.approx(2 / 5)
    assert m["recall"] == pytest.approx(2 / 4)
    assert m["specificity"] == pytest.approx(5 / 8)  # 5 / (5 + 3)
    assert m["accuracy"] == pytest.approx(7 / 12)
    assert m["balanced_accuracy"] == pytest.approx((0.5 + 0.625) / 2)
    # MCC = (2*5 - 3*2) / sqrt((2+3)(2+2)(5+3)(5+2)) = 4 / sqrt(1120)
    assert m["mcc"] == pytest.approx(4 / math.sqrt(1120))
    assert m["ref_volume_ml"] == pytest.approx(4 * 0.008)
    assert m["pred_volume_ml"] == pytest.approx(5 * 0.008)
    assert m["volume_diff_ml"] == pytest.approx(0.008)
    assert m["abs_volume_diff_ml"] == pytest.approx(0.008)
    assert m["abs_volume_diff_voxels"] == 1
    assert m["rel_volume_diff"] == pytest.approx(0.25)
    assert m["volume_ratio"] == pytest.approx(1.25)
    # a 1-voxel-thick line is all surface. pred->ref distances: 2,3 -> 0; 4 -> 2 mm;
    # 5 -> 4; 6 -> 6. ref->pred: 0 -> 4; 1 -> 2; 2,3 -> 0.
    # pooled sorted = [0,0,0,0,2,2,4,4,6]: max 6, mean 18/9 = 2,
    # 95th pct (linear) at rank 0.95*8 = 7.6 -> 4 + 0.6*(6-4) = 5.2; within 2 mm: 6/9
    assert m["hd"] == pytest.approx(6.0)
    assert m["hd95"] == pytest.approx(5.2)
    assert m["assd"] == pytest.approx(2.0)
    assert m["surface_dice"] == pytest.approx(6 / 9)
    assert m["distances_undefined"] == 0
    assert (m["ref_lesion_count"], m["pred_lesion_count"], m["abs_lesion_count_diff"]) == (
        1, 1, 0)
    assert (m["lesion_tp"], m["lesion_fp"], m["lesion_fn"]) == (1, 0, 0)
    assert m["lesion_f1"] == 1.0 and m["detection_rate"] == 1.0
    for key in ("tp", "fp", "fn", "tn", "abs_volume_diff_voxels", "distances_undefined",
                "ref_lesion_count", "lesion_tp"):
        assert type(m[key]) is int
    for key in ("dice", "hd95", "mcc", "lesion_f1"):
        assert type(m[key]) is float


def test_anisotropic_single_voxels():
    # ref voxel (1,1,1), pred voxel (3,2,1), spacing (0.5, 2, 3):
    # distance = sqrt((2*0.5)^2 + (1*2)^2 + 0) = sqrt(5) in both directions
    ref = np.zeros((5, 4, 3), bool)
    pred = np.zeros_like(ref)
    ref[1, 1, 1] = True
    pred[3, 2, 1] = True
    m = compute_metrics(ref, pred, (0.5, 2.0, 3.0))
    for key in ("hd", "hd95", "assd"):
        assert m[key] == pytest.approx(math.sqrt(5))
    assert m["surface_dice"] == 0.0  # sqrt(5) > 2 mm
    assert compute_metrics(ref, pred, (0.5, 2.0, 3.0), tolerance_mm=2.3)["surface_dice"] == 1
    # exactly at tolerance counts as within
    assert compute_metrics(ref, pred, (0.5, 2.0, 3.0),
                           tolerance_mm=math.sqrt(5))["surface_dice"] == 1
    assert (m["lesion_tp"], m["lesion_fp"], m["lesion_fn"], m["lesion_f1"]) == (0, 1, 1, 0.0)
    assert m["dice"] == 0.0
    # along the 3 mm axis instead: voxels (1,1,0) and (1,1,2) are 6 mm apart
    ref2 = np.zeros((3, 3, 3), bool)
    pred2 = np.zeros_like(ref2)
    ref2[1, 1, 0] = pred2[1, 1, 2] = True
    assert compute_metrics(ref2, pred2, (0.5, 2.0, 3.0))["hd"] == pytest.approx(6.0)
    d_ab, d_ba = surface_distances(ref2, pred2, (0.5, 2.0, 3.0))
    np.testing.assert_allclose(d_ab, [6.0])
    np.testing.assert_allclose(d_ba, [6.0])


def test_hd95_pooled_not_max_of_directed():
    # ref = line z=0..9, pred = line z=0..4 (1 mm). pred->ref: five 0s.
    # ref->pred: [0,0,0,0,0,1,2,3,4,5].
    # pooled (15 values: ten 0s,1,2,3,4,5): rank 0.95*14 = 13.3 -> 4 + 0.3*(5-4) = 4.3
    # max of directed 95th percentiles: ref->pred rank 0.95*9 = 8.55 -> 4.55 (not used)
    ref = _line(12, range(10))
    pred = _line(12, range(5))
    m = compute_metrics(ref, pred, (1, 1, 1))
    assert m["hd95"] == pytest.approx(4.3)
    assert m["assd"] == pytest.approx(15 / 15)
    d_ref, d_pred = surface_distances(ref, pred, (1, 1, 1))
    np.testing.assert_allclose(d_ref, [0, 0, 0, 0, 0, 1, 2, 3, 4, 5])
    np.testing.assert_allclose(d_pred, [0, 0, 0, 0, 0])
    assert max(np.percentile(d_ref, 95), np.percentile(d_pred, 95)) == pytest.approx(4.55)


# --------------------------------------------------------------------------- brute force
@pytest.mark.parametrize("seed", range(6))
def test_surface_metrics_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    shape = (11, 9, 8)
    ref = _blobs(rng, shape, n=2)
    pred = _blobs(rng, shape, n=2)
    spacing = tuple(rng.uniform(0.4, 3.0, 3))
    tol = float(rng.uniform(0.5, 3.0))
    d = _brute_distances(ref, pred, spacing)
    m = compute_metrics(ref, pred, spacing, tolerance_mm=tol)
    assert m["hd"] == pytest.approx(d.max(), rel=1e-12)
    assert m["hd95"] == pytest.approx(np.percentile(d, 95), rel=1e-12)
    assert m["assd"] == pytest.approx(d.mean(), rel=1e-12)
    assert m["surface_dice"] == pytest.approx(np.mean(d <= tol + 1e-9), rel=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_counts_and_lesions_match_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    shape = (10, 9, 8)
    ref = rng.random(shape) < 0.15
    pred = rng.random(shape) < 0.15
    for conn, rank in ((6, 1), (18, 2), (26, 3)):
        m = compute_metrics(ref, pred, (1, 1, 1), connectivity=conn)
        assert m["tp"] == sum(1 for i in np.ndindex(shape) if ref[i] and pred[i])
        assert m["tn"] == sum(1 for i in np.ndindex(shape) if not ref[i] and not pred[i])
        # ISLES'22 style loops (one binary image per component)
        st = ndimage.generate_binary_structure(3, rank)
        rl, nr = ndimage.label(ref, st)
        pl, npd = ndimage.label(pred, st)
        tp = sum(bool(np.any((rl == k) & pred)) for k in range(1, nr + 1))
        fp = sum(not np.any((pl == k) & ref) for k in range(1, npd + 1))
        fn = nr - tp
        assert (m["ref_lesion_count"], m["pred_lesion_count"]) == (nr, npd)
        assert (m["lesion_tp"], m["lesion_fp"], m["lesion_fn"]) == (tp, fp, fn)
        assert m["lesion_f1"] == pytest.approx(tp / (tp + (fp + fn) / 2))


@pytest.mark.parametrize("seed", range(3))
def test_kdtree_path_matches_edt_and_brute_force(seed, monkeypatch):
    import bids_stroke.metrics.distance as metrics_mod

    rng = np.random.default_rng(50 + seed)
    ref = _blobs(rng, (12, 10, 9), n=2)
    pred = _blobs(rng, (12, 10, 9), n=2)
    spacing = tuple(rng.uniform(0.5, 2.5, 3))
    edt = compute_metrics(ref, pred, spacing)
    monkeypatch.setattr(metrics_mod, "EDT_MAX_VOXELS", 0)  # force the k-d tree path
    kdt = compute_metrics(ref, pred, spacing)
    d = _brute_distances(ref, pred, spacing)
    for key, ref_val in (("hd", d.max()), ("hd95", np.percentile(d, 95)),
                         ("assd", d.mean()), ("surface_dice", np.mean(d <= 2.0 + 1e-9))):
        assert kdt[key] == pytest.approx(ref_val, rel=1e-12)
        assert kdt[key] == pytest.approx(edt[key], rel=1e-12)
    d_ab, d_ba = surface_distances(ref, pred, spacing)
    assert d_ab.dtype == np.float64 and d_ab.size + d_ba.size == d.size


# --------------------------------------------------------------------------- medpy
@pytest.mark.parametrize("seed", range(4))
def test_distances_match_medpy(seed):
    medpy_binary = pytest.importorskip("medpy.metric.binary")
    rng = np.random.default_rng(1000 + seed)
    shape = (24, 20, 16)
    ref = _blobs(rng, shape, n=1 + seed % 2, frac=0.12)
    pred = _blobs(rng, shape, n=1 + (seed + 1) % 2, frac=0.12)
    if seed == 0:  # a mask touching the array border (crop must not change the surface)
        ref[0, :5, :5] = True
    spacing = (0.9, 1.2, 3.0) if seed % 2 else (1.0, 1.0, 1.0)
    m = compute_metrics(ref, pred, spacing)
    # medpy >= 0.5: hd = max, hd95 = percentile of pooled directed sets, assd = pooled mean,
    # surfaces from a connectivity=1 (6-neighbourhood) erosion -> same definitions.
    assert m["hd"] == pytest.approx(medpy_binary.hd(pred, ref, spacing), rel=1e-6)
    assert m["hd95"] == pytest.approx(medpy_binary.hd95(pred, ref, spacing), rel=1e-6)
    assert m["assd"] == pytest.approx(medpy_binary.assd(pred, ref, spacing), rel=1e-6)
    assert m["dice"] == pytest.approx(medpy_binary.dc(pred, ref), rel=1e-12)
    assert m["precision"] == pytest.approx(medpy_binary.precision(pred, ref), rel=1e-12)
    assert m["recall"] == pytest.approx(medpy_binary.recall(pred, ref), rel=1e-12)


# --------------------------------------------------------------------------- lesions
def _multi_lesion_case():
    ref = np.zeros((10, 10, 10), bool)
    ref[1, 1, 1] = ref[2, 2, 2] = True  # A: corner-touching pair (one lesion only at 26)
    ref[6:8, 6:8, 6:8] = True  # B: 8-voxel cube
    pred = np.zeros_like(ref)
    pred[2, 2, 2] = True  # hits the second voxel of A
    pred[1, 6, 1] = pred[2, 7, 2] = True  # FP: corner-touching pair away from ref
    pred[6, 6:8, 6:8] = True  # half of B
    return ref, pred


def test_lesion_counts_26_vs_6():
    ref, pred = _multi_lesion_case()
    m26 = compute_metrics(ref, pred, (1, 1, 1), connectivity=26)
    # 26: ref {A, B}; pred {(2,2,2)}, {FP pair}, {B half}. TP 2 (A, B), FN 0, FP 1.
    assert (m26["ref_lesion_count"], m26["pred_lesion_count"]) == (2, 3)
    assert (m26["lesion_tp"], m26["lesion_fp"], m26["lesion_fn"]) == (2, 1, 0)
    assert m26["abs_lesion_count_diff"] == 1
    assert m26["lesion_f1"] == pytest.approx(4 / 5)  # 2*2 / (2*2 + 1 + 0)
    assert m26["detection_rate"] == 1.0
    m6 = compute_metrics(ref, pred, (1, 1, 1), connectivity=6)
    # 6: ref {(1,1,1)}, {(2,2,2)}, {B}; pred {(2,2,2)}, {(1,6,1)}, {(2,7,2)}, {B half}
    # TP 2 ((2,2,2), B), FN 1 ((1,1,1)), FP 2
    assert (m6["ref_lesion_count"], m6["pred_lesion_count"]) == (3, 4)
    assert (m6["lesion_tp"], m6["lesion_fp"], m6["lesion_fn"]) == (2, 2, 1)
    assert m6["lesion_f1"] == pytest.approx(4 / 7)  # 4 / (4 + 2 + 1)
    assert m6["detection_rate"] == pytest.approx(2 / 3)
    # voxel-wise metrics do not depend on connectivity
    for key in ("tp", "fp", "fn", "tn", "dice", "hd95"):
        assert m6[key] == m26[key]


def test_edge_connected_voxels_18():
    ref = np.zeros((4, 4, 4), bool)
    ref[1, 1, 1] = ref[2, 2, 1] = True  # share an edge
    counts = {c: compute_metrics(ref, ref, (1, 1, 1), connectivity=c)["ref_lesion_count"]
              for c in (6, 18, 26)}
    assert counts == {6: 2, 18: 1, 26: 1}


def test_lesion_table():
    ref, pred = _multi_lesion_case()
    rows = lesion_table(ref, pred, (1.0, 2.0, 0.5), connectivity=6)
    assert [r["lesion_id"] for r in rows] == [1, 2, 3]
    assert [r["volume_voxels"] for r in rows] == [1, 1, 8]
    assert [r["detected"] for r in rows] == [False, True, True]
    assert [r["overlap_fraction"] for r in rows] == [0.0, 1.0, 0.5]
    assert rows[2]["volume_ml"] == pytest.approx(8 * 1e-3)  # 1 mm^3 voxels
    assert all(type(r["detected"]) is bool for r in rows)
    rows26 = lesion_table(ref, pred, (1, 1, 1))
    assert [(r["volume_voxels"], r["overlap_fraction"]) for r in rows26] == [(2, 0.5),
                                                                            (8, 0.5)]
    assert set(rows26[0]) == {"lesion_id", "volume_ml", "volume_voxels", "detected",
                              "overlap_fraction"}
    assert lesion_table(np.zeros_like(ref), pred, (1, 1, 1)) == []


# --------------------------------------------------------------------------- edge cases
def test_both_empty():
    z = np.zeros((5, 6, 7), bool)
    m = compute_metrics(z, z, (1, 1, 1))
    assert m["dice"] == 1.0 and m["jaccard"] == 1.0 and m["lesion_f1"] == 1.0
    assert m["distances_undefined"] == 1
    for key in ("hd", "hd95", "assd", "surface_dice", "precision", "recall", "mcc",
                "rel_volume_diff", "volume_ratio", "detection_rate", "balanced_accuracy"):
        assert math.isnan(m[key]), key
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (0, 0, 0, 210)
    assert m["accuracy"] == 1.0 and m["specificity"] == 1.0
    assert m["ref_lesion_count"] == m["pred_lesion_count"] == m["abs_lesion_count_diff"] == 0


def test_reference_empty_prediction_not():
    z = np.zeros((6, 6, 6), bool)
    pred = z.copy()
    pred[1:3, 1:3, 1:3] = True
    pred[4, 4, 4] = True
    m = compute_metrics(z, pred, (1, 1, 1))
    assert m["dice"] == 0.0 and m["jaccard"] == 0.0 and m["lesion_f1"] == 0.0
    assert m["distances_undefined"] == 1 and math.isnan(m["hd95"])
    assert (m["pred_lesion_count"], m["lesion_fp"], m["lesion_tp"]) == (2, 2, 0)
    assert m["precision"] == 0.0 and math.isnan(m["recall"])
    assert math.isnan(m["rel_volume_diff"]) and math.isnan(m["volume_ratio"])
    assert math.isnan(m["detection_rate"])
    assert m["abs_volume_diff_voxels"] == 9


def test_prediction_empty_reference_not():
    ref = np.zeros((6, 6, 6), bool)
    ref[2:4, 2:4, 2:4] = True
    m = compute_metrics(ref, np.zeros_like(ref), (1, 1, 1))
    assert m["dice"] == 0.0 and m["lesion_f1"] == 0.0 and m["recall"] == 0.0
    assert m["distances_undefined"] == 1 and math.isnan(m["hd"])
    assert m["rel_volume_diff"] == -1.0 and m["volume_ratio"] == 0.0
    assert (m["lesion_fn"], m["detection_rate"]) == (1, 0.0)
    assert math.isnan(m["precision"]) and math.isnan(m["mcc"])


def test_identical_masks():
    rng = np.random.default_rng(7)
    ref = _blobs(rng, (12, 12, 12), n=2)
    m = compute_metrics(ref, ref.astype(np.uint8), (1, 2, 3))
    assert m["dice"] == 1.0 and m["mcc"] == pytest.approx(1.0)
    assert m["hd"] == m["hd95"] == m["assd"] == 0.0 and m["surface_dice"] == 1.0


def test_symmetry_and_crop_invariance():
    rng = np.random.default_rng(3)
    ref = _blobs(rng, (14, 12, 10), n=2)
    pred = _blobs(rng, (14, 12, 10), n=2)
    a = compute_metrics(ref, pred, (1, 1.5, 2))
    b = compute_metrics(pred, ref, (1, 1.5, 2))
    for key in ("dice", "jaccard", "hd", "hd95", "assd", "surface_dice", "mcc"):
        assert a[key] == pytest.approx(b[key], rel=1e-12)
    assert (a["fp"], a["fn"]) == (b["fn"], b["fp"])
    # embedding in a larger grid changes only the true negatives
    big_ref = np.zeros((30, 25, 20), bool)
    big_pred = np.zeros_like(big_ref)
    big_ref[5:19, 7:19, 3:13] = ref
    big_pred[5:19, 7:19, 3:13] = pred
    c = compute_metrics(big_ref, big_pred, (1, 1.5, 2))
    for key in METRIC_COLUMNS:
        if key not in ("tn", "specificity", "accuracy", "balanced_accuracy", "mcc",
                       "grid_voxels", "pred_fraction_pct"):
            assert c[key] == a[key] or (math.isnan(c[key]) and math.isnan(a[key])), key
    assert (a["grid_voxels"], c["grid_voxels"]) == (pred.size, big_pred.size)
    assert c["pred_fraction_pct"] == pytest.approx(100 * pred.sum() / big_pred.size)
    assert c["tn"] - a["tn"] == big_ref.size - ref.size


def test_mcc_no_overflow():
    # factors of the MCC denominator ~1.3e5 each -> product ~3e20 > int64 max
    shape = (64, 64, 64)
    ref = np.zeros(shape, bool)
    pred = np.zeros(shape, bool)
    ref[:32] = True
    pred[8:40] = True
    m = compute_metrics(ref, pred, (1, 1, 1))
    tp, fp, fn, tn = m["tp"], m["fp"], m["fn"], m["tn"]
    assert tp + fp + fn + tn == 64**3
    den = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)  # exact Python integers
    assert den > np.iinfo(np.int64).max
    assert m["mcc"] == pytest.approx((tp * tn - fp * fn) / math.sqrt(den), rel=1e-12)
    assert -1 <= m["mcc"] <= 1


def test_non_binary_rejected_unless_threshold():
    ref = np.zeros((4, 4, 4), np.float32)
    ref[1:3, 1:3, 1:3] = 1
    prob = ref * 0.7
    prob[0, 0, 0] = 0.2
    with pytest.raises(MetricsInputError, match="threshold"):
        compute_metrics(ref, prob, (1, 1, 1))
    m = compute_metrics(ref, prob, (1, 1, 1), threshold=0.5)
    assert m["dice"] == 1.0 and m["fp"] == 0
    m = compute_metrics(ref, prob, (1, 1, 1), threshold=0.1)
    assert m["fp"] == 1
    # integer {0, 1} masks and labels {0, 2} (non-binary)
    assert compute_metrics(ref.astype(np.int16), ref.astype(np.uint8), (1, 1, 1))["dice"] == 1
    with pytest.raises(MetricsInputError, match="not binary"):
        compute_metrics(ref, ref * 2, (1, 1, 1))
    bad = ref.copy()
    bad[0, 0, 1] = np.nan
    with pytest.raises(MetricsInputError, match="NaN"):
        compute_metrics(bad, ref, (1, 1, 1), threshold=0.5)
    assert as_binary_mask(np.array([0, 1, 1]), name="x").tolist() == [False, True, True]
    # the project-wide rule: probability >= threshold is lesion (a voxel at exactly 0.5 is)
    half = ref * 0.5
    m = compute_metrics(ref, half, (1, 1, 1), threshold=0.5)
    assert m["tp"] == 8 and m["dice"] == 1.0
    assert as_binary_mask(np.array([0.4999, 0.5, 0.5001]), 0.5).tolist() == [False, True, True]


def test_invalid_inputs():
    a = np.zeros((4, 4, 4), bool)
    with pytest.raises(MetricsInputError, match="shape mismatch"):
        compute_metrics(a, np.zeros((4, 4, 5), bool), (1, 1, 1))
    with pytest.raises(MetricsInputError, match="3-D"):
        compute_metrics(a[0], a[0], (1, 1))
    with pytest.raises(MetricsInputError, match="connectivity"):
        compute_metrics(a, a, (1, 1, 1), connectivity=8)
    with pytest.raises(MetricsInputError, match="spacing"):
        compute_metrics(a, a, (1, 0, 1))
    with pytest.raises(MetricsInputError, match="spacing"):
        compute_metrics(a, a, (1, 1))
    with pytest.raises(MetricsInputError, match="tolerance"):
        compute_metrics(a, a, (1, 1, 1), tolerance_mm=-1)
    with pytest.raises(MetricsInputError):
        surface_distances(a, a, (1, 1, 1))
    assert issubclass(MetricsInputError, ValueError)


# --------------------------------------------------------------------------- load_pair
def _save(path, data, affine):
    nib.Nifti1Image(np.asarray(data), affine).to_filename(str(path))
    return path


def test_load_pair(tmp_path):
    aff = np.diag([1.5, 2.0, 3.0, 1.0])
    aff[:3, 3] = [-10, 5, 2]
    ref = np.zeros((5, 6, 7), np.uint8)
    ref[1:3, 2:4, 3:5] = 1
    prob = ref.astype(np.float32) * 0.9
    r = _save(tmp_path / "ref_mask.nii.gz", ref, aff)
    p = _save(tmp_path / "pred_mask.nii.gz", ref, aff)
    pp = _save(tmp_path / "pred_prob.nii.gz", prob, aff)
    a, b, sp = load_pair(r, p)
    assert a.dtype == bool and b.dtype == bool and a.sum() == 8
    assert sp == pytest.approx((1.5, 2.0, 3.0))
    with pytest.raises(MetricsInputError, match=r"pred_prob\.nii\.gz"):
        load_pair(r, pp)
    _, b2, _ = load_pair(r, pp, threshold=0.5)
    assert np.array_equal(b2, a)
    # 4-D with one volume is accepted
    p4 = _save(tmp_path / "pred4d.nii.gz", ref[..., None], aff)
    assert load_pair(r, p4)[1].shape == (5, 6, 7)


def test_load_pair_grid_mismatch(tmp_path):
    aff = np.eye(4)
    ref = np.zeros((5, 6, 7), np.uint8)
    r = _save(tmp_path / "sub-01_mask.nii.gz", ref, aff)
    shifted = aff.copy()
    shifted[0, 3] = 0.5
    p = _save(tmp_path / "sub-01_desc-crude2_mask.nii.gz", ref, shifted)
    with pytest.raises(MetricsInputError) as exc:
        load_pair(r, p)
    msg = str(exc.value)
    assert "sub-01_mask.nii.gz" in msg and "sub-01_desc-crude2_mask.nii.gz" in msg
    assert "Resample the prediction" in msg and "never resampled" in msg
    # within atol is accepted
    tiny = aff.copy()
    tiny[0, 3] = 1e-4
    load_pair(r, _save(tmp_path / "tiny.nii.gz", ref, tiny))
    q = _save(tmp_path / "other_shape.nii.gz", np.zeros((5, 6, 8), np.uint8), aff)
    with pytest.raises(MetricsInputError, match="shape"):
        load_pair(r, q)


def test_spacing_from_oblique_affine():
    theta = 0.3
    rot = np.array([[math.cos(theta), -math.sin(theta), 0],
                    [math.sin(theta), math.cos(theta), 0], [0, 0, 1]])
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag([0.8, 1.2, 4.0])
    assert spacing_from_affine(aff) == pytest.approx((0.8, 1.2, 4.0))
    # axis-swapped affine: array axis 0 runs along y (3 mm), axis 1 along x (2 mm)
    perm = np.array([[0, 2.0, 0, 0], [3.0, 0, 0, 0], [0, 0, -5.0, 0], [0, 0, 0, 1]])
    assert spacing_from_affine(perm) == pytest.approx((3.0, 2.0, 5.0))
