"""Reliability corpus: every bad input gives its documented exit code and one clear
``bids_stroke: error: ...`` line, leaves nothing partial in OUTPUT_DIR and writes nothing into
BIDS_DIR. Inputs that are unusual but valid (empty mask, LPS/oblique/anisotropic native-space
images, a read-only dataset) must work.

Cases that stop before any work starts run ``main()`` in-process (fast); full participant runs use
a tiny random-weight model, the 3 mm demo grid, ``--nprocs 1`` and two conditions.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import pickle
import re
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest

from .conftest import (
    LABELS,
    SUBJECTS,
    assert_error_line,
    assert_no_partial,
    assert_out_complete,
    participant_args,
    read_tsv,
    run_inprocess,
    snapshot,
    subject_files,
)


@dataclass
class Ctx:
    """What a case may change: a private 1-subject copy of the demo dataset and its paths."""

    bids: Path
    tmp: Path
    models: dict[str, Path]
    out: Path
    work: Path
    extra: list[str] = field(default_factory=list)
    model: str = "random"
    sentinel: Path | None = None

    @property
    def t1(self) -> Path:
        return subject_files(self.bids)[0]

    @property
    def mask(self) -> Path:
        return subject_files(self.bids)[1]


def _rewrite(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> None:
    img = nb.load(str(path))
    nb.Nifti1Image(data, img.affine if affine is None else affine).to_filename(str(path))


def _t1_data(ctx: Ctx) -> np.ndarray:
    return np.asanyarray(nb.load(str(ctx.t1)).dataobj).astype(np.float32)


def _mask_data(ctx: Ctx) -> np.ndarray:
    return np.asanyarray(nb.load(str(ctx.mask)).dataobj).astype(np.uint8)


# ---------------------------------------------------------------- case setups (modify the copy)


def truncated_gz(ctx: Ctx) -> None:
    raw = ctx.t1.read_bytes()
    ctx.t1.write_bytes(raw[: len(raw) // 2])


def not_a_nifti(ctx: Ctx) -> None:
    ctx.t1.write_bytes(b"this is a text file, not an image\n" * 20)


def gzipped_text(ctx: Ctx) -> None:
    ctx.t1.write_bytes(gzip.compress(b"still not a NIfTI header\n" * 40))


def four_d(ctx: Ctx) -> None:
    d = _t1_data(ctx)
    _rewrite(ctx.t1, np.stack([d, d], axis=-1))


def nan_voxels(ctx: Ctx) -> None:
    d = _t1_data(ctx)
    d[10, 10, 10:13] = np.nan
    _rewrite(ctx.t1, d)


def inf_voxels(ctx: Ctx) -> None:
    d = _t1_data(ctx)
    d[12, 20, 30] = np.inf
    d[12, 20, 31] = -np.inf
    _rewrite(ctx.t1, d)


def all_zero(ctx: Ctx) -> None:
    _rewrite(ctx.t1, np.zeros_like(_t1_data(ctx)))


def mask_shape(ctx: Ctx) -> None:
    _rewrite(ctx.mask, _mask_data(ctx)[:-2])


def mask_affine(ctx: Ctx) -> None:
    aff = nb.load(str(ctx.mask)).affine.copy()
    aff[:3, 3] += 4.5
    _rewrite(ctx.mask, _mask_data(ctx), aff)


def mask_nonbinary(ctx: Ctx) -> None:
    _rewrite(ctx.mask, (_mask_data(ctx) * 2).astype(np.uint8))


def mask_probability(ctx: Ctx) -> None:
    _rewrite(ctx.mask, _mask_data(ctx).astype(np.float32) * 0.7)


def no_description(ctx: Ctx) -> None:
    (ctx.bids / "dataset_description.json").unlink()


def bad_description(ctx: Ctx) -> None:
    (ctx.bids / "dataset_description.json").write_text("{not json")


def label_traversal(ctx: Ctx) -> None:
    ctx.extra += ["--participant-label", "../r001s001"]


def unknown_participant(ctx: Ctx) -> None:
    ctx.extra += ["--participant-label", "zz999"]


def out_inside_bids(ctx: Ctx) -> None:
    ctx.out = ctx.bids / "sub-r001s001" / "out"


def out_is_bids(ctx: Ctx) -> None:
    ctx.out = ctx.bids


def work_inside_bids(ctx: Ctx) -> None:
    ctx.work = ctx.bids / "work"


def out_under_file(ctx: Ctx) -> None:
    blocker = ctx.tmp / "x" / "file"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a regular file")
    ctx.out = blocker / "out"


def missing_bids(ctx: Ctx) -> None:
    shutil.rmtree(ctx.bids)


class _Payload:
    """Pickles to a call that creates a sentinel file when the pickle is loaded unsafely."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return (os.makedirs, (str(self.sentinel),))


def malicious_torch_save(ctx: Ctx) -> None:
    import torch

    ctx.sentinel = ctx.tmp / "PWNED-torch"
    path = ctx.tmp / "evil.pt"
    torch.save({"format": "bids_stroke-unet", "format_version": 1,
                "state_dict": _Payload(ctx.sentinel)}, path)
    ctx.models = {**ctx.models, "evil": path}
    ctx.model = "evil"


def malicious_raw_pickle(ctx: Ctx) -> None:
    ctx.sentinel = ctx.tmp / "PWNED-pickle"
    path = ctx.tmp / "evil.pkl"
    path.write_bytes(pickle.dumps(_Payload(ctx.sentinel)))
    ctx.models = {**ctx.models, "evil": path}
    ctx.model = "evil"


def garbage_model(ctx: Ctx) -> None:
    path = ctx.tmp / "garbage.pt"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    ctx.models = {**ctx.models, "garbage": path}
    ctx.model = "garbage"


def wrong_format_model(ctx: Ctx) -> None:
    import torch

    path = ctx.tmp / "plain_state.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    ctx.models = {**ctx.models, "plain": path}
    ctx.model = "plain"


def missing_model(ctx: Ctx) -> None:
    ctx.models = {**ctx.models, "missing": ctx.tmp / "no_such_model.pt"}
    ctx.model = "missing"


def corrupt_yaml(ctx: Ctx) -> None:
    path = ctx.tmp / "study.yml"
    path.write_text("conditions: [native, crude:2\n  segmentation: : {\n")
    ctx.extra += ["--study", str(path)]


def yaml_unknown_key(ctx: Ctx) -> None:
    path = ctx.tmp / "study.yml"
    path.write_text("conditions: [native]\nsegmentaton: {threshold: 0.5}\n")
    ctx.extra += ["--study", str(path)]


def unknown_pipeline(ctx: Ctx) -> None:
    ctx.extra += ["--study", "no_such_study"]


def unknown_condition(ctx: Ctx) -> None:
    ctx.extra += ["--conditions", "cubic:2"]


def bad_condition_factor(ctx: Ctx) -> None:
    ctx.extra += ["--conditions", "crude:0"]


def duplicate_condition(ctx: Ctx) -> None:
    ctx.extra += ["--conditions", "native", "native"]


def bad_filter_file(ctx: Ctx) -> None:
    path = ctx.tmp / "filters.json"
    path.write_text('{"t1w": {"acquisition": ')
    ctx.extra += ["--bids-filter-file", str(path)]


def bad_nprocs(ctx: Ctx) -> None:
    ctx.extra += ["--nprocs", "0"]


def out_is_derivatives(ctx: Ctx) -> None:
    (ctx.bids / "derivatives").mkdir(exist_ok=True)
    ctx.out = ctx.bids / "derivatives"


def out_contains_bids(ctx: Ctx) -> None:
    ctx.out = ctx.bids.parent


def database_inside_bids(ctx: Ctx) -> None:
    ctx.extra += ["--bids-database-dir", str(ctx.bids / "code" / "db")]


def _study(ctx: Ctx, text: str) -> None:
    path = ctx.tmp / "study.yml"
    path.write_text(text)
    ctx.extra += ["--study", str(path)]


def yaml_alias_bomb(ctx: Ctx) -> None:
    _study(ctx, "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nconditions: [native]\n")


def study_threshold_too_high(ctx: Ctx) -> None:
    _study(ctx, "conditions: [native]\nsegmentation: {threshold: 1.5}\n")


def study_threshold_nan(ctx: Ctx) -> None:
    _study(ctx, "conditions: [native]\nsegmentation: {threshold: .nan}\n")


def study_negative_tolerance(ctx: Ctx) -> None:
    _study(ctx, "conditions: [native]\nmetrics: {tolerance_mm: -1}\n")


def study_name_list(ctx: Ctx) -> None:
    _study(ctx, "name: [lol, x]\nconditions: [native]\n")


def study_description_mapping(ctx: Ctx) -> None:
    _study(ctx, "description: {a: 1}\nconditions: [native]\n")


def study_compare_list(ctx: Ctx) -> None:
    _study(ctx, "conditions: [native]\ngroup: {compare: {A: [1, 2], B: /b}}\n")


def rgb_image(ctx: Ctx) -> None:
    img = nb.load(str(ctx.t1))
    d = _t1_data(ctx).astype(np.uint8)
    rgb = np.zeros(d.shape, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    rgb["R"] = d
    nb.Nifti1Image(rgb, img.affine).to_filename(str(ctx.t1))


def complex_image(ctx: Ctx) -> None:
    _rewrite(ctx.t1, _t1_data(ctx).astype(np.complex64))


def _patch_header(path: Path, *fields: tuple[int, str, float]) -> None:
    """Write raw values into a NIfTI-1 header (nibabel would sanitise them on save)."""
    raw = bytearray(gzip.decompress(path.read_bytes()))
    for offset, fmt, value in fields:
        struct.pack_into(fmt, raw, offset, value)
    path.write_bytes(gzip.compress(bytes(raw)))


def infinite_slope(ctx: Ctx) -> None:
    img = nb.load(str(ctx.t1))
    nb.Nifti1Image(_t1_data(ctx).astype(np.int16), img.affine).to_filename(str(ctx.t1))
    _patch_header(ctx.t1, (112, "<f", math.inf))  # scl_slope


def overflowing_slope(ctx: Ctx) -> None:
    img = nb.load(str(ctx.t1))
    out = nb.Nifti1Image(_t1_data(ctx).astype(np.int16) + 100, img.affine)
    out.header.set_slope_inter(1e37, 0)
    out.to_filename(str(ctx.t1))


def singular_affine(ctx: Ctx) -> None:
    # qform_code 0, sform_code 1, third column of the sform zero (nibabel cannot write this)
    for path in (ctx.t1, ctx.mask):
        _patch_header(path, (252, "<h", 0), (254, "<h", 1), (288, "<f", 0.0),
                      (304, "<f", 0.0), (320, "<f", 0.0))


def header_bomb(ctx: Ctx) -> None:
    """A small gzip file whose header claims 2048^3 voxels: refused before decompression."""
    hdr = nb.Nifti1Header()
    hdr.set_data_shape((2048, 2048, 2048))
    hdr.set_data_dtype(np.float32)
    raw = bytearray(hdr.binaryblock) + b"\0" * 4 + bytes(1 << 20)
    ctx.t1.write_bytes(gzip.compress(bytes(raw)))


def crude_huge(ctx: Ctx) -> None:
    ctx.extra += ["--conditions", "native", "crude:1000000000"]


def kspace_huge(ctx: Ctx) -> None:
    ctx.extra += ["--conditions", "native", "kspace:1000"]


@dataclass(frozen=True)
class Case:
    id: str
    setup: Callable[[Ctx], None]
    code: int
    message: str
    #: False when OUTPUT_DIR may legitimately exist afterwards
    out_absent: bool = True
    marks: tuple = ()


ERROR_CASES = [
    Case("truncated-nii-gz", truncated_gz, 65, "cannot be read"),
    Case("not-a-nifti", not_a_nifti, 65, "cannot be read as NIfTI"),
    Case("gzipped-text", gzipped_text, 65, "cannot be read as NIfTI"),
    Case("4d-t1w", four_d, 65, "must be a 3-D volume"),
    Case("nan-voxels", nan_voxels, 65, "NaN/Inf"),
    Case("inf-voxels", inf_voxels, 65, "NaN/Inf"),
    Case("all-zero-image", all_zero, 65, "constant"),
    Case("mask-shape", mask_shape, 65, "mask shape"),
    Case("mask-affine", mask_affine, 65, "mask affine differs"),
    Case("mask-non-binary", mask_nonbinary, 65, "not binary"),
    Case("mask-probability", mask_probability, 65, "not binary"),
    Case("missing-dataset-description", no_description, 66, "dataset_description.json"),
    Case("invalid-dataset-description", bad_description, 16, "not valid JSON"),
    Case("missing-bids-dir", missing_bids, 66, "does not exist"),
    Case("participant-label-traversal", label_traversal, 64, "invalid sub label"),
    Case("unknown-participant", unknown_participant, 18, "sub-zz999"),
    Case("output-inside-bids", out_inside_bids, 64, "inside the BIDS dataset"),
    Case("output-is-bids", out_is_bids, 64, "is the BIDS dataset itself", out_absent=False),
    Case("work-inside-bids", work_inside_bids, 64, "work dir"),
    Case("output-under-a-file", out_under_file, 73, "cannot create output directory"),
    Case("malicious-torch-checkpoint", malicious_torch_save, 65, "needs pickle code execution"),
    Case("malicious-raw-pickle", malicious_raw_pickle, 65, "needs pickle code execution"),
    # random bytes are refused too, and told apart from an unsafe pickle
    Case("garbage-model", garbage_model, 65, "garbage.pt: not a PyTorch checkpoint"),
    Case("model-wrong-format", wrong_format_model, 65, "not a bids_stroke-unet checkpoint"),
    Case("model-missing", missing_model, 66, "does not exist"),
    Case("corrupt-pipeline-yaml", corrupt_yaml, 64, "not valid YAML"),
    Case("pipeline-unknown-key", yaml_unknown_key, 64, "unknown key 'segmentaton'"),
    Case("unknown-pipeline-name", unknown_pipeline, 64, "no_such_study"),
    Case("unknown-condition", unknown_condition, 64, "unknown condition 'cubic:2'"),
    Case("condition-factor-zero", bad_condition_factor, 64, "crude:0"),
    Case("duplicate-condition", duplicate_condition, 64, "duplicate condition"),
    Case("bad-bids-filter-file", bad_filter_file, 64, "not valid JSON"),
    Case("bad-nprocs", bad_nprocs, 64, "--nprocs"),
    Case("output-is-bids-derivatives", out_is_derivatives, 64, "derivatives folder",
         out_absent=False),
    Case("output-contains-bids", out_contains_bids, 64, "derivatives folder",
         out_absent=False),
    Case("database-inside-bids", database_inside_bids, 64, "--bids-database-dir"),
    Case("yaml-alias-bomb", yaml_alias_bomb, 64, "aliases"),
    Case("study-threshold-1.5", study_threshold_too_high, 64, "segmentation.threshold"),
    Case("study-threshold-nan", study_threshold_nan, 64, "segmentation.threshold"),
    Case("study-negative-tolerance", study_negative_tolerance, 64, "metrics.tolerance_mm"),
    Case("study-name-not-a-string", study_name_list, 64, "name must be a string"),
    Case("study-description-not-a-string", study_description_mapping, 64,
         "description must be a string"),
    Case("study-compare-folder-not-a-string", study_compare_list, 64, "group.compare"),
    Case("rgb-image", rgb_image, 65, "RGB"),
    Case("complex-image", complex_image, 65, "complex"),
    Case("infinite-scl-slope", infinite_slope, 65, "non-finite intensity scaling"),
    Case("overflowing-scl-slope", overflowing_slope, 65, "overflow float32"),
    Case("singular-affine", singular_affine, 65, "singular"),
    Case("header-claims-8gb", header_bomb, 65, "larger than bids_stroke accepts"),
    Case("crude-factor-too-large", crude_huge, 65, "fewer than the factor"),
    Case("kspace-factor-too-large", kspace_huge, 65, "fewer than the factor"),
]


@pytest.fixture
def ctx(make_bids, tmp_path: Path, models: dict[str, Path]) -> Ctx:
    return Ctx(bids=make_bids(1), tmp=tmp_path, models=models, out=tmp_path / "out",
               work=tmp_path / "work")


def _argv(ctx: Ctx) -> list[str]:
    args = participant_args(ctx.bids, ctx.out, ctx.work, ctx.models[ctx.model])
    # later occurrences of --conditions/--participant-label override the defaults
    return [*args, *ctx.extra]


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=c.id, marks=c.marks) for c in ERROR_CASES]
)
def test_bad_input(case: Case, ctx: Ctx, capsys) -> None:
    case.setup(ctx)
    before = snapshot(ctx.bids)
    res = run_inprocess(_argv(ctx), capsys)
    assert res.code == case.code, res.stderr[-3000:]
    line = assert_error_line(res.stderr, case.message)
    assert "\n" not in line and len(line) < 600
    assert snapshot(ctx.bids) == before, "BIDS_DIR was modified"
    if case.out_absent:
        assert not ctx.out.exists(), f"{ctx.out} was created: {list(ctx.out.rglob('*'))[:10]}"
    else:
        assert_no_partial(ctx.out)
    if ctx.sentinel is not None:
        assert not ctx.sentinel.exists(), "the pickle payload was executed"


def test_every_expected_exit_code_is_documented() -> None:
    """The corpus expects only exit codes the README's table documents, and exercises every
    documented code of bad input or usage (64, 65, 66, 73); case ids are unique."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme[readme.index("## Exit codes"):]
    documented = {int(code) for code in re.findall(r"^\| (\d+) ", table, re.MULTILINE)}
    expected = {case.code for case in ERROR_CASES}
    assert expected <= documented, expected - documented
    assert {64, 65, 66, 73} <= expected
    assert len({case.id for case in ERROR_CASES}) == len(ERROR_CASES)


# ---------------------------------------------------------------- inputs that must work


def _run_ok(ctx: Ctx, capsys, *extra: str, conditions=("native", "crude:2")) -> None:
    before = snapshot(ctx.bids)
    res = run_inprocess(
        participant_args(ctx.bids, ctx.out, ctx.work, ctx.models[ctx.model], *extra,
                         conditions=conditions), capsys)
    assert res.code == 0, res.stderr[-4000:]
    assert "Traceback" not in res.stderr
    assert snapshot(ctx.bids) == before, "BIDS_DIR was modified"


def _metrics_rows(out: Path) -> list[dict[str, str]]:
    (tsv,) = out.rglob("*_segmetrics.tsv")
    return read_tsv(tsv)


def _f(value: str) -> float:
    return math.nan if value == "n/a" else float(value)


@pytest.mark.parametrize("prediction", ["none", "all"])
def test_empty_mask_works(prediction: str, ctx: Ctx, capsys) -> None:
    """An empty lesion mask is valid: metrics follow the both-empty / one-empty rules."""
    _rewrite(ctx.mask, np.zeros_like(_mask_data(ctx)))
    ctx.model = prediction  # a model predicting nothing / everything
    _run_ok(ctx, capsys)
    assert_out_complete(ctx.out, expect_subjects=[SUBJECTS[0]])
    rows = _metrics_rows(ctx.out)
    assert sorted(r["desc"] for r in rows) == sorted(LABELS)
    for r in rows:
        assert int(r["tp"]) == 0 and int(r["fn"]) == 0
        assert _f(r["ref_volume_ml"]) == 0 and int(r["ref_lesion_count"]) == 0
        assert int(r["distances_undefined"]) == 1
        for key in ("hd", "hd95", "assd", "surface_dice", "rel_volume_diff", "detection_rate"):
            assert math.isnan(_f(r[key])), (key, r[key])
        if prediction == "none":  # both empty
            assert int(r["fp"]) == 0
            assert _f(r["dice"]) == 1.0 and _f(r["jaccard"]) == 1.0
            assert _f(r["lesion_f1"]) == 1.0
            assert _f(r["pred_volume_ml"]) == 0
        else:  # reference empty, prediction not
            assert int(r["fp"]) > 0
            assert _f(r["dice"]) == 0.0 and _f(r["jaccard"]) == 0.0
            assert _f(r["precision"]) == 0.0
            assert math.isnan(_f(r["recall"]))
            assert _f(r["lesion_f1"]) == 0.0 and int(r["lesion_fp"]) >= 1
    lesions = list(ctx.out.rglob("*_lesions.tsv"))
    assert lesions and read_tsv(lesions[0]) == []  # no reference lesion, header only


def _native_dataset(ctx: Ctx, transform: str) -> Path:
    """Plain BIDS ``sub-01`` without ``space-`` (so it is registered), built from the demo T1.

    ``lps``: the same voxels re-ordered to an LPS+ affine; ``oblique``: a 15 degree rotation
    about x; ``aniso``: resampled to 1 x 1 x 5 mm.
    """
    from nibabel.processing import resample_to_output

    img, msk = nb.load(str(ctx.t1)), nb.load(str(ctx.mask))
    data = np.asanyarray(img.dataobj).astype(np.float32)
    mask = np.asanyarray(msk.dataobj).astype(np.uint8)
    aff = img.affine.copy()
    if transform == "lps":
        data, mask = data[::-1, ::-1].copy(), mask[::-1, ::-1].copy()
        flip = np.diag([-1.0, -1.0, 1.0, 1.0])
        flip[0, 3], flip[1, 3] = data.shape[0] - 1, data.shape[1] - 1
        aff = aff @ flip
    elif transform == "oblique":
        t = np.deg2rad(15.0)
        rot = np.eye(4)
        rot[1:3, 1:3] = [[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]
        aff = rot @ aff
    elif transform == "aniso":
        new = resample_to_output(nb.Nifti1Image(data, aff), voxel_sizes=(1.0, 1.0, 5.0), order=1)
        newm = resample_to_output(nb.Nifti1Image(mask, aff), voxel_sizes=(1.0, 1.0, 5.0),
                                  order=0)
        data = np.asarray(new.dataobj, dtype=np.float32)
        mask = (np.asarray(newm.dataobj) > 0.5).astype(np.uint8)
        aff = new.affine
    root = ctx.tmp / f"native_{transform}"
    (root / "sub-01" / "anat").mkdir(parents=True)
    (root / "dataset_description.json").write_text(
        json.dumps({"Name": transform, "BIDSVersion": "1.8.0"}))
    nb.Nifti1Image(data, aff).to_filename(str(root / "sub-01" / "anat" / "sub-01_T1w.nii.gz"))
    deriv = root / "derivatives" / "lesions"
    (deriv / "sub-01" / "anat").mkdir(parents=True)
    (deriv / "dataset_description.json").write_text(
        json.dumps({"Name": "lesions", "BIDSVersion": "1.8.0", "DatasetType": "derivative"}))
    nb.Nifti1Image(mask, aff).to_filename(
        str(deriv / "sub-01" / "anat" / "sub-01_label-L_desc-lesion_mask.nii.gz"))
    return root


@pytest.mark.parametrize("transform", ["lps", "oblique", "aniso"])
def test_native_space_geometry_works(transform: str, ctx: Ctx, capsys) -> None:
    """LPS, oblique and 1x1x5 mm native-space inputs go through registration and work."""
    src_mask_ml = float(_mask_data(ctx).sum()) * float(np.prod(nb.load(str(ctx.mask))
                                                                 .header.get_zooms()[:3])) / 1000
    ctx.bids = _native_dataset(ctx, transform)
    _run_ok(ctx, capsys, "--template-resolution", "2", conditions=("native",))
    assert_out_complete(ctx.out, labels=["native"], expect_subjects=["01"])
    anat = ctx.out / "sub-01" / "anat"
    t1 = nb.load(str(ctx.bids / "sub-01" / "anat" / "sub-01_T1w.nii.gz"))
    native = nb.load(str(anat / "sub-01_label-L_desc-native_mask.nii.gz"))
    assert native.shape == t1.shape  # mapped back onto the native grid
    assert np.allclose(native.affine, t1.affine, atol=1e-4)
    assert list(anat.glob("sub-01_from-T1w_to-MNI152NLin2009aSym_*xfm*"))
    # the reference mask followed the image into template space: same lesion volume (+-25%)
    (row,) = _metrics_rows(ctx.out)
    assert _f(row["ref_volume_ml"]) == pytest.approx(src_mask_ml, rel=0.25)


def test_read_only_bids_dir_works(reference_run: dict) -> None:
    """A read-only dataset (chmod -R a-w) works and is left byte-for-byte untouched.

    The tests run as root here, whose writes are not stopped by permission bits: the check that
    nothing was written is the path/size/mtime/mode snapshot, not a PermissionError.
    """
    res = reference_run["result"]
    assert res.code == 0, res.stderr[-4000:]
    bids = reference_run["bids"]
    assert not any(p.stat().st_mode & 0o222 for p in [bids, *bids.rglob("*")])
    assert snapshot(bids) == reference_run["before"]
    assert_out_complete(reference_run["out"], expect_subjects=SUBJECTS)


# ---------------------------------------------------------------- failures during the run


def test_bad_subject_among_good_ones(make_bids, tmp_path: Path, models, capsys) -> None:
    """Preflight leaves the bad input out, the other one is processed; exit 65."""
    bids = make_bids(2)
    t1 = subject_files(bids, SUBJECTS[1])[0]
    raw = t1.read_bytes()
    t1.write_bytes(raw[: len(raw) // 3])
    before = snapshot(bids)
    out = tmp_path / "out"
    res = run_inprocess(participant_args(bids, out, tmp_path / "work", models["random"]),
                        capsys)
    assert res.code == 65, res.stderr[-3000:]
    assert_error_line(res.stderr, f"sub-{SUBJECTS[1]}")
    assert snapshot(bids) == before
    assert_out_complete(out, expect_subjects=[SUBJECTS[0]])
    assert list((out / f"sub-{SUBJECTS[1]}" / "log").rglob("crash-preflight-*"))


def test_one_failing_subject(make_bids, tmp_path: Path, models, capsys, monkeypatch) -> None:
    """A subject whose workflow fails: exit 1, crash file in sub-X/log/<run>/, the other done."""
    from bids_stroke.interfaces.degrade import DegradeImage

    bids = make_bids(2)
    bad = SUBJECTS[1]
    original = DegradeImage._run_interface

    def failing(self, runtime):
        if f"sub-{bad}" in str(self.inputs.in_file):
            raise RuntimeError(f"injected failure for sub-{bad}")
        return original(self, runtime)

    monkeypatch.setattr(DegradeImage, "_run_interface", failing)
    before = snapshot(bids)
    out = tmp_path / "out"
    res = run_inprocess(participant_args(bids, out, tmp_path / "work", models["random"]),
                        capsys)
    assert res.code == 1, res.stderr[-3000:]
    assert f"sub-{bad}_ses-1 FAILED" in res.stderr
    # the node's traceback is in its crash file, not on the terminal
    assert "Traceback" not in res.stderr and "injected failure" not in res.stderr
    assert not [ln for ln in res.stderr.splitlines() if ln.startswith((" ", "\t"))]
    assert snapshot(bids) == before
    assert_out_complete(out, expect_subjects=[SUBJECTS[0]])
    crashes = list((out / f"sub-{bad}" / "log").glob("*/crash-*"))
    assert crashes, list(out.rglob("*"))
    assert "injected failure" in crashes[0].read_text(errors="replace")
    assert not (out / f"sub-{bad}" / "ses-1").exists()


@pytest.fixture
def tiny_tmpfs(tmp_path: Path):
    """A 300 KiB tmpfs (root only); skipped where mounting is not allowed."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    try:
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mnt)],
                              capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot mount a tmpfs to simulate a full disk: {exc}")
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to simulate a full disk: {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=20)


def test_disk_full(ctx: Ctx, tiny_tmpfs: Path, capsys) -> None:
    """OUTPUT_DIR on a really full disk (where a tmpfs can be mounted; the file-size-limit
    tests of ``test_environment`` run everywhere): exit 73 and one line naming the folder,
    nothing half-written remains."""
    ctx.out = tiny_tmpfs / "out"
    before = snapshot(ctx.bids)
    res = run_inprocess(_argv(ctx), capsys)
    assert res.code == 73, res.stderr[-3000:]
    line = assert_error_line(res.stderr, "No space left on device")
    assert f"cannot write into {ctx.out}" in line and "free space" in line
    assert snapshot(ctx.bids) == before
    assert_no_partial(ctx.out)
    assert not list(ctx.out.rglob("*.nii.gz")), "half of a subject's images were written"


# ---------------------------------------------------------------- bounded decompression


def _zero_bomb(path: Path, shape: tuple[int, int, int], dtype: type) -> int:
    """A small ``.nii.gz`` of zeros (many gzip members of one compressed block); returns its
    declared data size in bytes."""
    hdr = nb.Nifti1Header()
    hdr.set_data_shape(shape)
    hdr.set_data_dtype(dtype)
    hdr.set_data_offset(352)
    hdr.set_sform(np.eye(4), 1)
    hdr.set_qform(np.eye(4), 1)
    total = int(np.prod(shape)) * np.dtype(dtype).itemsize
    block = 1 << 24
    member = gzip.compress(bytes(block), compresslevel=9, mtime=0)
    with path.open("wb") as fh:
        fh.write(gzip.compress(bytes(hdr.binaryblock) + bytes(4), mtime=0))
        for _ in range(total // block):
            fh.write(member)
        fh.write(gzip.compress(bytes(total % block), mtime=0))
    return total


def test_gzip_bomb_under_the_voxel_cap_is_refused_in_bounded_memory(ctx: Ctx) -> None:
    """The issue's reproduction: 645^3 float64 zeros (2.1 GB of data, just under 2^28
    voxels) in a 2 MB file. Refused from its header in a fresh process whose peak memory
    stays under 500 MB (it grew to 4.2 GB and ran past 600 s before)."""
    from .conftest import cli_env

    assert _zero_bomb(ctx.t1, (645, 645, 645), np.float64) > 2e9
    assert ctx.t1.stat().st_size < 3e6
    status = ctx.tmp / "status.txt"
    # the process's own peak (VmHWM of its memory map, which a fork of pytest does not add to)
    code = ("import atexit, sys; from bids_stroke.cli.run import main\n"
            "atexit.register(lambda: open(sys.argv[1], 'w').write("
            "open('/proc/self/status').read()))\n"
            "sys.exit(main(sys.argv[2:]))")
    proc = subprocess.run([sys.executable, "-c", code, str(status), *_argv(ctx)],
                          capture_output=True, text=True, env=cli_env(),
                          timeout=120)  # it ran past 600 s
    assert proc.returncode == 65, proc.stderr[-3000:]
    line = assert_error_line(proc.stderr, "declares 2.15 GB of data")
    assert "--max-image-gb" in line
    hwm_kb = int(re.search(r"^VmHWM:\s+(\d+) kB", status.read_text(), re.MULTILINE)[1])
    assert hwm_kb < 500 * 1024, f"peak memory {hwm_kb / 1024:.0f} MB"


def test_large_image_is_checked_as_a_stream(tmp_path: Path) -> None:
    """An image the limit allows (here 256^3 float64, 134 MB of data) is checked chunk by
    chunk: the check allocates a small fraction of it."""
    import tracemalloc

    from bids_stroke.inputs.preflight import InputError, check_image

    path = tmp_path / "big.nii.gz"
    size = _zero_bomb(path, (256, 256, 256), np.float64)
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match="constant"):  # all zeros: read to the end
            check_image(path, max_bytes=size)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < size / 4, f"{peak / 1e6:.0f} MB held to check {size / 1e6:.0f} MB"
    with pytest.raises(InputError, match="declares"):
        check_image(path, max_bytes=size - 1)
