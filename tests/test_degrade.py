"""Tests of bids_stroke.degradation (resolution degradations) and the DegradeImage interface."""

from __future__ import annotations

import math

import nibabel as nib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from bids_stroke.degradation import (
    FWHM_TO_SIGMA,
    apply_condition,
    crude_decimate,
    degrade_mask,
    kspace_truncate,
    linear_resample,
    parse_condition,
    thick_slice_stack,
    thick_slices,
)

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True)

shapes = st.tuples(*[st.integers(4, 11)] * 3)
factor_ints = st.tuples(*[st.integers(1, 4)] * 3)


@st.composite
def volumes(draw: st.DrawFn, dtype: type = np.float32) -> np.ndarray:
    shape = draw(shapes)
    return draw(
        arrays(dtype, shape, elements=st.floats(-100, 100, width=32, allow_subnormal=False))
    )


def _fwhm(values: np.ndarray, positions: np.ndarray) -> float:
    """FWHM of a single-peaked profile, half-max crossings by linear interpolation."""
    v = np.asarray(values, dtype=np.float64)
    half = v.max() / 2.0
    above = np.flatnonzero(v >= half)
    lo, hi = above[0], above[-1]
    assert lo > 0 and hi < v.size - 1, "profile not fully inside the field of view"
    left = positions[lo - 1] + (half - v[lo - 1]) / (v[lo] - v[lo - 1]) * (
        positions[lo] - positions[lo - 1]
    )
    right = positions[hi] + (v[hi] - half) / (v[hi] - v[hi + 1]) * (
        positions[hi + 1] - positions[hi]
    )
    return float(right - left)


def _rise_10_90(values: np.ndarray, positions: np.ndarray) -> float:
    """Distance between the 10 % and 90 % crossings of a monotonic rising edge."""
    v = np.asarray(values, dtype=np.float64)
    v = (v - v.min()) / (v.max() - v.min())
    return float(np.interp(0.9, v, positions) - np.interp(0.1, v, positions))


# --------------------------------------------------------------------------- common


@pytest.mark.parametrize(
    "spec", ["native", "crude:2", "linear:2", "thick:3", "kspace:2", "kspace:2:window=hamming"]
)
def test_shape_dtype_and_int_input(spec: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 1000, size=(9, 10, 11)).astype(np.int16)
    out = apply_condition(x, (1.0, 1.0, 1.0), spec)
    assert out.shape == x.shape
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    # string spec and parsed Condition give the same result; input untouched
    again = apply_condition(x.astype(np.float64), [1, 1, 1], parse_condition(spec))
    np.testing.assert_array_equal(out, again)


def test_native_is_exact_copy() -> None:
    x = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    out = apply_condition(x, (1, 1, 1), "native")
    np.testing.assert_array_equal(out, x)
    assert out is not x


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((5, 5)), "3-D"),
        (np.zeros((5, 5, 5, 2)), "3-D"),
        (np.zeros((5, 5, 5), dtype=complex), "real numeric"),
        (np.zeros((0, 5, 5)), "empty"),
        (np.full((5, 5, 5), np.nan), "NaN"),
        (np.where(np.eye(5, dtype=bool)[:, :, None], np.inf, 0.0) * np.ones((5, 5, 5)), "NaN/Inf"),
    ],
)
@pytest.mark.parametrize("spec", ["native", "crude:2", "linear:2", "thick:2", "kspace:2"])
def test_bad_input_rejected(bad: np.ndarray, match: str, spec: str) -> None:
    with pytest.raises(ValueError, match=match):
        apply_condition(bad, (1, 1, 1), spec)


@pytest.mark.parametrize("spec", ["crude:4", "linear:4", "kspace:4", "thick:5"])
def test_too_small_volume_rejected(spec: str) -> None:
    with pytest.raises(ValueError, match=r"too small|thinner than"):
        apply_condition(np.zeros((8, 8, 3), np.float32), (1, 1, 1), spec)


def test_bad_arguments_rejected() -> None:
    x = np.zeros((6, 6, 6), np.float32)
    with pytest.raises(ValueError, match="integers"):
        crude_decimate(x, 1.5)
    with pytest.raises(ValueError, match=">= 1"):
        linear_resample(x, 0.5)
    with pytest.raises(ValueError, match="three"):
        kspace_truncate(x, (2, 2))
    with pytest.raises(ValueError, match="window"):
        kspace_truncate(x, 2, window="hann")
    with pytest.raises(ValueError, match="profile"):
        thick_slices(x, (1, 1, 1), 2, profile="sinc")
    with pytest.raises(ValueError, match="interp"):
        thick_slices(x, (1, 1, 1), 2, interp="cubic")
    with pytest.raises(ValueError, match="thickness"):
        thick_slices(x, (1, 1, 1), 0)
    with pytest.raises(ValueError, match="gap"):
        thick_slices(x, (1, 1, 1), 2, gap_mm=-1)
    with pytest.raises(ValueError, match="zooms"):
        thick_slices(x, (1, 1), 2)
    with pytest.raises(ValueError, match="zooms"):
        apply_condition(x, (1, 0, 1), "native")
    with pytest.raises(ValueError, match="axis"):
        thick_slices(x, (1, 1, 1), 2, axis="w")


# --------------------------------------------------------------------------- crude


@SETTINGS
@given(x=volumes(), factors=factor_ints)
def test_crude_is_block_repeat_of_decimated(x: np.ndarray, factors: tuple[int, int, int]) -> None:
    a, b, c = factors
    out = crude_decimate(x, factors)
    assert out.shape == x.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out[::a, ::b, ::c], x[::a, ::b, ::c])
    expected = x[::a, ::b, ::c]
    expected = np.repeat(np.repeat(np.repeat(expected, a, 0), b, 1), c, 2)
    np.testing.assert_array_equal(out, expected[: x.shape[0], : x.shape[1], : x.shape[2]])


def test_crude_exact_case_not_divisible() -> None:
    x = np.arange(7, dtype=np.float32)[:, None, None] * np.ones((1, 2, 2), np.float32)
    out = crude_decimate(x, (3, 1, 1))
    np.testing.assert_array_equal(out[:, 0, 0], [0, 0, 0, 3, 3, 3, 6])
    np.testing.assert_array_equal(crude_decimate(x, 1), x)


# --------------------------------------------------------------------------- linear


@SETTINGS
@given(x=volumes(), factors=st.tuples(*[st.sampled_from([1, 1.5, 2, 3])] * 3))
def test_linear_bounded_by_input(x: np.ndarray, factors: tuple[float, float, float]) -> None:
    out = linear_resample(x, factors)
    assert out.shape == x.shape and out.dtype == np.float32
    # linear interpolation is a convex combination of input voxels
    assert out.min() >= x.min() - 1e-4 and out.max() <= x.max() + 1e-4


@SETTINGS
@given(x=volumes())
def test_factor_one_is_identity(x: np.ndarray) -> None:
    np.testing.assert_array_equal(crude_decimate(x, 1), x)
    np.testing.assert_array_equal(linear_resample(x, 1), x)
    np.testing.assert_allclose(kspace_truncate(x, 1), x, rtol=0, atol=0)
    np.testing.assert_allclose(kspace_truncate(x, 1, window="tukey"), x, rtol=0, atol=0)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_linear_keeps_ramp_and_constant(factor: int) -> None:
    n = 24
    ramp = np.arange(n, dtype=np.float32)
    x = ramp[:, None, None] + 2 * ramp[None, :, None] - 0.5 * ramp[None, None, :]
    out = linear_resample(x, factor)
    m = factor  # borders clamp to the edge; the interior is exact for a ramp
    np.testing.assert_allclose(out[m:-m, m:-m, m:-m], x[m:-m, m:-m, m:-m], atol=1e-4)
    const = np.full((10, 9, 8), 3.25, np.float32)
    np.testing.assert_allclose(linear_resample(const, (factor, 1, 2)), const, atol=1e-6)


def test_linear_matches_scipy_zoom_grid_mode() -> None:
    """For lengths divisible by N the convention equals ndimage.zoom(grid_mode=True)."""
    rng = np.random.default_rng(1)
    x = rng.random((12, 8, 16)).astype(np.float32)
    for f in (2, 4):
        kw = {"order": 1, "grid_mode": True, "mode": "nearest"}
        ref = ndimage.zoom(ndimage.zoom(x, 1 / f, **kw), f, **kw)
        np.testing.assert_allclose(linear_resample(x, f), ref, atol=1e-5)


def test_linear_exact_1d_case() -> None:
    x = np.arange(8, dtype=np.float32)[:, None, None] * np.ones((1, 1, 1), np.float32)
    x = np.broadcast_to(x, (8, 2, 2)).copy()
    out = linear_resample(x, (2, 1, 1))[:, 0, 0]
    # low-res samples at 0.5, 2.5, 4.5, 6.5; edges clamp
    np.testing.assert_allclose(out, [0.5, 1, 2, 3, 4, 5, 6, 6.5], atol=1e-6)


# --------------------------------------------------------------------------- thick


@SETTINGS
@given(
    x=volumes(),
    t=st.sampled_from([1.5, 2.0, 3.0, 4.0]),
    gap=st.sampled_from([0.0, 1.0]),
    profile=st.sampled_from(["gaussian", "boxcar"]),
    interp=st.sampled_from(["linear", "nearest"]),
)
def test_thick_bounded_and_constant(
    x: np.ndarray, t: float, gap: float, profile: str, interp: str
) -> None:
    kw = {"gap_mm": gap, "profile": profile, "interp": interp}
    out = thick_slices(x, (1.0, 1.0, 1.0), t, **kw)
    assert out.shape == x.shape and out.dtype == np.float32
    assert out.min() >= x.min() - 1e-3 and out.max() <= x.max() + 1e-3
    const = np.full(x.shape, -7.5, np.float32)
    np.testing.assert_allclose(thick_slices(const, (1, 1, 1), t, **kw), const, atol=1e-5)


def _delta_columns(n: int, axis: int) -> np.ndarray:
    """Volume whose column ``p`` (along the first non-slice axis) has a unit point at ``p``."""
    other = 1 if axis == 0 else 0
    shape = [2, 2, 2]
    shape[axis] = n
    shape[other] = n
    x = np.zeros(shape, np.float32)
    idx = [np.arange(n), np.zeros(n, int), np.zeros(n, int)]
    idx[axis] = np.arange(n)
    idx[other] = np.arange(n)
    x[tuple(idx)] = 1.0
    return x


@pytest.mark.parametrize("zooms", [(1.0, 1.0, 1.0), (0.5, 0.5, 1.0)])
@pytest.mark.parametrize("t", [3.0, 5.0, 7.0])
def test_thick_slice_profile_fwhm_on_output(zooms: tuple[float, ...], t: float) -> None:
    """Slice sensitivity profile: a point moved through a slice, read at the slice centre.

    Default axis is the largest zoom (z); with odd T/d the slice centres fall on
    voxels, where the output equals the acquired slice.
    """
    n = 48
    x = _delta_columns(n, axis=2)
    out = thick_slices(x, zooms, t)
    d = zooms[2]
    centre = round((t / d - 1) / 2 + 3 * t / d)  # 4th slice centre (integer here)
    ssp = out[:, 0, centre]  # value at the slice centre as a function of the point position
    fwhm = _fwhm(ssp, np.arange(n) * d)
    assert abs(fwhm - t) <= 0.05 * t, (fwhm, t)  # brief: 10 %; achieved ~2 %
    # the profile is centred on the slice centre
    assert abs(np.sum(ssp * np.arange(n)) / ssp.sum() - centre) < 1e-3


@pytest.mark.parametrize("axis", ["x", "y"])
@pytest.mark.parametrize("t", [3.0, 5.0, 7.0])
@pytest.mark.parametrize("profile", ["gaussian", "boxcar"])
def test_thick_slice_profile_fwhm_anisotropic_stack(axis: str, t: float, profile: str) -> None:
    """On 0.5 x 0.5 x 1 mm voxels with a 0.5 mm slice axis (non-integer slice centres)."""
    zooms = (0.5, 0.5, 1.0)
    ax = "xyz".index(axis)
    n = 80
    x = _delta_columns(n, axis=ax)
    stack, centres, used = thick_slice_stack(x, zooms, t, axis=axis, profile=profile)
    assert used == ax
    assert np.allclose(np.diff(centres), t / zooms[ax])
    k = 3
    other = 1 if ax == 0 else 0
    sl = [0, 0, 0]
    sl[other] = slice(None)
    sl[ax] = k
    ssp = stack[tuple(sl)]
    fwhm = _fwhm(ssp, np.arange(n) * zooms[ax])
    assert abs(fwhm - t) <= 0.05 * t, (fwhm, t)  # brief: 10 %; achieved ~2 %


@pytest.mark.parametrize("zooms", [(1.0, 1.0, 1.0), (0.5, 0.5, 1.0)])
@pytest.mark.parametrize("t", [3.0, 5.0, 7.0])
@pytest.mark.parametrize("profile", ["gaussian", "boxcar"])
def test_thick_edge_rise(zooms: tuple[float, ...], t: float, profile: str) -> None:
    """10-90 % rise of an edge moved through a slice.

    Expected: 2 * 1.2816 sigma (gaussian), 0.8 T (boxcar).
    """
    n = 48
    d = zooms[2]
    # column p holds a step from 0 to 1 at position p along z
    x = (np.arange(n)[None, :] <= np.arange(n)[:, None]).astype(np.float32)
    x = np.broadcast_to(x[:, None, :], (n, 2, n)).copy()
    out = thick_slices(x, zooms, t, profile=profile)
    centre = round((t / d - 1) / 2 + 3 * t / d)
    esf = out[:, 0, centre]  # rises as the edge moves past the slice centre
    rise = _rise_10_90(esf, np.arange(n) * d)
    expected = 2 * 1.2815516 * t * FWHM_TO_SIGMA if profile == "gaussian" else 0.8 * t
    assert abs(rise - expected) <= 0.05 * expected, (rise, expected)
    assert abs(rise - t) <= 0.25 * t


def test_thick_default_axis_and_thin_slices() -> None:
    rng = np.random.default_rng(2)
    x = rng.random((10, 12, 14)).astype(np.float32)
    # largest zoom is x here: only x is blurred, so every x-line changes, z-lines do not mix
    out = thick_slices(x, (3.0, 1.0, 1.0), 6.0)
    ref = thick_slices(x, (3.0, 1.0, 1.0), 6.0, axis="x")
    np.testing.assert_array_equal(out, ref)
    assert not np.allclose(out, thick_slices(x, (3.0, 1.0, 1.0), 6.0, axis="z"))
    # a slice no thicker than the voxel is the identity
    np.testing.assert_array_equal(thick_slices(x, (1, 1, 2.0), 2.0), x)
    np.testing.assert_array_equal(thick_slices(x, (1, 1, 1), 0.5, gap_mm=0.5), x)


def test_thick_gap_and_nearest() -> None:
    n = 40
    x = np.broadcast_to(np.arange(n, dtype=np.float32), (2, 2, n)).copy()
    stack, centres, _ = thick_slice_stack(x, (1, 1, 1), 3.0, gap_mm=2.0)
    np.testing.assert_allclose(centres, 1 + 5 * np.arange(centres.size))
    assert centres[-1] + 1.5 >= n - 0.5  # the last slice reaches the end of the FOV
    # a ramp is preserved by a symmetric profile at slice centres (away from borders)
    inner = (centres > 6) & (centres < n - 7)  # beyond the Gaussian support from the borders
    np.testing.assert_allclose(stack[0, 0, inner], centres[inner], atol=1e-4)
    near = thick_slices(x, (1, 1, 1), 3.0, gap_mm=2.0, interp="nearest")
    # piecewise constant: only values of the stack appear
    assert set(np.unique(near[0, 0])) <= set(stack[0, 0].tolist())


# --------------------------------------------------------------------------- k-space


def _centred_spectrum(a: np.ndarray) -> np.ndarray:
    return np.fft.fftshift(np.fft.fftn(a.astype(np.float64)))


@pytest.mark.parametrize("shape", [(32, 30, 28), (31, 27, 33)])
@pytest.mark.parametrize("factors", [(2, 2, 2), (1, 1, 4), (3, 2, 1.5)])
def test_kspace_band_limit(shape: tuple[int, ...], factors: tuple[float, ...]) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(np.float32)
    out = kspace_truncate(x, factors)
    s_in, s_out = _centred_spectrum(x), _centred_spectrum(out)
    freqs = np.meshgrid(
        *[np.fft.fftshift(np.fft.fftfreq(n) * n) for n in shape], indexing="ij"
    )
    above = np.zeros(shape, bool)
    below = np.ones(shape, bool)
    for f, n, fac in zip(freqs, shape, factors, strict=True):
        if fac > 1:
            above |= np.abs(f) > n / (2 * fac) + 1e-9
            below &= np.abs(f) < n / (2 * fac) - 1e-9
    scale = np.abs(s_in).max()
    assert np.linalg.norm(s_out[above]) <= 1e-6 * np.linalg.norm(s_in)
    # energy below the cut-off is preserved (no window)
    np.testing.assert_allclose(s_out[below], s_in[below], atol=1e-4 * scale)
    assert np.sum(np.abs(s_out) ** 2) < np.sum(np.abs(s_in) ** 2)


@pytest.mark.parametrize("window", ["tukey", "hamming"])
def test_kspace_window(window: str) -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((24, 24, 24)).astype(np.float32)
    plain = kspace_truncate(x, 2)
    windowed = kspace_truncate(x, 2, window=window)
    s = _centred_spectrum(windowed)
    f = np.fft.fftshift(np.fft.fftfreq(24) * 24)
    assert np.abs(s[np.abs(f) > 6, :, :]).max() <= 1e-5 * np.abs(s).max()
    # DC unchanged (window = 1 at f = 0), extra smoothing lowers the energy
    assert math.isclose(windowed.mean(), x.mean(), abs_tol=1e-5)
    assert np.sum(windowed**2) < np.sum(plain**2)


def test_kspace_constant_and_gibbs_reduction() -> None:
    const = np.full((16, 17, 18), 2.5, np.float32)
    np.testing.assert_allclose(kspace_truncate(const, (2, 3, 4)), const, atol=1e-5)
    # a step rings without window; the hamming window reduces the overshoot
    step = np.zeros((64, 4, 4), np.float32)
    step[16:48] = 1.0
    plain = kspace_truncate(step, (4, 1, 1))
    hamming = kspace_truncate(step, (4, 1, 1), window="hamming")
    assert plain.max() > 1.05
    assert hamming.max() - 1 < 0.25 * (plain.max() - 1)


@SETTINGS
@given(x=volumes(), factors=st.tuples(*[st.sampled_from([1, 2, 2.5, 4])] * 3))
def test_kspace_preserves_mean(x: np.ndarray, factors: tuple[float, float, float]) -> None:
    out = kspace_truncate(x, factors)
    assert out.shape == x.shape and out.dtype == np.float32
    assert math.isclose(float(out.mean()), float(x.mean()), abs_tol=1e-3)


# --------------------------------------------------------------------------- masks


def test_degrade_mask() -> None:
    mask = np.zeros((12, 12, 12), np.uint8)
    mask[3:9, 4:10, 2:11] = 1
    for spec in ["native", "crude:2", "linear:2", "thick:3", "kspace:2"]:
        out = degrade_mask(mask, (1, 1, 1), spec)
        assert out.dtype == np.uint8 and out.shape == mask.shape
        assert set(np.unique(out)) <= {0, 1}
        assert abs(int(out.sum()) - int(mask.sum())) < 0.5 * mask.sum()
    np.testing.assert_array_equal(degrade_mask(mask * 3, (1, 1, 1), "native"), mask)
    np.testing.assert_array_equal(
        degrade_mask(mask, (1, 1, 1), "crude:2"), crude_decimate(mask, 2).astype(np.uint8)
    )


# --------------------------------------------------------------------------- interface


def test_degrade_image_interface(tmp_path, monkeypatch) -> None:
    from bids_stroke.interfaces.degrade import DegradeImage

    rng = np.random.default_rng(5)
    data = rng.integers(0, 300, size=(10, 11, 12)).astype(np.int16)
    affine = np.diag([0.5, 0.5, 1.0, 1.0])
    affine[:3, 3] = [-10, 4, 7]
    img = nib.Nifti1Image(data, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=4)
    in_file = tmp_path / "sub-01_T1w.nii.gz"
    img.to_filename(in_file)
    mask = np.zeros(data.shape, np.uint8)
    mask[2:8, 3:9, 3:10] = 1
    mask_file = tmp_path / "sub-01_mask.nii.gz"
    nib.Nifti1Image(mask, affine).to_filename(mask_file)

    monkeypatch.chdir(tmp_path)
    res = DegradeImage(in_file=str(in_file), condition="thick:2", in_mask=str(mask_file)).run()
    out = res.outputs
    assert out.label == "thick2mm" and out.spec == "thick:2"
    assert out.params["thickness_mm"] == 2
    assert "thick2mm" in out.out_file
    oimg = nib.load(out.out_file)
    np.testing.assert_allclose(oimg.affine, affine)
    assert int(oimg.header["sform_code"]) == 4 and int(oimg.header["qform_code"]) == 1
    assert oimg.get_data_dtype() == np.float32
    expected = apply_condition(data, (0.5, 0.5, 1.0), "thick:2")
    np.testing.assert_allclose(oimg.get_fdata(), expected, atol=1e-5)
    mimg = nib.load(out.out_mask)
    assert mimg.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(
        np.asanyarray(mimg.dataobj), degrade_mask(mask, (0.5, 0.5, 1.0), "thick:2")
    )

    res2 = DegradeImage(in_file=str(in_file), condition="crude:2").run()
    from nipype.interfaces.base import isdefined

    assert not isdefined(res2.outputs.out_mask)
    assert res2.outputs.label == "crude2"
    with pytest.raises(ValueError, match="cubic"):
        DegradeImage(in_file=str(in_file), condition="cubic:2").run()
