"""The nnU-Net trainer lookup (``bids_stroke/model/adapters/nnunet_trainers.py``): only the module
that defines the trainer is imported, so an unrelated trainer module that cannot be imported
does not stop it; a trainer that truly cannot be imported is named with the real exception and
its module; strict weight loading catches a network that does not match.

Broken modules are made with an import hook that raises for named modules (what PyPI's
torchvision does beside the CPU torch: ``RuntimeError: operator torchvision::nms does not
exist``), so the tests do not depend on what this environment has installed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

pytest.importorskip("nnunetv2")

from bids_stroke.model.adapters import ModelLoadError, clear_model_cache, open_model
from bids_stroke.model.adapters.nnunet import read_nnunet_checkpoint
from bids_stroke.model.adapters.nnunet_trainers import (
    TrainerLookupError,
    find_trainer,
    overrides_network,
    source_overrides_network,
)

PKG = "nnunetv2.training.nnUNetTrainer"
PRIMUS = f"{PKG}.primus.primus_trainers"
#: sorted before variants/training_length: nnU-Net's own lookup imports it first
DA5 = f"{PKG}.variants.data_augmentation.nnUNetTrainerDA5"
BN = f"{PKG}.variants.network_architecture.nnUNetTrainerBN"
XEPOCHS = f"{PKG}.variants.training_length.nnUNetTrainer_Xepochs"
NMS_ERROR = "operator torchvision::nms does not exist"


class _Broken:
    """Import hook: importing one of ``names`` raises what a broken dependency raises."""

    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname in self.names:
            raise RuntimeError(NMS_ERROR)
        return None


@pytest.fixture
def break_modules(monkeypatch) -> Iterator[Callable[..., None]]:
    def apply(*names: str) -> None:
        for name in names:
            monkeypatch.delitem(sys.modules, name, raising=False)
        monkeypatch.setattr(sys, "meta_path", [_Broken(set(names)), *sys.meta_path])
        clear_model_cache()

    yield apply
    clear_model_cache()


def test_unrelated_broken_modules_do_not_stop_the_lookup(break_modules) -> None:
    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name

    break_modules(PRIMUS, DA5)
    # nnU-Net's own lookup is derailed by the first broken module it imports ...
    with pytest.raises(RuntimeError, match="torchvision::nms"):
        recursive_find_trainer_class_by_name("nnUNetTrainer_5epochs")
    # ... this one imports only the module that defines the trainer
    found = find_trainer("nnUNetTrainer_5epochs")
    assert found.module == XEPOCHS and found.cls is not None
    assert found.cls.__name__ == "nnUNetTrainer_5epochs" and found.standard_network
    assert found.note is None
    bn = find_trainer("nnUNetTrainerBN")
    assert bn.module == BN and not bn.standard_network  # it builds its own network


def test_variant_folder_opens_beside_broken_modules(break_modules, nnunet_variant_folders):
    break_modules(PRIMUS, DA5)
    seg = open_model(nnunet_variant_folders["nnUNetTrainer_5epochs"], device="cpu")
    assert seg.info["trainer"] == "nnUNetTrainer_5epochs"
    assert seg.info["trainer_module"] == XEPOCHS
    assert seg.info["network_builder"] == "nnUNetTrainer"


def test_broken_defining_module_of_a_training_only_trainer_uses_the_standard_network(
        break_modules) -> None:
    """nnUNetTrainerDA5 changes only the augmentation: its source shows no network builder
    (up to nnUNetTrainer), so the standard network is built, with a note naming the failure."""
    break_modules(DA5)
    found = find_trainer("nnUNetTrainerDA5")
    assert found.cls is None and found.standard_network and found.module == DA5
    assert f"RuntimeError: {NMS_ERROR}" in found.note and DA5 in found.note


def test_broken_defining_module_of_a_network_trainer_names_the_cause(break_modules) -> None:
    break_modules(BN)
    with pytest.raises(TrainerLookupError) as exc:
        find_trainer("nnUNetTrainerBN")
    msg = str(exc.value)
    assert "\n" not in msg and "not part of nnunetv2" not in msg
    assert f"defined in {BN}" in msg and f"RuntimeError: {NMS_ERROR}" in msg
    assert "builds its own network" in msg and "torchvision==" in msg  # how to fix it


def test_primus_trainers_without_torchvision_name_torchvision() -> None:
    """In this environment (no torchvision in the CPU locks) the Primus trainers, which need
    it, are refused with the import error and how to install the CPU pair."""
    try:
        import torchvision  # noqa: F401
    except Exception:
        with pytest.raises(TrainerLookupError) as exc:
            find_trainer("nnUNet_Primus_M_Trainer")
        msg = str(exc.value)
        assert PRIMUS in msg and "torchvision" in msg and "builds its own network" in msg
        assert "--index-url https://download.pytorch.org/whl/" in msg or "pip install" in msg
    else:
        assert not find_trainer("nnUNet_Primus_M_Trainer").standard_network


def _with_trainer(folder: Path, tmp: Path, trainer: str) -> Path:
    """A copy of ``folder`` whose checkpoint names ``trainer`` (weights unchanged)."""
    import shutil

    copy = tmp / f"{trainer}__nnUNetPlans__3d_fullres"
    shutil.copytree(folder, copy)
    ckpt_path = copy / "fold_0" / "checkpoint_final.pth"
    ckpt = read_nnunet_checkpoint(ckpt_path)
    ckpt["trainer_name"] = trainer
    torch.save(ckpt, ckpt_path)
    return copy


def test_missing_trainer_names_the_real_cause(break_modules, nnunet_folder: Path,
                                              tmp_path: Path) -> None:
    folder = _with_trainer(nnunet_folder, tmp_path, "nnUNetTrainerFromMyPaper")
    with pytest.raises(ModelLoadError) as exc:
        open_model(folder, device="cpu")
    msg = str(exc.value)
    assert "\n" not in msg and "not part of nnunetv2" not in msg
    assert "'nnUNetTrainerFromMyPaper' is not defined in nnunetv2" in msg
    assert "install the package that defines it" in msg and "ONNX" in msg
    # where nnU-Net's own lookup fails on the way, its exception is named
    break_modules(PRIMUS)
    with pytest.raises(ModelLoadError) as exc:
        open_model(folder, device="cpu")
    assert f"nnU-Net's own lookup failed: RuntimeError: {NMS_ERROR}" in str(exc.value)


def test_weights_are_loaded_strictly(nnunet_folder: Path, tmp_path: Path) -> None:
    """The default trainer's instance-norm weights under a trainer that builds a batch-norm
    network: refused, naming the fold, the trainer and the first mismatch."""
    clear_model_cache()
    folder = _with_trainer(nnunet_folder, tmp_path, "nnUNetTrainerBN")
    with pytest.raises(ModelLoadError) as exc:
        open_model(folder, device="cpu")
    msg = str(exc.value)
    assert "\n" not in msg
    assert "weights of fold 0 do not match the network of trainer nnUNetTrainerBN" in msg


EXT_BASE = '''
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer


class LabTrainerBase(nnUNetTrainer):
    def configure_optimizers(self):
        return super().configure_optimizers()
'''
EXT_TRAINERS = '''
import not_installed_training_helper  # a training-only dependency that is missing

from lab.base import LabTrainerBase


class LabTrainer_300epochs(LabTrainerBase):
    num_epochs = 300


class LabTrainerWideNet(LabTrainerBase):
    @staticmethod
    def build_network_architecture(*args, **kwargs):
        raise NotImplementedError
'''
EXT_IMPORTABLE = '''
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer


class LabTrainerShort(nnUNetTrainer):
    num_epochs = 10
'''


def test_trainers_of_nnunet_extTrainer_folders(tmp_path: Path, monkeypatch) -> None:
    """nnU-Net's ``nnUNet_extTrainer`` folders: importable trainers are found; one whose module
    cannot be imported runs with the standard network when its source and its base's (another
    module) show no network builder, and is refused naming the error when one does."""
    lab = tmp_path / "ext" / "lab"
    lab.mkdir(parents=True)
    (lab / "__init__.py").write_text("")
    (lab / "base.py").write_text(EXT_BASE)
    (lab / "trainers.py").write_text(EXT_TRAINERS)
    (lab / "short.py").write_text(EXT_IMPORTABLE)
    monkeypatch.setenv("nnUNet_extTrainer", str(tmp_path / "ext"))
    for name in ("lab", "lab.base", "lab.trainers", "lab.short"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    short = find_trainer("LabTrainerShort")
    assert short.module == "lab.short" and short.standard_network and short.cls.num_epochs == 10
    found = find_trainer("LabTrainer_300epochs")
    assert found.cls is None and found.standard_network and found.module == "lab.trainers"
    assert "ModuleNotFoundError: No module named 'not_installed_training_helper'" in found.note
    with pytest.raises(TrainerLookupError, match=r"lab\.trainers .*ModuleNotFoundError.*builds "
                                                 r"its own network"):
        find_trainer("LabTrainerWideNet")
    assert str(tmp_path / "ext") not in sys.path  # the folder is on sys.path only to import


def test_override_checks() -> None:
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    class Short(nnUNetTrainer):
        pass

    class Wide(Short):
        build_network_architecture = staticmethod(lambda *a, **k: None)

    class Wider(Wide):
        pass

    assert not overrides_network(nnUNetTrainer, nnUNetTrainer)
    assert not overrides_network(Short, nnUNetTrainer)
    assert overrides_network(Wide, nnUNetTrainer) and overrides_network(Wider, nnUNetTrainer)
    assert overrides_network(int, nnUNetTrainer)  # not a trainer: nothing is known


@pytest.mark.parametrize(("source", "expected"), [
    ("class T(nnUNetTrainer):\n    num_epochs = 5\n", False),
    ("class T(nnUNetTrainer):\n    def build_network_architecture(*a):\n        pass\n", True),
    ("class T(nnUNetTrainer):\n    build_network_architecture = staticmethod(f)\n", True),
    ("class B(nnUNetTrainer):\n    pass\n\n\nclass T(B):\n    pass\n", False),
    ("class B(nnUNetTrainer):\n    def build_network_architecture(*a):\n        pass\n\n\n"
     "class T(B):\n    pass\n", True),
    ("class T(SomethingUnknownXYZ):\n    pass\n", None),
    ("class T(make_base()):\n    pass\n", None),
])
def test_source_override_checks(tmp_path: Path, source: str, expected: bool | None) -> None:
    path = tmp_path / "m.py"
    path.write_text(source)
    assert source_overrides_network("T", path) is expected
