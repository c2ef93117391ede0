"""ANTsPy registration: known-affine recovery, roundtrips, labels, determinism, realism."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from bids_stroke import templates as tpl
from bids_stroke.templates import registration as reg

REPO = Path(__file__).resolve().parents[1]
_CHRIS = Path("data") / "real" / "chris_t1" / "chris_t1.nii.gz"
CHRIS_T1 = next((root / _CHRIS for root in (REPO.parent / "shared", Path("/work/shared"))
                 if (root / _CHRIS).is_file()), REPO.parent / "shared" / _CHRIS)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def _rotation(axis: int, degrees: float) -> np.ndarray:
    rad = np.deg2rad(degrees)
    c, s = np.cos(rad), np.sin(rad)
    i, j = [k for k in range(3) if k != axis]
    mat = np.eye(4)
    mat[i, i], mat[i, j], mat[j, i], mat[j, j] = c, -s, s, c
    return mat


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """3 mm template (fixed) and a copy moved by a known rigid transform (moving)."""
    root = tmp_path_factory.mktemp("registration")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BIDS_STROKE_OFFLINE", "1")
        mp.setenv("BIDS_STROKE_CACHE_DIR", str(root / "cache"))
        t1 = nib.load(tpl.get_template())
        mask = nib.load(tpl.get_template(suffix="mask", desc="brain"))
        tpl.clear_cache()
    fixed = tpl.resample_isotropic(t1, 3, is_mask=False)
    fixed_mask = tpl.resample_isotropic(mask, 3, is_mask=True)
    world = _rotation(2, 8) @ _rotation(0, 6)
    world[:3, 3] = [7.0, -5.0, 4.0]
    # moving(x) = fixed(world^-1 x), sampled on the same grid
    vox = np.linalg.inv(fixed.affine) @ np.linalg.inv(world) @ fixed.affine
    moving = ndimage.affine_transform(fixed.get_fdata(), vox[:3, :3], vox[:3, 3], order=1)
    moving_mask = ndimage.affine_transform(np.asarray(fixed_mask.dataobj), vox[:3, :3],
                                           vox[:3, 3], order=0)
    paths = {
        "root": root,
        "fixed": root / "fixed.nii.gz",
        "fixed_mask": root / "fixed_mask.nii.gz",
        "moving": root / "moving.nii.gz",
        "moving_mask": root / "moving_mask.nii.gz",
    }
    nib.save(fixed, paths["fixed"])
    nib.save(fixed_mask, paths["fixed_mask"])
    nib.save(nib.Nifti1Image(moving.astype(np.float32), fixed.affine), paths["moving"])
    nib.save(nib.Nifti1Image(moving_mask.astype(np.uint8), fixed.affine),
             paths["moving_mask"])
    return paths


@pytest.fixture(scope="module")
def affine_result(scene: dict[str, Path]) -> reg.RegistrationResult:
    return reg.register_to_template(scene["moving"], scene["fixed"], scene["root"] / "aff",
                                    kind="affine", seed=0)


def test_affine_recovers_known_transform(scene, affine_result) -> None:
    res = affine_result
    assert res.warped.is_file() and res.warped.parent == scene["root"] / "aff"
    assert [p.name for p in res.forward_transforms] == ["xfm_affine.mat"]
    assert res.inverse_invert_flags == [True]
    fixed = nib.load(scene["fixed"]).get_fdata()
    before = np.corrcoef(nib.load(scene["moving"]).get_fdata().ravel(), fixed.ravel())[0, 1]
    warped = nib.load(res.warped).get_fdata()
    after = np.corrcoef(warped.ravel(), fixed.ravel())[0, 1]
    assert after > 0.9 and after > before + 0.05


def test_mask_roundtrip_forward_then_inverse(scene, affine_result, tmp_path) -> None:
    res = affine_result
    fwd = reg.apply_transforms(scene["moving_mask"], scene["fixed"], res.forward_transforms,
                               interpolation="genericLabel", out_file=tmp_path / "fwd.nii.gz")
    assert isinstance(fwd, Path)
    fixed_mask = np.asarray(nib.load(scene["fixed_mask"]).dataobj)
    moving_mask = np.asarray(nib.load(scene["moving_mask"]).dataobj)
    in_template = np.asarray(nib.load(fwd).dataobj)
    assert _dice(moving_mask, fixed_mask) < 0.9  # the test is not trivial
    assert _dice(in_template, fixed_mask) > 0.9
    back = reg.apply_transforms(fwd, scene["moving"], res.inverse_transforms,
                                invert=res.inverse_invert_flags,
                                interpolation="nearestNeighbor")
    assert isinstance(back, nib.Nifti1Image)
    assert np.allclose(back.affine, nib.load(scene["moving"]).affine)
    assert _dice(np.asarray(back.dataobj), moving_mask) > 0.9


def test_nearest_neighbour_keeps_labels(scene, affine_result, tmp_path) -> None:
    labels = np.asarray(nib.load(scene["moving_mask"]).dataobj).astype(np.int16)
    labels[labels.shape[0] // 2:] *= 7  # labels {0, 1, 7}
    src = tmp_path / "labels.nii.gz"
    nib.save(nib.Nifti1Image(labels, nib.load(scene["moving"]).affine), src)
    for interp in ("nearestNeighbor", "genericLabel"):
        out = reg.apply_transforms(src, scene["fixed"], affine_result.forward_transforms,
                                   interpolation=interp)
        data = np.asarray(out.dataobj)
        assert out.get_data_dtype() == np.int16
        assert set(np.unique(data)) == {0, 1, 7}
    lin = reg.apply_transforms(src, scene["fixed"], affine_result.forward_transforms)
    assert len(np.unique(np.asarray(lin.dataobj))) > 3  # linear really interpolates


def test_same_seed_gives_identical_transforms(scene, affine_result) -> None:
    import ants

    environment = dict(os.environ)
    seed_before = ants.config._random_seed
    again = reg.register_to_template(scene["moving"], scene["fixed"], scene["root"] / "aff2",
                                     kind="affine", seed=0)
    assert again.forward_transforms[0].read_bytes() == \
        affine_result.forward_transforms[0].read_bytes()
    assert reg.ants_seed(0) == 1  # ANTs reads 0 as "seed from the clock"
    # the seed is passed per call; neither the environment nor ANTsPy's config is left changed
    assert dict(os.environ) == environment and ants.config._random_seed == seed_before


def test_rigid_via_nipype_interfaces(scene, tmp_path, monkeypatch) -> None:
    from bids_stroke.interfaces.registration import ApplyTransforms, RegisterToTemplate
    from bids_stroke.interfaces.templates import TemplateBrainMask

    monkeypatch.chdir(tmp_path)
    out = RegisterToTemplate(in_file=str(scene["moving"]), template_file=str(scene["fixed"]),
                             kind="rigid", seed=3, in_mask=str(scene["moving_mask"])).run()
    assert Path(out.outputs.out_file).is_file()
    assert out.outputs.inverse_invert_flags == [True]
    applied = ApplyTransforms(in_file=str(scene["moving_mask"]),
                              reference_file=str(scene["fixed"]),
                              transforms=out.outputs.forward_transforms,
                              interpolation="genericLabel").run()
    fixed_mask = np.asarray(nib.load(scene["fixed_mask"]).dataobj)
    assert _dice(np.asarray(nib.load(applied.outputs.out_file).dataobj), fixed_mask) > 0.9

    monkeypatch.setenv("BIDS_STROKE_OFFLINE", "1")
    monkeypatch.setenv("BIDS_STROKE_CACHE_DIR", str(scene["root"] / "cache"))
    tpl.clear_cache()
    masked = TemplateBrainMask(in_file=str(scene["fixed"]), template=tpl.DEFAULT_TEMPLATE).run()
    assert masked.outputs.template_source == "nilearn-standin"
    assert np.array_equal(np.asarray(nib.load(masked.outputs.out_mask).dataobj),
                          np.asarray(tpl.brain_mask_like(scene["fixed"]).dataobj))
    tpl.clear_cache()


def test_syn_produces_warps_and_roundtrips(scene, tmp_path) -> None:
    res = reg.register_to_template(scene["moving"], scene["fixed"], tmp_path, kind="syn",
                                   fixed_mask=scene["fixed_mask"])
    assert [p.name for p in res.forward_transforms] == ["xfm_warp.nii.gz", "xfm_affine.mat"]
    assert [p.name for p in res.inverse_transforms] == ["xfm_affine.mat",
                                                        "xfm_inverse_warp.nii.gz"]
    assert res.inverse_invert_flags == [True, False]
    assert not any(p.name.startswith(".ants-") for p in tmp_path.iterdir())
    fwd = reg.apply_transforms(scene["moving_mask"], scene["fixed"], res.forward_transforms,
                               interpolation="genericLabel", out_file=tmp_path / "f.nii.gz")
    back = reg.apply_transforms(fwd, scene["moving"], res.inverse_transforms,
                                invert=res.inverse_invert_flags, interpolation="genericLabel")
    moving_mask = np.asarray(nib.load(scene["moving_mask"]).dataobj)
    assert _dice(np.asarray(back.dataobj), moving_mask) > 0.9


def test_qform_sform_disagreement_follows_sform(scene, tmp_path) -> None:
    """nibabel reads the sform; ANTs must see the same grid (identity resampling)."""
    img = nib.load(scene["moving"])
    odd = nib.Nifti1Image(img.get_fdata().astype(np.float32), img.affine)
    shifted = img.affine.copy()
    shifted[:3, 3] += [30.0, 0.0, 0.0]
    odd.set_qform(shifted, code=1)
    odd.set_sform(img.affine, code=2)
    path = tmp_path / "odd.nii.gz"
    nib.save(odd, path)
    out = reg.apply_transforms(path, scene["moving"], [])
    assert np.allclose(np.asarray(out.dataobj), img.get_fdata(), atol=1e-3)


def test_errors_are_one_line_and_name_the_file(scene, tmp_path) -> None:
    missing = tmp_path / "nope.nii.gz"
    with pytest.raises(reg.RegistrationError) as err:
        reg.register_to_template(missing, scene["fixed"], tmp_path)
    assert str(missing) in str(err.value) and "\n" not in str(err.value)
    bogus = tmp_path / "bogus.nii.gz"
    bogus.write_bytes(b"not a nifti")
    with pytest.raises(reg.RegistrationError) as err:
        reg.register_to_template(bogus, scene["fixed"], tmp_path / "o")
    assert str(bogus) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(reg.RegistrationError, match="kind"):
        reg.register_to_template(scene["moving"], scene["fixed"], tmp_path, kind="bspline")
    with pytest.raises(reg.RegistrationError, match="invert"):
        reg.apply_transforms(scene["moving"], scene["fixed"], [], invert=[True])


@pytest.mark.parametrize(("name", "expected"), [
    ("sub-01_space-MNI152NLin2009aSym_desc-preproc_T1w.nii.gz", True),
    ("sub-01_ses-1_space-MNI152NLin2009aSym_T1w.nii.gz", True),
    ("sub-01_space-MNI152NLin2009cAsym_T1w.nii.gz", False),
    ("sub-01_T1w.nii.gz", False),
    ("sub-01_acq-space-MNI152NLin2009aSym_T1w.nii.gz", False),
    ("space-MNI152NLin2009aSym_T1w.nii", True),
])
def test_is_in_template_space(name: str, expected: bool) -> None:
    assert reg.is_in_template_space(Path("/data") / name) is expected


@pytest.mark.skipif(not CHRIS_T1.is_file(), reason="../shared real data not available")
def test_real_head_t1_affine_to_template(scene, tmp_path) -> None:
    """A real native-space head T1 (with skull), downsampled to 3 mm, to the template."""
    head = tpl.resample_isotropic(nib.load(CHRIS_T1), 3, is_mask=False)
    moving = tmp_path / "chris_3mm.nii.gz"
    nib.save(head, moving)
    res = reg.register_to_template(moving, scene["fixed"], tmp_path, kind="affine")
    fixed = nib.load(scene["fixed"]).get_fdata()
    brain = np.asarray(nib.load(scene["fixed_mask"]).dataobj) > 0
    unregistered = np.asarray(reg.apply_transforms(moving, scene["fixed"], []).dataobj)
    warped = nib.load(res.warped).get_fdata()
    corr_after = np.corrcoef(warped[brain], fixed[brain])[0, 1]
    corr_before = np.corrcoef(unregistered[brain], fixed[brain])[0, 1]
    assert corr_after > 0.6 and corr_after > corr_before + 0.2
    native_brain = reg.apply_transforms(scene["fixed_mask"], moving, res.inverse_transforms,
                                        invert=res.inverse_invert_flags,
                                        interpolation="nearestNeighbor")
    volume_ml = np.asarray(native_brain.dataobj).sum() * 27 / 1000
    assert 1000 < volume_ml < 2200
    data = head.get_fdata()
    inside = np.asarray(native_brain.dataobj) > 0
    assert data[inside].mean() > data[(data > 0) & ~inside].mean()  # brain, not skull/air


@pytest.mark.skipif(not CHRIS_T1.is_file(), reason="../shared real data not available")
def test_real_head_t1_coarse_grid_matches_full_resolution(tmp_path) -> None:
    """The default affine (2 mm grid, template brain mask) on a real 1 mm head T1
    lands where the same registration on the full 1 mm grids lands (mean displacement over
    the template brain < 1 mm) and aligns the brain as well (correlation within 0.01)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BIDS_STROKE_OFFLINE", "1")
        fixed = tpl.get_template()
        brain_mask = tpl.get_template(suffix="mask", desc="brain")
    coarse = reg.register_to_template(CHRIS_T1, fixed, tmp_path / "coarse", kind="affine",
                                      fixed_mask=brain_mask)
    full = reg.register_to_template(CHRIS_T1, fixed, tmp_path / "full", kind="affine",
                                    fixed_mask=brain_mask, coarse_mm=None)
    ref = nib.load(fixed)
    brain = np.asarray(nib.load(brain_mask).dataobj) > 0
    template = ref.get_fdata()

    def corr(result: reg.RegistrationResult) -> float:
        warped = nib.load(result.warped)
        assert warped.shape == ref.shape and np.allclose(warped.affine, ref.affine)
        return float(np.corrcoef(warped.get_fdata()[brain], template[brain])[0, 1])

    # where each transform sends template brain voxels (world mm), every 500th voxel
    grid = np.argwhere(brain)[::500]
    world = grid @ ref.affine[:3, :3].T + ref.affine[:3, 3]

    def mapped(result: reg.RegistrationResult) -> np.ndarray:
        import ants
        import pandas as pd

        # ANTs points are LPS; the fixed->moving direction of a forward transform is what
        # apply_transforms_to_points computes for the forward list
        pts = pd.DataFrame(world * [-1, -1, 1], columns=["x", "y", "z"])
        return ants.apply_transforms_to_points(
            3, pts, [str(p) for p in result.forward_transforms]).values

    shift = np.linalg.norm(mapped(coarse) - mapped(full), axis=1)
    assert shift.mean() < 1.0, shift.mean()
    assert corr(coarse) > corr(full) - 0.01
    assert corr(coarse) > 0.5  # the brain is aligned (an unmasked affine on this head: ~0.24)
