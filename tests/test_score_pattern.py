"""Pure parts of scoring other tools: the prediction pattern, the prediction checks, the tool
digest, and the export's metadata rules (no nipype, no CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest

from bids_stroke.degradation import parse_condition
from bids_stroke.external.export import exported_sidecar, inherited_metadata
from bids_stroke.external.score import (
    PredictionPattern,
    ScoreError,
    load_prediction,
    placeholder_values,
    tool_digest,
)
from bids_stroke.inputs.discovery import ImageInputs

AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])


def _subject(session: str | None = "1", **entities: str) -> ImageInputs:
    return ImageInputs("01", session, Path("/x.nii.gz"), None, None, entities)


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_pattern_finds_each_condition_and_parses_values(tmp_path):
    for cond in ("native", "crude2"):
        _touch(tmp_path / cond / "sub-01" / "ses-1" / f"sub-01_ses-1_{cond}_mask.nii.gz")
    _touch(tmp_path / "native" / "sub-02" / "ses-1" / "sub-02_ses-1_x_mask.nii.gz")
    pattern = PredictionPattern(str(tmp_path) + "/{condition}/sub-{subject}/ses-{session}/*"
                                "_mask.nii.gz")
    hits = pattern.find({"condition": "crude2", "subject": "01", "session": "1"})
    assert [h.name for h in hits] == ["sub-01_ses-1_crude2_mask.nii.gz"]
    assert pattern.find({"condition": "linear2", "subject": "01", "session": "1"}) == []
    found = {(v["condition"], v["subject"]) for _, v in pattern.every_file()}
    assert found == {("native", "01"), ("crude2", "01"), ("native", "02")}


def test_pattern_repeated_placeholder_must_agree(tmp_path):
    _touch(tmp_path / "crude2" / "sub-01_desc-crude2_mask.nii.gz")
    _touch(tmp_path / "crude2" / "sub-01_desc-native_mask.nii.gz")
    pattern = PredictionPattern(str(tmp_path) + "/{condition}/sub-{subject}_desc-{condition}"
                                "_mask.nii.gz")
    assert [p.name for p, _ in pattern.every_file()] == ["sub-01_desc-crude2_mask.nii.gz"]


def test_pattern_double_star_spans_folders(tmp_path):
    _touch(tmp_path / "native" / "a" / "b" / "sub-01_mask.nii.gz")
    pattern = PredictionPattern(str(tmp_path) + "/{condition}/**/sub-{subject}_mask.nii.gz")
    assert len(pattern.find({"condition": "native", "subject": "01"})) == 1


@pytest.mark.parametrize("text, words", [
    ("p/{subject}_mask.nii.gz", "no {condition}"),
    ("p/{condition}/mask.nii.gz", "no {subject}"),
    ("p/{condition}/{subject}/{task}.nii.gz", "unknown placeholder {task}"),
])
def test_bad_patterns_are_refused(text, words):
    with pytest.raises(ScoreError, match=words.replace("{", r"\{").replace("}", r"\}")):
        PredictionPattern(text)


def test_placeholder_without_value_names_the_fix():
    pattern = PredictionPattern("p/{condition}/sub-{subject}/ses-{session}/m.nii.gz")
    assert placeholder_values(pattern, _subject("1"), "native")["session"] == "1"
    with pytest.raises(ScoreError, match="has no session"):
        placeholder_values(pattern, _subject(None), "native")
    runs = PredictionPattern("p/{condition}/sub-{subject}_run-{run}.nii.gz")
    assert placeholder_values(runs, _subject(None, run="2"), "native")["run"] == "2"


# --------------------------------------------------------------------------- predictions
def _grid(tmp_path: Path, shape=(10, 12, 8), affine=AFFINE) -> tuple[nb.Nifti1Image, Path]:
    path = tmp_path / "grid.nii.gz"
    nb.Nifti1Image(np.zeros(shape, np.float32), affine).to_filename(str(path))
    return nb.load(str(path)), path


def _pred(tmp_path: Path, data, affine=AFFINE, name="pred.nii.gz") -> Path:
    path = tmp_path / name
    nb.Nifti1Image(np.asarray(data), affine).to_filename(str(path))
    return path


def test_binary_prediction_is_read_as_is(tmp_path):
    grid, gpath = _grid(tmp_path)
    data = np.zeros(grid.shape, np.uint8)
    data[2:4, 3:5, 1:3] = 1
    mask, prob = load_prediction(_pred(tmp_path, data), grid, gpath, None)
    assert prob is None and mask.dtype == bool
    np.testing.assert_array_equal(mask, data == 1)


def test_probabilities_are_thresholded_inclusively(tmp_path):
    grid, gpath = _grid(tmp_path)
    data = np.zeros(grid.shape, np.float32)
    data[1, 1, 1], data[2, 2, 2], data[3, 3, 3] = 0.5, 0.49999, 1.0
    mask, prob = load_prediction(_pred(tmp_path, data), grid, gpath, 0.5)
    assert mask.sum() == 2 and mask[1, 1, 1] and not mask[2, 2, 2]
    np.testing.assert_array_equal(prob, data)


@pytest.mark.parametrize("case, words", [
    ("shape", "shape (10, 12, 9) differs from the exported image grid.nii.gz"),
    ("affine", "affine differs from the exported image grid.nii.gz by up to 1 mm"),
    ("values", "is not a binary mask (values 0, 1, 2); if it is a probability map give "
               "--threshold"),
    ("probability", "is not a binary mask (values 0, 0.7)"),
    ("nan", "has NaN/Inf values"),
    ("garbage", "cannot be read as NIfTI"),
])
def test_bad_predictions_get_one_line_naming_the_file(tmp_path, case, words):
    grid, gpath = _grid(tmp_path)
    data = np.zeros(grid.shape, np.float32)
    affine = AFFINE
    if case == "shape":
        data = np.zeros((10, 12, 9), np.uint8)
    elif case == "affine":
        affine = AFFINE.copy()
        affine[0, 3] = 1.0
    elif case == "values":
        data[1, 1, 1], data[2, 2, 2] = 1, 2
    elif case == "probability":
        data[1, 1, 1] = 0.7
    elif case == "nan":
        data[1, 1, 1] = np.nan
    path = _pred(tmp_path, data, affine)
    if case == "garbage":
        path.write_bytes(b"not a nifti")
    with pytest.raises(ScoreError) as err:
        load_prediction(path, grid, gpath, None)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert words in message


def test_threshold_refuses_values_outside_zero_one(tmp_path):
    grid, gpath = _grid(tmp_path)
    data = np.zeros(grid.shape, np.float32)
    data[1, 1, 1] = 255
    with pytest.raises(ScoreError, match=r"values span \[0, 255\], not probabilities"):
        load_prediction(_pred(tmp_path, data), grid, gpath, 0.5)


def test_single_volume_4d_prediction_is_accepted(tmp_path):
    grid, gpath = _grid(tmp_path)
    data = np.zeros((*grid.shape, 1), np.uint8)
    data[1, 1, 1, 0] = 1
    mask, _ = load_prediction(_pred(tmp_path, data), grid, gpath, None)
    assert mask.shape == grid.shape and mask.sum() == 1


def test_tool_digest_names_the_tool_not_the_files():
    a = tool_digest("DeepISLES", "1.1")
    assert len(a) == 64 and a == tool_digest("DeepISLES", "1.1")
    assert a != tool_digest("DeepISLES", "1.2") and a != tool_digest("nnUNet", "1.1")


# --------------------------------------------------------------------------- export metadata
def test_inherited_metadata_follows_the_bids_inheritance_principle(tmp_path):
    anat = tmp_path / "sub-01" / "ses-1" / "anat"
    anat.mkdir(parents=True)
    image = anat / "sub-01_ses-1_T1w.nii.gz"
    image.write_bytes(b"")
    (tmp_path / "T1w.json").write_text(json.dumps({"RepetitionTime": 2.0, "EchoTime": 0.003}))
    (tmp_path / "FLAIR.json").write_text(json.dumps({"RepetitionTime": 9.0}))
    (tmp_path / "dataset_description.json").write_text(json.dumps({"Name": "x"}))
    (anat / "sub-01_ses-1_T1w.json").write_text(json.dumps({"EchoTime": 0.004}))
    (anat / "sub-01_ses-1_acq-fast_T1w.json").write_text(json.dumps({"EchoTime": 9}))
    meta = inherited_metadata(image, tmp_path)
    assert meta == {"RepetitionTime": 2.0, "EchoTime": 0.004}


def test_exported_sidecar_drops_sampling_fields_of_degraded_conditions():
    meta = {"RepetitionTime": 2.0, "SliceThickness": 1.0, "AcquisitionMatrixPE": 256,
            "MRAcquisitionType": "3D", "SkullStripped": True}
    kw = {"source": "bids:raw:sub-01/anat/sub-01_T1w.nii.gz", "source_sha256": "ab" * 32,
          "zooms": (1.0, 1.0, 1.0), "derivative": False}
    native = exported_sidecar(meta, parse_condition("native"), **kw)
    assert {k: native[k] for k in meta} == meta and "RemovedSidecarFields" not in native
    crude = exported_sidecar(meta, parse_condition("crude:2"), **kw)
    assert "SliceThickness" not in crude and "AcquisitionMatrixPE" not in crude
    assert crude["MRAcquisitionType"] == "3D" and crude["SkullStripped"] is True
    assert crude["RemovedSidecarFields"] == ["AcquisitionMatrixPE", "SliceThickness"]
    assert crude["Condition"] == "crude:2" and crude["SimulatedVoxelSize"] == [2.0, 2.0, 2.0]
    assert crude["SourceSHA256"] == "ab" * 32 and "Sources" not in crude
    thick = exported_sidecar(meta, parse_condition("thick:5"), **{**kw, "derivative": True})
    assert "MRAcquisitionType" not in thick and thick["Sources"] == [kw["source"]]
    assert thick["SimulatedVoxelSize"] == [1.0, 1.0, 5.0]
