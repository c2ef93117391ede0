"""scripts/install.sh installs the lock with uv when uv is there (same hashes), falls back to
pip when uv fails, and says it keeps working while an installer runs."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/bash\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def tools(tmp_path: Path):
    calls = tmp_path / "calls.txt"
    bindir = tmp_path / "venv" / "bin"
    bindir.mkdir(parents=True)
    py = _script(bindir / "python", f'echo "python $*" >> {calls}')
    return py, bindir, calls


def _installs(calls: Path) -> list[str]:
    """The install commands recorded (other calls of python, e.g. checks, left out)."""
    return [line for line in calls.read_text().splitlines()
            if line.startswith(("uv pip install", "python -m pip install"))]


def _install(py: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(ROOT / "scripts" / "install.sh"), str(py), ""],
                          env={"PATH": "/usr/bin:/bin", "BIDS_STROKE_INSTALL": "deps", **env},
                          capture_output=True, text=True, timeout=60)


def test_uv_beside_python_installs_the_lock_with_its_hashes(tools) -> None:
    py, bindir, calls = tools
    _script(bindir / "uv", f'echo "uv $*" >> {calls}')
    proc = _install(py, {"PIP_FIND_LINKS": "/wheels"})
    assert proc.returncode == 0, proc.stderr
    (line,) = _installs(calls)
    assert line == (f"uv pip install --python {py} --require-hashes --no-deps --find-links "
                    f"/wheels -r {ROOT / 'requirements' / 'lock.txt'}")
    assert "with uv" in proc.stderr
    calls.unlink()
    proc = _install(py, {"BIDS_STROKE_INSTALLER": "pip"})  # pip on request
    assert proc.returncode == 0 and _installs(calls)[0].startswith("python -m pip install")


def test_a_failing_uv_falls_back_to_pip(tools) -> None:
    py, bindir, calls = tools
    _script(bindir / "uv", f'echo "uv $*" >> {calls}; exit 2')
    proc = _install(py, {})
    assert proc.returncode == 0, proc.stderr
    uv, pip = _installs(calls)
    assert uv.startswith("uv pip install") and pip.startswith("python -m pip install")
    assert "--require-hashes" in pip and "uv could not install the lock" in proc.stderr


def test_installer_choice_is_checked(tools) -> None:
    py, _, calls = tools
    proc = _install(py, {"BIDS_STROKE_INSTALLER": "uv"})  # asked for, not there
    assert proc.returncode == 64 and "no uv" in proc.stderr and not calls.exists()
    assert _install(py, {"BIDS_STROKE_INSTALLER": "conda"}).returncode == 64


def test_a_long_install_says_it_is_still_working(tools) -> None:
    py, bindir, _ = tools
    _script(bindir / "python", "sleep 9")  # an installer silent for two beats and more
    proc = _install(py, {"BIDS_STROKE_INSTALLER": "pip", "BIDS_STROKE_HEARTBEAT_S": "4"})
    assert proc.returncode == 0
    assert proc.stderr.count("install.sh: still installing") == 2  # at 4 and 8 s


def test_the_heartbeat_ends_with_the_installer(tools) -> None:
    """A heartbeat child left behind would hold the output open until its next beat: with a
    beat of 120 s and a 1 s installer, the run must end long before that (no timing bound
    tighter than the beat itself, so load cannot make it fail)."""
    py, bindir, _ = tools
    _script(bindir / "python", "sleep 1")
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "install.sh"), str(py), ""],
                          env={"PATH": "/usr/bin:/bin", "BIDS_STROKE_INSTALL": "deps",
                               "BIDS_STROKE_INSTALLER": "pip",
                               "BIDS_STROKE_HEARTBEAT_S": "120"},
                          capture_output=True, text=True, timeout=100)
    assert proc.returncode == 0
    assert "still installing" not in proc.stderr
