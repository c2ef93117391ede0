"""Pipeline (study) files: bundled ones load, the schema refuses bad keys."""

from __future__ import annotations

import pytest

from bids_stroke.conditions import parse_conditions
from bids_stroke.pipeline import (
    PipelineError,
    available_pipelines,
    load_pipeline,
    validate_pipeline,
)


def test_bundled_pipelines_are_valid():
    names = available_pipelines()
    assert {"atlas_resolution", "clinical_slices", "kspace_vs_interpolation"} <= set(names)
    for name in names:
        pipe = load_pipeline(name)
        parse_conditions(pipe.conditions)


def test_atlas_study_has_the_four_conditions():
    pipe = load_pipeline("atlas_resolution")
    assert list(pipe.conditions) == ["native", "crude:2", "linear:2", "thick:5"]
    assert pipe.section("segmentation")["threshold"] == 0.5


def test_clinical_sweep_is_1_to_10_mm():
    pipe = load_pipeline("clinical_slices")
    thick = [c for c in pipe.conditions if c.startswith("thick:")]
    assert thick[0] == "thick:2" and thick[-1] == "thick:10" and "native" in pipe.conditions


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"conditions": ["native"], "colour": 1}, "unknown key 'colour'"),
        ({"conditions": ["native"], "segmentation": {"treshold": 0.5}}, "segmentation.treshold"),
        ({"conditions": []}, "non-empty list"),
        ({"conditions": ["native"], "segmentation": {"threshold": "high"}}, "threshold"),
        ({"conditions": ["native"], "registration": {"kind": "elastic"}}, "registration.kind"),
        (["native"], "mapping"),
    ],
)
def test_schema_errors_name_the_key(data, needle):
    with pytest.raises(PipelineError) as err:
        validate_pipeline(data, "study.yml")
    assert needle in str(err.value) and "study.yml" in str(err.value)


def test_corrupt_yaml(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("conditions: [native\n  oops: {")
    with pytest.raises(PipelineError) as err:
        load_pipeline(bad)
    assert "not valid YAML" in str(err.value)


def test_unknown_pipeline_name():
    with pytest.raises(PipelineError) as err:
        load_pipeline("nope")
    assert "atlas_resolution" in str(err.value)
