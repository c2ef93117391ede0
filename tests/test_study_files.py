"""Study files: bundled ones load, the schema refuses bad keys, --pipeline still works."""

from __future__ import annotations

import pytest

from bids_stroke.core.study_files import (
    StudyFileError,
    available_studies,
    load_study,
    study_settings,
)
from bids_stroke.degradation import parse_conditions


def test_bundled_studies_are_valid():
    names = available_studies()
    assert {"atlas_resolution", "clinical_slices", "kspace_vs_interpolation"} <= set(names)
    for name in names:
        conditions = load_study(name).study.conditions
        assert conditions == tuple(parse_conditions([c.spec for c in conditions]))


def test_atlas_study_is_the_original_study():
    """The original study's within-dataset conditions and metrics, nothing else."""
    study = load_study("atlas_resolution")
    assert [c.spec for c in study.study.conditions] == ["native", "crude:2", "linear:2"]
    # the threshold is each model's own (a user's model keeps what it declares); the bundled
    # model's is the study's 0.5
    assert study.segmentation.threshold is None
    from bids_stroke.model.adapters import open_model

    assert open_model(None, device="cpu").spec.threshold == 0.5
    group = study.group
    assert group.metrics == ("dice", "precision", "recall", "jaccard", "specificity",
                             "accuracy", "rel_volume_diff", "pred_fraction_pct")
    assert group.alpha == 0.05 and group.unit == "participant"
    assert not group.compare
    thick = [p for p in available_studies() if any(
        c.kind in ("thick", "kspace") for c in load_study(p).study.conditions)]
    assert "atlas_resolution" not in thick and {"clinical_slices",
                                                "kspace_vs_interpolation"} <= set(thick)


def test_group_keys_are_validated():
    ok = study_settings({"conditions": ["native"], "group": {
        "unit": "image", "compare": {"A": "/a", "B": "b"}}}, "study.yml")
    assert ok.group.unit == "image"
    with pytest.raises(StudyFileError, match=r"study.yml: group.unit must be one of"):
        study_settings({"conditions": ["native"], "group": {"unit": "session"}}, "study.yml")
    with pytest.raises(StudyFileError, match=r"group.compare must be a mapping"):
        study_settings({"conditions": ["native"], "group": {"compare": ["A=/a"]}}, "s.yml")


def test_clinical_sweep_is_1_to_10_mm():
    specs = [c.spec for c in load_study("clinical_slices").study.conditions]
    thick = [c for c in specs if c.startswith("thick:")]
    assert thick[0] == "thick:2" and thick[-1] == "thick:10" and "native" in specs


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
    with pytest.raises(StudyFileError) as err:
        study_settings(data, "study.yml")
    assert needle in str(err.value) and "study.yml" in str(err.value)


def test_corrupt_yaml(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("conditions: [native\n  oops: {")
    with pytest.raises(StudyFileError) as err:
        load_study(bad)
    assert "not valid YAML" in str(err.value)


def test_unknown_study_name():
    with pytest.raises(StudyFileError) as err:
        load_study("nope")
    assert "atlas_resolution" in str(err.value)
