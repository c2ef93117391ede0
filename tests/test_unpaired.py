"""Unpaired dataset comparison against R, SciPy and hand computations.

Reference values were computed with R 4.2.2 by ``tests/data/unpaired_reference.R`` (its output
is ``tests/data/unpaired_reference.out``): ``wilcox.test(x, y, paired = FALSE)`` (base R),
Brunner-Munzel written out as in ``lawstat::brunner.munzel.test``, its studentised permutation
version over every split (Neubert & Brunner 2007) and Cliff's delta as
``mean(sign(outer(x, y, "-")))``. When ``Rscript`` is installed the script is re-run and its
output must be unchanged.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bids_stroke.group import stats as S
from bids_stroke.group.bootstrap import CliffsDelta, bootstrap_units

DATA = Path(__file__).parent / "data"

# the four data sets of tests/data/unpaired_reference.R
SETS = {
    # R's ?wilcox.test example (Hollander & Wolfe 1973, p. 69): small, no ties -> exact
    "hw": ([0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46],
           [1.15, 0.88, 0.90, 0.74, 1.21]),
    # Brunner & Munzel (2000) pain scores (also lawstat's and SciPy's example): ties
    "pain": ([1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 2, 4, 1, 1], [3, 3, 4, 3, 1, 2, 3, 1, 1, 5, 4]),
    # Dice-like values, 12 vs 9, no ties -> exact
    "dice": ([0.912, 0.874, 0.801, 0.955, 0.689, 0.843, 0.777, 0.902, 0.861, 0.735, 0.928,
              0.819],
             [0.702, 0.815, 0.634, 0.771, 0.688, 0.590, 0.744, 0.806, 0.723]),
    # n = 55 >= 50 -> normal approximation with continuity correction
    "large": (np.round(np.sin(np.arange(1, 56)) * 10 + np.arange(1, 56) / 7, 6),
              np.round(np.cos(np.arange(1, 31)) * 10 + 3, 6)),
}
# name: (W, p, R method, BM statistic, BM df, BM p, Cliff's delta) from unpaired_reference.out
R_REF = {
    "hw": (35, 0.2544122544122544, "exact", -1.4103014841668053, 11.628257333004685,
           0.18463589680367587, 0.40000000000000002),
    "pain": (32.5, 0.0077407867051071701, "asymptotic", 3.1374674823029509, 17.682841979481548,
             0.0057862086661515377, -0.57792207792207795),
    "dice": (94, 0.003259279420270132, "exact", -4.7677747236321002, 18.282116696249727,
             0.00014777854033187765, 0.7407407407407407),
    "large": (924, 0.36503803380931121, "asymptotic", -0.91964559121312994, 63.167149986230086,
              0.36125666646826904, 0.12),
}


@pytest.mark.parametrize("name", sorted(SETS))
def test_unpaired_tests_equal_r(name: str) -> None:
    x, y = (np.asarray(v, float) for v in SETS[name])
    w, p, method, bm, df, p_bm, delta = R_REF[name]
    mw = S.mann_whitney(x, y)
    assert mw["U"] == w and mw["mwu_method"] == method
    assert mw["p_mwu"] == pytest.approx(p, rel=1e-12)
    res = S.brunner_munzel(x, y)
    assert res["bm_statistic"] == pytest.approx(bm, rel=1e-12)
    assert res["bm_df"] == pytest.approx(df, rel=1e-12)
    assert res["p_bm"] == pytest.approx(p_bm, rel=1e-10)
    assert S.cliffs_delta(x, y) == pytest.approx(delta, abs=1e-15)
    assert S.cliffs_delta(x, y) == pytest.approx(2 * w / (x.size * y.size) - 1, abs=1e-15)


@pytest.mark.skipif(shutil.which("Rscript") is None, reason="R is not installed")
def test_r_reference_output_is_current(tmp_path) -> None:
    out = subprocess.run(["Rscript", str(DATA / "unpaired_reference.R")], capture_output=True,
                         text=True, check=True, timeout=120).stdout
    assert out == (DATA / "unpaired_reference.out").read_text()


@pytest.mark.parametrize("seed", range(6))
def test_unpaired_tests_equal_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    na, nb = [(8, 11), (49, 30), (60, 45)][seed % 3]
    a, b = rng.normal(0.2, 1, na), rng.normal(0, 1.5, nb)
    if seed >= 3:
        a, b = np.round(a, 1), np.round(b, 1)  # ties -> normal approximation
    method = S.choose_mann_whitney_method(a, b)
    assert method == ("exact" if seed < 2 else "asymptotic")
    ref = stats.mannwhitneyu(a, b, method=method)
    mw = S.mann_whitney(a, b)
    assert (mw["U"], mw["p_mwu"]) == pytest.approx((ref.statistic, ref.pvalue), rel=1e-12)
    bm = stats.brunnermunzel(a, b)
    assert S.brunner_munzel(a, b)["p_bm"] == pytest.approx(bm.pvalue, rel=1e-12)
    naive = np.mean(np.sign(a[:, None] - b[None, :]))
    assert S.cliffs_delta(a, b) == pytest.approx(naive, abs=1e-14)


def test_degenerate_cases() -> None:
    assert np.isnan(S.brunner_munzel([1.0, 2.0], [3.0, 4.0])["p_bm"])  # no rank variance
    assert np.isnan(S.brunner_munzel([1.0], [3.0, 4.0])["p_bm"])
    assert S.mann_whitney([1.0, 1.0], [1.0, 1.0])["p_mwu"] == 1.0
    assert np.isnan(S.mann_whitney([], [1.0])["p_mwu"])
    assert S.cliffs_delta([2.0, 3.0], [1.0]) == 1.0 and np.isnan(S.cliffs_delta([], [1.0]))


@pytest.mark.parametrize("ties", [False, True])
def test_cliffs_delta_bootstrap_equals_naive_statistic(ties: bool) -> None:
    rng = np.random.default_rng(8)
    a, b = rng.normal(0.5, 1, 23), rng.normal(0, 1, 17)
    if ties:
        a, b = np.round(a), np.round(b)
    a[3] = np.nan  # a unit without a value is ignored
    stat = CliffsDelta(a, b)
    fast = bootstrap_units([a.size, b.size], lambda ca, cb: stat(ca, cb)[None], 1,
                           n_boot=300, seed=4)[0]

    def naive(x: np.ndarray, y: np.ndarray, axis: int = -1) -> float:
        return S.cliffs_delta(x, y)

    ref = stats.bootstrap((a, b), naive, n_resamples=300, vectorized=False, method="percentile",
                          rng=np.random.default_rng(4))
    dist = ref.bootstrap_distribution
    assert tuple(fast) == pytest.approx(tuple(np.percentile(dist, [2.5, 97.5])), abs=1e-12)


def _datasets_table() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for ds, shift, n in (("ATLAS", 0.0, 30), ("ISLES", -0.15, 20)):
        for i in range(n):
            base = 0.8 + shift + rng.normal(0, 0.05)
            for j, c in enumerate(("native", "crude2")):
                rows.append({"dataset": ds, "participant_id": f"sub-{i:02d}", "session_id": "n/a",
                             "desc": c, "condition": c, "dice": base - 0.05 * j,
                             "hd95": 3 + rng.normal(0, 1)})
    return pd.DataFrame(rows)


def test_compare_datasets_table() -> None:
    t = _datasets_table()
    out = S.compare_datasets(t, ["dice", "hd95"], ["native", "crude2"], ["ATLAS", "ISLES"],
                             n_boot=200, seed=0, primary="dice")
    assert len(out) == 4 and set(out["dataset_a"]) == {"ATLAS"}
    assert (out["desc_a"] == out["desc_b"]).all()  # same condition by default
    assert dict(zip(out["metric"], out["family"], strict=False)) == {
        "dice": "confirmatory", "hd95": "exploratory"}
    row = out[(out.metric == "dice") & (out.desc_a == "native")].iloc[0]
    a = t[(t.dataset == "ATLAS") & (t.desc == "native")]["dice"].to_numpy()
    b = t[(t.dataset == "ISLES") & (t.desc == "native")]["dice"].to_numpy()
    assert (row.n_a, row.n_b) == (30, 20) and row.mwu_method == "exact"
    assert row.p_mwu == pytest.approx(stats.mannwhitneyu(a, b, method="exact").pvalue)
    assert row.p_bm == pytest.approx(stats.brunnermunzel(a, b).pvalue) and row.bm_method == "t"
    assert row.cliffs_delta > 0.8
    assert row.delta_ci_low_unadjusted <= row.cliffs_delta <= row.delta_ci_high_unadjusted
    assert row.significant == "yes" and row.significant_uncorrected == "yes"
    assert row.hl_shift == pytest.approx(np.median(np.subtract.outer(a, b)))
    for _, g in out.groupby("metric"):  # one family per metric; Brunner-Munzel decides
        np.testing.assert_allclose(g["p_mwu_holm"], S.holm(g["p_mwu"]))
        np.testing.assert_allclose(g["p_bm_holm"], S.holm(g["p_bm"]))
        assert ((g["p_bm_holm"] < 0.05) == (g["significant"] == "yes")).all()
        assert ((g["p_bm"] < 0.05) == (g["significant_uncorrected"] == "yes")).all()
    # the Brunner-Munzel interval of Cliff's delta excludes 0 exactly when p_bm < alpha
    excludes = (out["delta_bm_ci_low_unadjusted"] > 0) | (out["delta_bm_ci_high_unadjusted"] < 0)
    assert (excludes == (out["p_bm"] < 0.05)).all()
    assert (out["delta_bm_ci_low_bonferroni"] <= out["delta_bm_ci_low_unadjusted"]).all()


def test_significance_follows_brunner_munzel_not_mann_whitney() -> None:
    """Equal medians, unequal spread: Mann-Whitney and Brunner-Munzel disagree at 0.05 and
    the Brunner-Munzel p decides."""
    a = np.linspace(0.70, 0.90, 40)
    b = np.r_[np.linspace(0.40, 0.79, 20), np.linspace(0.95, 0.99, 20)]
    rows = [{"dataset": ds, "participant_id": f"sub-{i}", "session_id": "n/a", "desc": "native",
             "dice": v} for ds, vals in (("A", a), ("B", b)) for i, v in enumerate(vals)]
    out = S.compare_datasets(pd.DataFrame(rows), ["dice"], ["native"], ["A", "B"], n_boot=50)
    row = out.iloc[0]
    assert row.significant == ("yes" if row.p_bm_holm < 0.05 else "no")
    assert row.p_bm != row.p_mwu


@pytest.mark.parametrize(("name", "x", "y"), [
    ("small", [0.61, 0.72, 0.55, 0.80, 0.47], [0.41, 0.52, 0.38, 0.66, 0.35, 0.49, 0.30]),
    ("separated", [0.9, 0.8, 0.85, 0.95], [0.3, 0.4, 0.2, 0.5, 0.1]),
    ("ties", [1, 2, 2, 3, 3, 3], [2, 3, 4, 4, 5, 5, 5]),
])
def test_permutation_brunner_munzel_equals_r_over_every_split(name, x, y) -> None:
    t_obs, p, splits = _perm_reference(name)
    res = S.brunner_munzel_permutation(np.array(x, float), np.array(y, float))
    assert res["bm_method"] == f"permutation (all {splits} splits)"
    assert res["bm_statistic"] == pytest.approx(t_obs, rel=1e-12)
    assert res["p_bm"] == pytest.approx(p, abs=1e-12)
    if np.isfinite(t_obs):  # the t version's statistic is the same number
        assert S.brunner_munzel(x, y)["bm_statistic"] == pytest.approx(t_obs, rel=1e-12)


def test_permutation_brunner_munzel_monte_carlo_within_its_error() -> None:
    """7 vs 12 values have 50388 splits: 10000 seeded random ones estimate R's exact p
    within Monte Carlo error, and the seed fixes the result."""
    x, y = np.array(SETS["dice"][0]), np.array(SETS["dice"][1])
    a = x[:7]
    b = np.r_[y + 0.1, x[8:11] - 0.05]
    _, p, splits = _perm_reference("mc")
    assert splits == 50388
    res = S.brunner_munzel_permutation(a, b, n_perm=10_000, seed=3)
    assert res["bm_method"] == "permutation (10000 splits)"
    se = np.sqrt(p * (1 - p) / 10_000)
    assert abs(res["p_bm"] - p) < 4 * se
    assert S.brunner_munzel_permutation(a, b, n_perm=10_000, seed=3) == res
    assert S.brunner_munzel_permutation(a, b, n_perm=10_000, seed=4)["p_bm"] != res["p_bm"]


def _perm_reference(name: str) -> tuple[float, float, int]:
    line = next(ln for ln in (DATA / "unpaired_reference.out").read_text().splitlines()
                if ln.startswith(f"{name} : perm"))
    parts = line.split()
    return float(parts[5]), float(parts[8]), int(parts[11])


def test_small_groups_use_the_permutation_test_and_cross_condition_pairs() -> None:
    t = _datasets_table()
    small = t[(t.dataset == "ATLAS") | (t.participant_id < "sub-06")]  # ISLES: 6 participants
    pairs = [(("ISLES", "native"), ("ATLAS", "native")), (("ISLES", "native"), ("ATLAS", "crude2"))]
    out = S.compare_datasets(small, ["dice"], ["native", "crude2"], ["ATLAS", "ISLES"],
                             n_boot=50, pairs=pairs)
    assert list(zip(out["desc_a"], out["desc_b"], strict=True)) == [("native", "native"),
                                                                    ("native", "crude2")]
    assert (out["dataset_a"] == "ISLES").all() and (out["n_a"] == 6).all()
    assert out["bm_method"].str.startswith("permutation").all()
    a = small[(small.dataset == "ISLES") & (small.desc == "native")]["dice"].to_numpy()
    b = small[(small.dataset == "ATLAS") & (small.desc == "crude2")]["dice"].to_numpy()
    exp = S.brunner_munzel_permutation(a, b, seed=[0, 1])
    assert out.iloc[1]["p_bm"] == exp["p_bm"]
