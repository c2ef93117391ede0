"""Provenance helpers: the command line with resolved paths, and the container (or none)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from bids_stroke.cli.command_line import command_line
from bids_stroke.core.provenance import container_info


def test_command_line_resolves_every_path_argument(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bids").mkdir()
    argv = ["/opt/venv/bin/bids_stroke", "bids", "out", "participant", "group",
            "--participant-label", "01", "-w", "../work", "--model=m.pt", "--nprocs", "2",
            "--derivatives", "d1", "d2", "--conditions", "native", "crude:2"]
    line = command_line(argv)
    words = shlex.split(line)
    base = tmp_path.resolve()
    assert words == [
        "bids_stroke", str(base / "bids"), str(base / "out"), "participant", "group",
        "--participant-label", "01", "-w", str(base.parent / "work"), f"--model={base}/m.pt",
        "--nprocs", "2", "--derivatives", str(base / "d1"), str(base / "d2"),
        "--conditions", "native", "crude:2",
    ]


def test_command_line_quotes_and_subcommands(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    line = command_line(["bids_stroke", "demo", "my demo", "--seed", "3"])
    assert line == f"bids_stroke demo '{tmp_path.resolve()}/my demo' --seed 3"
    line = command_line(["/x/bids_stroke/cli/run.py", "train", "b", "o", "--epochs", "1"])
    assert shlex.split(line) == ["bids_stroke", "train", str(tmp_path.resolve() / "b"),
                                 str(tmp_path.resolve() / "o"), "--epochs", "1"]
    assert command_line(["bids_stroke-demo", "--version"]) == "bids_stroke-demo --version"


def test_command_line_unparsable_keeps_words_and_resolves_existing_files(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exists").mkdir()
    line = command_line(["bids_stroke", "exists", "--no-such-option", "missing"])
    assert line == f"bids_stroke {tmp_path.resolve()}/exists --no-such-option missing"


@pytest.mark.parametrize(
    ("env", "markers", "expected"),
    [
        ({}, [], None),
        ({}, [".dockerenv"], None),  # some container, not our image: claim nothing
        ({}, ["run/.containerenv"], None),
        ({"BIDS_STROKE_CONTAINER": "docker", "BIDS_STROKE_IMAGE": "bids_stroke:0.1.0"},
         [".dockerenv"], {"Type": "docker", "Tag": "bids_stroke:0.1.0"}),
        ({"BIDS_STROKE_CONTAINER": "docker"}, ["run/.containerenv"], {"Type": "podman"}),
        ({"APPTAINER_CONTAINER": "/images/bids_stroke-0.1.0.sif"}, [],
         {"Type": "apptainer", "Tag": "bids_stroke-0.1.0.sif"}),
        ({"SINGULARITY_CONTAINER": "/images/x.sif", "BIDS_STROKE_CONTAINER": "docker",
          "BIDS_STROKE_IMAGE": "bids_stroke:0.1.0"}, [".dockerenv"],
         {"Type": "singularity", "Tag": "bids_stroke:0.1.0"}),
        ({"BIDS_STROKE_CONTAINER": " "}, [".dockerenv"], None),
    ],
)
def test_container_info(tmp_path: Path, env: dict, markers: list[str], expected) -> None:
    for marker in markers:
        (tmp_path / marker).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / marker).touch()
    info = container_info(env, root=tmp_path)
    assert info == expected
    assert info is None or all(info.values())  # never an empty tag


def test_images_declare_themselves() -> None:
    """The Dockerfile and the Apptainer definitions set what container_info reads."""
    root = Path(__file__).resolve().parents[1]
    dockerfile = (root / "Dockerfile").read_text()
    assert "BIDS_STROKE_CONTAINER=docker" in dockerfile
    assert 'BIDS_STROKE_IMAGE="bids_stroke:${VERSION}"' in dockerfile
    version = (root / "bids_stroke" / "__about__.py").read_text().split('"')[1]
    for name in ("singularity.def", "singularity-fromscratch.def"):
        assert f"export BIDS_STROKE_IMAGE=bids_stroke:{version}" in (root / name).read_text()
