"""Find the nnU-Net trainer class that a checkpoint names, without importing unrelated trainers.

nnU-Net's own lookup (``recursive_find_trainer_class_by_name``) imports every module under
``nnunetv2/training/nnUNetTrainer/`` in turn (top-level modules first, then subpackages in
alphabetical order) until one defines the name, and re-raises a missing dependency: one module
that cannot be imported (the Primus trainers need timm, hence torchvision) stops the lookup of
every trainer after it. Here the trainer sources are scanned for ``class <name>(`` and only the
defining module is imported; nnU-Net's lookup is the fallback (a class made at run time).
Folders named in ``nnUNet_extTrainer`` (nnU-Net's own variable) are scanned after nnunetv2.

Inference needs the trainer for one thing only: ``build_network_architecture``. A trainer that
does not override it (walking the MRO up to ``nnUNetTrainer``) gets nnU-Net's standard network
built from the plans; so does one whose module cannot be imported when its source shows that
neither it nor its bases (up to ``nnUNetTrainer``) define that method. The weights are then
loaded strictly, so any mismatch is caught.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import io
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["NETWORK_METHOD", "TrainerLookupError", "TrainerResolution", "find_trainer",
           "overrides_network", "source_overrides_network", "torchvision_hint"]

NETWORK_METHOD = "build_network_architecture"
BASE_TRAINER = "nnUNetTrainer"
_PACKAGE = "nnunetv2.training.nnUNetTrainer"


class TrainerLookupError(LookupError):
    """The trainer cannot be found or imported. The message is one line, without the folder."""


@dataclass(frozen=True)
class TrainerResolution:
    """Where a trainer was found and how its network is built.

    ``cls`` is the imported class (``None`` when its module cannot be imported);
    ``standard_network`` is true when the network is nnU-Net's standard one from the plans;
    ``note`` says why, when the trainer's own module could not be imported.
    """

    name: str
    module: str | None
    cls: type[Any] | None  # an nnU-Net trainer class (nnunetv2 has no type information)
    standard_network: bool
    note: str | None = None


@dataclass(frozen=True)
class _Source:
    module: str
    path: Path
    root: Path
    package: str | None  # dotted package of ``root``; None: ``root`` goes on sys.path


def _roots() -> list[tuple[Path, str | None]]:
    import nnunetv2

    roots: list[tuple[Path, str | None]] = [
        (Path(nnunetv2.__path__[0]) / "training" / "nnUNetTrainer", _PACKAGE)]
    for part in (os.environ.get("nnUNet_extTrainer") or "").split(os.pathsep):
        if part.strip() and Path(part).is_dir():
            roots.append((Path(part).absolute(), None))
    return roots


def _module_files(root: Path) -> list[Path]:
    """Python files under ``root`` in nnU-Net's order: at each level the modules first, then
    the subpackages, each alphabetically."""
    files = [p for p in root.rglob("*.py") if "__pycache__" not in p.parts
             and p.name != "__init__.py"]

    def key(p: Path) -> tuple[tuple[int, str], ...]:
        parts = p.relative_to(root).parts
        return (*((1, d) for d in parts[:-1]), (0, p.stem))

    return sorted(files, key=key)


def _definitions(name: str) -> list[_Source]:
    """Modules whose source defines ``class <name>`` at top level, in nnU-Net's order."""
    pattern = re.compile(rf"^class\s+{re.escape(name)}\s*[(:]", re.MULTILINE)
    found = []
    for root, package in _roots():
        for path in _module_files(root):
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            if pattern.search(text):
                dotted = ".".join(path.relative_to(root).with_suffix("").parts)
                found.append(_Source(f"{package}.{dotted}" if package else dotted, path, root,
                                     package))
    return found


@contextlib.contextmanager
def _on_path(source: _Source) -> Iterator[None]:
    added = source.package is None and str(source.root) not in sys.path
    if added:
        sys.path.insert(0, str(source.root))
    try:
        yield
    finally:
        if added and str(source.root) in sys.path:
            sys.path.remove(str(source.root))


def _import(source: _Source) -> Any:
    with _on_path(source):
        return importlib.import_module(source.module)


def torchvision_hint() -> str:
    """How to install the torchvision built for the installed torch (timm, hence nnU-Net's
    Primus/EVA trainers, needs it; the CPU locks leave it out)."""
    import torch

    release, _, local = str(torch.__version__).partition("+")
    try:
        major, minor, patch = (int(x) for x in release.split(".")[:3])
    except ValueError:
        return "install the torchvision release built for this torch"
    vision = f"0.{minor + 15}.{patch}" if major == 2 else None  # torch 2.N <-> torchvision 0.N+15
    if vision is None:
        return "install the torchvision release built for this torch"
    if local:
        index = f"https://download.pytorch.org/whl/{local}"
        return (f"install the matching pair: pip install torch=={release}+{local} "
                f"torchvision=={vision}+{local} --index-url {index}")
    return f"install the matching release: pip install torchvision=={vision}"


def _describe(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def overrides_network(cls: type, base: type) -> bool:
    """Whether ``cls`` or a class between it and ``base`` (``nnUNetTrainer``) in its MRO
    defines its own network builder."""
    for klass in cls.__mro__:
        if klass is base:
            return False
        if NETWORK_METHOD in vars(klass):
            return True
    return True  # not an nnUNetTrainer: nothing is known about its network


def _class_node(path: Path, name: str) -> ast.ClassDef | None:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node
    return None


def _defines(node: ast.ClassDef, attr: str) -> bool:
    for item in node.body:
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name == attr:
            return True
        targets = (item.targets if isinstance(item, ast.Assign)
                   else [item.target] if isinstance(item, ast.AnnAssign) else [])
        if any(isinstance(t, ast.Name) and t.id == attr for t in targets):
            return True
    return False


def source_overrides_network(name: str, path: Path, depth: int = 0) -> bool | None:
    """From the sources only: does class ``name`` in ``path`` (or a base of it found in the
    trainer sources) define its own network builder? ``None``: cannot tell (a base that is
    neither ``nnUNetTrainer`` nor found, a dynamic base, or a parse failure)."""
    node = _class_node(path, name)
    if node is None or depth > 20:
        return None
    if _defines(node, NETWORK_METHOD):
        return True
    if not node.bases or node.keywords:
        return None
    answers: list[bool | None] = []
    for base in node.bases:
        base_name = (base.id if isinstance(base, ast.Name)
                     else base.attr if isinstance(base, ast.Attribute) else None)
        if base_name is None:
            return None
        if base_name == BASE_TRAINER:
            answers.append(False)
            continue
        here = _class_node(path, base_name)
        where = path if here is not None else next(
            (s.path for s in _definitions(base_name)), None)
        answers.append(None if where is None
                       else source_overrides_network(base_name, where, depth + 1))
    if any(a is True for a in answers):
        return True
    return None if any(a is None for a in answers) else False


def _nnunet_lookup(name: str) -> tuple[type | None, BaseException | None]:
    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return recursive_find_trainer_class_by_name(name), None
    except Exception as exc:  # any import failure of any trainer module ends nnU-Net's lookup
        return None, exc


def find_trainer(name: str) -> TrainerResolution:
    """Find trainer ``name`` (see the module docstring).

    Raises:
        TrainerLookupError: no source defines it and nnU-Net's lookup does not find it, or its
            module cannot be imported and it (or a base) builds its own network. The message
            names the exception and the module.
    """
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    sources = _definitions(name)
    failures: list[tuple[_Source, BaseException]] = []
    for source in sources:
        try:
            module = _import(source)
        except Exception as exc:  # a missing dependency, or any error at import
            failures.append((source, exc))
            continue
        cls = getattr(module, name, None)
        if isinstance(cls, type):
            return _resolved(name, source.module, cls, nnUNetTrainer)
    if not failures:
        cls, lookup_error = _nnunet_lookup(name)
        if cls is not None:
            return _resolved(name, cls.__module__, cls, nnUNetTrainer)
        import nnunetv2

        ext = os.environ.get("nnUNet_extTrainer")
        where = f"nnunetv2 {_version()} ({Path(nnunetv2.__path__[0]) / 'training'})" + (
            f" nor in nnUNet_extTrainer={ext}" if ext else "")
        cause = ("" if lookup_error is None or "Could not find requested" in str(lookup_error)
                 else f" (nnU-Net's own lookup failed: {_describe(lookup_error)})")
        raise TrainerLookupError(
            f"trainer {name!r} is not defined in {where}{cause}; install the package that "
            "defines it (or set nnUNet_extTrainer to the folder of its source), or export the "
            "model to ONNX")
    source, import_error = failures[0]
    override = source_overrides_network(name, source.path)
    if override is False:
        note = (f"trainer {name} could not be imported from {source.module} "
                f"({_describe(import_error)}); it does not change the network, so nnU-Net's "
                "standard network is built from plans.json")
        return TrainerResolution(name, source.module, None, True, note)
    hint = (torchvision_hint() if "torchvision" in str(import_error)
            or getattr(import_error, "name", "") == "torchvision" else "install what it needs")
    why = ("builds its own network" if override else
           "may build its own network (its bases could not be followed)")
    raise TrainerLookupError(
        f"trainer {name!r} is defined in {source.module} ({source.path}), but that module "
        f"cannot be imported ({_describe(import_error)}) and the trainer {why}; {hint}, or "
        "export the model to ONNX")


def _resolved(name: str, module: str, cls: type, base: type) -> TrainerResolution:
    if not issubclass(cls, base):
        raise TrainerLookupError(f"{name} in {module} is not an nnU-Net trainer (it does not "
                                 f"derive from {BASE_TRAINER})")
    return TrainerResolution(name, module, cls, not overrides_network(cls, base))


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nnunetv2")
    except PackageNotFoundError:
        return "?"
