"""Native-space models end to end: several channels, no template, degradations on the
acquisition grid, outputs and metrics on that grid."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from bids_stroke.cli.run import main
from bids_stroke.model.checkpoint import save_checkpoint
from bids_stroke.model.preprocess import PreprocessConfig
from bids_stroke.model.unet import UNet3D, UNetConfig
from tests.conftest import SHARED, dataset_description
from tests.nnunet_tiny import write_isles_bids

ISLES = SHARED / "data" / "real" / "isles22_case0001"
SHAPE = (40, 48, 36)
AFFINE = np.array([[2.0, 0, 0, -40], [0, 2.0, 0, -48], [0, 0, 2.0, -36], [0, 0, 0, 1]])


def _model(path: Path, channels=("dwi", "adc"), space="native") -> Path:
    torch.manual_seed(1)
    net = UNet3D(UNetConfig(in_channels=len(channels), base_channels=4, depth=2))
    return save_checkpoint(path, net, PreprocessConfig(),
                           model_spec={"channels": list(channels), "space": space})


def _phantom(seed: int):
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.meshgrid(*[np.arange(s) for s in SHAPE], indexing="ij")
    brain = ((zz - 20) / 16) ** 2 + ((yy - 24) / 19) ** 2 + ((xx - 18) / 15) ** 2 < 1
    les = ((zz - 18) ** 2 + (yy - 22) ** 2 + (xx - 17) ** 2 < 25) & brain
    dwi = np.where(brain, 300.0, 0) + np.where(les, 500.0, 0) + rng.normal(0, 20, SHAPE) * brain
    adc = np.where(brain, 800.0, 0) - np.where(les, 400.0, 0) + rng.normal(0, 20, SHAPE) * brain
    return dwi.astype(np.float32), adc.astype(np.float32), les.astype(np.uint8)


@pytest.fixture(scope="module")
def isles_like(tmp_path_factory) -> Path:
    """ISLES'22 layout at 2 mm: dwi + adc in dwi/, masks in derivatives (2 subjects)."""
    return write_isles_bids(tmp_path_factory.mktemp("native") / "bids",
                            cases=[_phantom(1), _phantom(2)], affine=AFFINE)


@pytest.fixture(scope="module")
def native_run(isles_like: Path, tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("native-run")
    model = _model(base / "two.pt")
    out = base / "out"
    args = [str(isles_like), str(out), "participant", "group", "-w", str(base / "work"),
            "--nprocs", "1", "--model", str(model), "--modality", "dwi",
            "--conditions", "native", "crude:2", "thick:4"]
    return {"code": main(args), "out": out, "bids": isles_like}


def test_native_run_succeeds(native_run):
    assert native_run["code"] == 0
    methods = (native_run["out"] / "group_methods.md").read_text()
    assert "The model works on the acquisition grid" in methods  # no template registration
    assert "ANTs" not in methods and "thick4mm (thick:4" in methods


def test_every_channel_degraded_and_named_in_the_input_space(native_run):
    out = native_run["out"]
    folder = out / "sub-strokecase0001" / "ses-0001" / "dwi"
    names = {p.name for p in folder.iterdir()}
    key = "sub-strokecase0001_ses-0001"
    for label in ("crude2", "thick4mm"):
        assert {f"{key}_desc-{label}_dwi.nii.gz", f"{key}_desc-{label}_adc.nii.gz"} <= names
    for label in ("native", "crude2", "thick4mm"):
        assert {f"{key}_label-L_desc-{label}_mask.nii.gz",
                f"{key}_label-L_desc-{label}_probseg.nii.gz"} <= names
    assert f"{key}_label-L_segmetrics.tsv" in names
    assert not any("space-" in n or "preproc" in n or "_xfm" in n for n in names)
    sidecar = json.loads((folder / f"{key}_label-L_desc-crude2_mask.json").read_text())
    assert sidecar["SegmentationModel"]["spec"]["channels"] == ["dwi", "adc"]
    assert len(sidecar["Sources"]) == 2  # both degraded channels


def test_outputs_stay_on_the_acquisition_grid(native_run):
    out = native_run["out"]
    for path in out.glob("sub-*/ses-*/dwi/*.nii.gz"):
        img = nib.load(path)
        assert img.shape == SHAPE and np.allclose(img.affine, AFFINE), path.name


def test_channels_degraded_identically(native_run):
    """The ADC of a condition is the ADC input degraded by the same function as the DWI."""
    from bids_stroke.degradation import apply_condition

    src = native_run["bids"] / "sub-strokecase0002" / "ses-0001" / "dwi"
    adc = nib.load(src / "sub-strokecase0002_ses-0001_adc.nii.gz").get_fdata(dtype=np.float32)
    got = nib.load(native_run["out"] / "sub-strokecase0002" / "ses-0001" / "dwi" /
                   "sub-strokecase0002_ses-0001_desc-thick4mm_adc.nii.gz").get_fdata()
    np.testing.assert_allclose(got, apply_condition(adc, (2.0, 2.0, 2.0), "thick:4"),
                               rtol=0, atol=1e-4)


def test_effective_resolution_describes_the_real_acquisition(native_run):
    tsv = next(native_run["out"].glob("sub-strokecase0001/**/*_segmetrics.tsv"))
    with tsv.open() as fh:
        rows = {r["desc"]: float(r["effective_resolution_mm"])
                for r in csv.DictReader(fh, delimiter="\t")}
    assert rows["native"] == pytest.approx(2.0)  # a 2 mm input is never reported as 1 mm
    assert rows["crude2"] == pytest.approx(4.0)
    assert rows["thick4mm"] == pytest.approx((2 * 2 * 4) ** (1 / 3))


def test_group_level_on_native_outputs(native_run):
    assert (native_run["out"] / "group_report.html").is_file()


def test_modality_mismatch_refused_then_warned(isles_like, tmp_path, capsys):
    model = _model(tmp_path / "t1.pt", channels=("T1w",))
    args = [str(isles_like), str(tmp_path / "out"), "participant", "-w", str(tmp_path / "w"),
            "--nprocs", "1", "--model", str(model), "--modality", "dwi",
            "--participant-label", "strokecase0001", "--conditions", "native"]
    assert main(args) == 65
    err = capsys.readouterr().err
    assert "expects T1w" in err and "--allow-modality-mismatch" in err
    assert not (tmp_path / "out").exists()
    assert main([*args, "--allow-modality-mismatch"]) == 0
    mask = next((tmp_path / "out").rglob("*_desc-native_mask.json"))
    assert any("modality mismatch" in w for w in json.loads(mask.read_text())["Warnings"])
    report = next((tmp_path / "out").glob("sub-*.html")).read_text()
    assert "modality mismatch" in report[report.index('class="warnings"'):]


def test_missing_channel_leaves_the_subject_out(isles_like, tmp_path, capsys):
    bids = tmp_path / "bids"
    shutil.copytree(isles_like, bids)
    next(bids.glob("sub-strokecase0002/ses-0001/dwi/*_adc.nii.gz")).unlink()
    model = _model(tmp_path / "two.pt")
    code = main([str(bids), str(tmp_path / "out"), "participant", "-w", str(tmp_path / "w"),
                 "--nprocs", "1", "--model", str(model), "--modality", "dwi",
                 "--conditions", "native"])
    assert code == 65
    assert "needs a 'adc' channel" in capsys.readouterr().err
    assert (tmp_path / "out" / ".bids_stroke" / "subjects" /
            "sub-strokecase0001_ses-0001.json").is_file()


@pytest.mark.skipif(not ISLES.is_dir(), reason="real ISLES'22 case not available")
def test_real_isles_case_two_channels_native(tmp_path):
    """The real ISLES'22 DWI + ADC case (2 mm, no mask here) through a two-channel native
    model, scored against its own native prediction: every output stays on the 112x112x73
    acquisition grid."""
    bids = tmp_path / "bids"
    dataset_description(bids)
    folder = bids / "sub-strokecase0001" / "ses-0001" / "dwi"
    folder.mkdir(parents=True)
    for path in ISLES.glob("*.nii.gz"):
        shutil.copy(path, folder / path.name)
    out = tmp_path / "out"
    code = main([str(bids), str(out), "participant", "-w", str(tmp_path / "w"), "--nprocs", "1",
                 "--model", str(_model(tmp_path / "two.pt")), "--modality", "dwi",
                 "--conditions", "native", "crude:2", "--reference", "prediction"])
    assert code == 0
    images = list(out.rglob("*.nii.gz"))
    assert len(images) >= 5  # 2 masks, 2 probability maps, crude2 dwi + adc
    for path in images:
        assert nib.load(path).shape == (112, 112, 73), path.name
    tables = [p.name for p in out.rglob("*_segmetrics.tsv")]
    assert tables == ["sub-strokecase0001_ses-0001_label-L_desc-refnativeprediction_"
                      "segmetrics.tsv"]
