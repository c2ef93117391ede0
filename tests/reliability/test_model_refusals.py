"""Every model refusal: one line naming the file and the fix.

Unsafe pickles, channel mismatches, NaN/tuple/wrong-shape outputs, memory, unmapped nnU-Net
channel names, bad sidecars and modality mismatches.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bids_stroke.cli.model import main as model_main
from bids_stroke.model import PreprocessConfig, UNet3D, UNetConfig, save_checkpoint
from bids_stroke.model.adapters import ModelLoadError, ModelSpecError, open_model
from bids_stroke.model.adapters.nnunet import read_nnunet_checkpoint
from bids_stroke.model.check import ModelCheckError, check_model, modality_mismatch
from bids_stroke.model.spec import map_nnunet_channels


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    return msg


class _Payload:
    """Unpickling this creates ``marker``: proof that code from the file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _nnunet_folder(root: Path, marker: Path, channel_names: dict | None = None) -> Path:
    folder = root / "Dataset001_X" / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    (folder / "fold_0").mkdir(parents=True)
    (folder / "dataset.json").write_text(json.dumps({
        "channel_names": channel_names or {"0": "DWI", "1": "ADC"},
        "labels": {"background": 0, "lesion": 1}, "file_ending": ".nii.gz"}))
    (folder / "plans.json").write_text("{}")
    torch.save({"network_weights": {}, "trainer_name": "nnUNetTrainer",
                "init_args": {"configuration": "3d_fullres", "hook": _Payload(marker)}},
               folder / "fold_0" / "checkpoint_final.pth")
    return folder


def test_unsafe_nnunet_pickle_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "code_ran"
    ckpt = _nnunet_folder(tmp_path, marker) / "fold_0" / "checkpoint_final.pth"
    with pytest.raises(ModelLoadError) as exc:
        read_nnunet_checkpoint(ckpt)
    msg = _one_line(exc)
    assert str(ckpt) in msg and "--trust-model-code" in msg and "runs code" in msg
    assert "pathlib" in msg  # names the global it would import
    assert not marker.exists()
    # the explicit opt-in really unpickles (and so runs the file's code)
    assert read_nnunet_checkpoint(ckpt, trust_model_code=True)["trainer_name"] == "nnUNetTrainer"
    assert marker.exists()


def test_unsafe_nnunet_folder_via_cli_exits_65(tmp_path: Path, capsys) -> None:
    pytest.importorskip("nnunetv2")
    marker = tmp_path / "code_ran"
    folder = _nnunet_folder(tmp_path, marker)
    assert model_main(["info", str(folder)]) == 65
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--trust-model-code" in err and not marker.exists()


def test_unmapped_nnunet_channel_name(tmp_path: Path) -> None:
    with pytest.raises(ModelSpecError) as exc:
        map_nnunet_channels({"0": "DWI", "1": "Tmax"}, tmp_path / "dataset.json")
    msg = _one_line(exc)
    assert "'Tmax'" in msg and "bids_stroke.json" in msg and "--channels" in msg


def _ckpt(path: Path, in_channels: int = 1) -> Path:
    torch.manual_seed(0)
    net = UNet3D(UNetConfig(in_channels=in_channels, base_channels=4, depth=2))
    return save_checkpoint(path, net, PreprocessConfig())


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        ('{"channels": ["dwi"], "modality": "dwi"}', r"unknown key 'modality'"),
        ('{"channels": "dwi"}', r"'channels' must be a non-empty list"),
        ('{"channels": ["dwi", "adc"', r"not valid JSON"),
        ('{"threshold": 1.5}', r"'threshold' must be a number in \(0, 1\)"),
        ('{"space": "MNI152NLin6Asym"}', r"'space' must be one of"),
        ('{"space": "native", "resolution_mm": 2}', r"resolution_mm' applies to template"),
        ('["dwi"]', r"must be a mapping"),
    ],
)
def test_bad_sidecar(tmp_path: Path, content: str, pattern: str, capsys) -> None:
    model = _ckpt(tmp_path / "m.pt")
    side = tmp_path / "m.pt.bids_stroke.json"
    side.write_text(content)
    with pytest.raises(ModelSpecError, match=pattern) as exc:
        open_model(model, device="cpu")
    assert str(side) in _one_line(exc)
    assert model_main(["info", str(model)]) == 65
    assert str(side) in capsys.readouterr().err


def test_channel_count_mismatch(tmp_path: Path) -> None:
    seg = open_model(_ckpt(tmp_path / "two.pt", in_channels=2), device="cpu",
                     channels=["T1w"])
    with pytest.raises(ModelCheckError, match=r"takes 2 input channel\(s\).*described with 1"):
        check_model(seg)
    seg = open_model(tmp_path / "two.pt", device="cpu", channels=["dwi", "adc"])
    with pytest.raises(ModelCheckError, match=r"needs 2 channels.*only 1 were found") as exc:
        check_model(seg, channels_available=["dwi"])
    assert str(tmp_path / "two.pt") in _one_line(exc)


class _Nan(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1] * float("nan")


class _Tuple(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x[:, :1], x[:, :1]


class _Pooled(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.avg_pool3d(x[:, :1], 2)


@pytest.mark.parametrize(
    ("module", "pattern"),
    [
        (_Nan, r"NaN/inf output"),
        (_Tuple, r"returns a tuple of 2 outputs.*single output"),
        (_Pooled, r"output shape \[1, 1, 16, 24, 16\] does not match input"),
    ],
)
def test_broken_outputs_refused_by_dry_run(tmp_path: Path, module, pattern: str) -> None:
    path = tmp_path / "m.ts"
    torch.jit.save(torch.jit.script(module()), str(path))
    seg = open_model(path, device="cpu")
    with pytest.raises(ModelCheckError, match=pattern) as exc:
        check_model(seg)
    assert str(path) in _one_line(exc)


def test_memory_over_limit(tmp_path: Path) -> None:
    seg = open_model(_ckpt(tmp_path / "m.pt"), device="cpu", mode="full")
    check_model(seg, image_shape=(64, 64, 64), mem_limit_gb=1.0)
    with pytest.raises(ModelCheckError, match=r"needs about .* GB, more than the 1\.0 GB") as e:
        check_model(seg, image_shape=(512, 512, 512), mem_limit_gb=1.0)
    assert "sliding" in _one_line(e)


def test_modality_mismatch_message() -> None:
    spec = open_model(None, device="cpu").spec
    msg = modality_mismatch(spec, ["T2w"])
    assert msg is not None and "\n" not in msg
    assert "expects T1w" in msg and "--allow-modality-mismatch" in msg
    assert modality_mismatch(spec, ["t1w"]) is None
