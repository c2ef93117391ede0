"""Tests of the condition spec language (bids_stroke.degradation)."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bids_stroke.degradation import (
    VALID_FORMS,
    Condition,
    ConditionError,
    parse_condition,
    parse_conditions,
    resolve_slice_axis,
)

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)

EXPECTED = {
    "native": ("native", "native", "native"),
    "crude:2": ("crude", "crude:2", "crude2"),
    "crude:2x2x4": ("crude", "crude:2x2x4", "crude2x2x4"),
    "crude:2x2x2": ("crude", "crude:2", "crude2"),
    "linear:2": ("linear", "linear:2", "linear2"),
    "linear:1x1x3": ("linear", "linear:1x1x3", "linear1x1x3"),
    "linear:2.5": ("linear", "linear:2.5", "linear2p5"),
    "thick:5": ("thick", "thick:5", "thick5mm"),
    "thick:5mm": ("thick", "thick:5", "thick5mm"),
    "thick:2.5": ("thick", "thick:2.5", "thick2p5mm"),
    "thick:5:gap=1": ("thick", "thick:5:gap=1", "thick5mmgap1mm"),
    "thick:5:gap=0": ("thick", "thick:5", "thick5mm"),
    "thick:5:profile=boxcar": ("thick", "thick:5:profile=boxcar", "thick5mmboxcar"),
    "thick:5:profile=gaussian": ("thick", "thick:5", "thick5mm"),
    "thick:5:interp=nearest": ("thick", "thick:5:interp=nearest", "thick5mmnearest"),
    "thick:5:axis=x": ("thick", "thick:5:axis=x", "thick5mmaxisx"),
    "thick:5:axis=y:gap=0.5:profile=boxcar": (
        "thick",
        "thick:5:gap=0.5:profile=boxcar:axis=y",
        "thick5mmgap0p5mmboxcaraxisy",
    ),
    "kspace:2": ("kspace", "kspace:2", "kspace2"),
    "kspace:2:window=tukey": ("kspace", "kspace:2:window=tukey", "kspace2tukey"),
    "kspace:2:window=hamming": ("kspace", "kspace:2:window=hamming", "kspace2hamming"),
    "kspace:2:window=none": ("kspace", "kspace:2", "kspace2"),
    "kspace:1x1x4": ("kspace", "kspace:1x1x4", "kspace1x1x4"),
    " Crude:3 ": ("crude", "crude:3", "crude3"),
}


@pytest.mark.parametrize("spec", list(EXPECTED))
def test_parse_expected(spec: str) -> None:
    kind, canon, label = EXPECTED[spec]
    cond = parse_condition(spec)
    assert (cond.kind, cond.spec, cond.label) == (kind, canon, label)
    assert re.fullmatch(r"[A-Za-z0-9]+", cond.label)
    # canonical spec round-trips
    assert parse_condition(cond.spec) == cond
    assert str(cond) == cond.spec
    # one sentence, JSON-serialisable params
    assert cond.description.endswith(".") and "\n" not in cond.description
    json.dumps(cond.to_dict())


def test_labels_unique_and_alphanumeric() -> None:
    specs = sorted({EXPECTED[s][1] for s in EXPECTED})
    conds = parse_conditions(specs)
    labels = [c.label for c in conds]
    assert len(set(labels)) == len(labels)
    assert all(re.fullmatch(r"[A-Za-z0-9]+", lab) for lab in labels)


spec_strategy = st.one_of(
    st.just("native"),
    st.builds(
        lambda k, f: f"{k}:{f}",
        st.sampled_from(["crude", "linear", "kspace"]),
        st.one_of(
            st.integers(1, 6).map(str),
            st.tuples(*[st.integers(1, 6)] * 3).map(lambda t: "x".join(map(str, t))),
        ),
    ),
    st.builds(
        lambda t, g, p, i, a: "thick:" + t + g + p + i + a,
        st.sampled_from(["1", "2.5", "3", "5", "0.75", "10"]),
        st.sampled_from(["", ":gap=0", ":gap=1", ":gap=0.5", ":gap=2"]),
        st.sampled_from(["", ":profile=boxcar", ":profile=gaussian"]),
        st.sampled_from(["", ":interp=nearest", ":interp=linear"]),
        st.sampled_from(["", ":axis=x", ":axis=y", ":axis=z"]),
    ),
    st.builds(
        lambda f, w: f"kspace:{f}{w}",
        st.sampled_from(["2", "1.5", "1x1x4", "2x3x2"]),
        st.sampled_from(["", ":window=tukey", ":window=hamming", ":window=none"]),
    ),
)


@SETTINGS
@given(a=spec_strategy, b=spec_strategy)
def test_label_identifies_canonical_spec(a: str, b: str) -> None:
    ca, cb = parse_condition(a), parse_condition(b)
    assert re.fullmatch(r"[A-Za-z0-9]+", ca.label)
    assert (ca.label == cb.label) == (ca.spec == cb.spec)
    assert parse_condition(ca.spec).label == ca.label


@pytest.mark.parametrize(
    "spec, reason",
    [
        ("cubic:2", "unknown condition"),
        ("", "empty"),
        ("native:2", "no arguments"),
        ("crude", "needs a factor"),
        ("crude:", "needs a factor"),
        ("crude:0", ">= 1"),
        ("crude:0.5", ">= 1"),
        ("crude:-2", ">= 1"),
        ("crude:1.5", "integer"),
        ("crude:2x2", "AxBxC"),
        ("crude:2xx2", "AxBxC"),
        ("crude:abc", "not a number"),
        ("crude:nan", "not finite"),
        ("crude:inf", "not finite"),
        ("crude:2:window=tukey", "unknown option"),
        ("linear:0.9", ">= 1"),
        ("linear:2:gap=1", "unknown option"),
        ("thick", "thickness"),
        ("thick:0", "> 0"),
        ("thick:-3", "> 0"),
        ("thick:five", "not a number"),
        ("thick:5:gap=-1", ">= 0"),
        ("thick:5:gap", "key=value"),
        ("thick:5:=1", "key=value"),
        ("thick:5:foo=1", "unknown option"),
        ("thick:5:profile=sinc", "profile"),
        ("thick:5:interp=cubic", "interp"),
        ("thick:5:axis=w", "axis"),
        ("thick:5:gap=1:gap=2", "twice"),
        ("kspace:2:window=hann", "window"),
        ("kspace:0", ">= 1"),
        ("kspace:2:tukey", "key=value"),
    ],
)
def test_condition_errors(spec: str, reason: str) -> None:
    with pytest.raises(ConditionError) as info:
        parse_condition(spec)
    msg = str(info.value)
    assert "\n" not in msg
    assert repr(spec) in msg
    assert reason in msg
    assert "native" in msg and "kspace:N" in msg and "thick:T" in msg
    assert isinstance(info.value, ValueError)


def test_unknown_kind_message() -> None:
    with pytest.raises(ConditionError, match=r"^unknown condition 'cubic:2'; valid kinds: native"):
        parse_condition("cubic:2")
    with pytest.raises(ConditionError, match="expected a string"):
        parse_condition(2)  # type: ignore[arg-type]
    assert "crude:N" in VALID_FORMS


def test_parse_conditions() -> None:
    conds = parse_conditions(["native", "crude:2", "thick:5"])
    assert [c.label for c in conds] == ["native", "crude2", "thick5mm"]
    assert [c.label for c in parse_conditions("native, linear:2 kspace:2")] == [
        "native",
        "linear2",
        "kspace2",
    ]
    cond = parse_condition("thick:3")
    assert parse_conditions([cond])[0] is cond
    with pytest.raises(ConditionError, match=r"duplicate.*crude2"):
        parse_conditions(["crude:2", "native", "crude:2x2x2"])
    with pytest.raises(ConditionError, match="duplicate"):
        parse_conditions(["thick:5", "thick:5:gap=0"])
    with pytest.raises(ConditionError, match="no conditions"):
        parse_conditions([])
    with pytest.raises(ConditionError, match="unknown"):
        parse_conditions(["native", "bogus"])


def test_condition_is_frozen_and_hashable() -> None:
    cond = parse_condition("kspace:2:window=tukey")
    assert isinstance(cond, Condition)
    with pytest.raises(AttributeError):
        cond.label = "x"  # type: ignore[misc]
    assert len({cond, parse_condition("kspace:2:window=tukey")}) == 1
    assert cond.params == {"factors": [2, 2, 2], "window": "tukey"}


def test_params() -> None:
    assert parse_condition("crude:2x2x4").params == {"factors": [2, 2, 4]}
    assert parse_condition("linear:1.5").params == {"factors": [1.5, 1.5, 1.5]}
    assert parse_condition("thick:5:gap=1:axis=x").params == {
        "thickness_mm": 5,
        "gap_mm": 1,
        "profile": "gaussian",
        "interp": "linear",
        "axis": "x",
    }
    assert parse_condition("native").params == {}
    assert parse_condition("kspace:1x1x4").factors == (1.0, 1.0, 4.0)


# --------------------------------------------------------------------------- resolution


def test_effective_zooms() -> None:
    iso = (1.0, 1.0, 1.0)
    aniso = (0.5, 0.5, 1.2)
    assert parse_condition("native").effective_zooms(aniso) == aniso
    assert parse_condition("crude:2").effective_zooms(aniso) == (1.0, 1.0, 2.4)
    assert parse_condition("linear:1x1x3").effective_zooms(iso) == (1.0, 1.0, 3.0)
    assert parse_condition("kspace:2x2x4").effective_zooms(aniso) == (1.0, 1.0, 4.8)
    # thick: pitch T + gap along the slice axis (default: largest zoom, ties -> z)
    assert parse_condition("thick:5").effective_zooms(iso) == (1.0, 1.0, 5.0)
    assert parse_condition("thick:5:gap=1").effective_zooms(iso) == (1.0, 1.0, 6.0)
    assert parse_condition("thick:5").effective_zooms((3.0, 1.0, 1.0)) == (5.0, 1.0, 1.0)
    assert parse_condition("thick:5:axis=y").effective_zooms(aniso) == (0.5, 5.0, 1.2)
    # a slice thinner than the voxel does not improve resolution
    assert parse_condition("thick:1").effective_zooms((1.0, 1.0, 2.0)) == (1.0, 1.0, 2.0)


def test_effective_resolution() -> None:
    assert parse_condition("native").effective_resolution_mm((1, 1, 1)) == pytest.approx(1.0)
    assert parse_condition("crude:2").effective_resolution_mm((1, 1, 1)) == pytest.approx(2.0)
    assert parse_condition("thick:8").effective_resolution_mm((1, 1, 1)) == pytest.approx(2.0)
    got = parse_condition("kspace:1x1x4").effective_resolution_mm((0.5, 0.5, 1.0))
    assert got == pytest.approx(math.cbrt(0.5 * 0.5 * 4.0))
    with pytest.raises(ValueError, match="zooms"):
        parse_condition("native").effective_zooms((1.0, 1.0))
    with pytest.raises(ValueError, match="zooms"):
        parse_condition("native").effective_zooms((1.0, -1.0, 1.0))


def test_slice_axis() -> None:
    assert resolve_slice_axis((1, 1, 1)) == 2
    assert resolve_slice_axis((1, 2, 2)) == 2
    assert resolve_slice_axis((2, 2, 1)) == 1
    assert resolve_slice_axis((3, 1, 1)) == 0
    assert resolve_slice_axis((1, 1, 1), "x") == 0
    assert resolve_slice_axis((1, 1, 1), 1) == 1
    assert parse_condition("thick:5").slice_axis((0.9, 0.9, 3.0)) == 2
    with pytest.raises(ValueError, match="no slice axis"):
        parse_condition("crude:2").slice_axis((1, 1, 1))
    with pytest.raises(ValueError, match="axis"):
        resolve_slice_axis((1, 1, 1), 3)


# ------------------------------------------------------------------ one class per kind
def test_every_kind_is_one_registered_class_with_its_form_in_the_valid_forms() -> None:
    from bids_stroke.degradation import KINDS

    assert list(KINDS) == ["native", "crude", "linear", "thick", "kspace"]
    for name, cls in KINDS.items():
        assert issubclass(cls, Condition) and cls.kind == name
        assert cls.form in VALID_FORMS
        cond = cls.from_strength(2)
        assert cond.kind == name and parse_condition(cond.spec) == cond
        assert cond.apply(np.ones((4, 4, 4), np.float32), (1, 1, 1)).shape == (4, 4, 4)


def test_no_module_outside_degradation_branches_on_a_condition_kind() -> None:
    """Adding a kind is one class: nothing else in the package tests ``.kind == '<kind>'``."""
    from pathlib import Path

    import bids_stroke

    root = Path(bids_stroke.__file__).parent
    kinds = "|".join(["native", "crude", "linear", "thick", "kspace"])
    pattern = re.compile(rf"""kind\s*(==|!=|in)\s*\(?["'](?:{kinds})["']""")
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if "degradation" not in p.parts and pattern.search(p.read_text())]
    assert offenders == []
