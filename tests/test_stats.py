"""Group statistics against published values, SciPy/statsmodels and hand computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from bids_stroke.group import stats as S
from bids_stroke.group.hodges_lehmann import signed_rank_shift

# Hollander & Wolfe (1999), Nonparametric Statistical Methods, 2nd ed., Example 3.1 / Table 3.1
# (Hamilton depression scale factor IV before (x) and after (y) tranquilizer, n = 9).
# Published: T+ = 40, exact one-sided P(T+ >= 40) = 0.020 (10 / 512 = 0.01953; also the
# R documentation example `wilcox.test(x, y, paired = TRUE, alternative = "greater")`:
# V = 40, p-value = 0.01953). Two-sided: 0.0390625; SciPy's W = min(T+, T-) = 5.
HW_X = np.array([1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30])
HW_Y = np.array([0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29])

# Hollander & Wolfe (1973), Table 7.1 (Woodward 1970): times to round first base for 22
# players x 3 methods (round out, narrow angle, wide angle). Published Friedman statistic
# S = 11.14, df = 2 (R `friedman.test(RoundingTimes)`: chi-squared = 11.143, p = 0.003805).
ROUNDING = np.array([
    [5.40, 5.50, 5.55], [5.85, 5.70, 5.75], [5.20, 5.60, 5.50], [5.55, 5.50, 5.40],
    [5.90, 5.85, 5.70], [5.45, 5.55, 5.60], [5.40, 5.40, 5.35], [5.45, 5.50, 5.35],
    [5.25, 5.15, 5.00], [5.85, 5.80, 5.70], [5.25, 5.20, 5.10], [5.65, 5.55, 5.45],
    [5.60, 5.35, 5.45], [5.05, 5.00, 4.95], [5.50, 5.50, 5.40], [5.45, 5.55, 5.50],
    [5.55, 5.55, 5.35], [5.45, 5.50, 5.55], [5.50, 5.45, 5.25], [5.65, 5.60, 5.40],
    [5.70, 5.65, 5.55], [6.30, 6.30, 6.25],
])


def test_wilcoxon_published_hollander_wolfe() -> None:
    res = S.wilcoxon_signed_rank(HW_X, HW_Y, n_boot=500, seed=1)
    assert res["t_plus"] == 40 and res["t_minus"] == 5 and res["W"] == 5
    assert res["method"] == "exact"
    assert res["p"] == pytest.approx(20 / 512, abs=1e-12)
    assert res["p"] / 2 == pytest.approx(0.01953, abs=5e-6)
    assert res["rank_biserial"] == pytest.approx(35 / 45)
    assert res["n"] == 9 and res["n_zero"] == 0 and res["n_dropped"] == 0
    assert res["mean_diff"] == pytest.approx(np.mean(HW_X - HW_Y))
    assert res["median_diff"] == pytest.approx(0.49)
    assert res["rb_ci_low_unadjusted"] <= res["rank_biserial"] <= res["rb_ci_high_unadjusted"]


@pytest.mark.parametrize("zero_method", ["wilcox", "pratt"])
@pytest.mark.parametrize(("n", "rounding", "expected_method"), [
    (80, None, "asymptotic"),   # large n
    (30, 1, "asymptotic"),      # ties and zeros, n > 13
    (30, None, "exact"),        # continuous, n <= 50
    (10, 0, "asymptotic"),      # ties/zeros, small n: R's rule (normal approximation)
])
def test_wilcoxon_agrees_with_scipy(zero_method, n, rounding, expected_method) -> None:
    rng = np.random.default_rng(n)
    a = rng.normal(0.3, 1.0, n)
    b = rng.normal(0.0, 1.0, n)
    if rounding is not None:
        a, b = np.round(a, rounding), np.round(b, rounding)
        b[:2] = a[:2]  # guarantee zeros
    # exact float ties here (SciPy's); rounded ties are checked against R in
    # tests/test_hodges_lehmann.py
    res = S.wilcoxon_signed_rank(a, b, zero_method=zero_method, n_boot=0, digits_rank=None)
    # the normal approximation carries the continuity correction (R's default)
    ref = stats.wilcoxon(a, b, zero_method=zero_method, method=expected_method,
                         correction=expected_method == "asymptotic")
    assert res["method"] == expected_method
    assert res["p"] == pytest.approx(ref.pvalue, rel=1e-10)
    assert res["W"] == pytest.approx(ref.statistic)
    assert np.isnan(res["rb_ci_low_unadjusted"])  # n_boot = 0 disables the CI


def test_rank_biserial_by_hand() -> None:
    # |d| ranks 1..5; T+ = 1 + 3 + 4 = 8, T- = 2 + 5 = 7 -> r = 1/15
    assert S.rank_biserial(np.array([1.0, -2, 3, 4, -5])) == pytest.approx(1 / 15)
    d = np.array([0.0, -1, 2, 3])
    # wilcox: zero dropped, ranks 1, 2, 3 -> T+ = 5, T- = 1 -> 4/6
    assert S.rank_biserial(d, "wilcox") == pytest.approx(2 / 3)
    # pratt: zero ranked 1 then excluded, ranks 2, 3, 4 -> T+ = 7, T- = 2 -> 5/9
    assert S.rank_biserial(d, "pratt") == pytest.approx(5 / 9)
    # ties: |d| = 1, 1, 2 -> ranks 1.5, 1.5, 3; T+ = 1.5 + 3, T- = 1.5 -> 3/6
    assert S.rank_biserial(np.array([1.0, -1, 2])) == pytest.approx(0.5)
    assert np.isnan(S.rank_biserial(np.zeros(4)))
    assert S.signed_rank_sums(np.array([1.0, -1, 2])) == (4.5, 1.5)


@pytest.mark.parametrize("zero_method", ["wilcox", "pratt"])
@pytest.mark.parametrize("ties", [False, True])
def test_bootstrap_matches_naive_statistic(zero_method, ties) -> None:
    """The count-based rank-biserial of every resample equals rank_biserial of the resampled
    differences: same draws (scipy.stats.bootstrap, same seed), naive statistic."""
    rng = np.random.default_rng(3)
    d = rng.normal(0.3, 1.0, 37)
    if ties:
        d = np.round(d, 1)
        d[:3] = 0.0
    n_boot, seed = 150, 11
    lo, hi = S.bootstrap_rank_biserial_ci(d, n_boot=n_boot, seed=seed, zero_method=zero_method)
    ref = stats.bootstrap((d,), lambda x, axis=-1: S.rank_biserial(x, zero_method),
                          n_resamples=n_boot, vectorized=False, method="percentile",
                          rng=np.random.default_rng(seed))
    exp = np.nanpercentile(ref.bootstrap_distribution, [2.5, 97.5])
    assert (lo, hi) == pytest.approx(tuple(exp), abs=1e-12)
    if not ties:
        assert (lo, hi) == pytest.approx(tuple(ref.confidence_interval), abs=1e-12)


def test_mean_and_ratio_statistics_equal_naive() -> None:
    from bids_stroke.group.bootstrap import Means, Ratio

    rng = np.random.default_rng(5)
    v = np.round(rng.normal(0, 1, 40), 1)
    v[[2, 9]] = np.nan  # units without a value are left out of each resample
    means = Means(np.column_stack([v, 2 * v]))
    hits, items = rng.integers(0, 3, (40, 2)).astype(float), rng.integers(3, 6, (40, 2)) * 1.0
    draws = rng.integers(0, v.size, (60, v.size))
    counts = np.stack([np.bincount(r, minlength=v.size) for r in draws]).astype(float)
    naive_mean = [np.nanmean(v[r]) for r in draws]
    np.testing.assert_allclose(means(counts)[0], naive_mean, atol=1e-12)
    np.testing.assert_allclose(means(counts)[1], 2 * np.array(naive_mean), atol=1e-12)
    naive_ratio = [hits[r, 1].sum() / items[r, 1].sum() for r in draws]
    np.testing.assert_allclose(Ratio(hits, items)(counts)[1], naive_ratio, atol=1e-12)


def test_percentile_ci_respects_the_range() -> None:
    """Bootstrap percentile CIs of a mean Dice stay in [0, 1] even for n = 2 (a t interval
    gives -0.9 to 2.2 there)."""
    v = np.array([[0.05], [0.95]])
    ci = S.condition_means({"dice": v}, ["native"], n_boot=500, seed=0)
    assert 0.0 <= ci.loc[0, "ci_low"] <= ci.loc[0, "mean"] <= ci.loc[0, "ci_high"] <= 1.0
    t_half = stats.t.ppf(0.975, 1) * v.std(ddof=1) / np.sqrt(2)
    assert 0.5 - t_half < -0.9 and 0.5 + t_half > 2.2


def test_bootstrap_deterministic_and_sensible() -> None:
    d = np.random.default_rng(0).normal(1.0, 1.0, 60)
    a = S.bootstrap_rank_biserial_ci(d, n_boot=400, seed=5)
    assert a == S.bootstrap_rank_biserial_ci(d, n_boot=400, seed=5)
    assert a != S.bootstrap_rank_biserial_ci(d, n_boot=400, seed=6)
    assert a[0] < S.rank_biserial(d) < a[1] and a[0] > 0  # clear positive effect
    assert np.isnan(S.bootstrap_rank_biserial_ci(np.zeros(5), n_boot=50)[0])


def test_multiple_comparisons_by_hand() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # Holm: sorted 0.005*4, 0.01*3, 0.03*2, 0.04*1 -> 0.02, 0.03, 0.06, max(0.06, 0.04)
    assert S.holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # BH: sorted p*m/i: 0.02, 0.02, 0.04, 0.04 (already monotone)
    assert S.benjamini_hochberg(p) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    out = S.holm([0.5, np.nan, 0.01])  # NaN is not part of the family
    assert np.isnan(out[1]) and out[[0, 2]] == pytest.approx([0.5, 0.02])
    assert S.benjamini_hochberg([]).size == 0
    with pytest.raises(ValueError, match="p-values"):
        S.holm([1.5])


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=1, max_size=40))
def test_corrections_match_statsmodels(p) -> None:
    multipletests = pytest.importorskip("statsmodels.stats.multitest").multipletests
    p = np.array(p)
    np.testing.assert_allclose(S.holm(p), multipletests(p, method="holm")[1], atol=1e-12)
    np.testing.assert_allclose(S.benjamini_hochberg(p), multipletests(p, method="fdr_bh")[1],
                               atol=1e-12)


def test_friedman_published_example() -> None:
    res = S.friedman_test(ROUNDING)
    assert res["chi2"] == pytest.approx(11.143, abs=5e-4)
    assert res["p"] == pytest.approx(0.003805, abs=5e-7)
    assert res["df"] == 2 and res["n"] == 22 and res["k"] == 3
    assert res["kendall_w"] == pytest.approx(res["chi2"] / (22 * 2))


def test_friedman_vectorised_matches_scipy_and_drops_incomplete() -> None:
    rng = np.random.default_rng(4)
    m = np.round(rng.normal(size=(40, 5)), 0)  # many ties
    assert S.friedman_chi2(m) == pytest.approx(stats.friedmanchisquare(*m.T).statistic)
    m2 = m.copy()
    m2[3, 2] = np.nan
    res = S.friedman_test(m2)
    assert res["n"] == 39 and res["n_dropped"] == 1
    assert res["chi2"] == pytest.approx(stats.friedmanchisquare(*np.delete(m, 3, 0).T).statistic)
    assert np.isnan(S.friedman_test(m[:, :2])["p"])  # needs >= 3 conditions
    assert S.friedman_test(np.ones((5, 3)))["p"] == 1.0


def _table(n: int = 15, conds=("native", "crude2", "crude3"), seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        vol = float(np.exp(rng.normal(1.5, 1.5)))
        for j, c in enumerate(conds):
            rows.append({"participant_id": f"sub-{i:02d}", "session_id": "n/a", "desc": c,
                         "condition": c, "effective_resolution_mm": 1.0 + j,
                         "dice": 0.8 - 0.05 * j + rng.normal(0, 0.05),
                         "hd95": 3 + j + rng.normal(0, 1), "ref_volume_ml": vol})
    return pd.DataFrame(rows)


def test_pairwise_wilcoxon_table_and_missing_data() -> None:
    t = _table()
    full = S.pairwise_wilcoxon(t, ["dice", "hd95"], alpha=0.05, n_boot=100, seed=0)
    assert len(full) == 2 * 3 and set(full["significant"]) <= {"yes", "no"}
    assert (full["n"] == 15).all() and (full["n_dropped"] == 0).all()
    for _, g in full.groupby("metric"):  # one correction family per metric
        np.testing.assert_allclose(g["p_holm"], S.holm(g["p"]))
        np.testing.assert_allclose(g["p_fdr_bh"], S.benjamini_hochberg(g["p"]))
    assert ((full["p_holm"] < 0.05) == (full["significant"] == "yes")).all()

    # sub-03 misses crude3 entirely and has an undefined hd95 under crude2
    t2 = t[~((t.participant_id == "sub-03") & (t.desc == "crude3"))].copy()
    t2.loc[(t2.participant_id == "sub-03") & (t2.desc == "crude2"), "hd95"] = np.nan
    res = S.pairwise_wilcoxon(t2, ["dice", "hd95"], n_boot=100, seed=0).set_index(
        ["metric", "condition_a", "condition_b"])
    assert res.loc[("dice", "native", "crude2"), "n"] == 15
    assert res.loc[("dice", "native", "crude3"), "n_dropped"] == 1
    assert res.loc[("hd95", "native", "crude2"), "n_dropped"] == 1
    assert res.loc[("hd95", "crude2", "crude3"), "n"] == 14
    # unaffected pair: identical to the complete data
    f = full.set_index(["metric", "condition_a", "condition_b"])
    assert res.loc[("dice", "native", "crude2"), "p"] == f.loc[("dice", "native", "crude2"), "p"]
    # affected pair equals the test on the complete cases
    keep = t[t.participant_id != "sub-03"]
    a = keep[keep.desc == "native"]["dice"].to_numpy()
    b = keep[keep.desc == "crude3"]["dice"].to_numpy()
    assert res.loc[("dice", "native", "crude3"), "p"] == pytest.approx(stats.wilcoxon(a, b).pvalue)
    # stable under row order
    shuffled = S.pairwise_wilcoxon(t2.sample(frac=1, random_state=1), ["dice", "hd95"],
                                   ["native", "crude2", "crude3"], n_boot=100, seed=0)
    pd.testing.assert_frame_equal(shuffled, res.reset_index()[shuffled.columns])

    fr = S.friedman_table(t2, ["dice"])
    assert fr.loc[0, "n"] == 14 and fr.loc[0, "n_dropped"] == 1


def test_all_zero_and_too_few_pairs() -> None:
    assert S.wilcoxon_signed_rank(np.ones(5), np.ones(5))["p"] == 1.0
    res = S.wilcoxon_signed_rank(np.array([1.0, np.nan]), np.array([0.0, 1.0]))
    assert res["n"] == 1 and res["n_dropped"] == 1 and np.isnan(res["p"])


def test_summaries_and_size_bins() -> None:
    t = _table(n=30)
    s = S.summarize(t, ["dice", "hd95"])
    row = s[(s.desc == "crude2") & (s.metric == "dice")].iloc[0]
    v = t.loc[t.desc == "crude2", "dice"].to_numpy()
    assert row["n"] == 30
    assert row["mean"] == pytest.approx(v.mean()) and row["std"] == pytest.approx(v.std(ddof=1))
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    assert (row["q1"], row["median"], row["q3"]) == pytest.approx((q1, med, q3))
    assert row["iqr"] == pytest.approx(q3 - q1)
    assert (row["min"], row["max"]) == (v.min(), v.max())

    assert S.size_bin_labels([1, 10, 50]) == ["<1 ml", "1-10 ml", "10-50 ml", ">=50 ml"]
    with pytest.raises(ValueError):
        S.size_bin_labels([10, 1])
    sb = S.size_bin_summary(t, ["dice"], [1, 10, 50])
    vol = t.drop_duplicates("participant_id")["ref_volume_ml"]
    expected = np.histogram(vol, [-np.inf, 1, 10, 50, np.inf])[0]
    got = sb[sb.desc == "native"].set_index("size_bin")["n"]
    for lab, n in zip(S.size_bin_labels([1, 10, 50]), expected, strict=True):
        assert got.get(lab, 0) == n


def test_lesion_detection_by_size() -> None:
    les = pd.DataFrame({
        "participant_id": ["p1", "p1", "p2", "p3", "p3"] * 2,
        "desc": ["a"] * 5 + ["b"] * 5,
        "volume_ml": [0.5, 0.7, 5.0, 20.0, 80.0] * 2,
        "detected": [0, 1, 1, 1, 1, 0, 0, 0, 1, 1],
        "overlap_fraction": [0, 0.5, 0.6, 0.9, 0.95, 0, 0, 0, 0.4, 0.8],
    })
    out = S.lesion_detection_by_size(les, [1, 10, 50], n_boot=200).set_index(
        ["desc", "size_bin"])
    assert out.loc[("a", "<1 ml"), "n_lesions"] == 2
    assert out.loc[("a", "<1 ml"), "n_participants"] == 1
    assert out.loc[("a", "<1 ml"), "detection_rate"] == 0.5
    assert out.loc[("b", "1-10 ml"), "detection_rate"] == 0.0
    assert list(out.index.get_level_values(0)) == ["a"] * 4 + ["b"] * 4
    # one participant in the bin: resampling participants cannot move the rate
    assert out.loc[("a", "<1 ml"), "ci_low"] == out.loc[("a", "<1 ml"), "ci_high"] == 0.5


def test_lesion_detection_resamples_participants_with_their_lesions() -> None:
    """The interval is the percentile interval of detected / lesions over participants drawn
    with replacement (all their lesions with them): same draws, naive loop."""
    rng = np.random.default_rng(7)
    rows = []
    for p in range(12):
        skill = rng.uniform(0.2, 0.95)  # lesions of one participant share their fate
        for lesion in range(int(rng.integers(1, 6))):
            rows.append({"participant_id": f"p{p:02d}", "desc": "native",
                         "volume_ml": float(rng.uniform(1, 9)), "lesion_id": lesion,
                         "detected": int(rng.random() < skill), "overlap_fraction": 0.5})
    les = pd.DataFrame(rows)
    got = S.lesion_detection_by_size(les, [1, 10], n_boot=300, seed=5).iloc[0]
    per = les.groupby("participant_id")["detected"].agg(["sum", "count"]).to_numpy(float)

    def ratio(idx, axis=-1):
        return per[idx, 0].sum() / per[idx, 1].sum()

    ref = stats.bootstrap((np.arange(12),), ratio, n_resamples=300, vectorized=False,
                          method="percentile", rng=np.random.default_rng(5))
    exp = np.percentile(ref.bootstrap_distribution, [2.5, 97.5])
    assert (got["ci_low"], got["ci_high"]) == pytest.approx(tuple(exp), abs=1e-12)
    assert got["n_participants"] == 12 and got["n_lesions"] == len(les)


def test_pairwise_ci_equals_single_test_ci_on_complete_data() -> None:
    """The table-level bootstrap resamples the units once for all tests; on complete data a
    test's interval equals the one of wilcoxon_signed_rank with the same seed."""
    t = _table(n=20)
    res = S.pairwise_wilcoxon(t, ["dice"], n_boot=300, seed=4).set_index(
        ["condition_a", "condition_b"])
    w = t.pivot(index="participant_id", columns="desc", values="dice")
    one = S.wilcoxon_signed_rank(w["native"].to_numpy(), w["crude3"].to_numpy(), n_boot=300,
                                 seed=4)
    got = res.loc[("native", "crude3")]
    assert (got["rb_ci_low_unadjusted"], got["rb_ci_high_unadjusted"]) == pytest.approx(
        (one["rb_ci_low_unadjusted"], one["rb_ci_high_unadjusted"]), abs=1e-12)
    change = (w["crude3"] - w["native"]).to_numpy()  # B - A, as wilcox.test(b, a, paired)
    hl = signed_rank_shift(change, conf_level=0.95)
    assert (got["hl_change"], got["hl_ci_low_unadjusted"], got["hl_ci_high_unadjusted"]) == (
        hl.estimate, hl.ci_low, hl.ci_high)
    adj = signed_rank_shift(change, conf_level=1 - 0.05 / 3)  # Bonferroni over 3 pairs
    assert (got["hl_ci_low_bonferroni"], got["hl_ci_high_bonferroni"]) == (adj.ci_low,
                                                                           adj.ci_high)
    assert got["hl_ci_low_bonferroni"] <= got["hl_ci_low_unadjusted"] <= got["hl_change"]
    # the unadjusted interval excludes 0 exactly when the raw p < alpha
    excludes = (res["hl_ci_low_unadjusted"] > 0) | (res["hl_ci_high_unadjusted"] < 0)
    assert (excludes == (res["p"] < 0.05)).all()
    assert np.isfinite(res.loc[("crude2", "crude3"), "hl_change"])  # every pair
    # the bootstrap: reference pairs only
    assert np.isnan(res.loc[("crude2", "crude3"), "rb_ci_low_unadjusted"])
    both = S.pairwise_wilcoxon(t, ["dice"], n_boot=300, seed=4, ci_pairs="all").set_index(
        ["condition_a", "condition_b"])
    other = S.wilcoxon_signed_rank(w["crude2"].to_numpy(), w["crude3"].to_numpy(), n_boot=300,
                                   seed=4)
    assert (both.loc[("crude2", "crude3"), "rb_ci_low_unadjusted"],
            both.loc[("crude2", "crude3"), "rb_ci_high_unadjusted"]) == pytest.approx(
        (other["rb_ci_low_unadjusted"], other["rb_ci_high_unadjusted"]), abs=1e-12)
    pd.testing.assert_series_equal(both.loc[("native", "crude3")], got)  # same draws
    with pytest.raises(ValueError, match="ci_pairs"):
        S.pairwise_wilcoxon(t, ["dice"], ci_pairs="some")
    assert got["median_a"] == pytest.approx(np.median(w["native"]))
    assert ((res["p"] < 0.05) == (res["significant_uncorrected"] == "yes")).all()


def test_participant_averaging() -> None:
    t = _table(n=6)
    t2 = t.assign(session_id="ses-2", dice=t["dice"] + 0.1)
    both = pd.concat([t.assign(session_id="ses-1"), t2], ignore_index=True)
    both["image_id"] = both["participant_id"] + "_" + both["session_id"]
    units = S.aggregate_units(both, ["dice", "hd95"], "participant")
    assert len(units) == len(t) and (units["n_images"] == 2).all()
    got = units.set_index(["participant_id", "desc"])["dice"]
    exp = t.set_index(["participant_id", "desc"])["dice"] + 0.05
    pd.testing.assert_series_equal(got.sort_index(), exp.sort_index(), check_names=False)
    assert S.aggregate_units(both, ["dice"], "image") is both
    one = both.copy()
    one.loc[(one.session_id == "ses-2") & (one.participant_id == "sub-01"), "dice"] = np.nan
    u1 = S.aggregate_units(one, ["dice"], "participant").set_index(["participant_id", "desc"])
    assert u1.loc[("sub-01", "native"), "dice"] == pytest.approx(
        t.set_index(["participant_id", "desc"]).loc[("sub-01", "native"), "dice"])
    with pytest.raises(ValueError, match="group unit"):
        S.aggregate_units(both, ["dice"], "session")
    res = S.pairwise_wilcoxon(units, ["dice"], n_boot=0)
    assert (res["n"] == 6).all()  # one pair per participant, not per image


def test_corrections_match_statsmodels_with_ties() -> None:
    multipletests = pytest.importorskip("statsmodels.stats.multitest").multipletests
    rng = np.random.default_rng(2)
    p = np.round(rng.uniform(0, 0.2, 200), 3)  # many exact ties
    np.testing.assert_allclose(S.holm(p), multipletests(p, method="holm")[1], atol=1e-12)
    np.testing.assert_allclose(S.benjamini_hochberg(p), multipletests(p, method="fdr_bh")[1],
                               atol=1e-12)
