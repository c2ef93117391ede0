"""Scoring against the model's own prediction (``--reference prediction|auto``), unit level:
the settings, the metric tables (checked against ``compute_metrics`` called directly), the
names, the commit, the group level's separate sets, the subject report's words and the fast
refusal of a dataset without masks. End to end runs are in ``test_reference_e2e.py``."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest

from bids_stroke.cli.run import main
from bids_stroke.core.settings import Settings, settings_from_layers
from bids_stroke.degradation import parse_condition, parse_conditions
from bids_stroke.metrics import compute_metrics, lesion_table
from bids_stroke.metrics.reference import (
    Reference,
    ReferenceError,
    check_reference_condition,
    nifti_sha256,
    resolve,
)
from bids_stroke.metrics.tables import score_conditions
from bids_stroke.outputs.tsv import format_tsv_cell
from tests.conftest import dataset_description, tiny_volume, write_nifti


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


# ----------------------------------------------------------------------------- settings
def test_resolve_per_image():
    assert resolve("mask", True) == Reference()
    assert resolve("mask", False) is None
    assert resolve("prediction", True) == Reference("prediction", "native", "native")
    assert resolve("auto", True) == Reference()
    assert resolve("auto", False, "linear:2") == Reference("prediction", "linear:2", "linear2")
    assert Reference.prediction("native").desc == "refnativeprediction"
    assert Reference().desc is None
    assert Reference.from_record(None) == Reference()
    assert Reference.from_record({"kind": "prediction", "condition": "crude:2"}).label == "crude2"
    with pytest.raises(ValueError):
        resolve("nonsense", True)


def test_reference_condition_must_be_a_study_condition():
    native = parse_condition("native")

    def study(*specs: str) -> list:
        return parse_conditions(list(specs))

    check_reference_condition("prediction", native, study("native", "crude:2"))
    check_reference_condition("mask", native, study("crude:2"))  # not used with masks
    with pytest.raises(ReferenceError, match=r"must be one of the study's conditions "
                                             r"\(crude:2 linear:2\)"):
        check_reference_condition("auto", native, study("crude:2", "linear:2"))
    with pytest.raises(ReferenceError, match="besides the reference condition"):
        check_reference_condition("prediction", native, study("native"))


def test_settings_from_a_study_file_and_the_results_key():
    study = {"conditions": ["native", "crude:2"], "reference": "prediction",
             "reference_condition": "crude:2x2x2"}
    settings = settings_from_layers(study)
    assert settings.study.reference == "prediction"
    assert settings.study.reference_condition == parse_condition("crude:2")
    assert settings.to_dict()["study"]["reference_condition"] == "crude:2"
    default = Settings()
    # mask-scored results keep the digest they always had; a prediction reference changes it
    assert default.results_key() == default.results_key("mask")
    assert default.results_key("prediction") != default.results_key()
    other = settings_from_layers({"conditions": ["native", "crude:2"],
                                  "reference_condition": "crude:2"})
    assert other.results_key("prediction") != default.results_key("prediction")
    with pytest.raises(ValueError, match="must be one of mask, prediction, auto"):
        settings_from_layers({"conditions": ["native"], "reference": "truth"})


def test_refusals_before_any_work(tmp_path, capsys):
    bids = tmp_path / "bids"
    dataset_description(bids)
    img, _ = tiny_volume(0)
    write_nifti(bids / "sub-01" / "anat" / "sub-01_T1w.nii.gz", img)
    out = tmp_path / "out"
    assert main([str(bids), str(out), "participant", "--reference", "prediction",
                 "--conditions", "crude:2", "linear:2"]) == 64
    assert "the reference condition must be one of the study's conditions" in \
        capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # argparse: a usage error
        main([str(bids), str(out), "participant", "--reference", "truth"])
    assert exc.value.code == 64
    assert not out.exists()


# ----------------------------------------------------------------------------- metric tables
def _masks(tmp_path: Path) -> tuple[list[Path], np.ndarray]:
    """A 'native' prediction and two degraded ones on one grid (2 x 2 x 3 mm)."""
    affine = np.diag([2.0, 2.0, 3.0, 1.0])
    native = np.zeros((20, 20, 12), np.uint8)
    native[4:10, 5:11, 3:7] = 1
    native[14:17, 14:17, 8:10] = 1  # a second lesion
    crude = np.roll(native, 1, axis=0)
    linear = native.copy()
    linear[14:17, 14:17, 8:10] = 0  # the small lesion lost
    paths = []
    for name, data in (("native", native), ("crude2", crude), ("linear2", linear)):
        path = tmp_path / f"{name}_mask.nii"
        nb.Nifti1Image(data, affine).to_filename(str(path))
        paths.append(path)
    return paths, affine


#: how these tables were scored before the metric settings became required arguments
NATIVE = {"connectivity": 26, "tolerance_mm": 2.0, "grid": "native"}


def test_prediction_reference_equals_compute_metrics_on_the_predictions(tmp_path):
    paths, _ = _masks(tmp_path)
    tables = score_conditions(
        None, paths, ["native", "crude2", "linear2"], ["native", "crude:2", "linear:2"],
        [2.3, 4.6, 4.6], participant_id="sub-01", out_dir=tmp_path / "t",
        reference_label="native", connectivity=26, grid="padded:16", tolerance_mm=3.0)
    assert tables.tsv.name == "sub-01_label-L_desc-refnativeprediction_segmetrics.tsv"
    assert tables.lesions_tsv.name == "sub-01_label-L_desc-refnativeprediction_lesions.tsv"
    rows = _rows(tables.tsv)
    assert [r["desc"] for r in rows] == ["crude2", "linear2"]  # the reference is not scored
    ref = np.asarray(nb.load(str(paths[0])).dataobj) > 0
    for row, path in zip(rows, paths[1:], strict=True):
        pred = np.asarray(nb.load(str(path)).dataobj) > 0
        expected = compute_metrics(ref, pred, (2.0, 2.0, 3.0), grid="padded:16",
                                   tolerance_mm=3.0)
        for key, value in expected.items():
            assert row[key] == format_tsv_cell(value), key
    lesions = _rows(tables.lesions_tsv)
    assert len(lesions) == 2 * len(lesion_table(ref, ref, (2.0, 2.0, 3.0)))
    assert [r["detected"] for r in lesions if r["desc"] == "linear2"] == ["true", "false"]
    side = json.loads(tables.json.read_text())
    assert side["Reference"] == {"kind": "prediction", "condition": "native",
                                 "SHA256": nifti_sha256(paths[0])}
    assert json.loads(tables.lesions_json.read_text())["Reference"] == side["Reference"]


def test_mask_reference_records_its_file(tmp_path):
    paths, _ = _masks(tmp_path)
    tables = score_conditions(paths[0], paths[1:], ["crude2", "linear2"],
                              ["crude:2", "linear:2"], [4.6, 4.6], participant_id="sub-01",
                              out_dir=tmp_path / "t", reference={"kind": "mask", "File": "x"},
                              **NATIVE)
    assert tables.tsv.name == "sub-01_label-L_segmetrics.tsv"
    side = json.loads(tables.json.read_text())
    assert side["Reference"] == {"kind": "mask", "File": "x",
                                 "SHA256": hashlib.sha256(paths[0].read_bytes()).hexdigest()}
    legacy = score_conditions(paths[0], paths[1:], ["crude2", "linear2"],
                              ["crude:2", "linear:2"], [4.6, 4.6], participant_id="sub-01",
                              out_dir=tmp_path / "legacy", **NATIVE)
    assert "Reference" not in json.loads(legacy.json.read_text())
    with pytest.raises(ValueError, match="not both"):
        score_conditions(paths[0], paths, ["native", "crude2", "linear2"],
                         ["native", "crude:2", "linear:2"], [1, 2, 2], participant_id="s",
                         out_dir=tmp_path, reference_label="native", **NATIVE)
    with pytest.raises(ValueError, match="at least two conditions"):
        score_conditions(None, paths[:1], ["native"], ["native"], [1], participant_id="s",
                         out_dir=tmp_path, reference_label="native", **NATIVE)


def test_nifti_sha256_is_the_same_for_nii_and_its_gzip(tmp_path):
    paths, _ = _masks(tmp_path)
    gz = tmp_path / "native_mask.nii.gz"
    gz.write_bytes(gzip.compress(paths[0].read_bytes(), mtime=0))
    assert nifti_sha256(gz) == nifti_sha256(paths[0]) == hashlib.sha256(
        paths[0].read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- names, commit
def test_names_carry_the_reference_and_stay_bids_valid():
    from bids_stroke.outputs.plan import metrics_table_name, scored_mask_rel

    assert metrics_table_name("01", "1", {}, "MNI152NLin2009aSym", None, False,
                              reference_desc="refnativeprediction") == (
        "sub-01_ses-1_space-MNI152NLin2009aSym_label-L_desc-refnativeprediction_segmetrics.tsv")
    assert metrics_table_name("01", None, {}, None, None, False) == \
        "sub-01_label-L_segmetrics.tsv"
    # the reference is the committed mask on the grid the metrics are computed on
    assert scored_mask_rel("01", None, {}, "T1w", "MNI152NLin2009aSym", None, True,
                           "native") == "sub-01/anat/sub-01_label-L_desc-native_mask.nii.gz"
    assert scored_mask_rel("01", "1", {}, "T1w", "MNI152NLin2009aSym", None, False,
                           "native") == ("sub-01/ses-1/anat/sub-01_ses-1_space-"
                                         "MNI152NLin2009aSym_label-L_desc-native_mask.nii.gz")
    assert scored_mask_rel("01", None, {"run": "2"}, "dwi", None, None, False, "linear2") == \
        "sub-01/dwi/sub-01_run-2_label-L_desc-linear2_mask.nii.gz"


def test_a_table_of_another_reference_replaces_the_old_one(tmp_path):
    from bids_stroke.outputs.commit import (
        ConditionRecord,
        PlannedFile,
        PlannedTable,
        commit_image,
        plan_conditions,
        read_manifest,
    )

    out = tmp_path / "out"
    src = tmp_path / "src"
    src.mkdir()

    def commit(name: str, key: str, labels: list[str]) -> None:
        tsv = src / f"{name}.tsv"
        tsv.write_text("desc\tdice\n" + "".join(f"{lab}\t0.5\n" for lab in labels))
        side = src / f"{name}.json"
        side.write_text("{}")
        rel = f"sub-01/anat/{name}"
        records = [ConditionRecord(lab, lab, "m", key, "r") for lab in labels]
        plan = plan_conditions(read_manifest(out, "sub-01"), records, clean=True)
        commit_image(out, "sub-01", files=[PlannedFile(f"{rel}.json", source=str(side))],
                       tables=[PlannedTable(f"{rel}.tsv", str(tsv))], conditions=records,
                       plan=plan, run_uuid="r")

    commit("sub-01_label-L_segmetrics", "a", ["native", "crude2"])
    commit("sub-01_label-L_desc-refnativeprediction_segmetrics", "b", ["crude2"])
    manifest = read_manifest(out, "sub-01")
    anat = out / "sub-01" / "anat"
    assert sorted(p.name for p in anat.iterdir()) == [
        "sub-01_label-L_desc-refnativeprediction_segmetrics.json",
        "sub-01_label-L_desc-refnativeprediction_segmetrics.tsv"]
    assert set(manifest.files) == {f"sub-01/anat/{p.name}" for p in anat.iterdir()}


# ----------------------------------------------------------------------------- group
def _mixed_output(root: Path) -> Path:
    """Synthetic participant outputs: sub-0001..4 scored against their masks, sub-0005..8
    against the native prediction (no native rows, tables named accordingly)."""
    from bids_stroke.core.atomic import atomic_write_json
    from bids_stroke.group.synthetic import (
        DEFAULT_SYNTHETIC_CONDITIONS,
        make_synthetic_output,
        record_commits,
    )
    from bids_stroke.outputs.commit import manifest_path, read_manifest

    out = make_synthetic_output(root, 8, conditions=DEFAULT_SYNTHETIC_CONDITIONS[:3], seed=2)
    for n in range(5, 9):
        for table in out.glob(f"sub-{n:04d}/**/*_label-L_*.tsv"):
            lines = table.read_text().splitlines(keepends=True)
            table.with_name(table.name.replace("_label-L_", "_label-L_desc-"
                                               "refnativeprediction_")).write_text(
                lines[0] + "".join(x for x in lines[1:] if "\tnative\t" not in x))
            table.unlink()
    record_commits(out)
    for n in range(5, 9):
        key = f"sub-{n:04d}"
        manifest = read_manifest(out, key).to_dict()
        manifest["extra"]["reference"] = {"kind": "prediction", "condition": "native"}
        atomic_write_json(manifest_path(out, key), manifest)
    return out


def test_group_analyses_each_reference_apart_and_says_so(tmp_path):
    import pandas as pd

    from bids_stroke.group.run import run_group

    out = _mixed_output(tmp_path / "out")
    report = run_group(out, n_boot=100, seed=1)
    assert report == out / "group_report.html"
    masked = pd.read_csv(out / "group_segmetrics.tsv", sep="\t")
    pred = pd.read_csv(out / "group_refnativeprediction_segmetrics.tsv", sep="\t")
    assert set(masked["participant_id"]) == {f"sub-{n:04d}" for n in range(1, 5)}
    assert set(pred["participant_id"]) == {f"sub-{n:04d}" for n in range(5, 9)}
    assert "native" not in set(pred["desc"])
    for name in ("desc-summary_segmetrics", "desc-wilcoxon_stats", "desc-friedman_stats"):
        wil = out / f"group_refnativeprediction_{name}.tsv"
        assert wil.is_file(), name
        side = json.loads(wil.with_suffix(".json").read_text())
        assert side["Reference"]["kind"] == "prediction" and "Description" in side["Reference"]
        assert "Reference" not in json.loads((out / f"group_{name}.json").read_text())
    wil = pd.read_csv(out / "group_refnativeprediction_desc-wilcoxon_stats.tsv", sep="\t")
    assert set(wil["n"]) <= {4}  # never more units than the set has
    assert (out / "figures" / "group_refnativeprediction_bland-altman.png").is_file()
    text = (out / "group_refnativeprediction_report.html").read_text()
    assert "agreement with the model&#x27;s native-resolution prediction" in text
    assert "consistently wrong" in text and "analysed separately" in text
    assert "accuracy" in text  # "... not accuracy"
    masked_report = (out / "group_report.html").read_text()
    assert "group_refnativeprediction_report.html" in masked_report
    assert "analysed separately" in masked_report


def test_group_without_tables_says_what_happened(tmp_path):
    from bids_stroke.core.atomic import atomic_write_json
    from bids_stroke.group.run import GroupInputError, run_group
    from bids_stroke.outputs.commit import Manifest, manifest_path

    out = tmp_path / "out"
    atomic_write_json(manifest_path(out, "sub-01"),
                      Manifest(key="sub-01", files={}, conditions={}).to_dict())
    with pytest.raises(GroupInputError, match=r"without scoring them.*--reference prediction"):
        run_group(out)


# ----------------------------------------------------------------------------- subject report
def test_subject_report_names_its_reference(tmp_path):
    from bids_stroke.reports.subject import build_subject_report, metrics_table

    paths, _ = _masks(tmp_path)
    image = tmp_path / "image.nii"
    nb.Nifti1Image(np.random.default_rng(0).random((20, 20, 12)).astype(np.float32),
                   np.diag([2.0, 2.0, 3.0, 1.0])).to_filename(str(image))
    tables = score_conditions(None, paths, ["native", "crude2", "linear2"],
                              ["native", "crude:2", "linear:2"], [2, 4, 4],
                              participant_id="sub-01", out_dir=tmp_path / "t",
                              reference_label="native", **NATIVE)
    conds = [{"label": lab, "spec": spec, "description": "", "mask": str(p)}
             for lab, spec, p in zip(["native", "crude2", "linear2"],
                                     ["native", "crude:2", "linear:2"], paths, strict=True)]
    html = build_subject_report(tmp_path / "r.html", subject="01", image=image, conditions=conds,
                                metrics_tsv=tables.tsv, reference_label="native",
                                reference_condition="native").read_text()
    assert "Reference: the model&#x27;s native-resolution prediction" in html
    assert "Agreement with the model&#x27;s native-resolution prediction, per condition" in html
    assert "it is not scored itself" in html  # the native block has no reference outline
    assert "No metrics table was given" not in html
    assert "no lesion mask and the run scored against lesion masks" in metrics_table(
        None, scored=False)
    plain = build_subject_report(tmp_path / "p.html", subject="01", image=image,
                                 conditions=conds[:1], scored=False).read_text()
    assert "Reference: sky blue" not in plain and "no reference" in plain


# ----------------------------------------------------------------------------- fast refusal
def _maskless(root: Path) -> Path:
    bids = root / "bids"
    dataset_description(bids)
    for sub in ("01", "02"):
        img, _ = tiny_volume(int(sub))
        write_nifti(bids / f"sub-{sub}" / "anat" / f"sub-{sub}_T1w.nii.gz", img)
    return bids


def test_any_lesion_mask(tmp_path, atlas_layout):
    from bids_stroke.inputs.discovery import any_lesion_mask

    assert any_lesion_mask(atlas_layout)
    bids = _maskless(tmp_path)
    assert not any_lesion_mask(bids)
    # our own derivatives never count as lesion masks
    ours = bids / "derivatives" / "bids_stroke"
    dataset_description(ours, GeneratedBy=[{"Name": "bids_stroke"}])
    write_nifti(ours / "sub-01" / "anat" / "sub-01_label-L_desc-native_mask.nii.gz",
                tiny_volume(0)[1])
    assert not any_lesion_mask(bids)
    theirs = bids / "derivatives" / "lesions"
    write_nifti(theirs / "sub-02" / "anat" / "sub-02_label-L_desc-lesion_mask.nii.gz",
                tiny_volume(0)[1])
    assert any_lesion_mask(bids)
    assert not any_lesion_mask(bids, exclude=[theirs])


def _timed(args: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    exe = Path(sys.executable).parent / "bids_stroke"
    t0 = time.perf_counter()
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)
    return time.perf_counter() - t0, proc


def test_a_dataset_without_masks_is_refused_at_once(tmp_path):
    """The default (--reference mask) on a dataset without any mask: exit 66, one line naming
    where masks were looked for and the label-free alternative, about as fast as --version
    (no model, no pybids, no nipype is loaded)."""
    bids = _maskless(tmp_path)
    out = tmp_path / "out"
    version = min(_timed(["--version"], tmp_path)[0] for _ in range(3))
    runs = [_timed([str(bids), str(out), "participant"], tmp_path) for _ in range(3)]
    refusal = min(t for t, _ in runs)
    proc = runs[0][1]
    assert proc.returncode == 66
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "no lesion mask found" in lines[0] and str(bids) in lines[0]
    assert "--reference prediction" in lines[0] and "derivatives" in lines[0]
    assert not out.exists()
    # measured 0.20 s against 0.14 s for --version (ratio 1.4); loading the model alone
    # takes ~5 s, pybids ~1 s
    assert refusal <= 4 * version, (refusal, version)


def test_agreement_verdicts_compare_each_condition_with_perfect_self_agreement(tmp_path):
    """A prediction set's equivalence verdicts compare every condition with the reference
    condition's agreement with itself (Dice 1 by definition), as the one-sample change from
    perfect agreement; the written row table still holds measured rows only."""
    import numpy as np
    import pandas as pd

    from bids_stroke.group.run import run_group

    out = _mixed_output(tmp_path / "out")
    run_group(out, n_boot=100, seed=1)
    eq = pd.read_csv(out / "group_refnativeprediction_desc-equivalence_stats.tsv", sep="\t")
    dice = eq[eq["metric"] == "dice"]
    assert set(dice["condition_a"]) == {"native"}
    assert set(dice["condition_b"]) == {"crude2", "linear2"}
    rows = pd.read_csv(out / "group_refnativeprediction_segmetrics.tsv", sep="\t")
    assert "native" not in set(rows["desc"])
    for r in dice.itertuples():
        agreement = (rows[rows["desc"] == r.condition_b].groupby("participant_id")["dice"]
                     .mean().to_numpy(float))
        d = agreement - 1.0  # change from native's perfect agreement with itself
        walsh = [(d[i] + d[j]) / 2 for i in range(d.size) for j in range(i, d.size)]
        assert "exact" in r.method and r.n == d.size
        assert r.hl_estimate == pytest.approx(float(np.median(walsh)), abs=1e-12)
    findings = (out / "group_refnativeprediction_report.html").read_text()
    assert "Dice agreement with the model&#x27;s native-resolution prediction was" in findings
