"""The layers stay apart and the imports form no circle (checked on the source, not at run time).

The import graph is built from *every* import statement of ``bids_stroke/``: module level,
inside functions, under ``if TYPE_CHECKING:``, relative ones resolved. An edge goes to the
module named (``from pkg import sub`` -> ``pkg.sub`` when ``sub`` is a module, else ``pkg``);
the implicit import of a package's parents (``import a.b.c`` runs ``a/__init__`` and
``a/b/__init__`` first) is not an edge, or every package would be a circle with its own
modules. Not edges either: the imports of a script (a ``__main__.py``, or under
``if __name__ == "__main__":``: they run only when the file is executed, never on import) and
dynamic imports by name (``importlib``: the subcommand routing table, ``bids_stroke.model``'s
lazy exports).

Layers, upper ones may import lower ones only: ``cli`` -> ``runner`` -> ``workflows`` ->
``interfaces`` -> every other module (the science, the commit protocol, settings, model,
group, reports, templates: no nipype, no command line). Every command's entry point (its
argument parsing, its ``main``) lives in ``cli/``; the subcommands do not import each other.

Layout: the top level of ``bids_stroke/`` holds packages named for the stages of the data's way
(``inputs``, ``templates``, ``degradation``, ``model``, ``metrics``, ``outputs``, ``group``,
``reports``, ...), the run-wide ``core``, the runner and the public import paths that users
and sidecars name; ``core`` imports no stage package beyond what the settings check their
values with.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "bids_stroke"
#: layer of a top-level part of the package (higher may import lower, never the reverse);
#: anything not named is the bottom layer (0)
LAYERS = {"cli": 4, "runner": 3, "workflows": 2, "interfaces": 1}
#: where nipype may be imported: these parts of the package, and core.progress (the log handlers
#: of nipype's worker processes)
NIPYPE_ALLOWED = ("workflows", "interfaces", "runner")
NIPYPE_MODULES = ("bids_stroke.core.progress",)
#: the only modules at the top level of bids_stroke/ (everything else lives in a package): the
#: package's own, the runner (a layer of its own) and public import paths named by the docs or
#: written into sidecars (each a re-export: see its docstring)
TOP_LEVEL_MODULES = {"__init__", "__about__", "runner", "conditions", "degrade", "score"}
#: what core (the run-wide modules) may import from the stages: the settings check conditions,
#: modalities and probability-map modes with the code that defines them
CORE_MAY_IMPORT = {"bids_stroke.__about__", "bids_stroke.degradation",
                   "bids_stroke.degradation.base", "bids_stroke.inputs.discovery",
                   "bids_stroke.outputs.probseg"}
#: the modules that run one command each: none imports another (run.py, the BIDS-App entry
#: point, routes to the participant level and to the subcommands, by name)
COMMANDS = ("participant", "export", "score", "demo", "train", "model", "status", "templates",
            "evaluate")


@dataclass
class Graph:
    """Module name -> the modules it imports (``edges``), and the imports of scripts."""

    files: dict[str, Path]
    edges: dict[str, set[str]] = field(default_factory=dict)
    external: dict[str, set[str]] = field(default_factory=dict)  # top-level names (nipype)
    scripts: dict[str, set[tuple[str, str]]] = field(default_factory=dict)  # (module, name)

    def cycles(self) -> list[list[str]]:
        """The strongly connected components of more than one module (Tarjan)."""
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        on_stack: set[str] = set()
        found: list[list[str]] = []

        def visit(v: str) -> None:
            index[v] = low[v] = len(index)
            stack.append(v)
            on_stack.add(v)
            for w in sorted(self.edges[v]):
                if w not in index:
                    visit(w)
                    low[v] = min(low[v], low[w])
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
            if low[v] == index[v]:
                part = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    part.append(w)
                    if w == v:
                        break
                if len(part) > 1:
                    found.append(sorted(part))

        for v in sorted(self.edges):
            if v not in index:
                visit(v)
        return found

    def reachable(self, start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for w in self.edges[todo.pop()] - seen:
                seen.add(w)
                todo.append(w)
        return seen

    def describe(self, part: list[str]) -> str:
        members = set(part)
        return "; ".join(f"{a} -> {b}" for a in part for b in sorted(self.edges[a] & members))


def _is_main_guard(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return (isinstance(node, ast.If) and isinstance(test, ast.Compare)
            and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and any(isinstance(c, ast.Constant) and c.value == "__main__"
                    for c in test.comparators))


def _imports(tree: ast.AST, script: bool = False
             ) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement under ``tree`` and whether it is a script's."""
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, script
        else:
            yield from _imports(child, script or _is_main_guard(child))


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def build_graph(root: Path) -> Graph:
    """The import graph of the package at ``root`` (see the module docstring)."""
    graph = Graph({module_name(root, p): p for p in sorted(root.rglob("*.py"))})
    for name, path in graph.files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges, external, scripts = set(), set(), set()
        is_script = path.name == "__main__.py"
        for node, guarded in _imports(ast.parse(path.read_text(), str(path))):
            targets: list[tuple[str, str]] = []  # (module, imported name)
            if isinstance(node, ast.Import):
                targets = [(a.name, "") for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    targets.append((sub, "") if sub in graph.files else (base, a.name))
            for module, imported in targets:
                if is_script or guarded:
                    scripts.add((module, imported))
                elif module in graph.files:
                    edges.add(module)
                else:
                    external.add(module.split(".")[0])
        edges.discard(name)
        graph.edges[name], graph.external[name], graph.scripts[name] = edges, external, scripts
    return graph


GRAPH = build_graph(PKG)


def _part(module: str) -> str:
    """The top-level part of the package a module belongs to (``cli``, ``runner``, ...)."""
    return module.split(".")[1] if "." in module else ""


# ----------------------------------------------------------------------------- the rules
def test_no_import_circle():
    cycles = GRAPH.cycles()
    assert not cycles, "import circles: " + " | ".join(GRAPH.describe(c) for c in cycles)


def test_the_cli_is_imported_only_inside_cli():
    for name, edges in GRAPH.edges.items():
        if _part(name) != "cli":
            bad = sorted(m for m in edges if _part(m) == "cli")
            assert not bad, f"{name} imports {bad}: the library never imports the command line"


def test_scripts_only_run_a_cli_main():
    """A ``python -m`` entry point outside ``cli/`` is one line: the ``main`` of a cli module."""
    for name, imports in GRAPH.scripts.items():
        for module, imported in imports:
            if module == "sys":
                continue
            assert _part(module) == "cli" and imported == "main", (
                f"{name} runs {module}.{imported} as a script: parse the command line in cli/")


def test_layers_only_import_downwards():
    for name, edges in GRAPH.edges.items():
        rank = LAYERS.get(_part(name), 0)
        bad = sorted(m for m in edges if LAYERS.get(_part(m), 0) > rank)
        assert not bad, f"{name} (layer {_part(name) or 'package'}) imports {bad}"


def test_nipype_only_in_workflows_interfaces_and_the_runner():
    for name, external in GRAPH.external.items():
        if _part(name) not in NIPYPE_ALLOWED and name not in NIPYPE_MODULES:
            assert "nipype" not in external, f"{name} imports nipype"


def test_the_top_level_holds_packages_and_public_paths():
    """A new module goes into the package of its stage; a top-level public path is only a
    re-export of it (no code of its own)."""
    modules = {p.stem for p in PKG.glob("*.py")}
    assert modules == TOP_LEVEL_MODULES, sorted(modules ^ TOP_LEVEL_MODULES)
    for name in TOP_LEVEL_MODULES - {"__init__", "__about__", "runner"}:
        tree = ast.parse((PKG / f"{name}.py").read_text())
        code = [n for n in tree.body[1:] if not isinstance(n, ast.ImportFrom | ast.Assign)]
        assert ast.get_docstring(tree) and not code, f"{name}.py holds code: move it to a package"


#: a dotted name in a string of the package: a module path, maybe with an attribute
DOTTED = re.compile(r"\bbids_stroke(?:\.[A-Za-z_]\w*)+")
FILE_SUFFIXES = ("json", "yaml", "yml", "lock", "sif", "py", "cff")


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr, _resolves)
            if obj is _resolves:
                return False
        return True
    return False


def test_every_path_a_string_names_exists():
    """The module paths the package writes (sidecars name ``bids_stroke.degrade.apply_condition``
    and ``bids_stroke.score.tool_digest``; help texts, error messages, the forkserver's preload
    list) resolve: a moved module keeps its public path or the string follows it. Logger names
    are names, not paths."""
    missing = []
    for name, path in GRAPH.files.items():
        tree = ast.parse(path.read_text())
        skip = {id(n.args[0]) for n in ast.walk(tree) if isinstance(n, ast.Call) and n.args
                and getattr(n.func, "attr", getattr(n.func, "id", "")) == "getLogger"}
        skip |= {id(n.body[0].value) for n in ast.walk(tree)
                 if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef)
                 and n.body and isinstance(n.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and id(node) not in skip:
                missing += [f"{name}:{node.lineno}: {dotted}"
                            for dotted in DOTTED.findall(node.value)
                            if dotted.rsplit(".", 1)[1] not in FILE_SUFFIXES
                            and not _resolves(dotted)]
    assert not missing, missing


def test_core_imports_no_stage_but_the_settings_checks():
    for name, edges in GRAPH.edges.items():
        if _part(name) == "core":
            bad = sorted(m for m in edges if _part(m) != "core" and m not in CORE_MAY_IMPORT)
            assert not bad, f"{name} imports {bad}: core is imported by every stage"


def test_subcommands_never_import_each_other():
    commands = {f"bids_stroke.cli.{c}" for c in COMMANDS}
    assert commands <= set(GRAPH.files), sorted(commands - set(GRAPH.files))
    for command in sorted(commands):
        others = sorted(GRAPH.reachable(command) & (commands - {command}))
        assert not others, f"{command} imports (maybe through others) {others}"


def test_the_routing_table_names_only_command_modules():
    from bids_stroke.cli.subcommands import SUBCOMMANDS

    for word, module in SUBCOMMANDS.items():
        assert module.removeprefix("bids_stroke.cli.") in COMMANDS, (word, module)


def test_every_entry_point_lives_in_the_cli():
    """Argument parsing and ``main`` functions only in ``cli/``: the library is imported, the
    commands are run."""
    for name, path in GRAPH.files.items():
        if _part(name) == "cli":
            continue
        tree = ast.parse(path.read_text())
        mains = [n.lineno for n in ast.walk(tree)
                 if isinstance(n, ast.FunctionDef) and n.name == "main"]
        assert not mains, f"{path.relative_to(PKG)}:{mains[0]} defines main(): move it to cli/"
        assert "argparse" not in GRAPH.external[name], f"{name} parses a command line"


def test_no_environment_writes_outside_the_cli_entry_point():
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).as_posix()
        if rel in ("cli/run.py",):
            continue
        text = path.read_text()
        assert "os.environ[" not in text.replace("os.environ.get(", ""), rel
        assert "os.environ.setdefault(" not in text and "os.putenv(" not in text, rel


#: "issue 18", "issues 12", "Issue #9": a tracker number a reader of the code cannot follow
TRACKER = re.compile(r"\bissues?\s*#?\d+", re.IGNORECASE)


def test_no_tracker_numbers_in_code():
    root = PKG.parent
    for path in [*PKG.rglob("*.py"), *(root / "tests").rglob("*.py"),
                 *(root / "bench").rglob("*.py")]:
        if path == Path(__file__).resolve():
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not TRACKER.search(line), f"{path.relative_to(root)}:{number}: {line.strip()}"


# ----------------------------------------------------------------------------- the checker
def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize("b_imports_a", [
    "def f():\n    from pkg import a\n",  # inside a function
    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import X\n",
    "from . import a\n",  # relative
    "import pkg.a\n",
])
def test_checker_sees_every_kind_of_import(tmp_path, b_imports_a):
    root = _package(tmp_path, {"__init__.py": "", "a.py": "from pkg.b import g\nX = 1\n",
                               "b.py": b_imports_a + "def g():\n    pass\n"})
    graph = build_graph(root)
    assert graph.cycles() == [["pkg.a", "pkg.b"]], graph.edges


def test_checker_leaves_out_package_parents_and_scripts(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "from pkg.sub.c import C\n",  # a package that re-exports its module
        "sub/__init__.py": "", "sub/c.py": "C = 1\n",
        "d.py": "from pkg.sub import c\nif __name__ == '__main__':\n    from pkg.e import main\n",
        "e.py": "from pkg import d\ndef main():\n    pass\n",
        "__main__.py": "from pkg.e import main\nmain()\n",
    })
    graph = build_graph(root)
    assert graph.cycles() == [], graph.edges
    assert graph.edges["pkg.d"] == {"pkg.sub.c"}
    assert graph.scripts["pkg.d"] == {("pkg.e", "main")}
    assert graph.scripts["pkg.__main__"] == {("pkg.e", "main")}
