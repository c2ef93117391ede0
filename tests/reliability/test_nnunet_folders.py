"""Malformed nnU-Net v2 folders: every one is refused before any work with one line naming the
file and the key (exit 65), by ``bids_stroke model info DIR --check`` and by
``participant --model DIR``; never a ``KeyError``/``TypeError`` traceback.

Each case edits a copy of the real tiny nnU-Net folder (``nnunet_folder``, made by nnunetv2's own
tools), so everything but the edited key is what nnU-Net writes.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.nnunet_tiny import write_isles_bids

from .conftest import assert_error_line, assert_no_partial, run_inprocess, snapshot

pytest.importorskip("nnunetv2")

Edit = Callable[[Any], Any]
CONF = "3d_fullres"


def _conf(edit: Callable[[dict], None]) -> Edit:
    def apply(plans: dict) -> dict:
        edit(plans["configurations"][CONF])
        return plans
    return apply


def _set(key: str, value: Any) -> Edit:
    def apply(data: dict) -> dict:
        data[key] = value
        return data
    return apply


def _drop(*keys: str) -> Edit:
    def apply(data: dict) -> dict:
        for key in keys:
            data.pop(key)
        return data
    return apply


def _cycle(plans: dict) -> dict:
    plans["configurations"]["a"] = {"inherits_from": "b"}
    plans["configurations"]["b"] = {"inherits_from": "a"}
    plans["configurations"][CONF]["inherits_from"] = "a"
    return plans


def _only_2d(plans: dict) -> dict:
    plans["configurations"] = {"2d": plans["configurations"][CONF]}
    return plans


# (case id, file, edit, what the line must say)
CASES: list[tuple[str, str, Edit, str]] = [
    ("plans-empty-object", "plans.json", lambda _: {}, "missing key 'configurations'"),
    ("plans-list", "plans.json", lambda _: [1, 2, 3], "must hold a JSON object, not a list"),
    ("plans-string", "plans.json", lambda _: "plans", "must hold a JSON object, not a string"),
    ("configuration-without-network", "plans.json",
     _conf(lambda c: c.pop("architecture")), f"missing key 'configurations.{CONF}.architecture'"),
    ("network-without-kwargs", "plans.json",
     _conf(lambda c: c["architecture"].pop("arch_kwargs")),
     f"missing key 'configurations.{CONF}.architecture.arch_kwargs'"),
    ("old-network-keys-incomplete", "plans.json",
     _conf(lambda c: (c.pop("architecture"), c.update(UNet_class_name="PlainConvUNet"))),
     f"missing key 'configurations.{CONF}.UNet_base_num_features'"),
    ("configuration-missing", "plans.json", _only_2d, f"no configuration '{CONF}'"),
    ("configuration-not-object", "plans.json",
     lambda p: {**p, "configurations": {CONF: [1]}},
     f"'configurations.{CONF}' must be an object, not a list"),
    ("inheritance-circle", "plans.json", _cycle, "inherit in a circle"),
    ("patch-size-string", "plans.json", _conf(lambda c: c.update(patch_size="big")),
     f"'configurations.{CONF}.patch_size' must be a list of integers, not a string"),
    ("no-spacing", "plans.json", _conf(lambda c: c.pop("spacing")),
     f"missing key 'configurations.{CONF}.spacing'"),
    ("one-normalisation-for-two-channels", "plans.json",
     _conf(lambda c: c.update(normalization_schemes=["ZScoreNormalization"])),
     "has 1 entries for 2 input channel(s)"),
    ("no-resampling-kwargs", "plans.json",
     _conf(lambda c: c.pop("resampling_fn_probabilities_kwargs")),
     f"missing key 'configurations.{CONF}.resampling_fn_probabilities_kwargs'"),
    ("transpose-not-a-list", "plans.json", _set("transpose_forward", "xyz"),
     "'transpose_forward' must be a list of integers"),
    ("transpose-not-an-order", "plans.json", _set("transpose_backward", [0, 0, 2]),
     "'transpose_backward' must be an axis order"),
    ("no-intensity-properties", "plans.json",
     _drop("foreground_intensity_properties_per_channel"),
     "missing key 'foreground_intensity_properties_per_channel'"),
    ("intensity-properties-of-one-channel", "plans.json",
     lambda p: {**p, "foreground_intensity_properties_per_channel": {
         "0": p["foreground_intensity_properties_per_channel"]["0"]}},
     "missing key 'foreground_intensity_properties_per_channel.1'"),
    ("no-reader", "plans.json", _drop("image_reader_writer"),
     "missing key 'image_reader_writer'"),
    ("unknown-reader", "plans.json", _set("image_reader_writer", "NoSuchIO"),
     "'image_reader_writer' names something nnunetv2"),
    ("unknown-preprocessor", "plans.json",
     _conf(lambda c: c.update(preprocessor_name="NoSuchPreprocessor")),
     f"'configurations.{CONF}.preprocessor_name' names a class"),
    ("unknown-normalisation", "plans.json",
     _conf(lambda c: c.update(normalization_schemes=["NoSuchNorm", "NoSuchNorm"])),
     f"'configurations.{CONF}.normalization_schemes' names a class"),
    ("unknown-network-class", "plans.json",
     _conf(lambda c: c["architecture"].update(network_class_name="nowhere.NoNet")),
     "'nowhere.NoNet', which is not an importable class"),
    ("network-kwargs-wrong", "plans.json",
     _conf(lambda c: c["architecture"]["arch_kwargs"].update(n_stages="four")),
     "cannot build the network of configuration"),
    ("dataset-list", "dataset.json", lambda _: [1], "must hold a JSON object, not a list"),
    ("dataset-without-labels", "dataset.json", _drop("labels"), "missing key 'labels'"),
    ("dataset-without-channels", "dataset.json", _drop("channel_names"),
     "missing key 'channel_names'"),
    ("dataset-label-not-integer", "dataset.json",
     lambda d: {**d, "labels": {"background": 0, "lesion": "one"}},
     "label 'lesion' must be an integer"),
]
#: the issue's reproductions, also run through ``participant --model``
PARTICIPANT_CASES = ("plans-empty-object", "plans-list", "configuration-without-network",
                     "unknown-network-class", "dataset-list")


def _malformed(folder: Path, tmp: Path, case: str) -> tuple[Path, Path]:
    (_, name, edit, _) = next(c for c in CASES if c[0] == case)
    copy = tmp / "models" / folder.name
    shutil.copytree(folder, copy)
    target = copy / name
    target.write_text(json.dumps(edit(json.loads(target.read_text()))))
    return copy, target


@pytest.mark.parametrize(("case", "name", "edit", "message"), CASES, ids=[c[0] for c in CASES])
def test_model_info_check_refuses(nnunet_folder: Path, tmp_path: Path, capsys, case: str,
                                  name: str, edit: Edit, message: str) -> None:
    from bids_stroke.cli.model import main as model_main
    from bids_stroke.model.adapters import clear_model_cache

    clear_model_cache()
    folder, target = _malformed(nnunet_folder, tmp_path, case)
    capsys.readouterr()
    assert model_main(["info", str(folder), "--check"]) == 65
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert str(target) in err and message in err, err


@pytest.mark.parametrize("case", PARTICIPANT_CASES)
def test_participant_refuses_before_any_work(nnunet_folder: Path, tmp_path: Path, capsys,
                                             case: str) -> None:
    from bids_stroke.model.adapters import clear_model_cache

    clear_model_cache()
    folder, target = _malformed(nnunet_folder, tmp_path, case)
    message = next(c[3] for c in CASES if c[0] == case)
    bids = write_isles_bids(tmp_path / "bids", n=1)
    before = snapshot(bids)
    out, work = tmp_path / "out", tmp_path / "work"
    result = run_inprocess([bids, out, "participant", "-w", work, "--nprocs", "1",
                            "--model", folder, "--modality", "dwi",
                            "--conditions", "native"], capsys)
    assert result.code == 65, result.stderr[-3000:]
    line = assert_error_line(result.stderr, message)
    assert str(target) in line
    assert snapshot(bids) == before
    assert not list(out.glob("sub-*")) and not (work.exists() and any(work.rglob("*.pklz")))
    assert_no_partial(out)


def test_valid_folder_still_passes(nnunet_folder: Path, capsys) -> None:
    from bids_stroke.cli.model import main as model_main

    assert model_main(["info", str(nnunet_folder), "--check"]) == 0
    assert "checks:     passed" in capsys.readouterr().out
