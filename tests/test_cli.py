"""BIDS-App command line: parsing and every exit code that does not need a full run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bids_stroke import __version__
from bids_stroke.cli.parser import build_parser
from bids_stroke.cli.run import main


def run_cli(*args: str) -> int:
    return main([str(a) for a in args])


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        run_cli("--version")
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_console_script_version():
    out = subprocess.run(
        [sys.executable, "-m", "bids_stroke.cli.run", "--version"],
        capture_output=True, text=True, check=True,
    )
    assert out.stdout.strip() == f"bids_stroke {__version__}"


@pytest.mark.parametrize(("module", "usage"), [
    ("bids_stroke.templates", "usage: python -m bids_stroke.templates [-h] {fetch,info}"),
    ("bids_stroke.model.evaluate", "usage: evaluate.py [-h] [--model MODEL]"),
])
def test_python_m_entry_points_run_their_cli_module(module, usage):
    """The documented ``python -m`` commands outside ``cli/`` run the command lines in
    ``cli/`` (``bids_stroke.cli.templates``, ``bids_stroke.cli.evaluate``)."""
    out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True,
                         text=True, check=True, timeout=300)
    assert out.stdout.startswith(usage), out.stdout


def test_parser_accepts_both_levels_and_aliases(tmp_path):
    opts = build_parser().parse_args(
        [str(tmp_path), str(tmp_path / "o"), "participant", "group",
         "--participant_label", "sub-01", "02", "--conditions", "native", "crude:2"]
    )
    assert opts.analysis_level == ["participant", "group"]
    assert opts.participant_label == ["sub-01", "02"]
    assert opts.conditions == ["native", "crude:2"]


def test_unknown_level_exit_17(plain_layout, tmp_path):
    with pytest.raises(SystemExit) as exc:
        run_cli(plain_layout, tmp_path / "out", "session")
    assert exc.value.code == 17


def test_usage_error_exit_64(plain_layout, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        run_cli(plain_layout, tmp_path / "out", "participant", "--no-such-option")
    assert exc.value.code == 64
    capsys.readouterr()
    # a value is refused by its setting's check, as in a study file: one line, exit 64
    assert run_cli(plain_layout, tmp_path / "out", "participant", "--nprocs", "0") == 64
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["bids_stroke: error: --nprocs must be in [1, 4096], got 0"]
    assert not (tmp_path / "out").exists()


def test_missing_bids_dir_exit_66(tmp_path, capsys):
    assert run_cli(tmp_path / "nope", tmp_path / "out", "participant") == 66
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0]


@pytest.mark.parametrize("inside", ["", "sub-01/out", "code"])
def test_output_inside_bids_refused(plain_layout, inside, capsys):
    out = plain_layout / inside if inside else plain_layout
    before = sorted(p.relative_to(plain_layout) for p in plain_layout.rglob("*"))
    assert run_cli(plain_layout, out, "participant") == 64
    assert "BIDS dataset" in capsys.readouterr().err
    assert sorted(p.relative_to(plain_layout) for p in plain_layout.rglob("*")) == before


def test_unknown_participant_exit_18(plain_layout, tmp_path, capsys):
    out = tmp_path / "out"
    assert run_cli(plain_layout, out, "participant", "--participant-label", "77") == 18
    assert "sub-77" in capsys.readouterr().err
    assert not out.exists()


def test_participant_label_traversal_exit_64(plain_layout, tmp_path):
    assert run_cli(plain_layout, tmp_path / "o", "participant", "--participant-label",
                   "../etc") == 64


def test_bad_condition_exit_64(plain_layout, tmp_path, capsys):
    assert run_cli(plain_layout, tmp_path / "o", "participant", "--conditions", "cubic:2") == 64
    err = capsys.readouterr().err
    assert "cubic:2" in err and len(err.strip().splitlines()) == 1


def test_bad_study_exit_64(plain_layout, tmp_path, capsys):
    bad = tmp_path / "study.yml"
    bad.write_text("conditions: [native]\nsegmentaton: {}\n")
    assert run_cli(plain_layout, tmp_path / "o", "participant", "--study", bad) == 64
    assert "segmentaton" in capsys.readouterr().err


def test_pipeline_is_a_deprecated_name_of_study(plain_layout, tmp_path, capsys):
    """``--pipeline`` (the old name) still works, and says once that ``--study`` replaces it."""
    argv = [str(plain_layout), str(tmp_path / "o"), "participant"]
    opts = build_parser().parse_args([*argv, "--pipeline", "clinical_slices"])
    assert opts.study == "clinical_slices"
    err = capsys.readouterr().err
    assert err.count("deprecated") == 1 and "use --study" in err
    build_parser().parse_args([*argv, "--pipeline", "a", "--pipeline", "clinical_slices"])
    assert capsys.readouterr().err.count("deprecated") == 1
    from bids_stroke.cli import export, score

    for sub in (export.build_parser(), score.build_parser()):
        opts = sub.parse_args(["b", "o", "--pipeline", "clinical_slices", "--predictions", "p",
                               "--tool-name", "t"] if sub.prog.endswith("score")
                              else ["b", "o", "--pipeline", "clinical_slices"])
        assert opts.study == "clinical_slices"
    assert capsys.readouterr().err.count("deprecated") == 2
    bad = tmp_path / "study.yml"
    bad.write_text("conditions: [native]\nsegmentaton: {}\n")
    assert run_cli(plain_layout, tmp_path / "o", "participant", "--pipeline", bad) == 64
    assert "segmentaton" in capsys.readouterr().err


def test_validation_failure_exit_16(plain_layout, tmp_path):
    (plain_layout / "dataset_description.json").write_text(json.dumps({"Name": "x"}))
    assert run_cli(plain_layout, tmp_path / "o", "participant") == 16


def test_isles_without_modality_selects_nothing_exit_18(isles_layout, tmp_path):
    assert run_cli(isles_layout, tmp_path / "o", "participant") == 18


def test_missing_model_exit_66(plain_layout, tmp_path):
    assert run_cli(plain_layout, tmp_path / "o", "participant", "--model",
                   tmp_path / "none.pt") == 66


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_output_exit_73(plain_layout, tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        assert run_cli(plain_layout, out / "deriv", "participant") == 73
    finally:
        out.chmod(0o755)


def test_output_is_a_file_exit_73(plain_layout, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert run_cli(plain_layout, blocker / "out", "participant",
                   "--skip-bids-validation") == 73
    assert "cannot create" in capsys.readouterr().err


def test_group_without_participant_outputs_exit_66(plain_layout, tmp_path):
    out = tmp_path / "out"
    assert run_cli(plain_layout, out, "group") == 66
    out.mkdir()
    assert run_cli(plain_layout, out, "group") == 66


def test_bad_plugin_file_exit_64(plain_layout, tmp_path):
    plug = tmp_path / "plugin.yml"
    plug.write_text("plugin_args: {}\n")
    assert run_cli(plain_layout, tmp_path / "o", "participant", "--use-plugin", plug) == 64


def test_one_modality_per_output_folder(isles_layout, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".bids_stroke").mkdir()
    (out / ".bids_stroke" / "dataset.json").write_text('{"modality": "dwi"}')
    assert run_cli(isles_layout, out, "participant", "--modality", "adc",
                   "--allow-modality-mismatch") == 64
    assert "one modality per folder" in capsys.readouterr().err


def _forbid_input_check(monkeypatch) -> None:
    """Fail if the (slow) discovery or input check runs."""
    import bids_stroke.inputs.discovery
    import bids_stroke.inputs.preflight

    def boom(*_a, **_k):
        raise AssertionError("the input check ran before the cheap output checks")

    monkeypatch.setattr(bids_stroke.inputs.discovery, "collect_images", boom)
    monkeypatch.setattr(bids_stroke.inputs.preflight, "preflight_check", boom)


@pytest.mark.parametrize("target", ["file", "below_file", "work_file"])
def test_output_path_refused_before_input_check(plain_layout, tmp_path, capsys, monkeypatch,
                                                 target):
    _forbid_input_check(monkeypatch)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out, extra = tmp_path / "out", []
    if target == "file":
        out = blocker
    elif target == "below_file":
        out = blocker / "out"
    else:
        extra = ["-w", str(blocker / "work")]
    assert run_cli(plain_layout, out, "participant", *extra) == 73
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(blocker) in err[0], err
    assert blocker.read_text() == "x" and not (tmp_path / "out").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_parent_refused_before_input_check(plain_layout, tmp_path, monkeypatch):
    _forbid_input_check(monkeypatch)
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        assert run_cli(plain_layout, parent / "deriv", "participant") == 73
    finally:
        parent.chmod(0o755)


def test_bundled_model_on_other_data_is_warned(tmp_path):
    """The bundled demo model on a dataset bids_stroke demo did not write: one of the run's
    warnings (logged once, repeated in every report); on a demo dataset (its marker) none."""
    from bids_stroke.cli.config import settings_from_cli
    from bids_stroke.cli.participant import plan_model
    from bids_stroke.model.bundled import DEMO_DATASET_MARKER, DEMO_MODEL_WARNING

    bids = tmp_path / "bids"
    bids.mkdir()

    def warnings(*extra: str) -> list[str]:
        opts = build_parser().parse_args([str(bids), str(tmp_path / "out"), "participant",
                                          *extra])
        return plan_model(settings_from_cli(opts))[1]

    assert DEMO_MODEL_WARNING in warnings()
    (bids / DEMO_DATASET_MARKER).write_text("{}")
    assert DEMO_MODEL_WARNING not in warnings()
    (bids / DEMO_DATASET_MARKER).unlink()
    from bids_stroke.model.bundled import bundled_model_path

    # named by its path it is still the demo model (recognised by its sha256), and so is its
    # ONNX export (which records the checkpoint it came from)
    assert DEMO_MODEL_WARNING in warnings("--model", str(bundled_model_path()))
    pytest.importorskip("onnx")
    from bids_stroke.model.export import export_onnx

    onnx = export_onnx(bundled_model_path(), tmp_path / "bundled.onnx")
    assert DEMO_MODEL_WARNING in warnings("--model", str(onnx))
