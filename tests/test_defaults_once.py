"""Every default is written once: read from the package's source (its syntax tree), no second
literal of the template name, the bootstrap resamples, the significance level, the lesion
connectivity, the surface-Dice tolerance, the sliding window or the same-grid affine tolerance.

A library function may keep a keyword argument for these, but its default names the one home
(``n_boot: int = GroupSettings.n_boot``), never a number of its own.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

import pytest

from bids_stroke.core.settings import TEMPLATE, GroupSettings, MetricsSettings
from bids_stroke.inputs.discovery import AFFINE_ATOL
from bids_stroke.model.spec import DEFAULT_OVERLAP, DEFAULT_PATCH_SIZE

PKG = Path(__file__).resolve().parents[1] / "bids_stroke"


@functools.cache
def _sources() -> tuple[tuple[str, ast.Module], ...]:
    return tuple((path.relative_to(PKG).as_posix(), ast.parse(path.read_text()))
                 for path in sorted(PKG.rglob("*.py")))


def _docstrings(tree: ast.Module) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _bindings(tree: ast.Module) -> Iterator[tuple[str, ast.expr]]:
    """``(name, value)`` of every parameter default, keyword argument and assignment."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            args = node.args
            positional = [*args.posonlyargs, *args.args]
            for arg, default in zip(positional[len(positional) - len(args.defaults):],
                                    args.defaults, strict=True):
                yield arg.arg, default
            for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
                if default is not None:
                    yield arg.arg, default
        elif isinstance(node, ast.keyword) and node.arg is not None:
            yield node.arg, node.value
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name | ast.Attribute):
                    yield getattr(target, "id", getattr(target, "attr", "")), node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target = node.target
            value = node.value
            if (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
                    and value.func.id == "setting" and value.args):
                value = value.args[0]  # a settings field: setting(default, check, help)
            yield getattr(target, "id", getattr(target, "attr", "")), value


def _literal(node: ast.expr) -> object:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


@functools.cache
def _literal_bindings() -> tuple[tuple[str, int, str, object], ...]:
    """``(module, line, name, literal value)`` of every binding whose value is a literal."""
    out = []
    for rel, tree in _sources():
        for name, node in _bindings(tree):
            value = _literal(node)
            if value is not None:
                out.append((rel, node.lineno, name, value))
    return tuple(out)


def _written(names: set[str], value: object, home: str) -> list[str]:
    """Places outside ``home`` where one of ``names`` is given the literal ``value``."""
    return [f"{rel}:{line} {name}" for rel, line, name, literal in _literal_bindings()
            if rel != home and name in names and literal == value
            and type(literal) is type(value)]


def test_the_template_name_is_written_once():
    places = []
    for rel, tree in _sources():
        docs = _docstrings(tree)
        places += [f"{rel}:{node.lineno}" for node in ast.walk(tree)
                   if isinstance(node, ast.Constant) and isinstance(node.value, str)
                   and TEMPLATE in node.value and id(node) not in docs]
    assert len(places) == 1 and places[0].startswith("core/settings.py:"), places


@pytest.mark.parametrize(("names", "value", "home"), [
    ({"n_boot", "N_BOOT"}, GroupSettings.n_boot, "core/settings.py"),
    ({"alpha", "ALPHA"}, GroupSettings.alpha, "core/settings.py"),
    ({"connectivity"}, MetricsSettings.connectivity, "core/settings.py"),
    ({"tolerance_mm"}, MetricsSettings.tolerance_mm, "core/settings.py"),
    ({"digits_rank", "DEFAULT_DIGITS_RANK"}, GroupSettings.digits_rank, "core/settings.py"),
    ({"patch_size", "DEFAULT_PATCH_SIZE"}, DEFAULT_PATCH_SIZE, "model/spec.py"),
    ({"patch_size", "DEFAULT_PATCH_SIZE"}, list(DEFAULT_PATCH_SIZE), ""),  # nowhere as a list
    ({"overlap", "DEFAULT_OVERLAP"}, DEFAULT_OVERLAP, "model/spec.py"),
    ({"atol", "AFFINE_ATOL"}, AFFINE_ATOL, "inputs/discovery.py"),
])
def test_a_default_is_written_once(names: set[str], value: object, home: str):
    assert _written(names, value, home) == []
    if home:
        assert _written(names, value, "") != [], f"{value!r} is not written in {home}"


def test_no_parameter_declares_its_own_default_for_these_settings():
    """Whatever the value: a parameter named like one of these settings takes its default
    from the one home or has none (a different number would be a second default)."""
    names = {"n_boot", "alpha", "connectivity", "tolerance_mm", "patch_size", "overlap",
             "atol", "digits_rank"}
    found = []
    for rel, tree in _sources():
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            args = node.args
            positional = [*args.posonlyargs, *args.args]
            pairs = [*zip(positional[len(positional) - len(args.defaults):], args.defaults,
                          strict=True),
                     *((a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
                       if d is not None)]
            found += [f"{rel}:{node.lineno} {node.name}({arg.arg}={ast.unparse(default)})"
                      for arg, default in pairs
                      if arg.arg in names and _literal(default) is not None]
    assert found == []
