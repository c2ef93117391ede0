"""Template resolution: TemplateFlow, offline fallback, caching, brain mask resampling."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import shutil
import threading
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import requests
from templateflow.client import TemplateFlowClient

from bids_stroke import templates as tpl
from bids_stroke.cli import templates as tpl_cli

TEMPLATE = "MNI152NLin2009aSym"
T1W_NAME = f"tpl-{TEMPLATE}_res-1_T1w.nii.gz"
MASK_NAME = f"tpl-{TEMPLATE}_res-1_desc-brain_mask.nii.gz"


def _reset_state() -> None:
    tpl.clear_cache()


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bids_stroke_cache")


@pytest.fixture
def tf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_cache: Path) -> Path:
    """An isolated TEMPLATEFLOW_HOME holding TemplateFlow's empty placeholders."""
    home = tmp_path / "templateflow"
    folder = home / f"tpl-{TEMPLATE}"
    folder.mkdir(parents=True)
    for name in (T1W_NAME, MASK_NAME):
        (folder / name).write_bytes(b"")
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(home))
    monkeypatch.setenv("BIDS_STROKE_CACHE_DIR", str(shared_cache))
    monkeypatch.delenv("BIDS_STROKE_OFFLINE", raising=False)
    monkeypatch.setenv("BIDS_STROKE_TEMPLATEFLOW_TIMEOUT", "20")
    _reset_state()
    yield home
    _reset_state()


@pytest.fixture
def offline(tf_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BIDS_STROKE_OFFLINE", "1")
    return tf_home


def _nilearn_t1() -> Path:
    return tpl.nilearn_data_dir() / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"


def _forbid_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def _no(*args, **kwargs):
        raise AssertionError("TemplateFlow must not be queried here")

    monkeypatch.setattr(TemplateFlowClient, "get", _no)
    monkeypatch.setattr(TemplateFlowClient, "ls", _no)  # not even TemplateFlow's layout


# --------------------------------------------------------------------------- validity
def test_placeholders_and_broken_files_are_invalid(tmp_path: Path) -> None:
    empty = tmp_path / "empty.nii.gz"
    empty.write_bytes(b"")
    assert not tpl.is_valid_nifti(empty)
    assert not tpl.is_valid_nifti(tmp_path / "missing.nii.gz")
    truncated = tmp_path / "truncated.nii.gz"
    truncated.write_bytes(_nilearn_t1().read_bytes()[:5000])
    assert not tpl.is_valid_nifti(truncated)
    zeros = tmp_path / "zeros.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.float32), np.eye(4)), zeros)
    assert not tpl.is_valid_nifti(zeros)
    assert tpl.is_valid_nifti(_nilearn_t1())


# --------------------------------------------------------------------------- fallback
@pytest.mark.network_free
def test_placeholders_give_the_standin_without_templateflow(tf_home: Path, monkeypatch,
                                                            caplog) -> None:
    _forbid_network(monkeypatch)
    with caplog.at_level(logging.DEBUG, logger="bids_stroke.templates"):
        t1 = tpl.get_template()
        mask = tpl.get_template(suffix="mask", desc="brain")
        tpl.get_template()  # resolved once: said once
    assert t1 == _nilearn_t1()
    # the details at debug level only (every worker process resolves the files again): the
    # run says it once, in one short line (template_statement)
    assert all(r.levelno == logging.DEBUG for r in caplog.records)
    assert "stand-in" in caplog.text and "placeholders" in caplog.text
    assert "with network" not in caplog.text  # everything runs offline
    assert caplog.text.count(T1W_NAME) == 1
    standin, line = tpl.template_statement()
    assert standin and len(line) < 200 and "stand-in" in line and "network" not in line
    img = nib.load(mask)
    assert img.shape == (197, 233, 189)
    data = np.asarray(img.dataobj)
    assert set(np.unique(data)) == {0, 1}
    assert 1300 < data.sum() / 1000 < 2100  # ml, adult brain incl. ventricles
    # hole filled: lateral ventricles (no GM/WM probability) are inside the mask
    gm = nib.load(tpl.nilearn_data_dir() / tpl.NILEARN_FILES["GM"]).get_fdata()
    wm = nib.load(tpl.nilearn_data_dir() / tpl.NILEARN_FILES["WM"]).get_fdata()
    for point in ([-18, -30, 20, 1], [18, -30, 20, 1]):
        ijk = tuple(np.rint(np.linalg.inv(img.affine) @ point).astype(int)[:3])
        assert (gm[ijk] + wm[ijk]) / 255 < tpl.STANDIN_MASK_THRESHOLD
        assert data[ijk] == 1
    assert np.allclose(img.affine, nib.load(t1).affine)
    # nothing is written into site-packages
    assert not str(mask).startswith(str(tpl.nilearn_data_dir()))
    prov = tpl.template_provenance()
    assert prov["source"] == "nilearn-standin" and prov["standin"] is True
    assert prov["files"]["T1w"]["shape"] == [197, 233, 189]
    json.dumps(prov)


@pytest.mark.network_free
def test_hanging_templateflow_cannot_block_get_template(tf_home: Path, monkeypatch) -> None:
    """get_template never asks TemplateFlow's server, so a hanging one cannot block it."""
    release = threading.Event()
    calls: list[str] = []

    def _hang(self, template, **kwargs):
        calls.append(kwargs.get("suffix"))
        release.wait(60)
        raise requests.ConnectionError("late")

    monkeypatch.setattr(TemplateFlowClient, "get", _hang)
    start = time.monotonic()
    try:
        path = tpl.get_template()
        path_mask = tpl.get_template(suffix="mask", desc="brain")
    finally:
        release.set()
    assert time.monotonic() - start < 15 and calls == []
    assert path == _nilearn_t1()
    assert tpl.is_valid_nifti(path_mask)


@pytest.mark.network_free
def test_fetch_connection_error_installs_labelled_standin(tf_home: Path, monkeypatch,
                                                          caplog) -> None:
    calls: list[tuple[str, int]] = []

    def _raise(self, template, **kwargs):
        calls.append((kwargs.get("suffix"), self.cache.config.timeout))
        raise requests.ConnectionError("offline (simulated)")

    monkeypatch.setattr(TemplateFlowClient, "get", _raise)
    monkeypatch.setenv("BIDS_STROKE_TEMPLATEFLOW_TIMEOUT", "7")
    placeholder = tf_home / f"tpl-{TEMPLATE}" / T1W_NAME
    assert placeholder.stat().st_size == 0
    with caplog.at_level(logging.INFO, logger="bids_stroke.templates"):
        report = tpl.fetch()
    assert calls == [("T1w", 7), ("mask", 7)]  # TemplateFlow asked, with our timeout
    assert "ConnectionError: offline (simulated)" in caplog.text
    assert report == {T1W_NAME: "nilearn-standin", MASK_NAME: "nilearn-standin"}
    assert placeholder.read_bytes() == _nilearn_t1().read_bytes()
    assert tpl.get_template() == placeholder
    assert tpl.template_source() == "templateflow-standin"


@pytest.mark.network_free
def test_fetch_replaces_a_standin_by_the_download(tf_home: Path, monkeypatch) -> None:
    """With network, fetch empties a stand-in so that TemplateFlow downloads the real file."""
    monkeypatch.setenv("BIDS_STROKE_OFFLINE", "1")
    tpl.fetch()
    folder = tf_home / f"tpl-{TEMPLATE}"
    assert set(json.loads((folder / tpl.STANDIN_MARKER).read_text())["files"]) == {
        T1W_NAME, MASK_NAME}
    monkeypatch.delenv("BIDS_STROKE_OFFLINE")
    real_t1 = tpl.get_template(suffix="mask", desc="brain")  # any real, different file

    def _download(self, template, **kwargs):
        target = folder / tpl.templateflow_filename(template, kwargs["suffix"],
                                                    kwargs.get("desc"), 1)
        assert target.stat().st_size == 0  # the stand-in was emptied first
        if kwargs["suffix"] != "T1w":
            raise RuntimeError("Failed to download (simulated 404)")
        shutil.copyfile(real_t1, target)
        return target

    monkeypatch.setattr(TemplateFlowClient, "get", _download)
    report = tpl.fetch()
    assert report == {T1W_NAME: "templateflow", MASK_NAME: "nilearn-standin"}
    marker = json.loads((folder / tpl.STANDIN_MARKER).read_text())
    assert set(marker["files"]) == {MASK_NAME}
    assert tpl.template_source() == "templateflow"
    assert tpl.template_source(suffix="mask", desc="brain") == "templateflow-standin"
    assert tpl.template_provenance()["source"] == "mixed"


@pytest.mark.network_free
def test_fetch_does_not_swallow_unexpected_errors(tf_home: Path, monkeypatch) -> None:
    """Only network/download failures fall back to the stand-in; a bug is not hidden."""

    def _bug(self, template, **kwargs):
        raise KeyError("a programming error")

    monkeypatch.setattr(TemplateFlowClient, "get", _bug)
    with pytest.raises(KeyError):
        tpl.fetch()
    monkeypatch.setenv("BIDS_STROKE_TEMPLATEFLOW_TIMEOUT", "soon")
    with pytest.raises(tpl.TemplateError, match="BIDS_STROKE_TEMPLATEFLOW_TIMEOUT"):
        tpl.fetch()


@pytest.mark.network_free
def test_populated_templateflow_home_is_used(tf_home: Path, monkeypatch) -> None:
    _forbid_network(monkeypatch)
    real = tf_home / f"tpl-{TEMPLATE}" / T1W_NAME
    shutil.copyfile(_nilearn_t1(), real)
    assert tpl.get_template() == real
    assert tpl.template_source() == "templateflow"


@pytest.mark.network_free
def test_resolved_files_are_cached_until_clear_cache(tf_home: Path, monkeypatch) -> None:
    _forbid_network(monkeypatch)
    assert tpl.get_template() == _nilearn_t1()
    real = tf_home / f"tpl-{TEMPLATE}" / T1W_NAME
    shutil.copyfile(_nilearn_t1(), real)
    assert tpl.get_template() == _nilearn_t1()  # cached for the process
    tpl.clear_cache()
    assert tpl.get_template() == real
    # another TEMPLATEFLOW_HOME is another cache entry, without any reset
    other = tf_home.parent / "other_home"
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(other))
    assert tpl.get_template() == _nilearn_t1()


@pytest.mark.network_free
def test_fetch_installs_labelled_standin(offline: Path, monkeypatch, capsys) -> None:
    _forbid_network(monkeypatch)
    assert tpl_cli.main(["fetch", "--dest", str(offline)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["files"] == {T1W_NAME: "nilearn-standin", MASK_NAME: "nilearn-standin"}
    folder = offline / f"tpl-{TEMPLATE}"
    assert (folder / T1W_NAME).read_bytes() == _nilearn_t1().read_bytes()
    marker = json.loads((folder / tpl.STANDIN_MARKER).read_text())
    assert set(marker["files"]) == {T1W_NAME, MASK_NAME}
    monkeypatch.delenv("BIDS_STROKE_OFFLINE")
    assert tpl.get_template() == folder / T1W_NAME
    prov = tpl.template_provenance()
    assert prov["source"] == "templateflow-standin" and prov["standin"] is True
    assert tpl_cli.main(["info"]) == 0
    assert json.loads(capsys.readouterr().out)["source"] == "templateflow-standin"


@pytest.mark.network_free
def test_fetch_no_standin_fails_loudly(offline: Path, monkeypatch, capsys) -> None:
    """Image builds without ALLOW_TEMPLATE_STANDIN: no TemplateFlow file -> exit 1, nothing
    installed (a stand-in must never hide behind TemplateFlow's names silently)."""
    _forbid_network(monkeypatch)
    assert tpl_cli.main(["fetch", "--dest", str(offline), "--no-standin"]) == 1
    err = capsys.readouterr().err
    assert "cannot fetch" in err and "ALLOW_TEMPLATE_STANDIN=1" in err
    folder = offline / f"tpl-{TEMPLATE}"
    # (TemplateFlow's package may leave its empty placeholder there, never a usable image)
    assert not tpl.is_valid_nifti(folder / T1W_NAME)
    assert not (folder / tpl.STANDIN_MARKER).exists()


@pytest.mark.network_free
def test_templateflow_api_returns_fetched_files(offline: Path) -> None:
    """TemplateFlow's own client returns the installed files without the network."""
    tpl.fetch(offline)
    client = TemplateFlowClient(root=offline, autoupdate=False, timeout=1)
    got = client.get(TEMPLATE, resolution=1, suffix="mask", desc="brain")
    assert Path(got) == offline / f"tpl-{TEMPLATE}" / MASK_NAME
    assert tpl.is_valid_nifti(got)


def test_unknown_template_offline_raises(offline: Path) -> None:
    with pytest.raises(tpl.TemplateError, match="no offline stand-in"):
        tpl.get_template("MNI152NLin6Asym")
    with pytest.raises(tpl.TemplateError):
        tpl.get_template(suffix="T2w")


# --------------------------------------------------------------------------- resolution 2
def test_resolution_2_is_resampled_and_deterministic(offline: Path, tmp_path, monkeypatch
                                                     ) -> None:
    t1_2 = tpl.get_template(resolution=2)
    mask_2 = tpl.get_template(suffix="mask", desc="brain", resolution=2)
    img = nib.load(t1_2)
    assert img.shape == (99, 117, 95)
    assert np.allclose(img.header.get_zooms()[:3], 2.0)
    assert np.allclose(img.affine[:3, 3], nib.load(_nilearn_t1()).affine[:3, 3])
    m1 = np.asarray(nib.load(tpl.get_template(suffix="mask", desc="brain")).dataobj, int)
    m2 = np.asarray(nib.load(mask_2).dataobj, int)
    assert set(np.unique(m2)) == {0, 1}
    assert abs(m2.sum() * 8 - m1.sum()) / m1.sum() < 0.02
    first = hashlib.sha256(Path(t1_2).read_bytes()).hexdigest()
    # regenerate from scratch in another cache: byte-identical
    monkeypatch.setenv("BIDS_STROKE_CACHE_DIR", str(tmp_path / "other_cache"))
    again = tpl.get_template(resolution=2)
    assert again != t1_2
    assert hashlib.sha256(again.read_bytes()).hexdigest() == first
    assert gzip.decompress(again.read_bytes())  # a valid gzip stream


# --------------------------------------------------------------------------- brain_mask_like
def _mask1(offline: Path) -> nib.Nifti1Image:
    return nib.load(tpl.get_template(suffix="mask", desc="brain"))


def test_brain_mask_like_on_2mm_grid(offline: Path) -> None:
    ref = _mask1(offline)
    aff = ref.affine.copy()
    aff[:3, :3] *= 2
    target = nib.Nifti1Image(np.zeros((99, 117, 95), np.float32), aff)
    out = tpl.brain_mask_like(target)
    assert out.shape == target.shape and out.get_data_dtype() == np.uint8
    assert np.allclose(out.affine, aff)
    full = np.asarray(ref.dataobj)
    expected = np.zeros(target.shape, np.uint8)
    sub = full[::2, ::2, ::2]
    expected[: sub.shape[0], : sub.shape[1], : sub.shape[2]] = sub
    assert np.array_equal(np.asarray(out.dataobj), expected)


def test_brain_mask_like_on_cropped_shifted_flipped_grid(offline: Path, tmp_path) -> None:
    ref = _mask1(offline)
    full = np.asarray(ref.dataobj)
    start = np.array([30, 40, 20])
    shape = (100, 120, 90)
    aff = ref.affine.copy()
    aff[:3, 3] = (ref.affine @ [*start, 1])[:3]
    out = tpl.brain_mask_like(nib.Nifti1Image(np.zeros(shape, np.int16), aff))
    crop = full[start[0]: start[0] + shape[0], start[1]: start[1] + shape[1],
                start[2]: start[2] + shape[2]]
    assert np.array_equal(np.asarray(out.dataobj), crop)

    # x axis flipped (LAS storage) and partly outside the template field of view
    flip = ref.affine.copy()
    flip[0, 0] = -1.0
    flip[:3, 3] = [110.0, -134.0, -72.0]  # x from +110 mm down; template ends at +98 mm
    target = tmp_path / "las.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((220, 233, 189), np.uint8), flip), target)
    out2 = np.asarray(tpl.brain_mask_like(target).dataobj)
    # voxel i sits at x = 110 - i, template voxel at x is x + 98
    for i in (12, 50, 100, 150):
        assert np.array_equal(out2[i], full[110 - i + 98])
    assert not out2[:12].any()  # outside the template: 0


def _rotation(deg: float, axis: int) -> np.ndarray:
    c, s = np.cos(np.deg2rad(deg)), np.sin(np.deg2rad(deg))
    i, j = [k for k in range(3) if k != axis]
    rot = np.eye(4)
    rot[i, i], rot[i, j], rot[j, i], rot[j, j] = c, -s, s, c
    return rot


@pytest.mark.parametrize("name", ["same", "2mm", "shift_half", "flip_crop", "aniso_1x1x5",
                                  "oblique", "outside"])
def test_nearest_onto_grid_equals_nilearn(offline: Path, name: str) -> None:
    """The brain mask's nearest-neighbour transfer equals nilearn's resample_to_img (the
    implementation it replaced), voxel for voxel, on grids that exercise every path."""
    from nilearn.image import resample_to_img

    from bids_stroke.templates.resample import nearest_onto_grid

    ref = _mask1(offline)
    aff = ref.affine.copy()
    shape: tuple[int, ...] = ref.shape[:3]
    if name == "2mm":
        aff[:3, :3] *= 2
        shape = (99, 117, 95)
    elif name == "shift_half":
        aff[:3, 3] += [0.5, -0.5, 0.25]
    elif name == "flip_crop":
        aff[0, 0] = -1.0
        aff[:3, 3] = [110.0, -120.0, -60.0]
        shape = (200, 180, 150)
    elif name == "aniso_1x1x5":
        aff[2, 2] = 5.0
        shape = (197, 233, 38)
    elif name == "oblique":
        aff = _rotation(7.0, 2) @ _rotation(-4.0, 0) @ aff
        aff[:3, 3] += [1.3, -2.1, 0.7]
    elif name == "outside":  # partly outside the template's field of view
        aff[:3, 3] += [60.0, 0.0, -40.0]
    grid = nib.Nifti1Image(np.zeros(shape, np.uint8), aff)
    expected = np.asarray(resample_to_img(ref, grid, interpolation="nearest",
                                          force_resample=True, copy_header=True).dataobj)
    got = nearest_onto_grid(np.asarray(ref.dataobj), ref.affine, aff, shape)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    assert np.array_equal(got, expected)
    assert np.array_equal(np.asarray(tpl.brain_mask_like(grid).dataobj), expected > 0)


def test_brain_mask_like_does_not_import_nilearn_image(offline: Path) -> None:
    """The brain mask of every image is made without nilearn's image module (~0.9 s of
    imports per process, for one resampling call)."""
    import subprocess
    import sys

    code = ("import sys, numpy as np, nibabel as nib\n"
            "from bids_stroke.templates import brain_mask_like, get_template\n"
            "ref = nib.load(get_template(suffix='mask', desc='brain'))\n"
            "aff = ref.affine.copy(); aff[:3, :3] *= 2\n"
            "out = brain_mask_like(nib.Nifti1Image(np.zeros((99, 117, 95), np.uint8), aff))\n"
            "assert out.get_fdata().any()\n"
            "print(sorted(m for m in sys.modules if m.startswith('nilearn.')))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "nilearn.image" not in proc.stdout and "nilearn.signal" not in proc.stdout
