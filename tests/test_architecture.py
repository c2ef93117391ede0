"""The layers stay apart: cli -> workflows -> interfaces -> pure modules (imports checked)."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "bids_stroke"
#: modules that hold science or plain data handling: no nipype, no CLI
PURE = ["settings", "study_files", "versions", "conditions", "degrade", "degradation", "plan",
        "commit", "locks", "atomic", "outputs", "preflight", "discovery", "nifti", "metric_tables",
        "export", "score", "state_files", "interrupt", "write_errors", "reference"]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(sub: str) -> list[Path]:
    root = PKG / sub
    return sorted(root.rglob("*.py")) if root.is_dir() else [PKG / f"{sub}.py"]


def test_workflows_and_interfaces_never_import_the_cli():
    for sub in ("workflows", "interfaces", "model", "group", "reports"):
        for path in _modules(sub):
            bad = {m for m in _imports(path) if m.startswith("bids_stroke.cli")}
            assert not bad, f"{path.relative_to(PKG)} imports {bad}"


def test_pure_modules_never_import_nipype():
    for name in PURE:
        for path in _modules(name):
            bad = {m for m in _imports(path) if m.split(".")[0] == "nipype"
                   or m.startswith(("bids_stroke.workflows", "bids_stroke.interfaces",
                                    "bids_stroke.cli", "bids_stroke.runner"))}
            assert not bad, f"{path.relative_to(PKG)} imports {bad}"


def test_nipype_only_in_workflows_interfaces_and_the_runner():
    allowed = ("workflows", "interfaces", "runner.py", "progress.py")  # progress: worker logs
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).as_posix()
        if rel.startswith(allowed):
            continue
        bad = {m for m in _imports(path) if m.split(".")[0] == "nipype"}
        assert not bad, f"{rel} imports {bad}"


def test_no_environment_writes_outside_the_cli_entry_point():
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).as_posix()
        if rel in ("cli/run.py",):
            continue
        text = path.read_text()
        assert "os.environ[" not in text.replace("os.environ.get(", ""), rel
        assert "os.environ.setdefault(" not in text and "os.putenv(" not in text, rel
