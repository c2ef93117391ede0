"""End to end: participant level on a 2-subject demo at 2 mm, then group level.

One run is shared by the tests of this module (session fixture); each test checks one property:
the golden list of outputs, sidecars, metrics, the BIDS validator, resuming, the group level.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest

from bids_stroke.cli.run import main
from bids_stroke.demo import make_demo_dataset

CONDITIONS = ["native", "crude:2", "thick:5"]
LABELS = ["native", "crude2", "thick5mm"]
SUBJECTS = ["r001s001", "r001s002"]


def _digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "logs" not in p.parts and ".bids_stroke" not in p.parts
    }


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("e2e")
    bids = make_demo_dataset(base / "bids", n_subjects=2, seed=0, resolution_mm=2.0,
                             progress=False)
    before = _snapshot(bids)
    out, work = base / "out", base / "work"
    args = [str(bids), str(out), "participant", "-w", str(work), "--nprocs", "2",
            "--conditions", *CONDITIONS]
    code = main(args)
    return {"bids": bids, "out": out, "work": work, "code": code, "args": args,
            "before": before}


def test_exit_code_and_input_untouched(run):
    assert run["code"] == 0
    assert _snapshot(run["bids"]) == run["before"]


def test_golden_file_list(run):
    out = run["out"]
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    files = {f for f in files if not f.startswith(("logs/", ".bids_stroke/"))}
    expected = {"dataset_description.json", "descriptions.tsv", "descriptions.json",
                ".bidsignore", "README.md"}
    for sub in SUBJECTS:
        anat = f"sub-{sub}/ses-1/anat/sub-{sub}_ses-1_space-MNI152NLin2009aSym"
        expected |= {f"sub-{sub}_ses-1.html", f"{anat}_desc-preproc_T1w.nii.gz",
                     f"{anat}_desc-preproc_T1w.json"}
        for ext in ("tsv", "json"):
            expected |= {f"{anat}_label-L_segmetrics.{ext}", f"{anat}_label-L_lesions.{ext}"}
        for label in LABELS:
            for suffix in ("probseg", "mask"):
                expected |= {f"{anat}_label-L_desc-{label}_{suffix}.nii.gz",
                             f"{anat}_label-L_desc-{label}_{suffix}.json"}
            if label != "native":
                expected |= {f"{anat}_desc-{label}_T1w.nii.gz", f"{anat}_desc-{label}_T1w.json"}
    assert files == expected
    state = out / ".bids_stroke"
    assert sorted(p.name for p in (state / "subjects").iterdir()) == [
        f"sub-{sub}_ses-1.json" for sub in SUBJECTS]
    assert not list((state / "staging").glob("*")) and not list((state / "journal").glob("*"))


def test_dataset_files(run):
    desc = json.loads((run["out"] / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative"
    assert desc["GeneratedBy"][0]["Name"] == "bids_stroke"
    assert "Container" not in desc["GeneratedBy"][0]  # not run inside a container
    assert desc["SourceDatasets"]
    with (run["out"] / "descriptions.tsv").open() as fh:
        rows = {r["desc_id"]: r for r in csv.DictReader(fh, delimiter="\t")}
    assert {f"desc-{lab}" for lab in LABELS} | {"desc-preproc"} == set(rows)
    assert rows["desc-thick5mm"]["condition"] == "thick:5"


def test_sidecars(run):
    anat = run["out"] / "sub-r001s001" / "ses-1" / "anat"
    prefix = "sub-r001s001_ses-1_space-MNI152NLin2009aSym"
    mask = json.loads((anat / f"{prefix}_label-L_desc-crude2_mask.json").read_text())
    assert mask["Condition"] == "crude:2"
    assert mask["Threshold"] == 0.5
    assert len(mask["SegmentationModel"]["SHA256"]) == 64
    assert mask["Sources"] == [f"bids::sub-r001s001/ses-1/anat/{prefix}_desc-crude2_T1w.nii.gz"]
    preproc = json.loads((anat / f"{prefix}_desc-preproc_T1w.json").read_text())
    assert preproc["Sources"][0].startswith("bids:raw:sub-r001s001/")
    assert preproc["SkullStripped"] is True


def test_outputs_on_the_input_grid(run):
    anat = run["out"] / "sub-r001s002" / "ses-1" / "anat"
    src = nb.load(next(run["bids"].glob("sub-r001s002/ses-1/anat/*_T1w.nii.gz")))
    for path in anat.glob("*.nii.gz"):
        img = nb.load(path)
        assert img.shape == src.shape and np.allclose(img.affine, src.affine), path.name
    prob = nb.load(next(anat.glob("*desc-native_probseg.nii.gz"))).get_fdata()
    mask = nb.load(next(anat.glob("*desc-native_mask.nii.gz"))).get_fdata()
    assert prob.min() >= 0 and prob.max() <= 1
    np.testing.assert_array_equal(mask, prob >= 0.5)


def test_metrics_table(run):
    tsv = next(run["out"].glob("sub-r001s001/ses-1/anat/*_segmetrics.tsv"))
    with tsv.open() as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert [r["desc"] for r in rows] == LABELS
    assert {r["participant_id"] for r in rows} == {"sub-r001s001"}
    for row in rows:
        assert 0.0 <= float(row["dice"]) <= 1.0
        assert float(row["ref_volume_ml"]) > 0
    eff = [float(r["effective_resolution_mm"]) for r in rows]
    assert eff[0] == pytest.approx(2.0) and eff[1] == pytest.approx(4.0)


def _validator_issues(root: Path) -> list[tuple[str, str, str]]:
    """(severity, code, location) of every error and warning of bids-validator-deno."""
    exe = shutil.which("bids-validator-deno") or str(
        Path(__import__("sys").executable).parent / "bids-validator-deno"
    )
    proc = subprocess.run([exe, str(root), "--format", "json"], capture_output=True,
                          text=True, timeout=300)
    report = json.loads(proc.stdout)
    return [(i["severity"], i["code"], i.get("location", "")) for i in
            report["issues"]["issues"] if i["severity"] in ("error", "warning")]


def test_bids_validator_has_no_errors_and_no_warnings(run):
    assert _validator_issues(run["out"]) == []
    desc = json.loads((run["out"] / "dataset_description.json").read_text())
    assert len(desc["Authors"]) >= 2 and "bids_stroke developers" in desc["Authors"]


def test_rerun_redoes_only_a_damaged_subject_with_identical_outputs(run):
    # committed subjects leave only their registration in the work folder
    assert not list(run["work"].rglob("unet/result_unet.pklz"))
    kept = sorted((run["out"] / "sub-r001s001").rglob("*.nii.gz"))
    mtimes = [p.stat().st_mtime_ns for p in kept]
    digest = _digest(run["out"])
    shutil.rmtree(run["out"] / "sub-r001s002")  # its manifest no longer matches its files
    assert main(run["args"]) == 0
    assert [p.stat().st_mtime_ns for p in kept] == mtimes  # unchanged subject: not rewritten
    assert _digest(run["out"]) == digest


def test_group_level(run):
    assert main([str(run["bids"]), str(run["out"]), "group"]) == 0
    out = run["out"]
    for name in ("group_segmetrics.tsv", "group_desc-summary_segmetrics.tsv",
                 "group_desc-wilcoxon_stats.tsv", "group_desc-friedman_stats.tsv",
                 "group_report.html"):
        assert (out / name).is_file(), name
    html = (out / "group_report.html").read_text()
    assert "Wilcoxon" in html and "data:image/png;base64" in html
    # the methods text describes this run's participant level (its logs/config-<run>.json)
    methods = (out / "group_methods.md").read_text()
    assert "registered to it with an affine transform in ANTs (antspyx)" in methods
    assert "bids_stroke bundled demo model (sha256" in methods
    assert "3 resolution conditions" in methods and "thick5mm (thick:5" in methods
    assert "26-connected components" in methods
    assert "with the model's own probability threshold (0.5)" in methods
    assert "Installed versions: Nipype" in methods and "PyTorch" in methods
    assert (out / "group_desc-equivalence_stats.tsv").is_file()
    for sub in SUBJECTS:  # every participant, linked to its subject report
        assert f'<a href="sub-{sub}_ses-1.html">sub-{sub}_ses-1</a>' in html
    assert "Template MNI152NLin2009aSym: " in html and "Cite bids_stroke as" in html
    assert _validator_issues(out) == []  # the group outputs add no error nor warning


def test_plain_layout_subject_without_mask(tmp_path, capsys):
    """--reference mask (the default) runs the image with a mask and lists the other; auto
    then scores the other against the model's native prediction (its own table name)."""
    bids = make_demo_dataset(tmp_path / "bids", n_subjects=2, seed=3, resolution_mm=3.0,
                             layout="plain", progress=False)
    for mask in (bids / "derivatives").rglob("sub-02_*_mask.nii.gz"):
        mask.unlink()
    out = tmp_path / "out"
    args = [str(bids), str(out), "participant", "-w", str(tmp_path / "work"), "--nprocs", "1",
            "--conditions", "native", "linear:2", "--no-degraded-images"]
    code = main(args)
    assert code == 0
    anat1, anat2 = out / "sub-01" / "anat", out / "sub-02" / "anat"
    assert len(list(anat1.glob("*_segmetrics.tsv"))) == 1
    assert not anat2.exists() and not (out / "sub-02.html").exists()
    assert not list(anat1.glob("*_desc-linear2_T1w.nii.gz"))  # --no-degraded-images
    err = capsys.readouterr().err
    assert "1 image(s) without a lesion mask are not run (--reference mask): sub-02" in err
    assert main([*args, "--reference", "auto"]) == 0
    assert [p.name for p in anat2.glob("*_segmetrics.tsv")] == [
        "sub-02_space-MNI152NLin2009aSym_label-L_desc-refnativeprediction_segmetrics.tsv"]
    assert len(list(anat2.glob("*_label-L_desc-*_mask.nii.gz"))) == 2
    assert [p.name for p in anat1.glob("*_segmetrics.tsv")] == [
        "sub-01_space-MNI152NLin2009aSym_label-L_segmetrics.tsv"]
    assert "native-resolution prediction" in (out / "sub-02.html").read_text()


def test_voxel_order_does_not_change_results(tmp_path):
    """The same physical image stored LPS / PIR gives the metrics of its RAS version."""
    ras = make_demo_dataset(tmp_path / "ras", n_subjects=1, seed=5, resolution_mm=3.0,
                            progress=False)
    other = tmp_path / "pir"
    shutil.copytree(ras, other)
    for path in other.rglob("*.nii.gz"):
        img = nb.load(path)
        pir = nb.orientations.axcodes2ornt(("P", "I", "R"))
        xform = nb.orientations.ornt_transform(nb.io_orientation(img.affine), pir)
        img.as_reoriented(xform).to_filename(path)
    rows = []
    for bids in (ras, other):
        out = tmp_path / f"out_{bids.name}"
        assert main([str(bids), str(out), "participant", "-w", str(tmp_path / f"w_{bids.name}"),
                     "--nprocs", "1", "--conditions", "native", "thick:5"]) == 0
        tsv = next(out.rglob("*_segmetrics.tsv"))
        with tsv.open() as fh:
            rows.append([(r["desc"], r["dice"], r["hd95"]) for r in csv.DictReader(fh,
                                                                                delimiter="\t")])
    assert rows[0] == rows[1]


def test_two_runs_of_one_subject(tmp_path):
    """Runs are separate inputs: separate reports and rows, and the group level pairs them."""
    bids = make_demo_dataset(tmp_path / "bids", n_subjects=2, seed=7, resolution_mm=3.0,
                             layout="plain", progress=False)
    for path in sorted(bids.rglob("sub-01_*.nii.gz")) + sorted(bids.rglob("sub-01_*.json")):
        stem = path.name.split("_", 1)[1]
        run1 = path.with_name(f"sub-01_run-1_{stem}")
        path.rename(run1)
        shutil.copy(run1, path.with_name(f"sub-01_run-2_{stem}"))
    out = tmp_path / "out"
    assert main([str(bids), str(out), "participant", "group", "-w", str(tmp_path / "w"),
                 "--nprocs", "1", "--conditions", "native", "crude:2"]) == 0
    assert sorted(p.name for p in out.glob("sub-*.html")) == [
        "sub-01_run-1.html", "sub-01_run-2.html", "sub-02.html"]
    with (out / "group_segmetrics.tsv").open() as fh:
        ids = {r["image_id"] for r in csv.DictReader(fh, delimiter="\t")}
    assert ids == {"sub-01_run-1", "sub-01_run-2", "sub-02"}
