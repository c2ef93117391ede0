"""Numbers that never contradict the words: p-values, stated differences, unit counts."""

from __future__ import annotations

import pytest

from bids_stroke.group.findings import fmt_distinct, fmt_level, fmt_num, fmt_p, unit_sentence


@pytest.mark.parametrize(("p", "alpha", "text"), [
    (0.0502, 0.05, "= 0.0502"),        # 2 digits would print 0.05, "not significant" at 0.05
    (0.0496, 0.05, "= 0.0496"),        # 2 digits would print 0.05 for a significant p
    (0.04999994, 0.05, "= 0.0499999"),
    (0.05, 0.05, "= 0.05"),
    (0.051, 0.05, "= 0.051"),
    (0.012345, 0.05, "= 0.012"),
    (0.5, 0.05, "= 0.5"),
    (0.00049, 0.05, "< 0.001"),
    (0.0101, 0.01, "= 0.0101"),
    (0.000012, 0.0001, "= 0.000012"),  # positional notation, never 1.2e-05
    (float("nan"), 0.05, "= n/a"),
])
def test_p_two_significant_digits_never_rounded_onto_alpha(p, alpha, text) -> None:
    assert fmt_p(p, alpha) == text
    if p == p and text.startswith("="):
        shown = float(text[2:])
        assert (shown < alpha) == (p < alpha)


def test_stated_values_differ_when_they_differ() -> None:
    assert fmt_distinct(0.9993, 0.9991) == ("0.9993", "0.9991")
    assert fmt_distinct(1.0, 0.99995) == ("1", "0.99995")  # never "from 1 to 1"
    assert fmt_distinct(0.106, 0.1061) == ("0.106", "0.1061")
    assert fmt_distinct(0.5, 0.5) == ("0.5", "0.5")
    assert fmt_num(-0.0123, signed=True) == "\u22120.0123" and fmt_num(0.5, signed=True) == "+0.5"
    assert fmt_level(0.95) == "95%" and fmt_level(1 - 0.05 / 3) == "98.33%"


def test_unit_sentence_names_each_datasets_counts() -> None:
    one = unit_sentence("participant", {"": {"participants": 30, "images": 30, "multi": 0}})
    assert one == "Statistics use one value per participant (30 participants, one image each)."
    two = unit_sentence("participant", {
        "ISLES": {"participants": 30, "images": 30, "multi": 0},
        "ATLAS": {"participants": 24, "images": 48, "multi": 24}})
    assert two.startswith("Statistics use one value per participant: ISLES: 30 participants, "
                          "one image each; ATLAS: 24 participants (48 images; the 24")
    img = unit_sentence("image", {"": {"participants": 8, "images": 16, "multi": 8}})
    assert "16 images of 8 participants" in img and "pseudo-replication" in img
