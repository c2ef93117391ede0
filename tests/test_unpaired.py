"""Unpaired dataset comparison against R, SciPy and hand computations.

Reference values were computed with R 4.2.2 by ``tests/data/unpaired_reference.R`` (its output
is ``tests/data/unpaired_reference.out``): ``wilcox.test(x, y, paired = FALSE)`` (base R),
Brunner-Munzel written out as in ``lawstat::brunner.munzel.test`` and Cliff's delta as
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
                             n_boot=200, seed=0)
    assert len(out) == 4 and set(out["dataset_a"]) == {"ATLAS"}
    row = out[(out.metric == "dice") & (out.desc == "native")].iloc[0]
    a = t[(t.dataset == "ATLAS") & (t.desc == "native")]["dice"].to_numpy()
    b = t[(t.dataset == "ISLES") & (t.desc == "native")]["dice"].to_numpy()
    assert (row.n_a, row.n_b) == (30, 20) and row.mwu_method == "exact"
    assert row.p_mwu == pytest.approx(stats.mannwhitneyu(a, b, method="exact").pvalue)
    assert row.cliffs_delta > 0.8 and row.delta_ci_low <= row.cliffs_delta <= row.delta_ci_high
    assert row.significant == "yes" and row.significant_uncorrected == "yes"
    for _, g in out.groupby("metric"):  # one family per metric
        np.testing.assert_allclose(g["p_mwu_holm"], S.holm(g["p_mwu"]))
        np.testing.assert_allclose(g["p_bm_holm"], S.holm(g["p_bm"]))
