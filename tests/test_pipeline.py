"""Pipeline (study) files: bundled ones load, the schema refuses bad keys."""

from __future__ import annotations

import pytest

from bids_stroke.degradation import parse_conditions
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


def test_atlas_study_is_the_original_study():
    """The original study's within-dataset conditions and metrics, nothing else."""
    pipe = load_pipeline("atlas_resolution")
    assert list(pipe.conditions) == ["native", "crude:2", "linear:2"]
    # the threshold is each model's own (a user's model keeps what it declares); the bundled
    # model's is the study's 0.5
    assert pipe.section("segmentation")["threshold"] is None
    from bids_stroke.model.adapters import open_model

    assert open_model(None, device="cpu").spec.threshold == 0.5
    group = pipe.section("group")
    assert group["metrics"] == ["dice", "precision", "recall", "jaccard", "specificity",
                                "accuracy", "rel_volume_diff", "pred_fraction_pct"]
    assert group["alpha"] == 0.05 and group["unit"] == "participant"
    assert not group["compare"]
    thick = [p for p in available_pipelines() if any(
        c.startswith(("thick:", "kspace:")) for c in load_pipeline(p).conditions)]
    assert "atlas_resolution" not in thick and {"clinical_slices",
                                                "kspace_vs_interpolation"} <= set(thick)


def test_group_keys_are_validated():
    ok = validate_pipeline({"conditions": ["native"], "group": {
        "unit": "image", "compare": {"A": "/a", "B": "b"}}}, "study.yml")
    assert ok.section("group")["unit"] == "image"
    with pytest.raises(PipelineError, match=r"study.yml: group.unit must be one of"):
        validate_pipeline({"conditions": ["native"], "group": {"unit": "session"}}, "study.yml")
    with pytest.raises(PipelineError, match=r"group.compare must be a mapping"):
        validate_pipeline({"conditions": ["native"], "group": {"compare": ["A=/a"]}}, "s.yml")


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
