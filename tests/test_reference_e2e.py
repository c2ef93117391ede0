"""End to end on a 4-subject demo at 3 mm whose last two subjects lost their lesion masks:
``--reference auto`` (two separately analysed sets), ``--reference prediction`` on the
mask-less images then ``group`` (checked against ``compute_metrics`` on the committed masks),
the default ``--reference mask`` on the mask-less images (exit 66) and on all of them (the
masked ones run, the others listed). One work folder serves every run (segmentations are
computed once)."""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest

from bids_stroke.cli.run import main
from bids_stroke.demo import make_demo_dataset
from bids_stroke.metrics import compute_metrics, lesion_table
from bids_stroke.outputs.tsv import format_tsv_cell

CONDITIONS = ["native", "crude:2", "linear:2"]
MASKED = ["r001s001", "r001s002"]
UNMASKED = ["r001s003", "r001s004"]
PREFIX = "ses-1_space-MNI152NLin2009aSym"


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _run(args: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(args)
    return code, err.getvalue()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("reference")
    bids = make_demo_dataset(base / "bids", n_subjects=4, seed=0, resolution_mm=3.0,
                             progress=False)
    for sub in UNMASKED:
        for path in (bids / f"sub-{sub}").rglob("*_mask.*"):
            path.unlink()
    work = base / "work"
    common = ["-w", str(work), "--nprocs", "1", "--conditions", *CONDITIONS]
    out = {name: base / name for name in ("auto", "pred", "refused", "mask")}
    return {
        "bids": bids, "out": out,
        "auto": _run([str(bids), str(out["auto"]), "participant", "group", *common,
                      "--reference", "auto"]),
        "pred": _run([str(bids), str(out["pred"]), "participant", "group", *common,
                      "--reference", "prediction", "--participant-label", *UNMASKED]),
        "refused": _run([str(bids), str(out["refused"]), "participant", *common,
                         "--participant-label", *UNMASKED]),
        "mask": _run([str(bids), str(out["mask"]), "participant", *common]),
    }


def test_exit_codes(runs):
    assert runs["auto"][0] == 0, runs["auto"][1][-2000:]
    assert runs["pred"][0] == 0, runs["pred"][1][-2000:]
    assert runs["refused"][0] == 66
    assert runs["mask"][0] == 0, runs["mask"][1][-2000:]


def test_discovery_says_how_many_images_have_masks(runs):
    assert "Found 4 input image(s): 2 with a lesion mask, 2 without" in runs["auto"][1]
    assert ("scored against the model's prediction at native: sub-r001s003_ses-1 "
            "sub-r001s004_ses-1") in runs["auto"][1]


def test_prediction_reference_is_named_everywhere(runs):
    out = runs["out"]["pred"]
    assert sorted(p.name for p in out.glob("sub-*")) == sorted(
        [f"sub-{s}" for s in UNMASKED] + [f"sub-{s}_ses-1.html" for s in UNMASKED])
    for sub in UNMASKED:
        anat = out / f"sub-{sub}" / "ses-1" / "anat"
        tables = sorted(p.name for p in anat.glob("*_label-L_*.tsv"))
        assert tables == [f"sub-{sub}_{PREFIX}_label-L_desc-refnativeprediction_{t}.tsv"
                          for t in ("lesions", "segmetrics")]
        for table in anat.glob("*_label-L_desc-refnativeprediction_*.json"):
            ref = json.loads(table.read_text())["Reference"]
            native = out / ref["File"].removeprefix("bids::")
            assert ref["kind"] == "prediction" and ref["condition"] == "native"
            assert native.name == f"sub-{sub}_{PREFIX}_label-L_desc-native_mask.nii.gz"
            assert ref["SHA256"] == hashlib.sha256(gzip.decompress(native.read_bytes())
                                                   ).hexdigest()
        manifest = json.loads((out / ".bids_stroke" / "subjects" /
                               f"sub-{sub}_ses-1.json").read_text())
        assert manifest["extra"]["reference"] == {"kind": "prediction", "condition": "native"}
        report = (out / f"sub-{sub}_ses-1.html").read_text()
        assert "Reference: the model&#x27;s native-resolution prediction" in report
        assert "Agreement with the model&#x27;s native-resolution prediction" in report
        assert "No metrics table was given" not in report
    assert not list(out.glob("group_desc-*")) and not (out / "group_report.html").exists()
    group = sorted(p.name for p in out.glob("group_*.tsv"))
    assert group and all(n.startswith("group_refnativeprediction_") for n in group)
    for name in group:
        side = json.loads((out / name).with_suffix(".json").read_text())
        assert side["Reference"]["kind"] == "prediction", name
    report = (out / "group_refnativeprediction_report.html").read_text()
    assert "agreement with the model&#x27;s native-resolution prediction" in report
    assert "consistently wrong" in report


def test_reference_condition_rows_are_absent(runs):
    out = runs["out"]["pred"]
    for path in [*out.glob("sub-*/ses-1/anat/*_segmetrics.tsv"),
                 out / "group_refnativeprediction_segmetrics.tsv"]:
        assert {r["desc"] for r in _rows(path)} == {"crude2", "linear2"}, path.name
    summary = _rows(out / "group_refnativeprediction_desc-summary_segmetrics.tsv")
    assert {r["desc"] for r in summary} == {"crude2", "linear2"}


def test_metrics_equal_compute_metrics_on_the_committed_predictions(runs):
    out = runs["out"]["pred"]
    for sub in UNMASKED:
        anat = out / f"sub-{sub}" / "ses-1" / "anat"
        native_img = nb.load(anat / f"sub-{sub}_{PREFIX}_label-L_desc-native_mask.nii.gz")
        native = np.asarray(native_img.dataobj) > 0
        spacing = native_img.header.get_zooms()[:3]
        table = _rows(anat / f"sub-{sub}_{PREFIX}_label-L_desc-refnativeprediction_"
                             "segmetrics.tsv")
        lesions = _rows(anat / f"sub-{sub}_{PREFIX}_label-L_desc-refnativeprediction_"
                               "lesions.tsv")
        for row in table:
            degraded = np.asarray(nb.load(
                anat / f"sub-{sub}_{PREFIX}_label-L_desc-{row['desc']}_mask.nii.gz").dataobj) > 0
            # the default study (atlas_resolution) counts true negatives on the padded grid
            expected = compute_metrics(native, degraded, spacing, grid="padded:16")
            for key, value in expected.items():
                assert row[key] == format_tsv_cell(value), (sub, row["desc"], key)
            mine = [r for r in lesions if r["desc"] == row["desc"]]
            theirs = lesion_table(native, degraded, spacing)
            assert [r["volume_voxels"] for r in mine] == [str(t["volume_voxels"])
                                                            for t in theirs]


def test_auto_yields_two_separately_analysed_sets(runs):
    out = runs["out"]["auto"]
    masked = _rows(out / "group_segmetrics.tsv")
    pred = _rows(out / "group_refnativeprediction_segmetrics.tsv")
    assert {r["participant_id"] for r in masked} == {f"sub-{s}" for s in MASKED}
    assert {r["participant_id"] for r in pred} == {f"sub-{s}" for s in UNMASKED}
    assert {r["desc"] for r in masked} == {"native", "crude2", "linear2"}
    assert {r["desc"] for r in pred} == {"crude2", "linear2"}
    for name, other in (("group_report.html", "group_refnativeprediction_report.html"),
                        ("group_refnativeprediction_report.html", "group_report.html")):
        text = (out / name).read_text()
        assert other in text and "analysed separately" in text
    for sub in MASKED:
        assert "Reference: the lesion mask." in (out / f"sub-{sub}_ses-1.html").read_text()
        side = next((out / f"sub-{sub}").rglob("*_label-L_segmetrics.json"))
        assert json.loads(side.read_text())["Reference"]["kind"] == "mask"
    for sub in UNMASKED:
        assert "native-resolution prediction" in (out / f"sub-{sub}_ses-1.html").read_text()


def test_default_on_unmasked_images_exits_66_with_one_line(runs):
    lines = [x for x in runs["refused"][1].splitlines() if "error" in x]
    assert len(lines) == 1
    assert "none of the 2 selected image(s) has a lesion mask" in lines[0]
    assert "--reference prediction" in lines[0]
    assert not runs["out"]["refused"].exists()


def test_default_runs_the_masked_images_and_lists_the_others(runs):
    out = runs["out"]["mask"]
    assert sorted(p.name for p in out.glob("sub-*.html")) == [f"sub-{s}_ses-1.html"
                                                               for s in MASKED]
    assert ("2 image(s) without a lesion mask are not run (--reference mask): "
            "sub-r001s003_ses-1 sub-r001s004_ses-1; --reference auto") in runs["mask"][1]


def test_bids_validator_accepts_both_kinds(runs):
    exe = shutil.which("bids-validator-deno") or str(Path(sys.executable).parent
                                                     / "bids-validator-deno")
    proc = subprocess.run([exe, str(runs["out"]["auto"]), "--format", "json"],
                          capture_output=True, text=True, timeout=300)
    report = json.loads(proc.stdout)
    assert [i for i in report["issues"]["issues"] if i["severity"] == "error"] == []
