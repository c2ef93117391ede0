"""The lesion-size answer: Theil-Sen slope of the paired change on log10 lesion volume, with
the Kendall interval, against the textbook definition (Hollander & Wolfe 1999, sec. 9.4)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bids_stroke.group.lesion_size import size_regression


def _table(n: int = 15, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        vol = float(np.exp(rng.normal(1, 1.5)))
        base = rng.uniform(0.5, 0.9)
        for c, effect in (("native", 0.0), ("crude2", 0.03)):
            rows.append({"participant_id": f"sub-{i:02d}", "desc": c, "ref_volume_ml": vol,
                         "dice": base + effect * np.log10(vol) - effect + rng.normal(0, 0.02)})
    return pd.DataFrame(rows)


def test_slope_and_interval_follow_the_definition() -> None:
    t = _table()
    row = size_regression(t, "dice", ["native", "crude2"]).iloc[0]
    w = t.pivot(index="participant_id", columns="desc", values="dice")
    x = np.log10(t.groupby("participant_id")["ref_volume_ml"].first().loc[w.index].to_numpy())
    y = (w["crude2"] - w["native"]).to_numpy()
    i, j = np.triu_indices(x.size, 1)
    slopes = np.sort((y[j] - y[i]) / (x[j] - x[i]))
    n, big_n = x.size, slopes.size
    c = stats.norm.ppf(0.975) * np.sqrt(n * (n - 1) * (2 * n + 5) / 18)
    lower = slopes[round((big_n - c) / 2) - 1]  # S_(M), M = (N - C) / 2
    upper = slopes[round((big_n + c) / 2)]      # S_(Q + 1), Q = (N + C) / 2
    assert row.slope_per_log10_ml == pytest.approx(np.median(slopes), abs=1e-15)
    assert (row.ci_low, row.ci_high) == pytest.approx((lower, upper), abs=1e-15)
    assert row.n == 15 and row.n_dropped == 0 and row.conf_level == 0.95
    assert row.ci_low < 0.03 < row.ci_high  # the simulated slope


def test_units_without_lesion_are_counted_and_few_units_give_no_line() -> None:
    t = _table(6)
    t.loc[t.participant_id == "sub-02", "ref_volume_ml"] = 0.0
    row = size_regression(t, "dice", ["native", "crude2"]).iloc[0]
    assert row.n == 5 and row.n_dropped == 1
    few = size_regression(_table(2), "dice", ["native", "crude2"]).iloc[0]
    assert few.method == "not enough units" and np.isnan(few.slope_per_log10_ml)
    assert size_regression(t, "dice", ["native"]).empty
