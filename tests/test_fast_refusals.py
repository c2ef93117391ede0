"""Refusals and help pages answer before any heavy import: measured against ``--version``.

A mistyped participant label, a folder that is not a BIDS dataset, a missing model file and
every ``--help`` are checked from the command line and the file system alone, so they never
import torch, nipype, pybids, nilearn, matplotlib or antspyx, and never load a model. Each is
run as a fresh ``bids_stroke`` process and timed as a ratio to ``bids_stroke --version`` in
the same test (the fastest of three interleaved runs of each, so that a busy machine slows
both alike).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bids_stroke.demo import make_demo_dataset

HEAVY = ("torch", "nipype", "bids", "nilearn", "matplotlib", "ants", "onnxruntime", "nnunetv2")
#: a refusal may take at most this multiple of ``bids_stroke --version``
MAX_RATIO = 3.0

# runs bids_stroke's entry point, then says its exit code and which heavy packages it imported
PROBE = f"""
import json, sys
from bids_stroke.cli.run import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)
print("PROBE " + json.dumps({{"code": code, "heavy": heavy}}), file=sys.stderr)
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("refusals")
    bids = make_demo_dataset(root / "bids", n_subjects=2, seed=0, resolution_mm=4.0,
                             progress=False)
    (root / "not_bids").mkdir()
    (root / "not_bids" / "notes.txt").write_text("not a dataset")
    return bids


def _cases(bids: Path) -> dict[str, tuple[list[str], int]]:
    root = bids.parent
    out = str(root / "out")
    return {
        "missing participant label": ([str(bids), out, "participant", "--participant-label",
                                       "nobody"], 18),
        "not a BIDS folder": ([str(root / "not_bids"), out, "participant"], 66),
        "model --help": (["model", "--help"], 0),
        "model info on a missing file": (["model", "info", str(root / "missing.pt")], 66),
        "participant --help": (["--help"], 0),
        "export --help": (["export", "--help"], 0),
        "score --help": (["score", "--help"], 0),
        "train --help": (["train", "--help"], 0),
        "demo without arguments": (["demo"], 64),
        "group without outputs": ([str(bids), str(root / "none"), "group"], 66),
    }


def _probe(argv: list[str], cwd: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True,
                          text=True, cwd=cwd, timeout=120, check=False)
    line = next(x for x in proc.stderr.splitlines() if x.startswith("PROBE "))
    return json.loads(line[6:])


def test_refusals_and_help_import_nothing_heavy(demo: Path) -> None:
    for name, (argv, code) in _cases(demo).items():
        got = _probe(argv, demo.parent)
        assert got["code"] == code, (name, got)
        assert got["heavy"] == [], f"{name} imported {got['heavy']}"
    assert not (demo.parent / "out").exists()


def test_cli_entry_point_imports_nothing_heavy() -> None:
    code = ("import sys, bids_stroke.cli.run, bids_stroke.cli.participant; "
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout.strip()
    assert out == "[]"


def _seconds(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bids_stroke.cli.run", *argv], capture_output=True,
                   cwd=cwd, timeout=120, check=False)
    return time.perf_counter() - start


def test_refusals_take_at_most_a_few_version_calls(demo: Path) -> None:
    cases = {k: v[0] for k, v in _cases(demo).items() if k in (
        "missing participant label", "not a BIDS folder", "model --help",
        "model info on a missing file")}
    times: dict[str, list[float]] = {"--version": [], **{k: [] for k in cases}}
    for _ in range(3):  # interleaved: a load spike slows every command alike
        times["--version"].append(_seconds(["--version"], demo.parent))
        for name, argv in cases.items():
            times[name].append(_seconds(argv, demo.parent))
    base = min(times["--version"])
    ratios = {name: min(times[name]) / base for name in cases}
    print(f"--version {base:.3f} s; ratios", {k: round(v, 2) for k, v in ratios.items()})
    assert all(r <= MAX_RATIO for r in ratios.values()), (base, ratios)
