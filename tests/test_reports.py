"""Shared HTML helpers and the per-subject report."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bids_stroke.reports import html as H
from bids_stroke.reports.subject import build_subject_report, lesion_focus


def test_table_and_text_are_escaped() -> None:
    df = pd.DataFrame({"<b>col</b>": ["<script>alert(1)</script>", "a & b"],
                       "x": [1.234567, np.nan]})
    out = H.table_html(df, caption='cap "<i>"')
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert "&lt;b&gt;col&lt;/b&gt;" in out and "a &amp; b" in out
    assert "&quot;&lt;i&gt;&quot;" in out
    assert "1.235" in out and "n/a" in out
    page = H.page("t <x>", H.section("s & s", H.paragraph("<p>")))
    assert "<title>t &lt;x&gt;</title>" in page and "&lt;p&gt;" in page
    assert H.kv_table({"cmd": "run --x '<y>'"}).count("&lt;y&gt;") == 1
    trunc = H.table_html(pd.DataFrame({"a": range(10)}), max_rows=3)
    assert "Showing 3 of 10 rows" in trunc


def test_img_tag_and_atomic_write(tmp_path) -> None:
    fig = H.new_figure((2, 2))
    fig.subplots().plot([0, 1], [1, 0])
    png = H.fig_to_png(fig)
    assert png[:4] == b"\x89PNG"
    tag = H.img_tag(png, alt='a"b', caption="c<d")
    assert base64.b64decode(re.search(r"base64,([^\"]+)", tag).group(1)) == png
    assert 'alt="a&quot;b"' in tag and "c&lt;d" in tag
    target = tmp_path / "sub" / "f.txt"
    H.atomic_write_text(target, "one")
    H.atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["f.txt"]


def test_lesion_focus_largest_component() -> None:
    m = np.zeros((20, 20, 20), np.uint8)
    m[2:4, 2:4, 2:4] = 1  # small
    m[10:15, 8:13, 5:8] = 1  # largest: centroid (12, 10, 6)
    assert lesion_focus(m) == (12, 10, 6)
    ring = np.zeros((20, 20, 20), np.uint8)  # centroid outside the component
    ring[5:15, 5:15, 10] = 1
    ring[7:13, 7:13, 10] = 0
    f = lesion_focus(ring)
    assert ring[f] == 1
    assert lesion_focus(np.zeros((4, 4, 4))) is None and lesion_focus(None) is None


def _save(path: Path, data: np.ndarray, affine: np.ndarray) -> str:
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return str(path)


@pytest.fixture
def tiny_subject(tmp_path) -> dict:
    rng = np.random.default_rng(0)
    shape = (24, 28, 20)
    aff = np.diag([-1.0, 1.0, 1.5, 1.0])  # LAS: exercises the reorientation
    t1 = (100 + 10 * rng.standard_normal(shape)).astype(np.float32)
    ref = np.zeros(shape, np.uint8)
    ref[8:14, 10:16, 6:10] = 1
    pred = np.zeros(shape, np.uint8)
    pred[9:15, 10:17, 6:9] = 1
    prob = (pred * 0.9).astype(np.float32)
    files = {n: _save(tmp_path / f"{n}.nii.gz", a, aff)
             for n, a in [("t1", t1), ("ref", ref), ("pred", pred), ("prob", prob),
                          ("deg", (t1 * 0.5).astype(np.float32))]}
    metrics = tmp_path / "sub-01_label-L_segmetrics.tsv"
    pd.DataFrame({"participant_id": ["sub-01"] * 2, "session_id": ["n/a"] * 2,
                  "desc": ["native", "crude2"], "condition": ["native", "crude:2"],
                  "effective_resolution_mm": [1.0, 2.0], "dice": [0.81, 0.65],
                  "hd95": [2.0, np.nan]}).to_csv(metrics, sep="\t", index=False,
                                                 na_rep="n/a")
    files["metrics"] = str(metrics)
    return files


def test_subject_report_builds(tiny_subject, tmp_path) -> None:
    f = tiny_subject
    conds = [
        {"label": "native", "spec": "native", "description": "Native <1 mm> image",
         "image": f["t1"], "mask": f["pred"], "probseg": f["prob"]},
        {"label": "crude2", "spec": "crude:2", "description": "Every 2nd voxel",
         "image": f["deg"], "mask": None, "probseg": f["prob"]},
    ]
    out = build_subject_report(tmp_path / "sub-01.html", subject="sub-01", t1w=f["t1"],
                               reference_mask=f["ref"], conditions=conds,
                               metrics_tsv=f["metrics"],
                               provenance={"model_sha256": "deadbeef",
                                           "command": "bids_stroke in out participant <x>"})
    text = out.read_text()
    assert text.count("data:image/png;base64,") == 2
    assert "Native &lt;1 mm&gt; image" in text and "<1 mm>" not in text
    assert "crude:2" in text and "0.81" in text and "n/a" in text
    assert "deadbeef" in text and "participant &lt;x&gt;" in text
    assert "largest reference lesion" in text
    assert 'id="metrics"' in text or "id='metrics'" in text


def test_subject_report_without_reference(tiny_subject, tmp_path) -> None:
    f = tiny_subject
    out = build_subject_report(tmp_path / "r.html", subject="02", session="ses-1", t1w=f["t1"],
                               conditions=[{"label": "native", "spec": "native",
                                            "description": "", "image": None,
                                            "mask": f["pred"], "probseg": None}])
    text = out.read_text()
    assert "largest predicted lesion" in text and "sub-02 ses-1" in text
    assert "No metrics table" in text and "No provenance" in text


def test_subject_report_rejects_other_grid(tiny_subject, tmp_path) -> None:
    f = tiny_subject
    other = _save(tmp_path / "o.nii.gz", np.zeros((5, 5, 5), np.uint8), np.eye(4))
    with pytest.raises(ValueError, match="differs from T1w"):
        build_subject_report(tmp_path / "x.html", subject="01", t1w=f["t1"],
                             conditions=[{"label": "a", "spec": "a", "mask": other}])
