"""One settings object: layers, one check per value (CLI = study file), replay, limits."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest

from bids_stroke.cli.run import main
from bids_stroke.core.settings import DEFAULT_STUDY, Settings, SettingsError, settings_from_layers
from bids_stroke.core.study_files import StudyFileError, load_study, study_settings


def test_defaults_round_trip_through_json():
    s = load_study("atlas_resolution")
    again = Settings.from_dict(json.loads(json.dumps(s.to_dict())))
    assert again == s
    assert again.results_key() == s.results_key()


def test_defaults_are_the_default_study():
    """``Settings()`` is the default study: the bundled file every CLI user gets without
    --study and the dataclass defaults agree on every value (the file only adds what names
    it: its description and where it was read from)."""
    default = Settings()
    study = load_study(DEFAULT_STUDY)
    assert study.study.name == default.study.name == DEFAULT_STUDY
    assert study.study.description and study.study.source
    named = dataclasses.replace(study.study, description=default.study.description,
                                source=default.study.source)

    def flat(s: Settings) -> dict:
        return {f"{sec}.{k}": v for sec, values in s.to_dict().items()
                if isinstance(values, dict) for k, v in values.items()}

    got, want = flat(dataclasses.replace(study, study=named)), flat(default)
    differ = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
    assert not differ, f"the default study and Settings() differ (file, dataclass): {differ}"


def test_cli_without_study_gets_the_defaults(plain_layout, tmp_path):
    from bids_stroke.cli.config import settings_from_cli
    from bids_stroke.cli.parser import build_parser

    argv = [str(plain_layout), str(tmp_path / "o"), "participant"]
    got = settings_from_cli(build_parser().parse_args(argv), argv)
    default = Settings()
    for name in ("registration", "segmentation", "metrics", "outputs", "group"):
        assert getattr(got, name) == getattr(default, name), name
    assert got.study.conditions == default.study.conditions
    assert got.results_key() == default.results_key()


def test_settings_are_immutable():
    s = Settings()
    with pytest.raises(AttributeError):
        s.segmentation.threshold = 0.7  # type: ignore[misc]


@pytest.mark.parametrize(
    ("section", "key", "value", "needle"),
    [
        ("segmentation", "threshold", 1.5, "must be in (0, 1)"),
        ("segmentation", "threshold", float("nan"), "finite"),
        ("segmentation", "threshold", "high", "number"),
        ("metrics", "tolerance_mm", -1, "must be in (0, 100]"),
        ("metrics", "connectivity", 8, "one of 6, 18, 26"),
        ("segmentation", "min_size", 2.5, "integer"),
        ("registration", "kind", "elastic", "one of affine"),
        ("group", "margins", {"dice": -0.05}, "dice must be in (0"),
        ("group", "margins", [0.05], "mapping of metric: margin"),
        ("group", "primary", "Dice score", "metric column name"),
        ("group", "digits_rank", 0, "must be in [1, 22]"),
        ("group", "bland_altman", "sqrt", "one of log, raw"),
        ("group", "pairs", [["ISLES:native"]], "two LABEL:condition items"),
    ],
)
def test_study_file_and_cli_share_each_check(section, key, value, needle, tmp_path, capsys):
    """The same bad value is refused with the same reason in a study file and on the CLI."""
    with pytest.raises(StudyFileError) as err:
        study_settings({"conditions": ["native"], section: {key: value}}, "study.yml")
    assert f"study.yml: {section}.{key}" in str(err.value) and needle in str(err.value)
    with pytest.raises(SettingsError) as err2:
        settings_from_layers(overrides={section: {key: value}})
    assert needle in str(err2.value)


def test_cli_threshold_refused_like_study_file(plain_layout, tmp_path, capsys):
    assert main([str(plain_layout), str(tmp_path / "o"), "participant",
                 "--threshold", "1.5"]) == 64
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--threshold must be in (0, 1)" in err[0]


def test_primary_metric_needs_a_margin_in_every_layer():
    with pytest.raises(StudyFileError, match=r"study.yml: group.primary hd95 has no margin"):
        study_settings({"conditions": ["native"], "group": {"primary": "hd95"}}, "study.yml")
    with pytest.raises(SettingsError, match="--margin hd95=VALUE"):
        settings_from_layers(overrides={"group": {"primary": "hd95"}})
    data = Settings().to_dict()
    data["group"]["primary"] = "hd95"
    with pytest.raises(SettingsError, match=r"cfg\.json: group\.primary hd95 has no margin"):
        Settings.from_dict(data, where="cfg.json")
    ok = settings_from_layers(overrides={"group": {"primary": "hd95",
                                                   "margins": {"hd95": 2, "dice": 0.05}}})
    assert dict(ok.group.margins) == {"hd95": 2.0, "dice": 0.05}


def test_impossible_condition_refused_by_the_parser():
    with pytest.raises(SettingsError):
        settings_from_layers(overrides={"study": {"conditions": ["native", "crude:0"]}})


def test_results_key_ignores_execution_and_device():
    a = Settings()
    b = a.replace(execution={"nprocs": 7, "omp_nthreads": 3},
                  segmentation={"device": "cpu"})
    c = a.replace(segmentation={"threshold": 0.6})
    assert a.results_key() == b.results_key() != c.results_key()


BOMB = """a: &a ["x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
conditions: [native]
"""


def test_yaml_alias_bomb_refused_fast(tmp_path):
    path = tmp_path / "bomb.yml"
    path.write_text(BOMB)
    assert path.stat().st_size < 400
    start = time.monotonic()
    with pytest.raises(StudyFileError) as err:
        load_study(path)
    assert time.monotonic() - start < 1.0
    assert "aliases" in str(err.value) and str(path) in str(err.value)


def test_deep_or_huge_study_file_refused(tmp_path):
    deep = tmp_path / "deep.yml"
    deep.write_text("conditions: [native]\nx: " + "[" * 100 + "]" * 100 + "\n")
    with pytest.raises(StudyFileError, match="nesting"):
        load_study(deep)
    huge = tmp_path / "huge.yml"
    huge.write_text("conditions: [native]\n#" + "x" * 300_000 + "\n")
    with pytest.raises(StudyFileError, match="too large"):
        load_study(huge)


def test_config_file_replays_settings(plain_layout, tmp_path, monkeypatch):
    """A written config re-read through --config-file gives the same settings (run id and
    command aside)."""
    from bids_stroke.cli.config import settings_from_cli
    from bids_stroke.cli.parser import build_parser

    argv = [str(plain_layout), str(tmp_path / "o"), "participant", "--threshold", "0.4",
            "--conditions", "native", "kspace:2", "--nprocs", "1", "--seed", "3"]
    first = settings_from_cli(build_parser().parse_args(argv), argv)
    path = first.write(tmp_path / "logs")
    argv2 = [str(plain_layout), str(tmp_path / "o"), "participant", "--config-file", str(path)]
    second = settings_from_cli(build_parser().parse_args(argv2), argv2)
    strip = {"run_uuid": "", "command": ""}
    assert second.replace(execution=strip) == first.replace(execution=strip)
    assert second.segmentation.threshold == 0.4
    assert [c.spec for c in second.study.conditions] == ["native", "kspace:2"]


def test_config_file_and_study_exclusive(plain_layout, tmp_path, capsys):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(Settings().to_dict()))
    assert main([str(plain_layout), str(tmp_path / "o"), "participant", "--config-file",
                 str(cfg), "--study", "atlas_resolution"]) == 64
    assert "--config-file and --study cannot be combined" in capsys.readouterr().err


def test_bad_config_file(plain_layout, tmp_path, capsys):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"segmentation": {"threshold": 2}}))
    assert main([str(plain_layout), str(tmp_path / "o"), "participant",
                 "--config-file", str(cfg)]) == 64
    assert "segmentation.threshold" in capsys.readouterr().err


def test_unknown_study_section_key_named(tmp_path):
    p = tmp_path / "s.yml"
    p.write_text("conditions: [native]\nmetrics: {tolerance: 2}\n")
    with pytest.raises(StudyFileError, match=r"metrics\.tolerance"):
        load_study(p)


def test_sections_of_settings_cover_the_study_schema():
    from bids_stroke.core.settings import study_keys

    keys = study_keys()
    assert "threshold" in keys["segmentation"] and "kind" in keys["registration"]
    assert Path  # keep the import used by type checkers


@pytest.mark.parametrize("cpus, nprocs, omp", [(1, 1, 1), (2, 1, 2), (8, 4, 2), (64, 32, 2)])
def test_default_processes_and_threads_follow_the_usable_cpus(plain_layout, tmp_path,
                                                             monkeypatch, cpus, nprocs, omp):
    """One nipype process per two usable CPUs (a SLURM task's allotment, not the machine's),
    the cores shared among them; the plugin is Linear for one process."""
    from bids_stroke.cli import config
    from bids_stroke.cli.parser import build_parser

    monkeypatch.setattr(config.os, "sched_getaffinity", lambda _pid: set(range(cpus)))
    argv = [str(plain_layout), str(tmp_path / "o"), "participant"]
    settings = config.settings_from_cli(build_parser().parse_args(argv), argv)
    assert (settings.execution.nprocs, settings.execution.omp_nthreads) == (nprocs, omp)
    assert settings.execution.plugin["plugin"] == ("Linear" if nprocs == 1 else "MultiProc")


@pytest.mark.parametrize("cpus, asked, runs", [(2, 2, 1), (3, 3, 1), (2, 1, 1), (4, 2, 2),
                                               (8, 4, 4)])
def test_nprocs_runs_one_process_below_four_cpus(plain_layout, tmp_path, monkeypatch, caplog,
                                                 cpus, asked, runs):
    """A second process was slower than one on 2 CPUs (bench/RESULTS.md): --nprocs is
    clamped there, with the reason in the log; a plugin file is left as written."""
    from bids_stroke.cli import config
    from bids_stroke.cli.parser import build_parser

    monkeypatch.setattr(config.os, "sched_getaffinity", lambda _pid: set(range(cpus)))
    argv = [str(plain_layout), str(tmp_path / "o"), "participant", "--nprocs", str(asked)]
    with caplog.at_level("WARNING", logger="bids_stroke"):
        settings = config.settings_from_cli(build_parser().parse_args(argv), argv)
    assert settings.execution.nprocs == runs
    assert settings.execution.plugin["plugin"] == ("Linear" if runs == 1 else "MultiProc")
    warned = [r.getMessage() for r in caplog.records if "--nprocs" in r.getMessage()]
    assert bool(warned) == (runs < asked)
    if warned:
        assert "one process" in warned[0] and "from 4 CPUs" in warned[0]
    plugin = tmp_path / "p.yml"
    plugin.write_text("plugin: MultiProc\nplugin_args: {n_procs: 2}\n")
    argv = [*argv, "--use-plugin", str(plugin)]
    settings = config.settings_from_cli(build_parser().parse_args(argv), argv)
    assert settings.execution.plugin == {"plugin": "MultiProc", "plugin_args": {"n_procs": 2}}


def test_settings_hold_parsed_conditions_and_write_their_specs():
    """The study's conditions are parsed once, when the settings are made; the written
    settings (and so the replay files and the results key) keep the canonical specs."""
    from bids_stroke.degradation import Condition, parse_condition

    s = settings_from_layers(overrides={"study": {
        "conditions": ["native", "crude:2x2x2", "thick:5:gap=1"], "reference": "prediction",
        "reference_condition": "CRUDE:2"}})
    assert all(isinstance(c, Condition) for c in s.study.conditions)
    assert [c.label for c in s.study.conditions] == ["native", "crude2", "thick5mmgap1mm"]
    assert s.study.reference_condition == parse_condition("crude:2")
    data = s.to_dict()
    assert data["study"]["conditions"] == ["native", "crude:2", "thick:5:gap=1"]
    assert data["study"]["reference_condition"] == "crude:2"
    again = Settings.from_dict(json.loads(json.dumps(data)))
    assert again == s and again.results_key("prediction") == s.results_key("prediction")
    assert Settings().study.conditions == tuple(parse_condition(c) for c in
                                                ("native", "crude:2", "linear:2"))
    with pytest.raises(SettingsError, match="duplicate condition"):
        s.replace(study={"conditions": ["crude:2", "crude:2x2x2"]})
