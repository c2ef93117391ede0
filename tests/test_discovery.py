"""Discovery of images and lesion masks in the three supported layouts."""

from __future__ import annotations

import json

import pytest

from bids_stroke.inputs.discovery import (
    DiscoveryError,
    collect_images,
    file_entities,
    find_dataset_roots,
    normalize_label,
    validate_dataset,
)


def test_atlas_cohorts_and_missing_mask(atlas_layout):
    subjects = collect_images(atlas_layout)
    assert [s.subject for s in subjects] == ["r001s001", "r001s002", "r002s001"]
    assert all(s.session == "1" and s.space == "MNI152NLin2009aSym" for s in subjects)
    by_sub = {s.subject: s for s in subjects}
    assert by_sub["r001s002"].mask is None
    assert by_sub["r001s001"].mask.name == (
        "sub-r001s001_ses-1_space-MNI152NLin2009aSym_label-L_desc-T1lesion_mask.nii.gz"
    )
    assert [p.name for p in find_dataset_roots(atlas_layout)] == ["R001", "R002"]


def test_atlas_participant_filter_accepts_prefix(atlas_layout):
    subjects = collect_images(atlas_layout, participant_label=["sub-r002s001"])
    assert [s.subject for s in subjects] == ["r002s001"]


def test_isles_modality_and_derivative_masks(isles_layout):
    flair = collect_images(isles_layout, suffix="flair")
    assert [s.image.name for s in flair] == [
        "sub-strokecase0001_ses-0001_FLAIR.nii.gz",
        "sub-strokecase0002_ses-0001_FLAIR.nii.gz",
    ]
    assert all(s.mask is not None and s.mask.name.endswith("_msk.nii.gz") for s in flair)
    adc = collect_images(isles_layout, suffix="adc", session_label=["ses-0001"])
    assert len(adc) == 2 and all(s.mask.parent.name == "ses-0001" for s in adc)
    with pytest.raises(DiscoveryError) as err:
        collect_images(isles_layout)  # no T1w in ISLES'22
    assert err.value.exit_code == 18


def test_plain_runs_match_their_masks(plain_layout):
    subjects = collect_images(plain_layout)
    assert [s.key for s in subjects] == ["sub-01", "sub-02_run-1", "sub-02_run-2"]
    for s in subjects:
        assert s.mask is not None
        assert file_entities(s.mask).get("run") == file_entities(s.image).get("run")


def test_bids_filter_selects_run(plain_layout, tmp_path):
    filt = tmp_path / "filter.json"
    filt.write_text(json.dumps({"t1w": {"run": 2}}))
    from bids_stroke.inputs.discovery import load_bids_filters

    subjects = collect_images(plain_layout, bids_filters=load_bids_filters(filt))
    assert [s.key for s in subjects] == ["sub-02_run-2"]


def test_persistent_database(plain_layout, tmp_path):
    db = tmp_path / "db"
    first = collect_images(plain_layout, database_dir=db)
    assert any(db.iterdir())
    assert collect_images(plain_layout, database_dir=db) == first


def test_unknown_participant_exit_18(plain_layout):
    with pytest.raises(DiscoveryError) as err:
        collect_images(plain_layout, participant_label=["99"])
    assert err.value.exit_code == 18 and "sub-99" in str(err.value)


@pytest.mark.parametrize("label", ["../x", "sub-01/..", "a b", ""])
def test_bad_labels_are_usage_errors(label):
    with pytest.raises(DiscoveryError) as err:
        normalize_label(label)
    assert err.value.exit_code == 64


def test_missing_description(tmp_path):
    (tmp_path / "sub-01").mkdir()
    with pytest.raises(DiscoveryError) as err:
        collect_images(tmp_path)
    assert err.value.exit_code == 66 and "dataset_description.json" in str(err.value)


def test_validation_reports_problems(tmp_path):
    (tmp_path / "dataset_description.json").write_text("{not json")
    (tmp_path / "sub-01").mkdir()
    problems = validate_dataset(tmp_path)
    assert problems and "not valid JSON" in problems[0]
    (tmp_path / "dataset_description.json").write_text(json.dumps({"Name": "x"}))
    assert any("BIDSVersion" in p for p in validate_dataset(tmp_path))


def test_explicit_derivatives_folder_is_not_counted_twice(plain_layout, caplog):
    extra = [plain_layout / "derivatives" / "lesions"]
    subjects = collect_images(plain_layout, derivatives=extra)
    assert all(s.mask is not None for s in subjects)
    assert "match equally" not in caplog.text


def test_own_outputs_are_never_reference_masks(isles_layout, tmp_path):
    from conftest import tiny_volume, write_nifti

    out = isles_layout / "derivatives" / "bids_stroke"
    out.mkdir(parents=True)
    (out / "dataset_description.json").write_text(
        json.dumps({"Name": "x", "BIDSVersion": "1.10.0", "DatasetType": "derivative",
                    "GeneratedBy": [{"Name": "bids_stroke"}]})
    )
    _, mask = tiny_volume(0)
    name = "sub-strokecase0001_ses-0001_space-MNI152NLin2009aSym_label-L_desc-native_mask.nii.gz"
    pred = out / "sub-strokecase0001" / "ses-0001" / "anat" / name
    write_nifti(pred, mask)
    subjects = collect_images(isles_layout, suffix="dwi")
    assert all(s.mask.name.endswith("_msk.nii.gz") for s in subjects)
    # also when the output folder is only excluded by path (no description yet)
    (out / "dataset_description.json").unlink()
    subjects = collect_images(isles_layout, suffix="dwi", exclude=[out])
    assert all(s.mask.name.endswith("_msk.nii.gz") for s in subjects)


def test_equally_good_masks_are_refused(plain_layout):
    from conftest import tiny_volume, write_nifti

    _, mask = tiny_volume(0)
    write_nifti(plain_layout / "derivatives" / "lesions" / "sub-01" / "anat"
                / "sub-01_label-L_desc-lesion2_mask.nii.gz", mask)
    with pytest.raises(DiscoveryError) as err:
        collect_images(plain_layout, participant_label=["01"])
    assert err.value.exit_code == 65 and "match equally" in str(err.value)
