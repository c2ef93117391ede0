"""Hodges-Lehmann estimates and their rank-test intervals against R, and R's numerical routines.

Reference values: ``tests/data/hodges_lehmann_reference.R`` (R 4.2.2) printed every case's data
and R's ``wilcox.test(..., conf.int = TRUE)`` estimate, interval, conf.level attribute, branch
and p-value into ``tests/data/hodges_lehmann_reference.out``; the tests read that file (R is not
needed). When ``Rscript`` is installed the script is re-run and its output must be unchanged.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bids_stroke.group import rmath
from bids_stroke.group import stats as S
from bids_stroke.group.hodges_lehmann import rank_sum_shift, signed_rank_shift

DATA = Path(__file__).parent / "data"
REF = DATA / "hodges_lehmann_reference.out"


def _cases() -> list[tuple[str, bool, np.ndarray, np.ndarray, list[list[str]]]]:
    cases = []
    for block in REF.read_text().split("case ")[1:]:
        lines = [ln.split() for ln in block.strip().splitlines()]
        name, kind = lines[0]
        first = np.array(lines[1][1:], float)
        second = np.array(lines[2][1:], float)
        cases.append((name, kind == "paired", first, second, [ln[1:] for ln in lines[3:]]))
    return cases


CASES = _cases()
ROWS = [(name, paired, a, b, res) for name, paired, a, b, rows in CASES for res in rows]


def test_reference_covers_both_branches_and_both_designs() -> None:
    seen = {(paired, res[6]) for _, paired, _, _, res in ROWS}
    assert seen == {(True, "exact"), (True, "asymptotic"), (False, "exact"),
                    (False, "asymptotic")}
    # the decimal cases change branch with the rounding: ties only after signif(, 7)
    for name in ("decimal", "decimal2"):
        branch = {res[1]: res[6] for n, _, _, _, res in ROWS if n == name}
        assert branch == {"Inf": "exact", "7": "asymptotic"}, name
    # at least one requested level R could not reach
    assert any(float(res[0]) != float(res[5]) for *_, res in ROWS)


@pytest.mark.parametrize(("name", "paired", "a", "b", "res"), ROWS,
                         ids=[f"{r[0]}-{r[4][0][:6]}-{r[4][1]}" for r in ROWS])
def test_estimate_and_interval_equal_r(name, paired, a, b, res) -> None:
    level, digits = float(res[0]), None if res[1] == "Inf" else int(res[1])
    est, lo, hi, r_level = (float(v) for v in res[2:6])
    got = (signed_rank_shift(b - a, conf_level=level, digits_rank=digits) if paired
           else rank_sum_shift(a, b, conf_level=level, digits_rank=digits))
    assert got.method == res[6]
    assert got.estimate == pytest.approx(est, abs=1e-10)
    assert (got.ci_low, got.ci_high) == pytest.approx((lo, hi), abs=1e-10)
    assert got.conf_level == pytest.approx(r_level, abs=1e-12)


@pytest.mark.parametrize(("name", "paired", "a", "b", "res"), ROWS,
                         ids=[f"{r[0]}-{r[4][0][:6]}-{r[4][1]}" for r in ROWS])
def test_p_values_with_rounded_ties_equal_r(name, paired, a, b, res) -> None:
    digits = None if res[1] == "Inf" else int(res[1])
    if paired:
        got = S.wilcoxon_signed_rank(b, a, n_boot=0, digits_rank=digits)
        assert got["method"] == res[6]
        assert got["p"] == pytest.approx(float(res[7]), rel=1e-10)
    else:
        got = S.mann_whitney(a, b, digits_rank=digits)
        assert got["mwu_method"] == res[6]
        assert got["p_mwu"] == pytest.approx(float(res[7]), rel=1e-10)


@pytest.mark.skipif(shutil.which("Rscript") is None, reason="R is not installed")
def test_r_reference_output_is_current() -> None:
    out = subprocess.run(["Rscript", str(DATA / "hodges_lehmann_reference.R")],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    assert out == REF.read_text()


def test_signif_rounds_decimal_equal_values_together() -> None:
    d1, d2 = 0.9993 - 0.9991, 0.9995 - 0.9993
    assert d1 != d2
    assert rmath.signif([d1, d2], 7).tolist() == [0.0002, 0.0002]
    assert (rmath.signif([d1, d2], None) == [d1, d2]).all()
    assert rmath.signif([-123456.789, 0.0, np.inf], 3).tolist() == [-123000.0, 0.0, np.inf]
    lines = REF.read_text().split("case ")[0].splitlines()
    checked = 0
    for head, rounded in zip(lines[::2], lines[1::2], strict=True):
        _, digits, *values = head.split()
        got = rmath.signif(np.array(values, float), int(digits))
        assert got.tolist() == np.array(rounded.split(), float).tolist()  # bit for bit
        checked += got.size
    assert checked == 4 * 48


def test_exact_quantiles_by_hand() -> None:
    # n = 9 signed ranks: P(V <= 5) = 10/512 (Hollander & Wolfe); the 2.5% quantile is 6
    assert rmath.psignrank(5, 9) == pytest.approx(10 / 512, abs=1e-15)
    assert rmath.qsignrank(0.025, 9) == 6
    # rank sum of 2 vs 3 values: 10 equally likely arrangements, W in 0..6
    assert [rmath.pwilcox(q, 2, 3) for q in range(7)] == pytest.approx(
        np.cumsum([1, 1, 2, 2, 2, 1, 1]) / 10)
    assert rmath.qwilcox(0.05, 2, 3) == 0 and rmath.qwilcox(0.15, 2, 3) == 1


def test_zeroin_finds_the_root_of_a_smooth_function() -> None:
    root = rmath.zeroin(lambda x: x**3 - 2, 0.0, 2.0, -2.0, 6.0, 1e-12)
    assert root == pytest.approx(2 ** (1 / 3), abs=1e-11)
    assert rmath.zeroin(lambda x: x, -1.0, 0.0, -1.0, 0.0, 1e-4) == 0.0


def test_qnorm_tails_and_symmetry() -> None:
    assert rmath.qnorm(0.975) == pytest.approx(1.959963984540054, abs=1e-15)
    assert rmath.qnorm(0.025, lower_tail=False) == -rmath.qnorm(0.025)
    assert rmath.qnorm(1e-300) < -37 and math.isinf(rmath.qnorm(0.0))


def test_degenerate_inputs() -> None:
    assert signed_rank_shift(np.zeros(5)).method == "all differences zero"
    same = signed_rank_shift(np.full(6, 0.01))  # every difference tied: R gives no interval
    assert math.isnan(same.ci_low) and same.estimate == pytest.approx(0.01)
    assert rank_sum_shift([], [1.0]).method == "not enough values"
    with pytest.raises(ValueError, match="conf_level"):
        signed_rank_shift(np.ones(3), conf_level=1.0)
