"""Equivalence / non-inferiority verdicts: hand-made cases, the sample-size estimate, the
table, and the metric directions they rely on."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bids_stroke.group import collect
from bids_stroke.group.equivalence import equivalence_table, participants_needed, verdict
from bids_stroke.group.hodges_lehmann import signed_rank_shift
from bids_stroke.group.labels import METRIC_DIRECTIONS, metric_direction

HIGHER, LOWER, NONE = 1, -1, 0
# (ci_low, ci_high, margin, direction, verdict): change = condition - reference
CASES = [
    # higher is better (Dice, margin 0.05)
    (-0.021, -0.004, 0.05, HIGHER, "equivalent"),
    (-0.049, 0.049, 0.05, HIGHER, "equivalent"),
    (-0.030, 0.080, 0.05, HIGHER, "non-inferior"),      # may be better, not worse than -M
    (0.060, 0.090, 0.05, HIGHER, "non-inferior"),       # better beyond the margin
    (-0.120, -0.060, 0.05, HIGHER, "inferior"),
    (-0.080, -0.010, 0.05, HIGHER, "inconclusive"),     # straddles -M
    (-0.090, 0.090, 0.05, HIGHER, "inconclusive"),      # straddles both margins
    (-0.050, -0.010, 0.05, HIGHER, "inconclusive"),     # touching -M is not inside
    # lower is better (HD95 in mm, margin 2): mirrored
    (-1.0, 1.5, 2.0, LOWER, "equivalent"),
    (-3.0, 1.0, 2.0, LOWER, "non-inferior"),
    (-5.0, -2.5, 2.0, LOWER, "non-inferior"),
    (2.5, 4.0, 2.0, LOWER, "inferior"),
    (0.5, 3.0, 2.0, LOWER, "inconclusive"),
    (-0.5, 2.0, 2.0, LOWER, "inconclusive"),
    # no direction (signed volume difference)
    (-1.0, 1.0, 2.0, NONE, "equivalent"),
    (2.5, 3.0, 2.0, NONE, "different"),
    (-4.0, -2.1, 2.0, NONE, "different"),
    (1.0, 3.0, 2.0, NONE, "inconclusive"),
    # no interval
    (math.nan, 1.0, 2.0, HIGHER, "n/a"),
]


@pytest.mark.parametrize(("lo", "hi", "margin", "direction", "expected"), CASES)
def test_verdicts_follow_from_interval_and_margin(lo, hi, margin, direction, expected) -> None:
    assert verdict(lo, hi, margin, direction) == expected


def test_cases_cover_every_outcome_in_both_directions() -> None:
    seen = {(d, v) for *_, d, v in CASES}
    for direction in (HIGHER, LOWER):
        for v in ("equivalent", "non-inferior", "inferior", "inconclusive"):
            assert (direction, v) in seen


def test_mirrored_metrics_get_mirrored_verdicts() -> None:
    for lo, hi, margin, direction, expected in CASES:
        if direction:
            assert verdict(-hi, -lo, margin, -direction) == expected


def test_participants_needed_by_hand() -> None:
    # s = 0.04, estimate 0.01, margin 0.05, one-sided alpha 0.05, 80% power:
    # (pi/3) (1.6449 + 0.8416)^2 0.04^2 / 0.04^2 = 6.475 -> 7
    z = 1.6448536269514722 + 0.8416212335729143
    assert participants_needed(0.04, 0.01, 0.05, 0.05) == math.ceil(math.pi / 3 * z**2)
    # estimate 0: both one-sided tests matter, beta split (z_{0.9} = 1.2816)
    z0 = 1.6448536269514722 + 1.2815515655446004
    assert participants_needed(0.05, 0.0, 0.05, 0.05) == math.ceil(math.pi / 3 * z0**2)
    assert participants_needed(0.04, -0.06, 0.05, 0.05) == math.inf  # beyond the margin
    assert math.isnan(participants_needed(0.0, 0.01, 0.05, 0.05))
    # more spread, more participants
    assert participants_needed(0.08, 0.01, 0.05, 0.05) > participants_needed(0.04, 0.01, 0.05,
                                                                             0.05)


def _units(n: int = 14, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        base = rng.uniform(0.6, 0.9)
        for c, shift, hd in (("native", 0.0, 3.0), ("linear2", -0.01, 3.2),
                             ("crude2", -0.09, 6.0)):
            rows.append({"participant_id": f"sub-{i:02d}", "session_id": "n/a", "desc": c,
                         "dice": round(base + shift + rng.normal(0, 0.01), 4),
                         "hd95": round(hd + rng.normal(0, 0.5), 3)})
    return pd.DataFrame(rows)


def test_equivalence_table_is_the_signed_rank_interval() -> None:
    t = _units()
    out = equivalence_table(t, {"hd95": 2.0, "dice": 0.05}, ["native", "linear2", "crude2"],
                            alpha=0.05, primary="dice")
    assert list(out["metric"]) == ["dice", "dice", "hd95", "hd95"]  # primary first
    dice = out[out.metric == "dice"].set_index("condition_b")
    assert (dice["family"] == "confirmatory").all() and (dice["family_size"] == 2).all()
    assert (dice["conf_level"] == 1 - 2 * 0.05 / 2).all()  # Bonferroni over 2 conditions
    assert (dice["ci_adjustment"] == "bonferroni").all()
    w = t.pivot(index="participant_id", columns="desc", values="dice")
    exp = signed_rank_shift((w["linear2"] - w["native"]).to_numpy(), conf_level=0.95)
    row = dice.loc["linear2"]
    assert (row.hl_estimate, row.ci_low, row.ci_high) == (exp.estimate, exp.ci_low, exp.ci_high)
    assert row.verdict == "equivalent" and math.isnan(row.n_needed)
    assert dice.loc["crude2", "verdict"] == "inferior" and dice.loc["crude2", "n_needed"] == \
        math.inf
    hd = out[out.metric == "hd95"].set_index("condition_b")
    assert (hd["family"] == "exploratory").all() and (hd["conf_level"] == 0.9).all()
    assert (hd["ci_adjustment"] == "unadjusted").all() and (hd["direction"] ==
                                                            "lower is better").all()
    assert hd.loc["crude2", "verdict"] == "inferior"  # HD95 grew by ~3 mm > 2 mm
    for r in out.itertuples():
        assert r.verdict == verdict(r.ci_low, r.ci_high, r.margin, metric_direction(r.metric))


def test_inconclusive_with_few_units_states_participants_needed() -> None:
    t = _units(n=5, seed=2)
    t.loc[t.desc == "linear2", "dice"] += np.array([0.03, -0.04, 0.02, -0.03, 0.05])
    out = equivalence_table(t, {"dice": 0.05}, ["native", "linear2"], primary="dice")
    row = out.iloc[0]
    assert row.verdict == "inconclusive" and row.n == 5
    assert row.n_needed > 5 and np.isfinite(row.n_needed)
    assert row.n_needed == participants_needed(row.sd_change, row.hl_estimate, 0.05,
                                               (1 - row.conf_level) / 2)


def test_every_metric_column_has_a_direction() -> None:
    assert set(collect.METRIC_COLUMNS) <= set(METRIC_DIRECTIONS)
    assert metric_direction("dice") == 1 and metric_direction("hd95") == -1
    assert metric_direction("rel_volume_diff") == 0 and metric_direction("agreement?") == 0
