"""Shared HTML helpers and the per-subject report."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bids_stroke.core.settings import MetricsSettings
from bids_stroke.reports import html as H
from bids_stroke.reports.slices import (
    focus_mm,
    overlay_figure,
    registration_qc_figure,
    resample_like,
    view_titles,
)
from bids_stroke.reports.subject import build_subject_report, lesion_focus

# the interface takes the science settings explicitly: the defaults, from settings
METRICS = {"connectivity": MetricsSettings().connectivity,
           "tolerance_mm": MetricsSettings().tolerance_mm, "grid": MetricsSettings().grid}


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
                  "hd95": [2.0, np.nan], "ref_lesion_count": [1, 1],
                  "tn": [13411, 13408], "detection_rate": [1.0, 0.0],
                  "pred_fraction_pct": [0.379, 0.2]}).to_csv(metrics, sep="\t", index=False,
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
    out = build_subject_report(tmp_path / "sub-01.html", subject="sub-01", image=f["t1"],
                               suffix="T2w", reference_mask=f["ref"], conditions=conds,
                               metrics_tsv=f["metrics"],
                               metrics_name="sub-01_space-T2w_label-L_segmetrics.tsv",
                               provenance={"model_sha256": "deadbeef",
                                           "command": "bids_stroke in out participant <x>"},
                               threshold=0.5, command_line="bids_stroke /data /out participant "
                                            "--conditions native crude:2 --x '<y>'")
    text = out.read_text()
    assert text.count("data:image/png;base64,") == 2
    assert "Native &lt;1 mm&gt; image" in text and "<1 mm>" not in text
    assert "crude:2" in text and "0.81" in text and "n/a" in text
    assert "deadbeef" in text and "participant &lt;x&gt;" in text
    assert "largest reference lesion" in text
    assert 'id="metrics"' in text or "id='metrics'" in text
    # the input's modality, never a hard-coded T1w
    assert "T2w grid 24 x 28 x 20 voxels at 1 x 1 x 1.5 mm" in text and "T1w" not in text
    # the derivative's file name, not the working file's
    assert "sub-01_space-T2w_label-L_segmetrics.tsv" in text
    assert "sub-01_label-L_segmetrics.tsv" not in text
    # every column, the last ones included, one row per column
    table = text[text.index('id="metrics"'):text.index("</table>", text.index('id="metrics"'))]
    for col in ("participant_id", "effective_resolution_mm", "ref_lesion_count", "tn",
                "detection_rate", "pred_fraction_pct"):
        assert f">{col}<" in table, col
    assert "13411" in table and "Predicted lesion fraction (%)" in table
    # full command line verbatim (escaped) and the print rules
    assert ('<pre class="cmd"><code>bids_stroke /data /out participant --conditions native '
            "crude:2 --x &#x27;&lt;y&gt;&#x27;</code></pre>") in text
    assert "@media print" in text and "overflow:visible" in text
    assert "mm (world coordinates), L/R" in text
    assert "Registration check" not in text  # not a registered input
    with pytest.raises(ValueError, match="needs the run's threshold"):
        build_subject_report(tmp_path / "t.html", subject="01", image=f["t1"], conditions=conds)


def test_subject_report_without_reference(tiny_subject, tmp_path) -> None:
    f = tiny_subject
    out = build_subject_report(tmp_path / "r.html", subject="02", session="ses-1",
                               image=f["t1"], conditions=[{"label": "native", "spec": "native",
                                            "description": "", "image": None,
                                            "mask": f["pred"], "probseg": None}])
    text = out.read_text()
    assert "largest predicted lesion" in text and "sub-02 ses-1" in text
    assert "No metrics table" in text and "No provenance" in text
    assert "Cite bids_stroke as: bids_stroke developers." in text  # every report ends so
    assert "; image grid 24 x 28 x 20 voxels" in text and "T1w" not in text


def test_subject_report_shows_the_run_warnings(tiny_subject, tmp_path) -> None:
    f = tiny_subject
    conds = [{"label": "native", "spec": "native", "description": "", "image": None,
              "mask": f["pred"], "probseg": None}]
    text = build_subject_report(tmp_path / "w.html", subject="02", image=f["t1"],
                                conditions=conds,
                                warnings=["modality mismatch: <T2w> images"]).read_text()
    box = text[text.index('<div class="warnings"'):]
    assert "modality mismatch: &lt;T2w&gt; images" in box[:box.index("</div>")]
    assert text.index('class="warnings"') < text.index('id="metrics"')  # before everything
    clean = build_subject_report(tmp_path / "c.html", subject="02", image=f["t1"],
                                 conditions=conds).read_text()
    assert 'class="warnings"' not in clean


def test_subject_report_rejects_other_grid(tiny_subject, tmp_path) -> None:
    f = tiny_subject
    other = _save(tmp_path / "o.nii.gz", np.zeros((5, 5, 5), np.uint8), np.eye(4))
    with pytest.raises(ValueError,
                       match=r"mask shape \(5, 5, 5\) differs from the FLAIR image \(24, 28"):
        build_subject_report(tmp_path / "x.html", subject="01", image=f["t1"], suffix="FLAIR",
                             conditions=[{"label": "a", "spec": "a", "mask": other}])


# --------------------------------------------------------------------------- geometry
def test_slice_positions_in_mm_hand_computed() -> None:
    aff = np.array([[2.0, 0, 0, -90], [0, 1.0, 0, -126], [0, 0, 1.5, -72], [0, 0, 0, 1]])
    # voxel (45, 126, 48): x = 2 * 45 - 90 = 0, y = 126 - 126 = 0, z = 1.5 * 48 - 72 = 0
    assert focus_mm(aff, (45, 126, 48)) == (0.0, 0.0, 0.0)
    assert view_titles(aff, (50, 100, 10)) == ("sagittal x = 10.0 mm", "coronal y = -26.0 mm",
                                               "axial z = -57.0 mm")


def test_left_right_markers_follow_ras_orientation() -> None:
    """An LAS image shows a left-hemisphere lesion on the side marked L."""
    shape = (24, 28, 20)
    las = np.diag([-1.0, 1.0, 1.0, 1.0])
    las[0, 3] = 11.5  # voxel i sits at x = 11.5 - i: i >= 12 is the left hemisphere (x < 0)
    data = np.zeros(shape, np.float32)
    data[16:20, 10:14, 8:12] = 100.0  # x in [-7.5, -4.5]: left
    img = nib.as_closest_canonical(nib.Nifti1Image(data, las))
    ras = np.asarray(img.dataobj)
    focus = lesion_focus(ras > 0)
    fig = overlay_figure(ras, (1, 1, 1), focus, affine=img.affine)
    axes = fig.axes
    assert [a.get_title() for a in axes] == list(view_titles(img.affine, focus))
    assert axes[0].get_title().startswith("sagittal x = -")  # left of the midline
    for ax, (left, right) in zip(axes, (("P", "A"), ("L", "R"), ("L", "R")), strict=True):
        texts = {t.get_text(): t.get_position()[0] for t in ax.texts}
        assert texts[left] < 0.5 < texts[right]
    # axial view: the lesion lies in the left half of the displayed image (marker L)
    shown = axes[2].images[0].get_array()
    cols = np.nonzero(np.asarray(shown).max(axis=0) > 0)[0]
    assert cols.max() < shown.shape[1] / 2


# --------------------------------------------------------------------------- registration
def test_resample_like_hand_computed() -> None:
    src = np.zeros((10, 10, 10), np.float32)
    src[4, 5, 6] = 1
    src_aff = np.eye(4)
    tgt_aff = np.diag([2.0, 2.0, 2.0, 1.0])
    tgt_aff[:3, 3] = [0, 1, 2]  # target voxel (2, 2, 2) is at world (4, 5, 6)
    out = resample_like(src, src_aff, (5, 5, 5), tgt_aff, order=0)
    assert out.shape == (5, 5, 5) and out[2, 2, 2] == 1 and out.sum() == 1


def test_registration_check_section(tiny_subject, tmp_path) -> None:
    f = tiny_subject
    shape = (24, 28, 20)
    brain = np.zeros(shape, np.uint8)
    brain[4:20, 4:24, 3:17] = 1
    aff = np.diag([-1.0, 1.0, 1.5, 1.0])
    tmask = _save(tmp_path / "tpl-X_res-1_desc-brain_mask.nii.gz", brain, aff)
    timg = _save(tmp_path / "tpl-X_res-1_T1w.nii.gz", brain.astype(np.float32) * 50, aff)
    conds = [{"label": "native", "spec": "native", "description": "", "image": None,
              "mask": f["pred"], "probseg": None}]
    out = build_subject_report(tmp_path / "qc.html", subject="01", image=f["t1"],
                               suffix="T1w", conditions=conds, template_mask=tmask,
                               template_file=timg)
    text = out.read_text()
    assert 'id="registration"' in text and "Registration check" in text
    assert text.count("data:image/png;base64,") == 2
    assert "template brain outline (green)" in text.lower()
    assert "tpl-X_res-1_desc-brain_mask.nii.gz, tpl-X_res-1_T1w.nii.gz" in text
    fig = registration_qc_figure(np.ones(shape), (1, 1, 1.5), np.eye(4), brain,
                                 template_image=brain * 1.0, image_label="registered T1w")
    assert len(fig.axes) == 6
    assert fig.axes[0].get_title().startswith("registered T1w: sagittal x = ")
    assert fig.axes[3].get_title().startswith("template: sagittal")
    with pytest.raises(ValueError, match="does not overlap"):
        registration_qc_figure(np.ones(shape), (1, 1, 1), np.eye(4), np.zeros(shape))


def test_subject_report_interface(tiny_subject, tmp_path) -> None:
    from bids_stroke.interfaces.reports import SubjectReport

    f = tiny_subject
    common = dict(subject="01", labels=["native"], specs=["native"], descriptions=["d"],
                  images=[f["t1"]], masks=[f["pred"]], probsegs=[f["prob"]],
                  metrics_tsv=f["metrics"], metrics_name="sub-01_label-L_segmetrics.tsv",
                  command_line="bids_stroke a b participant")
    for key in ("image", "t1w"):  # t1w: the deprecated name still works
        work = tmp_path / key
        work.mkdir()
        res = SubjectReport(suffix="T2w", **{key: f["t1"]}, **common).run(cwd=str(work))
        text = Path(res.outputs.out_report).read_text()
        assert "T2w grid" in text and "bids_stroke a b participant" in text


def test_subject_report_prints_every_metric(tmp_path) -> None:
    """Headless Chromium prints the report to PDF: every metrics column is on the pages."""
    import shutil
    import subprocess

    from bids_stroke.interfaces.metrics import SEGMETRICS_COLUMNS, SegmentationMetrics

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    pdftotext = shutil.which("pdftotext")
    if chromium is None or pdftotext is None:
        pytest.skip("needs chromium and pdftotext (Debian: chromium, poppler-utils)")
    shape, aff = (20, 24, 18), np.eye(4)
    ref = np.zeros(shape, np.uint8)
    ref[5:10, 6:12, 5:9] = 1
    paths = {"ref": _save(tmp_path / "ref.nii.gz", ref, aff),
             "img": _save(tmp_path / "img.nii.gz", ref.astype(np.float32) + 1, aff)}
    labels = ["native", "crude2", "linear2", "thick5mm", "kspace2"]
    preds = [_save(tmp_path / f"{lab}.nii.gz", np.roll(ref, k, axis=0), aff)
             for k, lab in enumerate(labels)]
    work = tmp_path / "work"
    work.mkdir()
    tsv = SegmentationMetrics(reference_mask=paths["ref"], prediction_masks=preds,
                              condition_labels=labels, condition_specs=labels,
                              effective_resolutions=[1.0] * 5, participant_id="sub-01",
                              **METRICS).run(cwd=str(work)).outputs.out_tsv
    html = build_subject_report(tmp_path / "r.html", subject="01", image=paths["img"],
                                suffix="T1w", conditions=[], metrics_tsv=tsv)
    pdf = tmp_path / "r.pdf"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                    f"--print-to-pdf={pdf}", html.as_uri()], check=True, timeout=180,
                   capture_output=True)
    text = subprocess.run([pdftotext, "-layout", str(pdf), "-"], check=True,
                          capture_output=True, text=True).stdout
    for col in SEGMETRICS_COLUMNS:  # one table row per column, each printed
        assert re.search(rf"^\s*{col}\s", text, flags=re.MULTILINE), col
    assert re.search(r"^\s*column\s+meaning\s+native\s+crude2\s+linear2\s+thick5mm\s+"
                     r"kspace2\s*$", text, flags=re.MULTILINE)
