"""The command-line options are made from the settings' fields: a choice, a help text or a
default is written once, on the field, and the parser, the checks and the settings agree."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from bids_stroke.cli import export as export_cli
from bids_stroke.cli import score as score_cli
from bids_stroke.cli.config import CLIError, cli_overrides
from bids_stroke.cli.formatter import format_default
from bids_stroke.cli.options import OPTIONS, TABLE
from bids_stroke.cli.parser import build_parser
from bids_stroke.core.settings import SECTIONS, Settings, thaw


def _actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.dest: a for a in parser._actions}


@pytest.mark.parametrize("option", TABLE, ids=lambda o: o.flag)
def test_each_option_is_its_setting(option) -> None:
    field = option.field
    action = _actions(build_parser())[option.dest]
    assert tuple(action.option_strings) == option.flags
    assert action.default is None  # not given: the study file's value stands
    text = field.metadata["help"]
    assert action.help.startswith(f"do not {text}" if option.negate else text)
    assert "default" not in text.lower(), "the option says the default, not the field's help"
    check = field.metadata["check"]
    choices = getattr(getattr(check, "inner", check), "choices", None)
    assert (tuple(action.choices) if action.choices else None) == choices
    if option.is_flag:
        return
    default = getattr(getattr(Settings(), option.section), option.key)
    shown = field.metadata["default_text"] or (
        format_default(thaw(default)) if default not in (None, ()) else None)
    if shown:
        assert action.help.endswith(f"(default: {shown})"), action.help
        if field.metadata["default_text"] is None:  # the value shown is Settings()'s
            assert field.default == default or thaw(field.default) == thaw(default)
    else:
        assert "(default:" not in action.help


def test_one_option_per_setting_and_no_option_declared_twice() -> None:
    settings = [o.setting for o in TABLE]
    assert len(settings) == len(set(settings)) and len(OPTIONS) == len(TABLE)
    for option in TABLE:
        assert option.key in {f.name for f in dataclasses.fields(SECTIONS[option.section])}
    parser_dests = [a.dest for a in build_parser()._actions]
    assert all(parser_dests.count(o.dest) == 1 for o in TABLE)


@pytest.mark.parametrize("build", [export_cli.build_parser, score_cli.build_parser])
def test_export_and_score_options_reach_the_same_settings(build) -> None:
    """Their hand-made options keep the table's destinations, so one table reads them all."""
    hand_made = {"help", "bids_dir", "output_dir", "bids_filter_file", "study", "verbose",
                 "predictions", "tool_name", "tool_version", "exported"}
    for action in build()._actions:
        if action.dest in hand_made or action.dest is argparse.SUPPRESS:
            continue
        assert action.dest in OPTIONS, action.dest


def test_values_are_read_back_through_the_table(tmp_path) -> None:
    argv = [str(tmp_path), str(tmp_path / "o"), "participant", "--template-resolution", "2",
            "--margin", "hd95=2", "--compare", "A=a", "B=b", "--no-degraded-images",
            "--threshold", "0.4", "--conditions", "native", "crude:2", "-w", "w"]
    got = cli_overrides(build_parser().parse_args(argv))
    assert got["registration"] == {"template_resolution": 2}
    assert dict(got["group"]["margins"]) == {"hd95": 2.0}
    assert dict(got["group"]["compare"]) == {"A": str(Path("a").absolute()),
                                             "B": str(Path("b").absolute())}
    assert got["outputs"] == {"save_degraded": False}
    assert got["segmentation"] == {"threshold": 0.4}
    assert [c.spec for c in got["study"]["conditions"]] == ["native", "crude:2"]
    assert got["execution"]["work_dir"].is_absolute()
    for bad, message in [(["--threshold", "high"], "--threshold must be a number"),
                         (["--margin", "dice"], "--margin must be METRIC=VALUE"),
                         (["--compare", "A=a", "A=b"], "--compare: a dataset label is given "
                                                        "twice"),
                         (["--seed", "-1"], "--seed must be in [0, ")]:
        with pytest.raises(CLIError, match=message.replace("[", r"\[")) as err:
            cli_overrides(build_parser().parse_args([*argv[:3], *bad]))
        assert err.value.exit_code == 64
