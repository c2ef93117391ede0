"""Tests of the synthetic stroke-lesion BIDS dataset generator and its CLI."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from bids_stroke.cli.demo import main as demo_main
from bids_stroke.demo import (
    SPACE,
    _grid,
    demo_template_paths,
    generate_subject,
    make_demo_dataset,
)

RES = 3.0
N_SUBJECTS = 3
ATLAS_IDS = ["r001s001", "r001s002", "r001s003"]


def _tree_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _participants(root: Path) -> list[dict[str, str]]:
    with (root / "participants.tsv").open() as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@pytest.fixture(scope="module")
def atlas_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("atlas") / "ds"
    return make_demo_dataset(out, n_subjects=N_SUBJECTS, seed=7, resolution_mm=RES, progress=False)


def _atlas_paths(root: Path, label: str) -> tuple[Path, Path]:
    anat = root / f"sub-{label}" / "ses-1" / "anat"
    prefix = f"sub-{label}_ses-1_space-{SPACE}"
    return anat / f"{prefix}_T1w.nii.gz", anat / f"{prefix}_label-L_desc-T1lesion_mask.nii.gz"


def test_atlas_layout_and_names(atlas_ds: Path) -> None:
    files = {p.relative_to(atlas_ds).as_posix() for p in atlas_ds.rglob("*") if p.is_file()}
    expected = {"dataset_description.json", "participants.tsv", "participants.json", "README",
                ".bids_stroke_demo.json"}
    for label in ATLAS_IDS:
        t1, mask = _atlas_paths(atlas_ds, label)
        for p in (t1, mask):
            expected.add(p.relative_to(atlas_ds).as_posix())
            expected.add(p.relative_to(atlas_ds).as_posix().replace(".nii.gz", ".json"))
    assert files == expected

    desc = json.loads((atlas_ds / "dataset_description.json").read_text())
    assert desc["BIDSVersion"] == "1.8.0"
    assert desc["Name"] and desc["License"] and desc["Authors"]
    assert desc["GeneratedBy"][0]["Name"] == "bids_stroke demo"
    assert "seed=7" in desc["GeneratedBy"][0]["Description"]

    rows = _participants(atlas_ds)
    assert [r["participant_id"] for r in rows] == [f"sub-{s}" for s in ATLAS_IDS]
    assert list(rows[0]) == ["participant_id", "lesion_volume_ml", "n_lesions", "seed"]
    assert all(r["seed"] == "7" for r in rows)
    assert set(json.loads((atlas_ds / "participants.json").read_text())) == set(rows[0])


def test_images_masks_geometry_and_lesions(atlas_ds: Path) -> None:
    shape, affine = _grid(RES)
    brain = generate_subject(1, seed=0, resolution_mm=RES).brain_mask
    x_mm = affine[0, 0] * np.arange(shape[0]) + affine[0, 3]
    for label, row in zip(ATLAS_IDS, _participants(atlas_ds), strict=True):
        t1_path, mask_path = _atlas_paths(atlas_ds, label)
        t1_img, mask_img = nib.load(t1_path), nib.load(mask_path)
        for img in (t1_img, mask_img):
            assert img.shape == shape
            np.testing.assert_allclose(img.affine, affine)
            assert int(img.header["sform_code"]) == 4
            assert img.header.get_zooms() == (RES, RES, RES)
        assert mask_img.get_data_dtype() == np.uint8
        t1 = np.asarray(t1_img.dataobj, dtype=np.float64)
        mask = np.asarray(mask_img.dataobj)
        assert set(np.unique(mask)) == {0, 1}
        lesion = mask.astype(bool)

        volume_ml = lesion.sum() * RES**3 / 1000.0
        assert 0.5 <= volume_ml <= 110.0
        assert float(row["lesion_volume_ml"]) == pytest.approx(volume_ml, abs=1e-3)
        _, n_comp = ndimage.label(lesion, structure=np.ones((3, 3, 3)))
        assert int(row["n_lesions"]) == n_comp >= 1
        # Inside the brain and within one hemisphere.
        assert not (lesion & ~brain).any()
        xs = x_mm[np.nonzero(lesion)[0]]
        assert (xs > 0).all() or (xs < 0).all()

        # Hypointense: darker than the tissue right around it, and the mask is the darkened set.
        ring = ndimage.binary_dilation(lesion, iterations=2) & ~lesion & brain
        assert t1[lesion].mean() < 0.8 * t1[ring].mean()
        sidecar = json.loads(mask_path.with_name(mask_path.name[:-7] + ".json").read_text())
        assert sidecar["Type"] == "Lesion"
        assert sidecar["NumberOfLesions"] == n_comp
        t1_meta = json.loads(t1_path.with_name(t1_path.name[:-7] + ".json").read_text())
        assert t1_meta["SyntheticParameters"]["seed"] == 7


def test_template_grid_matches_nilearn_template() -> None:
    shape, affine = _grid(1.0)
    ref = nib.load(demo_template_paths()["t1"])
    assert shape == (197, 233, 189) == ref.shape
    np.testing.assert_allclose(affine, ref.affine)
    # Any resolution keeps the MNI world coordinates of the first voxel and the field of view.
    for res in (1.5, 2.0, 3.0):
        shape_r, affine_r = _grid(res)
        np.testing.assert_allclose(affine_r[:3, 3], ref.affine[:3, 3])
        np.testing.assert_allclose(np.diag(affine_r)[:3], res)
        extent = (np.asarray(shape_r) - 1) * res
        assert (
            (extent <= np.asarray(ref.shape) - 1) & (extent > np.asarray(ref.shape) - 1 - res)
        ).all()


def test_lesion_population_statistics() -> None:
    subjects = [generate_subject(n, seed=3, resolution_mm=4.0) for n in range(1, 31)]
    volumes = np.array([s.lesion_volume_ml for s in subjects])
    n_lesions = np.array([s.n_lesions for s in subjects])
    assert ((volumes >= 0.5) & (volumes <= 110.0)).all()
    # Log-uniform over 1-100 ml: both small and large lesions occur.
    assert (volumes < 5.0).any() and (volumes > 30.0).any()
    multifocal = (n_lesions >= 2).mean()
    assert 0.1 <= multifocal <= 0.6
    assert n_lesions.max() <= 4
    hemispheres = {s.params["hemisphere"] for s in subjects}
    assert hemispheres == {"L", "R"}
    for s in subjects:
        assert s.t1w.dtype == np.int16 and s.mask.dtype == np.uint8
        # Skull-stripped: zero background, signal in (and only near) the brain.
        assert s.t1w[0, 0, 0] == 0 and (s.t1w > 0).mean() < 0.5
        near_brain = ndimage.binary_dilation(s.brain_mask, iterations=2)
        assert not (s.t1w[~near_brain] > 0).any()
        assert s.t1w.min() >= 0


def test_deterministic_byte_identical(atlas_ds: Path, tmp_path: Path) -> None:
    again = make_demo_dataset(
        tmp_path / "again", n_subjects=N_SUBJECTS, seed=7, resolution_mm=RES, progress=False
    )
    assert _tree_hashes(again) == _tree_hashes(atlas_ds)
    # gzip header carries no timestamp.
    t1, _ = _atlas_paths(again, ATLAS_IDS[0])
    assert t1.read_bytes()[4:8] == b"\x00\x00\x00\x00"
    with gzip.open(t1) as fh:
        assert fh.read(4)  # valid gzip stream

    other = make_demo_dataset(
        tmp_path / "other", n_subjects=1, seed=8, resolution_mm=RES, progress=False
    )
    t1_other, mask_other = _atlas_paths(other, ATLAS_IDS[0])
    t1_ref, mask_ref = _atlas_paths(atlas_ds, ATLAS_IDS[0])
    assert t1_other.read_bytes() != t1_ref.read_bytes()
    assert mask_other.read_bytes() != mask_ref.read_bytes()


def test_subject_offset_gives_same_subjects_under_new_numbers(
    atlas_ds: Path, tmp_path: Path
) -> None:
    shifted = make_demo_dataset(
        tmp_path / "shifted",
        n_subjects=2,
        seed=7,
        resolution_mm=RES,
        subject_offset=2,
        progress=False,
    )
    subs = sorted(p.name for p in shifted.glob("sub-*"))
    assert subs == ["sub-r001s003", "sub-r001s004"]
    # Subject 3 depends only on (seed, number): identical to the one in the fixture.
    for a, b in zip(
        _atlas_paths(shifted, "r001s003"), _atlas_paths(atlas_ds, "r001s003"), strict=True
    ):
        assert a.read_bytes() == b.read_bytes()
    # Subject 4 is a different subject from 1-3.
    t1_new = _atlas_paths(shifted, "r001s004")[1].read_bytes()
    assert all(t1_new != _atlas_paths(atlas_ds, s)[1].read_bytes() for s in ATLAS_IDS)


def test_no_sessions_and_plain_layout(tmp_path: Path) -> None:
    flat = make_demo_dataset(
        tmp_path / "flat", n_subjects=1, resolution_mm=4.0, sessions=False, progress=False
    )
    prefix = f"sub-r001s001_space-{SPACE}"
    assert (flat / "sub-r001s001" / "anat" / f"{prefix}_T1w.nii.gz").is_file()
    assert (
        flat / "sub-r001s001" / "anat" / f"{prefix}_label-L_desc-T1lesion_mask.nii.gz"
    ).is_file()
    assert not list(flat.rglob("ses-*"))

    plain = make_demo_dataset(
        tmp_path / "plain", n_subjects=2, resolution_mm=4.0, layout="plain", progress=False
    )
    for label in ("01", "02"):
        pre = f"sub-{label}_space-{SPACE}"
        assert (plain / f"sub-{label}" / "anat" / f"{pre}_T1w.nii.gz").is_file()
        deriv = plain / "derivatives" / "lesions" / f"sub-{label}" / "anat"
        assert (deriv / f"{pre}_label-L_desc-lesion_mask.nii.gz").is_file()
    assert not list(plain.glob("sub-*/anat/*_mask.nii.gz"))
    ddesc = json.loads((plain / "derivatives" / "lesions" / "dataset_description.json").read_text())
    assert ddesc["DatasetType"] == "derivative"
    assert ddesc["GeneratedBy"][0]["Name"] == "bids_stroke demo"
    # Same subject number and seed: the plain image equals the atlas image.
    plain_t1 = nib.load(plain / "sub-01" / "anat" / f"sub-01_space-{SPACE}_T1w.nii.gz")
    flat_t1 = nib.load(flat / "sub-r001s001" / "anat" / f"{prefix}_T1w.nii.gz")
    np.testing.assert_array_equal(np.asarray(plain_t1.dataobj), np.asarray(flat_t1.dataobj))


def test_pybids_discovers_images_and_masks(atlas_ds: Path) -> None:
    bids = pytest.importorskip("bids")
    layout = bids.BIDSLayout(str(atlas_ds), validate=False)
    assert sorted(layout.get_subjects()) == ATLAS_IDS
    assert layout.get_sessions() == ["1"]
    t1s = layout.get(suffix="T1w", extension=".nii.gz", space=SPACE)
    masks = layout.get(suffix="mask", label="L", desc="T1lesion", extension=".nii.gz")
    assert len(t1s) == len(masks) == N_SUBJECTS


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_subjects": 0},
        {"seed": -1},
        {"resolution_mm": 0.1},
        {"resolution_mm": float("nan")},
        {"layout": "fmriprep"},
        {"subject_offset": -1},
    ],
)
def test_invalid_arguments_raise(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(ValueError):
        make_demo_dataset(tmp_path / "bad", progress=False, **kwargs)
    assert not (tmp_path / "bad" / "dataset_description.json").exists()


def test_cli_writes_refuses_and_forces(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "cli"
    argv = [str(out), "--n-subjects", "1", "--resolution", "4", "--quiet", "--seed", "2"]
    assert demo_main(argv) == 0
    assert capsys.readouterr().out.strip() == str(out.absolute())
    assert (out / "sub-r001s001" / "ses-1" / "anat").is_dir()

    # The same command again reuses the dataset: exit 0, the path, one line, nothing changed.
    before = _tree_hashes(out)
    assert demo_main(argv) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out.absolute())
    assert "reusing it" in captured.err and captured.err.count("\n") == 1
    assert _tree_hashes(out) == before

    # Other options without --force: exit 73, one line naming the difference, nothing changed.
    assert demo_main([*argv[:-1], "3"]) == 73
    err = capsys.readouterr().err.strip()
    assert "--force" in err and "seed 2 instead of 3" in err and "\n" not in err
    assert _tree_hashes(out) == before

    # A modified file is not reused.
    sidecar = next(out.rglob("*_T1w.json"))
    sidecar.write_text(sidecar.read_text() + " ")
    assert demo_main(argv) == 73
    assert "was modified" in capsys.readouterr().err

    # --force replaces a previous demo dataset (stale subjects removed).
    (out / "sub-r001s009").mkdir()
    assert demo_main([*argv, "--force", "--no-sessions"]) == 0
    assert not (out / "sub-r001s009").exists()
    assert (out / "sub-r001s001" / "anat").is_dir() and not (
        out / "sub-r001s001" / "ses-1"
    ).exists()


def test_cli_force_keeps_foreign_files(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "foreign"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    argv = [str(out), "--n-subjects", "1", "--resolution", "4", "--quiet", "--layout", "plain"]
    assert demo_main(argv) == 73
    assert demo_main([*argv, "--force"]) == 0
    assert (out / "notes.txt").read_text() == "keep me"
    assert (out / "sub-01" / "anat").is_dir()
    capsys.readouterr()

    (tmp_path / "afile").write_text("x")
    assert demo_main([str(tmp_path / "afile"), "--quiet"]) == 73
    with pytest.raises(SystemExit) as exc:
        demo_main([str(tmp_path / "new"), "--n-subjects", "0"])
    assert exc.value.code == 64  # usage error (README "Exit codes")
    assert not (tmp_path / "new").exists()


# sha256 over (relative path, sha256 of the file) of make_demo_dataset(n_subjects=2, seed=0,
# resolution_mm=4) without dataset_description.json and the reuse state (both carry the package
# version), recorded
# from the single-module generator before it became the bids_stroke.demo package. A change
# here changes every demo dataset (and the bundled model's training data): regenerate only for
# an intended change, with numpy/scipy in their pinned ranges.
DEMO_DIGEST_4MM = "5d53ea04283a05148a0f8ada13fc51b4a0ff78b89080be8fad4c04092d9b26bf"


def test_demo_bytes_pinned(tmp_path: Path) -> None:
    root = make_demo_dataset(tmp_path / "d", n_subjects=2, seed=0, resolution_mm=4.0,
                             progress=False)
    digest = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name not in ("dataset_description.json", ".bids_stroke_demo.json"):
            digest.update(p.relative_to(root).as_posix().encode() + b"\0"
                          + hashlib.sha256(p.read_bytes()).digest())
    assert digest.hexdigest() == DEMO_DIGEST_4MM


def test_reuse_state_records_options_and_detects_changes(atlas_ds: Path, tmp_path: Path) -> None:
    from bids_stroke.demo.state import STATE_FILE, demo_options, reuse_problem

    options = demo_options(n_subjects=N_SUBJECTS, seed=7, resolution_mm=RES, layout="atlas",
                           sessions=None, subject_offset=0, lesion_masks=None)
    assert options["sessions"] is True  # atlas layout: sessions by default
    assert reuse_problem(atlas_ds, options) is None
    assert reuse_problem(atlas_ds, {**options, "sessions": False}) == (
        "made with sessions True instead of False")
    assert "resolution-mm" in reuse_problem(atlas_ds, {**options, "resolution_mm": 2.0})
    state = json.loads((atlas_ds / STATE_FILE).read_text())
    assert len(state["Files"]) == 4 * N_SUBJECTS + 4  # 2 NIfTI + 2 JSON per subject, metadata
    copy = tmp_path / "copy"
    shutil.copytree(atlas_ds, copy)
    t1, _ = _atlas_paths(copy, ATLAS_IDS[1])
    t1.unlink()
    assert reuse_problem(copy, options) == f"{t1.relative_to(copy).as_posix()} is missing"
    (copy / STATE_FILE).unlink()
    assert "no .bids_stroke_demo.json" in reuse_problem(copy, options)

    mask = tmp_path / "m.nii.gz"
    mask.write_bytes(b"one")
    with_mask = demo_options(n_subjects=1, seed=0, resolution_mm=2, layout="plain",
                             sessions=None, subject_offset=0, lesion_masks=[mask])
    mask.write_bytes(b"two")  # same name, other content: other options
    assert with_mask != demo_options(n_subjects=1, seed=0, resolution_mm=2, layout="plain",
                                     sessions=None, subject_offset=0, lesion_masks=[mask])
    assert with_mask["sessions"] is False
