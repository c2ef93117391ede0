"""requirements/constraints-{cpu,cuda}.txt pin the locks' torch builds for installs that
resolve (``pip install -c requirements/constraints-cpu.txt -e '.[nnunet,onnx]'``): the CPU
build unless the user asks for CUDA, whatever the extras pull in."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REQ_DIR = Path(__file__).resolve().parents[1] / "requirements"


def constraints(path: Path) -> dict[str, str]:
    """{name: pinned version} of a constraints file, following its ``-c`` includes as pip does
    (relative to the including file)."""
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-c"):
            pins.update(constraints(path.parent / line[2:].strip()))
            continue
        req = Requirement(line)
        (spec,) = [s for s in req.specifier if s.operator == "=="]
        pins[canonicalize_name(req.name)] = spec.version
    return pins


def lock_pin(lock: Path, name: str) -> str:
    found = re.search(rf"^{name}==(\S+)", lock.read_text(), re.M)
    assert found, f"{lock.name} does not pin {name}"
    return found.group(1)


def test_cpu_constraints_pin_the_cpu_locks_torch() -> None:
    pins = constraints(REQ_DIR / "constraints-cpu.txt")
    assert pins["torch"].endswith("+cpu")
    for lock in sorted(REQ_DIR.glob("lock*.txt")):
        if lock.name != "lock-cuda.txt":
            assert lock_pin(lock, "torch") == pins["torch"], lock.name


def test_cuda_constraints_pin_the_cuda_locks_torch() -> None:
    pins = constraints(REQ_DIR / "constraints-cuda.txt")
    assert "+" not in pins["torch"]  # PyPI's own (CUDA) build
    assert lock_pin(REQ_DIR / "lock-cuda.txt", "torch") == pins["torch"]
    cpu = constraints(REQ_DIR / "constraints-cpu.txt")
    assert pins["torch"] == cpu["torch"].split("+")[0]  # the same release, another build


def test_uv_pin_is_the_makefiles_and_hashed() -> None:
    makefile = (REQ_DIR.parent / "Makefile").read_text()
    version = re.search(r"^UV_VERSION \?= (\S+)", makefile, re.M).group(1)
    text = (REQ_DIR / "uv.txt").read_text()
    assert re.search(rf"^uv=={re.escape(version)} \\\n\s+--hash=sha256:[0-9a-f]{{64}}$", text,
                     re.M), "requirements/uv.txt must pin UV_VERSION with its sha256"
    assert "-r requirements/uv.txt" in makefile and "--require-hashes" in makefile
