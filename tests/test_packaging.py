"""Building the wheel: no setuptools warnings (SPDX license string, no deprecated tables)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WARNING = re.compile(r"(Warning|DEPRECATED|deprecated|!!)")


def _setuptools_version() -> tuple[int, ...]:
    try:
        import setuptools
    except ImportError:
        return (0,)
    return tuple(int(p) for p in re.findall(r"\d+", setuptools.__version__)[:2])


@pytest.mark.skipif(_setuptools_version() < (77,), reason="needs setuptools >= 77 (SPDX license)")
def test_wheel_builds_without_setuptools_warnings(tmp_path: Path) -> None:
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "bids_stroke", src / "bids_stroke", symlinks=True, ignore=ignore)
    shutil.copytree(REPO / "pipelines", src / "pipelines", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    # the interpreter's own setuptools (no download): what `pip wheel --no-deps .` runs
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v",
         "-w", str(tmp_path / "dist"), str(src)],
        capture_output=True, text=True, timeout=600,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    build_lines = [line for line in log.splitlines()
                   if "Location 'file:" not in line]  # this machine's pip find-links config
    warnings = [line for line in build_lines if WARNING.search(line)]
    assert not warnings, "\n".join(warnings)
    (wheel,) = (tmp_path / "dist").glob("bids_stroke-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = zf.read(meta).decode()
        names = zf.namelist()
    assert "License-Expression: Apache-2.0" in metadata
    assert "bids_stroke/demo/dataset.py" in names and "bids_stroke/core/progress.py" in names
