"""Tests of the training loop and the ``bids_stroke-train`` command line."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from bids_stroke.cli.train import main as train_main
from bids_stroke.model import load_model
from bids_stroke.model.checkpoint import load_checkpoint
from bids_stroke.model.train import (
    TrainConfig,
    TrainingCase,
    dice_score,
    make_split,
    sample_patch,
    train,
)


@pytest.fixture(scope="module")
def tiny_bids(tmp_path_factory) -> Path:
    """Three synthetic subjects at 3 mm (about 66 x 78 x 63 voxels)."""
    from bids_stroke.demo import make_demo_dataset

    root = tmp_path_factory.mktemp("train") / "bids"
    return make_demo_dataset(
        root, n_subjects=3, seed=7, resolution_mm=3.0, subject_offset=900, progress=False
    )


def _cfg(bids: Path, out: Path, **kw) -> TrainConfig:
    base = {
        "epochs": 2,
        "steps_per_epoch": 1,
        "patch_size": (16, 16, 16),
        "batch_size": 2,
        "base_channels": 2,
        "depth": 2,
        "seed": 0,
        "device": "cpu",
        "precision": "fp32",
        "val_precision": "fp32",
        "progress": False,
        "command": "pytest",
    }
    base.update(kw)
    return TrainConfig(bids_dir=bids, out_dir=out, **base)


def _state(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["state_dict"]


def test_training_smoke_outputs(tiny_bids, tmp_path):
    out = tmp_path / "run"
    summary = train(_cfg(tiny_bids, out))
    assert summary["n_train"] == 2 and summary["n_val"] == 1
    rows_log = list(csv.DictReader(open(out / "training_log.tsv"), delimiter="\t"))
    assert [r["epoch"] for r in rows_log] == ["1", "2"]
    assert all(np.isfinite(float(r["train_loss"])) for r in rows_log)
    assert 0.0 <= float(rows_log[-1]["val_dice"]) <= 1.0
    split = list(csv.DictReader(open(out / "split.tsv"), delimiter="\t"))
    assert sorted(r["split"] for r in split) == ["train", "train", "val"]
    ck = load_checkpoint(out / "checkpoints" / "best.pt")
    assert ck["training"]["seed"] == 0 and ck["training"]["command"] == "pytest"
    assert "optimizer" in load_checkpoint(out / "checkpoints" / "last.pt")
    model = load_model(out / "checkpoints" / "best.pt", device="cpu")
    assert model.info["model_config"]["depth"] == 2
    # the validation Dice of training equals the Dice through the public inference path
    # (same preprocessing in training and inference)
    from bids_stroke.model.evaluate import evaluate_dataset

    val_sub = next(r["participant_id"] for r in split if r["split"] == "val")
    rows = evaluate_dataset(
        tiny_bids, out / "checkpoints" / "last.pt", device="cpu", precision="fp32",
        participant_label=[val_sub],
    )  # fmt: skip
    assert len(rows) == 1
    assert rows[0]["dice"] == pytest.approx(float(rows_log[-1]["val_dice"]), abs=1e-6)


def test_training_is_deterministic_and_resumable(tiny_bids, tmp_path):
    a = train(_cfg(tiny_bids, tmp_path / "a", augment_resolution=False))
    b = train(_cfg(tiny_bids, tmp_path / "b"))
    sa, sb = _state(a["last"]), _state(b["last"])
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    c = train(_cfg(tiny_bids, tmp_path / "c", seed=1))
    sc = _state(c["last"])
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    # 1 epoch, then resume to 2 epochs == 2 epochs in one go
    train(_cfg(tiny_bids, tmp_path / "r", epochs=2, steps_per_epoch=1, stop_after=1))
    r = train(_cfg(tiny_bids, tmp_path / "r", resume=True))
    sr = _state(r["last"])
    assert all(torch.equal(sa[k], sr[k]) for k in sa)
    log = (tmp_path / "r" / "training_log.tsv").read_text().splitlines()
    assert len(log) == 3  # header + 2 epochs


def test_split_is_seeded_by_subject_and_excludes_test():
    subs = [f"s{i:02d}" for i in range(10)]
    s1 = make_split(subs, 0.2, seed=3, test={"s00", "s01"})
    assert s1 == make_split(subs, 0.2, seed=3, test={"s00", "s01"})
    assert s1["s00"] == s1["s01"] == "test"
    assert sum(v == "val" for v in s1.values()) == 2  # 20 % of the 8 others (rounded)
    assert make_split(subs, 0.2, seed=4) != make_split(subs, 0.2, seed=3)


def test_test_list_and_cli(tiny_bids, tmp_path):
    held = tmp_path / "held.txt"
    held.write_text("participant_id\nsub-r001s901\n")
    out = tmp_path / "cli"
    rc = train_main(
        [str(tiny_bids), str(out), "--epochs", "1", "--steps-per-epoch", "1",
         "--patch-size", "16", "--base-channels", "2", "--depth", "2", "--device", "cpu",
         "--precision", "fp32", "--test-list", str(held), "--no-progress",
         "--augment-resolution"]
    )  # fmt: skip
    assert rc == 0
    split = {r["participant_id"]: r["split"]
             for r in csv.DictReader(open(out / "split.tsv"), delimiter="\t")}  # fmt: skip
    assert split["sub-r001s901"] == "test"
    assert sorted(split.values()) == ["test", "train", "val"]
    assert train_main([str(tmp_path / "empty"), str(tmp_path / "o2"), "--patch-size", "10"]) != 0


def test_foreground_oversampling_and_augmented_patch_shapes():
    rng = np.random.default_rng(0)
    img = rng.normal(size=(40, 40, 40)).astype(np.float32)
    mask = np.zeros_like(img, dtype=np.uint8)
    mask[30:33, 5:8, 20:23] = 1
    case = TrainingCase("sub-x", "x", None, img, mask, (1.0, 1.0, 1.0), np.argwhere(mask))
    for _ in range(10):
        i, m = sample_patch(case, (16, 16, 16), rng, foreground=True, augment=True,
                            augment_resolution=False)  # fmt: skip
        assert i.shape == m.shape == (16, 16, 16) and m.sum() == 27
    i, m = sample_patch(case, (16, 16, 16), rng, foreground=False, augment=False,
                        augment_resolution=True, resolution_probability=1.0)  # fmt: skip
    assert i.shape == (16, 16, 16) and np.isfinite(i).all()
    assert dice_score(mask, mask) == 1.0 and dice_score(mask, np.zeros_like(mask)) == 0.0
