"""``--help`` of every command: stored snapshots, each default said once, and the routing of
``bids_stroke demo|train|model`` that never shadows a dataset folder of the same name.

Snapshots live in ``tests/snapshots/help/`` and are rendered at 100 columns. argparse's
layout changes between Python minor versions (3.13 prints ``-w, --work-dir PATH``), so the
byte comparison runs on the Python version the snapshots were written with (first line of
each file) and the structural checks on every version. Regenerate after a deliberate change:
``BIDS_STROKE_UPDATE_SNAPSHOTS=1 pytest tests/test_help.py``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bids_stroke.cli import demo as demo_cli
from bids_stroke.cli import export as export_cli
from bids_stroke.cli import parser as main_parser
from bids_stroke.cli import score as score_cli
from bids_stroke.cli import status as status_cli
from bids_stroke.cli import train as train_cli
from bids_stroke.cli.run import main
from bids_stroke.cli.subcommands import subcommand

SNAPSHOTS = Path(__file__).parent / "snapshots" / "help"
PY = f"python {sys.version_info.major}.{sys.version_info.minor}"
COMMANDS: dict[str, tuple[list[str], Callable[[], argparse.ArgumentParser]]] = {
    "bids_stroke": ([], main_parser.build_parser),
    "bids_stroke_demo": (["demo"], lambda: demo_cli.build_parser("bids_stroke demo")),
    "bids_stroke_train": (["train"], lambda: train_cli.build_parser("bids_stroke train")),
}
if importlib.util.find_spec("bids_stroke.cli.model") is not None:  # the model subcommand
    from bids_stroke.cli import model as model_cli

    def _model_sub(name: str) -> argparse.ArgumentParser:
        parser = model_cli.build_parser()
        subparsers = next(a for a in parser._actions
                          if isinstance(a, argparse._SubParsersAction))
        return subparsers.choices[name]

    COMMANDS["bids_stroke_model"] = (["model"], model_cli.build_parser)
    COMMANDS["bids_stroke_model_info"] = (["model", "info"], lambda: _model_sub("info"))
    COMMANDS["bids_stroke_model_export"] = (["model", "export"], lambda: _model_sub("export"))


COMMANDS["bids_stroke_export"] = (["export"], export_cli.build_parser)
COMMANDS["bids_stroke_score"] = (["score"], score_cli.build_parser)
COMMANDS["bids_stroke_status"] = (["status"], status_cli.build_parser)


def render_help(args: list[str], capsys: pytest.CaptureFixture, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.chdir(SNAPSHOTS.parent)  # no folder named demo/train here
    with pytest.raises(SystemExit) as exc:
        main([*args, "--help"])
    assert exc.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_matches_snapshot(name: str, capsys, monkeypatch) -> None:
    text = render_help(COMMANDS[name][0], capsys, monkeypatch)
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("BIDS_STROKE_UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {PY}\n{text}")
    stored = path.read_text()
    version, _, body = stored.partition("\n")
    if version != f"# {PY}":
        pytest.skip(f"snapshot written with {version[2:]}, running {PY}")
    assert text == body, f"{name} --help changed: update {path} (see the module docstring)"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_says_each_default_once(name: str, capsys, monkeypatch) -> None:
    args, build = COMMANDS[name]
    text = render_help(args, capsys, monkeypatch)
    sub = " ".join(args)
    assert text.startswith(f"usage: bids_stroke{' ' + sub if sub else ''} [-h]")
    flat = re.sub(r"\s+", " ", text)
    parser = build()
    if any(a.option_strings and a.nargs != 0 and a.default not in (None, argparse.SUPPRESS)
           for a in parser._actions):  # an option with a default says it
        assert flat.count("(default: ") >= 1
    # "(default: all) (default: None)"
    assert not re.search(r"\(default:[^)]*\)\s*\(default:", flat)
    assert "default: None" not in flat and "default: []" not in flat
    assert not re.search(r"\d\.\d{5,}", text)  # 0.3333333333333333
    assert "``" not in text  # reStructuredText markup of a docstring
    formatter = parser._get_formatter()
    for action in parser._actions:
        if action.help is argparse.SUPPRESS:
            continue
        label = (action.option_strings or [action.dest])[0]
        assert action.help, f"{name}: {label} has no help"
        assert formatter._expand_help(action).lower().count("default") <= 1, label


def test_help_shows_training_defaults(capsys, monkeypatch) -> None:
    text = render_help(["train"], capsys, monkeypatch)
    for option, default in [("--epochs N", "40"), ("--lr LR", "0.003"), ("--batch-size N", "2"),
                            ("--depth N", "4"), ("--val-fraction F", "0.2"),
                            ("--fg-fraction F", "1/3")]:
        block = re.sub(r"\s+", " ", text.split(f"\n  {option}", 1)[1].split("\n  -", 1)[0])
        assert f"(default: {default})" in block, (option, block)


def test_console_scripts_keep_their_names(capsys) -> None:
    with pytest.raises(SystemExit):
        demo_cli.main(["--help"])
    assert capsys.readouterr().out.startswith("usage: bids_stroke-demo ")
    with pytest.raises(SystemExit):
        train_cli.main(["--help"])
    assert capsys.readouterr().out.startswith("usage: bids_stroke-train ")


def test_subcommand_routing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert subcommand(["demo", "out"]) == "demo"
    assert subcommand(["train", "bids", "out", "--epochs", "1"]) == "train"
    assert subcommand(["demo", "out", "participant"]) == "demo"  # no folder named demo
    assert subcommand(["./demo", "out", "participant"]) is None
    assert subcommand(["--", "demo", "out", "participant"]) is None
    assert subcommand(["bids", "out", "participant"]) is None
    assert subcommand([]) is None
    (tmp_path / "demo").mkdir()
    assert subcommand(["demo", "out", "participant"]) is None  # the dataset folder wins
    assert subcommand(["demo", "out", "group"]) is None
    assert subcommand(["demo", "other_out"]) == "demo"  # no level: the demo command
    has_model = importlib.util.find_spec("bids_stroke.cli.model") is not None
    assert subcommand(["model", "list"]) == ("model" if has_model else None)


@pytest.mark.parametrize("prefix", [[], ["--"]])
def test_dataset_folder_named_demo_is_bids_dir(plain_layout: Path, tmp_path: Path, monkeypatch,
                                               capsys, prefix: list[str]) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    shutil.copytree(plain_layout, work / "demo")
    monkeypatch.chdir(work)
    # taken as BIDS_DIR: discovery runs and reports that sub-77 does not exist (exit 18)
    assert main([*prefix, "demo", "out", "participant", "--participant-label", "77"]) == 18
    assert "sub-77" in capsys.readouterr().err
    assert not (work / "out").exists()


@pytest.mark.parametrize("argv", [["demo"], ["train"], ["status", "out"], ["model"],
                                  ["model", "info"], ["export", "bids"], ["score", "bids", "out"],
                                  ["bids", "out"], ["demo", "out", "--n-subjects", "x"]])
def test_usage_errors_exit_64(argv: list[str], tmp_path: Path, monkeypatch, capsys) -> None:
    """Every command refuses a wrong command line with the documented usage code, 64."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 64, argv
    err = capsys.readouterr().err
    assert err.startswith("usage: bids_stroke") and "error:" in err
    assert not any(tmp_path.iterdir())
