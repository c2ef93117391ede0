"""Score any tool, end to end on the 2 mm demo (2 subjects): ``bids_stroke export`` -> a tool
that is not bids_stroke (examples/other_tool/threshold_tool.py, run as its own process) ->
``bids_stroke score`` -> ``group``; plus every refusal and the gap of a missing prediction."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest

from bids_stroke.cli.run import main
from bids_stroke.demo import make_demo_dataset
from bids_stroke.external.score import tool_digest
from bids_stroke.metrics import METRIC_COLUMNS, compute_metrics, lesion_table
from bids_stroke.outputs.tsv import format_tsv_cell as format_value

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "examples" / "other_tool" / "threshold_tool.py"
CONDITIONS = ["native", "crude:2", "linear:2"]
LABELS = ["native", "crude2", "linear2"]
SUBJECTS = ["r001s001", "r001s002"]
SPACE = "space-MNI152NLin2009aSym"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _snapshot(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): _sha(p) for p in sorted(root.rglob("*"))
            if p.is_file()}


def _tool(src: Path, dest: Path, *extra: str) -> None:
    subprocess.run([sys.executable, str(TOOL), str(src), str(dest), "participant", *extra],
                   check=True, capture_output=True, text=True, timeout=300)


def _pattern(preds: Path, kind: str = "mask") -> str:
    return str(preds) + "/{condition}/sub-{subject}/ses-{session}/anat/*_" + kind + ".nii.gz"


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _validator_errors(root: Path) -> list[dict]:
    exe = shutil.which("bids-validator-deno") or str(Path(sys.executable).parent
                                                     / "bids-validator-deno")
    proc = subprocess.run([exe, str(root), "--format", "json"], capture_output=True, text=True,
                          timeout=300)
    report = json.loads(proc.stdout)
    return [i for i in report["issues"]["issues"] if i["severity"] == "error"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    base = tmp_path_factory.mktemp("other_tool")
    bids = make_demo_dataset(base / "bids", n_subjects=2, seed=0, resolution_mm=2.0,
                             progress=False)
    before = _snapshot(bids)
    out, preds = base / "out", base / "preds"
    export = main(["export", str(bids), str(out), "--conditions", *CONDITIONS])
    for label in LABELS:
        _tool(out / "conditions" / label, preds / label)
    score = main(["score", str(bids), str(out), "--predictions", _pattern(preds),
                  "--tool-name", "threshold_tool", "--tool-version", "1.0"])
    group = main([str(bids), str(out), "group"])
    return {"base": base, "bids": bids, "out": out, "preds": preds, "before": before,
            "codes": (export, score, group)}


def _score(study, out: Path, preds: Path, *extra: str, kind: str = "mask",
           exported: Path | None = None) -> int:
    exported = study["out"] / "conditions" if exported is None else exported
    return main(["score", str(study["bids"]), str(out), "--predictions", _pattern(preds, kind),
                 "--tool-name", "threshold_tool", "--tool-version", "1.0",
                 "--exported", str(exported), *extra])


def test_export_score_group_succeed_and_input_untouched(study):
    assert study["codes"] == (0, 0, 0)
    assert _snapshot(study["bids"]) == study["before"]


def test_each_condition_is_a_dataset_with_the_input_names(study):
    for label in LABELS:
        root = study["out"] / "conditions" / label
        files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
        expected = {"dataset_description.json", "README", "participants.tsv",
                    "participants.json"}
        for sub in SUBJECTS:
            stem = f"sub-{sub}/ses-1/anat/sub-{sub}_ses-1_{SPACE}_T1w"
            expected |= {f"{stem}.nii.gz", f"{stem}.json"}  # never the lesion masks
        assert files == expected, label
        desc = json.loads((root / "dataset_description.json").read_text())
        assert desc["DatasetType"] == "derivative"  # the demo is (ATLAS-like names)
        assert desc["GeneratedBy"][-1]["Name"] == "bids_stroke"
        assert [r["participant_id"] for r in _rows(root / "participants.tsv")] == [
            f"sub-{s}" for s in SUBJECTS]


def test_exported_images_are_what_the_participant_level_degrades(study, tmp_path):
    from bids_stroke.degradation import apply_condition
    from bids_stroke.interfaces.degrade import DegradeImage

    src = next(study["bids"].glob(f"sub-{SUBJECTS[1]}/ses-1/anat/*_T1w.nii.gz"))
    img = nb.load(str(src))
    for spec, label in zip(CONDITIONS, LABELS, strict=True):
        exported = nb.load(str(study["out"] / "conditions" / label / src.relative_to(
            study["bids"])))
        result = DegradeImage(in_file=str(src), condition=spec).run(cwd=str(tmp_path))
        internal = nb.load(result.outputs.out_file)
        np.testing.assert_array_equal(exported.get_fdata(), internal.get_fdata())
        np.testing.assert_array_equal(exported.affine, internal.affine)
        assert exported.get_data_dtype() == internal.get_data_dtype() == np.float32
        assert exported.header.get_sform(coded=True)[1] == img.header.get_sform(coded=True)[1]
        expected = apply_condition(img.get_fdata(dtype=np.float32),
                                   img.header.get_zooms()[:3], spec)
        np.testing.assert_array_equal(np.asanyarray(exported.dataobj), expected)


def test_exported_sidecars_record_condition_and_source(study):
    sub = SUBJECTS[0]
    rel = f"sub-{sub}/ses-1/anat/sub-{sub}_ses-1_{SPACE}_T1w"
    source = json.loads((study["bids"] / f"{rel}.json").read_text())
    side = json.loads((study["out"] / "conditions" / "crude2" / f"{rel}.json").read_text())
    assert side["Condition"] == "crude:2" and side["ConditionLabel"] == "crude2"
    assert side["ConditionParameters"]["factors"] == [2, 2, 2]
    assert side["SimulatedVoxelSize"] == [4.0, 4.0, 4.0]
    assert side["SourceFile"] == f"bids:raw:{rel}.nii.gz"
    assert side["SourceSHA256"] == _sha(study["bids"] / f"{rel}.nii.gz")
    assert side["SkullStripped"] is True and side["SyntheticParameters"] == source[
        "SyntheticParameters"]


def test_validator_accepts_every_exported_dataset_and_the_scores(study):
    for label in LABELS:
        assert _validator_errors(study["out"] / "conditions" / label) == [], label
    assert _validator_errors(study["out"]) == []


def test_scores_equal_the_internal_metrics_on_the_same_arrays(study):
    from bids_stroke.metrics import spacing_from_affine

    for sub in SUBJECTS:
        anat = study["out"] / f"sub-{sub}" / "ses-1" / "anat"
        rows = _rows(anat / f"sub-{sub}_ses-1_label-L_segmetrics.tsv")
        lesions = _rows(anat / f"sub-{sub}_ses-1_label-L_lesions.tsv")
        assert [r["desc"] for r in rows] == LABELS
        ref_img = nb.load(str(next(study["bids"].glob(f"sub-{sub}/ses-1/anat/*_mask.nii.gz"))))
        ref = np.asanyarray(ref_img.dataobj) == 1
        spacing = spacing_from_affine(ref_img.affine)
        for row, label in zip(rows, LABELS, strict=True):
            pred_path = next((study["preds"] / label).glob(f"sub-{sub}/ses-1/anat/*_mask.nii.gz"))
            pred = np.asanyarray(nb.load(str(pred_path)).dataobj) == 1
            expected = compute_metrics(ref, pred, spacing, connectivity=26, tolerance_mm=2.0,
                                       grid="padded:16")  # atlas_resolution's grid
            for col in METRIC_COLUMNS:
                assert row[col] == format_value(expected[col]), (sub, label, col)
            got = [r for r in lesions if r["desc"] == label]
            want = lesion_table(ref, pred, spacing, connectivity=26)
            assert [r["volume_voxels"] for r in got] == [str(w["volume_voxels"]) for w in want]
            assert [r["detected"] for r in got] == [format_value(w["detected"]) for w in want]
            committed = anat / f"sub-{sub}_ses-1_label-L_desc-{label}_mask.nii.gz"
            np.testing.assert_array_equal(np.asanyarray(nb.load(str(committed)).dataobj), pred)
        assert float(rows[1]["effective_resolution_mm"]) == pytest.approx(4.0)


def test_sidecars_reports_and_manifests_name_the_tool(study):
    out, sub = study["out"], SUBJECTS[0]
    anat = out / f"sub-{sub}" / "ses-1" / "anat"
    side = json.loads((anat / f"sub-{sub}_ses-1_label-L_desc-crude2_mask.json").read_text())
    model = side["SegmentationModel"]
    assert model["kind"] == "external tool" and model["name"] == "threshold_tool"
    assert model["version"] == "1.0" and model["SHA256"] == tool_digest("threshold_tool", "1.0")
    pred = next((study["preds"] / "crude2").glob(f"sub-{sub}/ses-1/anat/*_mask.nii.gz"))
    assert side["PredictionSHA256"] == _sha(pred) and side["Threshold"] is None
    assert side["Condition"] == "crude:2"
    assert side["Sources"] == [f"bids::sub-{sub}/ses-1/anat/sub-{sub}_ses-1_desc-crude2_T1w.nii.gz"]
    assert not list(anat.glob("*_probseg.nii.gz"))  # binary masks: no probability map invented
    html = (out / f"sub-{sub}_ses-1.html").read_text()
    assert "threshold_tool" in html and tool_digest("threshold_tool", "1.0") in html
    manifest = json.loads((out / ".bids_stroke" / "subjects" / f"sub-{sub}_ses-1.json")
                          .read_text())
    assert manifest["extra"]["segmentation"]["name"] == "threshold_tool"
    assert {c["model_sha256"] for c in manifest["conditions"].values()} == {
        tool_digest("threshold_tool", "1.0")}
    log = _rows(next((out / "logs").glob("score-*.tsv")))
    assert len(log) == 6 and {r["status"] for r in log} == {"scored"}
    group = (out / "group_report.html").read_text()  # the group report names the tool
    assert "Lesions were segmented by external tool threshold_tool 1.0 (sha256 " in group
    assert len(_rows(out / "group_segmetrics.tsv")) > 0


def test_score_against_the_tools_own_native_prediction(study, tmp_path):
    """--reference prediction: each degraded prediction of the tool against its own native
    one (compute_metrics on the tool's files), without using the lesion masks."""
    from bids_stroke.metrics import spacing_from_affine
    from bids_stroke.metrics.reference import nifti_sha256

    bids = tmp_path / "bids"
    shutil.copytree(study["bids"], bids)
    for mask in bids.rglob("*_mask.*"):
        mask.unlink()  # no mask needed
    out = tmp_path / "out"
    assert main(["score", str(bids), str(out), "--predictions", _pattern(study["preds"]),
                 "--tool-name", "threshold_tool", "--tool-version", "1.0", "--exported",
                 str(study["out"] / "conditions"), "--reference", "prediction"]) == 0
    for sub in SUBJECTS:
        anat = out / f"sub-{sub}" / "ses-1" / "anat"
        name = f"sub-{sub}_ses-1_label-L_desc-refnativeprediction"
        rows = _rows(anat / f"{name}_segmetrics.tsv")
        assert [r["desc"] for r in rows] == LABELS[1:]  # native is the reference
        native_path = next((study["preds"] / "native").glob(f"sub-{sub}/ses-1/anat/*_mask.nii.gz"))
        native_img = nb.load(str(native_path))
        native = np.asanyarray(native_img.dataobj) == 1
        spacing = spacing_from_affine(native_img.affine)
        for row in rows:
            pred_path = next((study["preds"] / row["desc"]).glob(
                f"sub-{sub}/ses-1/anat/*_mask.nii.gz"))
            pred = np.asanyarray(nb.load(str(pred_path)).dataobj) == 1
            expected = compute_metrics(native, pred, spacing, grid="padded:16")
            for col in METRIC_COLUMNS:
                assert row[col] == format_value(expected[col]), (sub, row["desc"], col)
        ref = json.loads((anat / f"{name}_segmetrics.json").read_text())["Reference"]
        committed = anat / f"sub-{sub}_ses-1_label-L_desc-native_mask.nii.gz"
        assert ref["File"] == f"bids::{committed.relative_to(out).as_posix()}"
        assert ref["kind"] == "prediction" and ref["SHA256"] == nifti_sha256(committed)
        assert "native-resolution prediction" in (out / f"sub-{sub}_ses-1.html").read_text()
    assert main([str(bids), str(out), "group"]) == 0
    assert (out / "group_refnativeprediction_report.html").is_file()


@pytest.mark.parametrize("case", ["grid", "binary", "unknown", "ambiguous", "affine"])
def test_bad_predictions_are_refused_and_nothing_is_written(study, tmp_path, capsys, case):
    preds = tmp_path / "preds"
    shutil.copytree(study["preds"], preds)
    victim = next((preds / "crude2").glob(f"sub-{SUBJECTS[1]}/ses-1/anat/*_mask.nii.gz"))
    img = nb.load(str(victim))
    data = np.asanyarray(img.dataobj)
    if case == "grid":
        nb.Nifti1Image(data[:-1], img.affine).to_filename(str(victim))
    elif case == "affine":
        affine = img.affine.copy()
        affine[0, 3] += 2.0  # shifted by a voxel: same shape, other grid
        nb.Nifti1Image(data, affine).to_filename(str(victim))
    elif case == "binary":
        nb.Nifti1Image(data.astype(np.float32) * 0.8, img.affine).to_filename(str(victim))
    elif case == "unknown":
        victim = preds / "crude3" / victim.relative_to(preds / "crude2")
        victim.parent.mkdir(parents=True)
        shutil.copy(next((preds / "crude2").rglob("*_mask.nii.gz")), victim)
    elif case == "ambiguous":
        shutil.copy(victim, victim.with_name("sub-x_copy_mask.nii.gz"))
        victim = victim.parent
    capsys.readouterr()
    out = tmp_path / "out"
    assert _score(study, out, preds) == 65
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 2, err  # the file's line, then "nothing was scored or written"
    assert str(victim) in err[0] or victim.name in err[0]
    words = {"grid": "not on its grid", "affine": "not on its grid", "binary": "not a binary",
             "unknown": "condition 'crude3', which was not exported",
             "ambiguous": "2 files match"}[case]
    assert words in err[0]
    assert not out.exists()  # nothing partial: not even the folder
    snapshot = _snapshot(study["out"])
    assert _score(study, study["out"], preds) == 65
    assert _snapshot(study["out"]) == snapshot


def test_a_missing_prediction_leaves_the_others_scored_and_reports_the_gap(study, tmp_path,
                                                                           capsys):
    preds = tmp_path / "preds"
    shutil.copytree(study["preds"], preds)
    shutil.rmtree(preds / "linear2" / f"sub-{SUBJECTS[1]}")
    out = tmp_path / "out"
    capsys.readouterr()
    assert _score(study, out, preds) == 66
    err = capsys.readouterr().err
    assert f"sub-{SUBJECTS[1]}_ses-1: condition linear2 is not scored: no file matches" in err
    tables = {sub: _rows(out / f"sub-{sub}" / "ses-1" / "anat"
                         / f"sub-{sub}_ses-1_label-L_segmetrics.tsv") for sub in SUBJECTS}
    assert [r["desc"] for r in tables[SUBJECTS[0]]] == LABELS
    assert [r["desc"] for r in tables[SUBJECTS[1]]] == ["native", "crude2"]
    for sub in SUBJECTS:  # identical to the complete run where both have the prediction
        full = _rows(study["out"] / f"sub-{sub}" / "ses-1" / "anat"
                     / f"sub-{sub}_ses-1_label-L_segmetrics.tsv")
        assert tables[sub] == full[: len(tables[sub])]
    log = _rows(next((out / "logs").glob("score-*.tsv")))
    assert [r["status"] for r in log].count("missing") == 1
    side = json.loads((out / f"sub-{SUBJECTS[1]}" / "ses-1" / "anat" / (
        f"sub-{SUBJECTS[1]}_ses-1_label-L_desc-native_mask.json")).read_text())
    assert side["Warnings"] == ["no prediction for condition(s) linear2"]
    assert main([str(study["bids"]), str(out), "group"]) == 0
    # the tool is re-run for the gap: the re-run scores it and joins the committed ones
    shutil.copytree(study["preds"] / "linear2" / f"sub-{SUBJECTS[1]}",
                    preds / "linear2" / f"sub-{SUBJECTS[1]}")
    assert _score(study, out, preds, "--participant-label", SUBJECTS[1],
                  "--conditions", "linear:2") == 0
    table = _rows(out / f"sub-{SUBJECTS[1]}" / "ses-1" / "anat"
                  / f"sub-{SUBJECTS[1]}_ses-1_label-L_segmetrics.tsv")
    assert sorted(r["desc"] for r in table) == sorted(LABELS)


def test_probability_maps_with_threshold(study, tmp_path, capsys):
    preds = tmp_path / "preds"
    _tool(study["out"] / "conditions" / "crude2", preds / "crude2", "--probabilities")
    out = tmp_path / "out"
    assert _score(study, out, preds, "--conditions", "crude:2",
                  kind="probseg") == 65  # probabilities without --threshold
    assert "give --threshold T" in capsys.readouterr().err
    # --exported may name the export's own output folder (it holds conditions/)
    assert _score(study, out, preds, "--conditions", "crude:2", "--threshold", "0.5",
                  kind="probseg", exported=study["out"]) == 0
    anat = out / f"sub-{SUBJECTS[0]}" / "ses-1" / "anat"
    prob = nb.load(str(anat / f"sub-{SUBJECTS[0]}_ses-1_label-L_desc-crude2_probseg.nii.gz"))
    mask = nb.load(str(anat / f"sub-{SUBJECTS[0]}_ses-1_label-L_desc-crude2_mask.nii.gz"))
    np.testing.assert_array_equal(np.asanyarray(mask.dataobj), prob.get_fdata() >= 0.5)
    side = json.loads((anat / f"sub-{SUBJECTS[0]}_ses-1_label-L_desc-crude2_mask.json")
                      .read_text())
    assert side["Threshold"] == 0.5 and side["Description"] == "lesion mask: probability >= 0.5"
    assert main(["score", str(study["bids"]), str(out), "--predictions", _pattern(preds),
                 "--tool-name", "x", "--threshold", "1.5"]) == 64  # same check as the study's


def test_another_tool_is_never_mixed_into_an_output_folder(study, capsys):
    snapshot = _snapshot(study["out"])
    code = main(["score", str(study["bids"]), str(study["out"]), "--predictions",
                 _pattern(study["preds"]), "--tool-name", "another_tool"])
    assert code == 64
    assert "holds results of another model or tool" in capsys.readouterr().err
    assert _snapshot(study["out"]) == snapshot
    # the same tool with another threshold would mix settings with the kept conditions
    assert _score(study, study["out"], study["preds"], "--conditions", "crude:2",
                  "--threshold", "0.5") == 64
    assert "were made with another model or other settings" in capsys.readouterr().err
    assert _snapshot(study["out"]) == snapshot


@pytest.mark.parametrize("command", ["export", "score"])
@pytest.mark.parametrize("planted", ["journal", "lock link"])
def test_untrusted_state_refuses_its_image_and_the_others_commit(study, tmp_path, capsys,
                                                                 command, planted):
    """The participant level's state checks, shared: a commit journal that fails its checks
    is quarantined and its image refused (exit 65, not "locked"); a link planted in place of
    a lock is never followed (exit 73); the other image is committed."""
    from bids_stroke.outputs.commit import journal_path, lock_path, quarantine_dir

    out = tmp_path / "out"
    root = out / "conditions" if command == "export" else out
    refused, kept = (f"sub-{s}_ses-1" for s in SUBJECTS)
    precious = tmp_path / "precious.txt"
    precious.write_text("years of work\n")
    path = (journal_path if planted == "journal" else lock_path)(root, refused)
    path.parent.mkdir(parents=True)
    if planted == "journal":
        path.write_text("not a journal")
    else:
        path.symlink_to(precious)
    capsys.readouterr()
    code = (main(["export", str(study["bids"]), str(out), "--conditions", "native"])
            if command == "export" else _score(study, out, study["preds"], "--conditions",
                                               "native"))
    err = capsys.readouterr().err
    assert code == (65 if planted == "journal" else 73), err[-2000:]
    assert "locked by" not in err
    if planted == "journal":
        assert f"{refused}: the commit journal {path} failed its checks" in err
        assert not path.exists() and len(list(quarantine_dir(root).iterdir())) == 1
    else:
        assert f"{refused}: " in err and "symbolic link" in err
        assert path.is_symlink() and precious.read_text() == "years of work\n"
    folder = root / "native" if command == "export" else root
    assert (folder / f"sub-{SUBJECTS[1]}" / "ses-1").is_dir(), kept
    assert not (folder / f"sub-{SUBJECTS[0]}").exists()


def _killed_export(args: list[str], step: str) -> int:
    """Run ``bids_stroke export`` in a forked child armed to SIGKILL itself after ``step``
    (fork: the child has every module imported already)."""
    import multiprocessing

    def child() -> None:
        os.environ["BIDS_STROKE_FAULT"] = step
        sys.exit(main(args))

    proc = multiprocessing.get_context("fork").Process(target=child)
    proc.start()
    proc.join(300)
    return proc.exitcode


@pytest.mark.parametrize("step", ["staged", "move"])
def test_a_killed_export_never_leaves_half_a_subject(study, tmp_path, step):
    out = tmp_path / "out"
    args = ["export", str(study["bids"]), str(out), "--conditions", "native", "crude:2",
            "--participant-label", SUBJECTS[0]]
    assert _killed_export(args, step) == -9
    visible = [p for p in (out / "conditions").glob("*/sub-*/**/*") if p.is_file()]
    assert len(visible) == (0 if step == "staged" else 1)  # staged: nothing visible
    for label in ("native", "crude2"):  # described before any commit, no stale subject list
        assert (out / "conditions" / label / "dataset_description.json").is_file()
        assert not (out / "conditions" / label / "participants.tsv").exists()
    assert main(args) == 0  # the re-run finishes (move) or redoes (staged) the commit
    for label in ("native", "crude2"):
        stem = f"sub-{SUBJECTS[0]}/ses-1/anat/sub-{SUBJECTS[0]}_ses-1_{SPACE}_T1w"
        for ext in (".nii.gz", ".json"):
            assert _sha(out / "conditions" / label / f"{stem}{ext}") == _sha(
                study["out"] / "conditions" / label / f"{stem}{ext}")
        assert (out / "conditions" / label / "dataset_description.json").is_file()
    assert not list((out / "conditions" / ".bids_stroke" / "staging").iterdir())


def _raw_dataset(root: Path) -> Path:
    """A raw BIDS dataset: T1w + FLAIR on one anisotropic grid, a top-level sidecar."""
    rng = np.random.default_rng(0)
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    (root).mkdir(parents=True)
    (root / "dataset_description.json").write_text(json.dumps({
        "Name": "raw two-channel", "BIDSVersion": "1.10.0", "DatasetType": "raw",
        "Authors": ["A", "B"], "License": "CC0"}))
    (root / "README").write_text("A raw dataset for the export tests.\n")
    (root / "T1w.json").write_text(json.dumps({"RepetitionTime": 2.3,
                                                "MagneticFieldStrength": 3}))
    (root / "participants.tsv").write_text("participant_id\tage\nsub-01\t60\nsub-02\t70\n")
    for sub in ("01", "02"):
        anat = root / f"sub-{sub}" / "anat"
        anat.mkdir(parents=True)
        for suffix in ("T1w", "FLAIR"):
            data = (100 + 20 * rng.standard_normal((20, 22, 12))).astype(np.float32)
            nb.Nifti1Image(data, affine).to_filename(str(anat / f"sub-{sub}_{suffix}.nii.gz"))
            (anat / f"sub-{sub}_{suffix}.json").write_text(json.dumps(
                {"EchoTime": 0.003 if suffix == "T1w" else 0.1, "SliceThickness": 2.0,
                 **({"RepetitionTime": 9.0} if suffix == "FLAIR" else {})}))
    return root


def test_raw_multichannel_export_stays_raw_and_degrades_every_channel(tmp_path):
    from bids_stroke.degradation import apply_condition

    bids = _raw_dataset(tmp_path / "raw")
    out = tmp_path / "out"
    assert main(["export", str(bids), str(out), "--channels", "T1w", "FLAIR", "--conditions",
                 "native", "crude:2", "thick:4", "--participant-label", "01"]) == 0
    for spec, label in (("native", "native"), ("crude:2", "crude2"), ("thick:4", "thick4mm")):
        root = out / "conditions" / label
        assert json.loads((root / "dataset_description.json").read_text())["DatasetType"] == "raw"
        assert [r["participant_id"] for r in _rows(root / "participants.tsv")] == ["sub-01"]
        assert not (root / "sub-02").exists()
        for suffix in ("T1w", "FLAIR"):
            src = nb.load(str(bids / "sub-01" / "anat" / f"sub-01_{suffix}.nii.gz"))
            exported = nb.load(str(root / "sub-01" / "anat" / f"sub-01_{suffix}.nii.gz"))
            expected = apply_condition(src.get_fdata(dtype=np.float32), (1.0, 1.0, 2.0), spec)
            np.testing.assert_array_equal(np.asanyarray(exported.dataobj), expected)
            side = json.loads((root / "sub-01" / "anat" / f"sub-01_{suffix}.json").read_text())
            assert side["RepetitionTime"] == (2.3 if suffix == "T1w" else 9.0)  # inherited
            assert side.get("MagneticFieldStrength") == (3 if suffix == "T1w" else None)
            assert ("SliceThickness" in side) == (label == "native")
            assert side["Condition"] == spec
        if label == "thick4mm":
            assert side["SimulatedVoxelSize"] == [1.0, 1.0, 4.0]
            assert _validator_errors(root) == []


def test_isles22_dwi_adc_export_adds_no_validator_error(tmp_path):
    """A real ISLES'22 case (DWI + ADC, 2 mm; ../shared): both channels degraded alike, the
    input's names kept, and no validator error the input itself does not have (ISLES'22
    stores ADC and DWI without bval/bvec in raw folders)."""
    from conftest import SHARED

    from bids_stroke.degradation import apply_condition

    case = SHARED / "data" / "real" / "isles22_case0001"
    if not case.is_dir():
        pytest.skip("../shared (real ISLES'22 case) is not available")
    bids = tmp_path / "bids"
    dwi = bids / "sub-strokecase0001" / "ses-0001" / "dwi"
    dwi.mkdir(parents=True)
    for path in case.glob("*.nii.gz"):
        shutil.copy(path, dwi / path.name)
    (bids / "dataset_description.json").write_text(json.dumps(
        {"Name": "ISLES'22 case 1", "BIDSVersion": "1.10.0", "DatasetType": "raw"}))
    out = tmp_path / "out"
    assert main(["export", str(bids), str(out), "--modality", "dwi", "--channels", "dwi",
                 "adc", "--conditions", "thick:6"]) == 0
    root = out / "conditions" / "thick6mm"
    for suffix in ("dwi", "adc"):
        name = f"sub-strokecase0001_ses-0001_{suffix}.nii.gz"
        src = nb.load(str(dwi / name))
        got = nb.load(str(root / dwi.relative_to(bids) / name))
        np.testing.assert_array_equal(np.asanyarray(got.dataobj), apply_condition(
            src.get_fdata(dtype=np.float32), src.header.get_zooms()[:3], "thick:6"))
        np.testing.assert_array_equal(got.affine, src.affine)
    codes = {i["code"] for i in _validator_errors(root)}
    assert codes <= {i["code"] for i in _validator_errors(bids)}
