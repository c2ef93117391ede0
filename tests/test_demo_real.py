"""Demo subjects whose lesion shapes come from real masks (``lesion_masks=``).

Two groups of tests:

* handmade masks written to ``tmp_path`` (always run, so the feature is tested on machines
  without the developers' ``shared/`` folder);
* the 131 real LESYMAP stroke masks in ``../shared/data/real/lesymap/lesions`` (skipped when
  that folder is absent, as it is for users and on CI).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nibabel.processing import resample_from_to
from scipy import ndimage

from bids_stroke.cli.demo import main as demo_main
from bids_stroke.demo import (
    SPACE,
    LesionMaskError,
    _grid,
    find_lesion_masks,
    generate_subject,
    load_lesion_shape,
    make_demo_dataset,
)

SHARED = Path(
    os.environ.get("BIDS_STROKE_SHARED") or Path(__file__).resolve().parents[2] / "shared"
)
LESYMAP = SHARED / "data" / "real" / "lesymap" / "lesions"

# Handmade masks: a 2 mm source grid whose voxel centres contain every 4 mm demo voxel centre,
# so nearest-neighbour resampling is exact (no rounding ties).
SRC_RES = 2.0
SRC_SHAPE = (99, 117, 95)
SRC_AFFINE = np.diag([SRC_RES, SRC_RES, SRC_RES, 1.0])
SRC_AFFINE[:3, 3] = (-98.0, -134.0, -72.0)
RES = 4.0


def _tree_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _participants(root: Path) -> list[dict[str, str]]:
    with (root / "participants.tsv").open() as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _paths(root: Path, number: int) -> tuple[Path, Path]:
    label = f"r001s{number:03d}"
    anat = root / f"sub-{label}" / "ses-1" / "anat"
    prefix = f"sub-{label}_ses-1_space-{SPACE}"
    return anat / f"{prefix}_T1w.nii.gz", anat / f"{prefix}_label-L_desc-T1lesion_mask.nii.gz"


def _sidecar(path: Path) -> dict:
    return json.loads(path.with_name(path.name[: -len(".nii.gz")] + ".json").read_text())


def _ellipsoid(
    centre_mm: tuple[float, float, float], radii_mm: tuple[float, float, float]
) -> np.ndarray:
    ijk = np.indices(SRC_SHAPE, dtype=np.float64)
    rho2 = np.zeros(SRC_SHAPE)
    for a in range(3):
        mm = SRC_AFFINE[a, a] * ijk[a] + SRC_AFFINE[a, 3]
        rho2 += ((mm - centre_mm[a]) / radii_mm[a]) ** 2
    return rho2 <= 1.0


def _write_mask(path: Path, data: np.ndarray, affine: np.ndarray = SRC_AFFINE) -> Path:
    nib.save(nib.Nifti1Image(data.astype(np.uint8), affine), path)
    return path


@pytest.fixture(scope="module")
def handmade(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("masks")
    # Left and right white-matter lesions (about 33 and 25 ml), a 2-voxel speck (0.016 ml,
    # below the 0.5 ml minimum) and a lesion outside the brain (nothing left after the brain
    # mask). A non-NIfTI file must be ignored by the folder search.
    masks = {
        "left": _write_mask(folder / "left.nii.gz", _ellipsoid((-28, -10, 22), (20, 25, 16))),
        "right": _write_mask(folder / "right.nii", _ellipsoid((30, 5, 10), (15, 22, 18))),
    }
    speck = np.zeros(SRC_SHAPE, dtype=bool)
    speck[40:42, 60, 60] = True
    odd = folder / "odd"
    odd.mkdir()
    masks["speck"] = _write_mask(odd / "speck.nii.gz", speck)
    masks["outside"] = _write_mask(odd / "outside.nii.gz", _ellipsoid((0, 0, 110), (8, 8, 8)))
    (folder / "notes.txt").write_text("not a mask")
    masks["folder"] = folder
    return masks


def _expected_mask(source: Path, res: float, brain: np.ndarray) -> np.ndarray:
    """Independent reference: nibabel's nearest-neighbour resampling, then the brain mask."""
    shape, affine = _grid(res)
    ref = resample_from_to(nib.load(source), (shape, affine), order=0)
    return (np.asarray(ref.dataobj) >= 0.5) & brain


def _check_rendering(t1: np.ndarray, lesion: np.ndarray, brain: np.ndarray) -> None:
    assert not (lesion & ~brain).any()
    ring = ndimage.binary_dilation(lesion, iterations=2) & ~lesion & brain
    assert t1[lesion].mean() < 0.8 * t1[ring].mean()
    assert (t1[lesion] > 0).all()  # rendered inside the head, not cut out


# --------------------------------------------------------------------------------------
# Handmade masks (always run)
# --------------------------------------------------------------------------------------
def test_find_lesion_masks(handmade: dict[str, Path], tmp_path: Path) -> None:
    folder = handmade["folder"]
    assert [p.name for p in find_lesion_masks(folder)] == ["left.nii.gz", "right.nii"]
    assert [p.name for p in find_lesion_masks(f"{folder}/odd/*.nii.gz")] == [
        "outside.nii.gz",
        "speck.nii.gz",
    ]
    assert find_lesion_masks(handmade["left"]) == [handmade["left"]]
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    for spec in (tmp_path / "empty", tmp_path / "missing", f"{tmp_path}/*.nii.gz"):
        with pytest.raises(ValueError, match="no NIfTI lesion masks") as exc:
            find_lesion_masks(spec)
        assert "\n" not in str(exc.value)


def test_handmade_masks_dataset(handmade: dict[str, Path], tmp_path: Path) -> None:
    masks = [handmade["right"], handmade["left"]]  # order given must not matter
    root = make_demo_dataset(
        tmp_path / "ds", n_subjects=2, seed=4, resolution_mm=RES, lesion_masks=masks,
        progress=False,
    )  # fmt: skip
    brain = generate_subject(1, seed=0, resolution_mm=RES).brain_mask
    rows = _participants(root)
    assert list(rows[0]) == ["participant_id", "lesion_volume_ml", "n_lesions", "seed",
                             "lesion_source"]  # fmt: skip
    # Without replacement: the two subjects get the two masks.
    assert sorted(r["lesion_source"] for r in rows) == ["left.nii.gz", "right.nii"]
    assert "lesion_source" in json.loads((root / "participants.json").read_text())
    by_name = {"left.nii.gz": handmade["left"], "right.nii": handmade["right"]}
    for number, row in enumerate(rows, start=1):
        t1_path, mask_path = _paths(root, number)
        mask_img = nib.load(mask_path)
        np.testing.assert_allclose(mask_img.affine, _grid(RES)[1])
        mask = np.asarray(mask_img.dataobj)
        assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}
        lesion = mask.astype(bool)
        source = by_name[row["lesion_source"]]
        np.testing.assert_array_equal(lesion, _expected_mask(source, RES, brain))
        volume = lesion.sum() * RES**3 / 1000.0
        assert float(row["lesion_volume_ml"]) == pytest.approx(volume, abs=1e-3)
        src_volume = np.asarray(nib.load(source).dataobj).sum() * SRC_RES**3 / 1000.0
        assert volume == pytest.approx(src_volume, rel=0.25)
        _check_rendering(np.asarray(nib.load(t1_path).dataobj, dtype=np.float64), lesion, brain)
        meta = _sidecar(mask_path)
        assert meta["LesionSource"] == source.name
        assert meta["SourceLesionVolume"] == pytest.approx(src_volume, abs=1e-3)
        params = _sidecar(t1_path)["SyntheticParameters"]
        assert params["lesion_source"] == source.name
        assert params["hemisphere"] == ("L" if source.name.startswith("left") else "R")
        assert str(tmp_path) not in mask_path.with_suffix("").with_suffix(".json").read_text()
    assert "lesion_masks=<2 files>" in (root / "README").read_text()

    # Deterministic: byte-identical again, whatever order the masks are given in.
    again = make_demo_dataset(
        tmp_path / "again", n_subjects=2, seed=4, resolution_mm=RES,
        lesion_masks=masks[::-1], progress=False,
    )  # fmt: skip
    assert _tree_hashes(again) == _tree_hashes(root)


def test_choice_depends_on_seed_and_number_only(handmade: dict[str, Path], tmp_path: Path) -> None:
    masks = [handmade["left"], handmade["right"]]
    full = make_demo_dataset(
        tmp_path / "full", n_subjects=3, seed=11, resolution_mm=RES, lesion_masks=masks,
        progress=False,
    )  # fmt: skip
    sources = [r["lesion_source"] for r in _participants(full)]
    # Two masks for three subjects: all used before any repeats, then dealt out again.
    assert sorted(sources[:2]) == ["left.nii.gz", "right.nii"] and sources[2] == sources[0]
    shifted = make_demo_dataset(
        tmp_path / "shifted", n_subjects=1, seed=11, resolution_mm=RES, lesion_masks=masks,
        subject_offset=1, progress=False,
    )  # fmt: skip
    assert _participants(shifted)[0]["lesion_source"] == sources[1]
    for a, b in zip(_paths(shifted, 2), _paths(full, 2), strict=True):
        assert a.read_bytes() == b.read_bytes()
    # generate_subject with the chosen mask gives the same subject.
    subj = generate_subject(2, seed=11, resolution_mm=RES, lesion_mask=by_name(masks, sources[1]))
    np.testing.assert_array_equal(subj.mask, np.asarray(nib.load(_paths(full, 2)[1]).dataobj))
    np.testing.assert_array_equal(subj.t1w, np.asarray(nib.load(_paths(full, 2)[0]).dataobj))


def by_name(paths: list[Path], name: str) -> Path:
    return next(p for p in paths if p.name == name)


def test_small_masks_skipped_with_warning(handmade: dict[str, Path], tmp_path: Path) -> None:
    masks = [handmade["speck"], handmade["outside"], handmade["left"]]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        root = make_demo_dataset(
            tmp_path / "ds", n_subjects=2, seed=0, resolution_mm=RES, lesion_masks=masks,
            progress=False,
        )  # fmt: skip
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert sum("speck.nii.gz" in m for m in messages) == 1
    assert sum("outside.nii.gz" in m for m in messages) == 1
    assert all("< 0.5 ml" in m for m in messages)
    assert [r["lesion_source"] for r in _participants(root)] == ["left.nii.gz"] * 2

    with pytest.raises(LesionMaskError, match=r"speck\.nii\.gz"):
        generate_subject(1, resolution_mm=RES, lesion_mask=handmade["speck"])
    shape = load_lesion_shape(handmade["speck"], RES)
    assert shape.source == "speck.nii.gz" and shape.volume_ml < 0.5


def test_unusable_inputs_raise_before_writing(handmade: dict[str, Path], tmp_path: Path) -> None:
    bad_4d = _write_mask(tmp_path / "vol4d.nii.gz", np.zeros((4, 4, 4, 2)))
    cases: list[list[Path]] = [
        [],
        [tmp_path / "absent.nii.gz"],
        [handmade["folder"] / "notes.txt"],
        [handmade["speck"], handmade["outside"], bad_4d],  # nothing usable
    ]
    for lesion_masks in cases:
        with pytest.raises(ValueError) as exc, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            make_demo_dataset(
                tmp_path / "bad", n_subjects=1, resolution_mm=RES, lesion_masks=lesion_masks,
                progress=False,
            )  # fmt: skip
        assert "\n" not in str(exc.value)
        assert not (tmp_path / "bad" / "dataset_description.json").exists()
    with pytest.raises(LesionMaskError, match="not 3-D"):
        load_lesion_shape(bad_4d, RES)


def test_oblique_source_affine(tmp_path: Path) -> None:
    """Any source grid works: the mask follows its affine (rotated 90 degrees, flipped)."""
    data = _ellipsoid((-28, -10, 22), (20, 25, 16))
    # Index axes permuted and x flipped; the world coordinates of every voxel are unchanged.
    flipped = np.transpose(data[::-1], (1, 0, 2))
    affine = np.zeros((4, 4))
    affine[0, 1] = -SRC_RES
    affine[1, 0] = SRC_RES
    affine[2, 2] = SRC_RES
    affine[3, 3] = 1.0
    affine[:3, 3] = (-98.0 + SRC_RES * (SRC_SHAPE[0] - 1), -134.0, -72.0)
    plain = load_lesion_shape(_write_mask(tmp_path / "plain.nii.gz", data), RES)
    moved = load_lesion_shape(_write_mask(tmp_path / "moved.nii.gz", flipped, affine), RES)
    assert plain.mask.sum() > 0
    np.testing.assert_array_equal(plain.mask, moved.mask)


def test_cli_lesion_masks(
    handmade: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "cli"
    argv = [str(out), "--n-subjects", "1", "--resolution", "4", "--quiet"]
    assert demo_main([*argv, "--lesion-masks", f"{handmade['folder']}/*.nii*"]) == 0
    assert capsys.readouterr().out.strip() == str(out.absolute())
    assert _participants(out)[0]["lesion_source"] in {"left.nii.gz", "right.nii"}

    # Too-small masks: one warning line each on stderr, the usable one is taken.
    out2 = tmp_path / "cli2"
    odd = str(handmade["folder"] / "odd")
    code = demo_main([str(out2), "--resolution", "4", "--n-subjects", "1", "--quiet",
                      "--lesion-masks", odd])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 64 and "none of the 2 lesion masks" in err
    assert err.count("warning: skipping") == 2 and not out2.exists()

    empty = tmp_path / "empty"
    empty.mkdir()
    assert demo_main([str(tmp_path / "cli3"), "--quiet", "--lesion-masks", str(empty)]) == 64
    err = capsys.readouterr().err.strip()
    assert err.startswith("bids_stroke-demo: no NIfTI lesion masks") and "\n" not in err
    assert not (tmp_path / "cli3").exists()


# --------------------------------------------------------------------------------------
# Real LESYMAP masks (developers' shared/ folder only)
# --------------------------------------------------------------------------------------
needs_lesymap = pytest.mark.skipif(
    not LESYMAP.is_dir(), reason=f"real lesion masks not available ({LESYMAP} is absent)"
)


@needs_lesymap
def test_real_lesymap_masks(tmp_path: Path) -> None:
    res = 2.0
    masks = find_lesion_masks(LESYMAP)
    assert len(masks) >= 2
    root = make_demo_dataset(
        tmp_path / "real", n_subjects=2, seed=0, resolution_mm=res, lesion_masks=masks,
        progress=False,
    )  # fmt: skip
    brain = generate_subject(1, seed=0, resolution_mm=res).brain_mask
    rows = _participants(root)
    names = [r["lesion_source"] for r in rows]
    assert len(set(names)) == 2 and all((LESYMAP / n).is_file() for n in names)
    for number, row in enumerate(rows, start=1):
        t1_path, mask_path = _paths(root, number)
        mask = np.asarray(nib.load(mask_path).dataobj)
        assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}
        lesion = mask.astype(bool)
        source = LESYMAP / row["lesion_source"]
        np.testing.assert_array_equal(lesion, _expected_mask(source, res, brain))
        volume = lesion.sum() * res**3 / 1000.0
        src_volume = float((np.asarray(nib.load(source).dataobj) >= 0.5).sum()) / 1000.0
        assert volume == pytest.approx(src_volume, rel=0.2)
        assert float(row["lesion_volume_ml"]) == pytest.approx(volume, abs=1e-3)
        assert _sidecar(mask_path)["LesionSource"] == row["lesion_source"]
        _check_rendering(np.asarray(nib.load(t1_path).dataobj, dtype=np.float64), lesion, brain)

    again = make_demo_dataset(
        tmp_path / "again", n_subjects=2, seed=0, resolution_mm=res, lesion_masks=masks,
        progress=False,
    )  # fmt: skip
    assert _tree_hashes(again) == _tree_hashes(root)
