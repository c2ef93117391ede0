"""``make demo`` as a new user runs it, twice, at 2 mm with 2 subjects (the Makefile's own
commands, with ``DEMO_ARGS``): the first run's participant log is short and ends with the
progress summary; its output folder is the tree documented in ``docs/outputs.md``, file by file;
the second run reuses the dataset, keeps every unchanged image and is quick.

Skipped when ``make`` is missing or the interpreter running the tests is not a venv with the
``bids_stroke`` console script (``make -o venv`` keeps make from reinstalling it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.docs_check import DOCS, output_tree

REPO = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)
SECOND_RUN_BUDGET_S = 60.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed"),
    pytest.mark.skipif(not (VENV / "bin" / "bids_stroke").is_file(),
                       reason=f"{VENV} has no bids_stroke console script"),
]


def make_demo(demo_dir: Path) -> tuple[str, float]:
    env = {**os.environ, "COLUMNS": "100"}
    env.pop("MAKEFLAGS", None)
    start = time.monotonic()
    proc = subprocess.run(
        ["make", "--no-print-directory", "-o", "venv", "demo", f"VENV={VENV}",
         f"DEMO_DIR={demo_dir}", "DEMO_ARGS=--n-subjects 2 --resolution 2 --quiet", "NPROCS=2"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=1200,
    )
    elapsed = time.monotonic() - start
    log = proc.stdout
    (demo_dir.parent / f"make_demo_{time.time_ns()}.log").write_text(log)
    assert proc.returncode == 0, log[-3000:]
    return log, elapsed


def participant_log(log: str) -> list[str]:
    lines = log.splitlines()
    start = next(i for i, line in enumerate(lines) if " participant -w " in line)
    end = next(i for i, line in enumerate(lines) if i > start and line.endswith(" group"))
    return lines[start + 1:end]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    demo_dir = tmp_path_factory.mktemp("make_demo") / "demo"
    log, _ = make_demo(demo_dir)
    return demo_dir, log


def test_participant_log_is_short_with_a_progress_summary(first_run) -> None:
    _, log = first_run
    lines = participant_log(log)
    assert len(lines) <= 40, "\n".join(lines)
    assert not any("[Node]" in line or "nipype.workflow INFO" in line for line in lines)
    assert not any("bidsschematools" in line for line in lines)
    assert all(" [bids_stroke] " in line for line in lines), "\n".join(lines)
    summary = [line for line in lines
               if re.search(r"Progress summary: (\d+)/\1 segmentations", line)]
    assert summary and "2/2 subject(s) ok" in summary[0]
    assert "Group report:" in log
    # the template's source: once, short, true (everything runs offline)
    template = [line for line in lines if "Template MNI152NLin2009aSym" in line]
    assert len(template) == 1 and len(template[0]) < 250, template
    assert "network" not in log and "STAND-IN" not in log


def test_output_folder_is_the_documented_tree(first_run) -> None:
    """Every file of the demo's output folder is an entry of docs/outputs.md's tree, and every
    entry not marked "only" is there (the tree names the first subject; the second one's files
    are read under its name)."""
    demo_dir, _ = first_run
    out = demo_dir / "out"
    entries = output_tree((DOCS / "outputs.md").read_text())
    files = sorted({re.sub(r"sub-r001s\d{3}", "sub-r001s001", p.relative_to(out).as_posix())
                    for p in out.rglob("*") if p.is_file()})
    undocumented = [rel for rel in files if not any(e.matches(rel) for e in entries)]
    assert not undocumented, f"docs/outputs.md's tree lacks {undocumented}"
    missing = [e.pattern for e in entries if not e.optional
               and not any(e.matches(rel) for rel in files)
               and not (e.folder and (out / e.pattern).is_dir())]
    assert not missing, f"docs/outputs.md's tree lists what make demo does not write: {missing}"


def test_second_make_demo_reuses_everything_and_is_quick(first_run) -> None:
    demo_dir, _ = first_run
    bids = demo_dir / "bids"
    stamps = {p: p.stat().st_mtime_ns for p in bids.rglob("*") if p.is_file()}
    log, elapsed = make_demo(demo_dir)
    assert "already holds this demo dataset" in log and "reusing it" in log
    assert {p: p.stat().st_mtime_ns for p in bids.rglob("*") if p.is_file()} == stamps
    assert re.search(r"Progress summary: (\d+)/\1 segmentations in \S+ \(\1 cached\)", log), log
    # The budget is for 2 free cores; a machine busier than its cores stretches wall time.
    load = max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))
    assert elapsed < SECOND_RUN_BUDGET_S * load, f"{elapsed:.0f} s (load factor {load:.1f})"
