"""Do two versions of bids_stroke write the same derivatives? A refactor's check.

Runs a tiny participant + group analysis of the demo dataset with the code of a git revision
(``--base``, default ``HEAD``) and with the working tree, each from a copy of its source on the
same paths (so that paths written into the outputs are equal), and compares every output file:
byte for byte, or after removing what differs between any two runs (run ids, timestamps,
run times, the sizes and digests of the files that carry them). Exit 0 when nothing else
differs, 1 otherwise (the differences are printed).

    .venv/bin/python scripts/compare_runs.py --base main
    .venv/bin/python scripts/compare_runs.py --base main --conditions native thick:3 -- \\
        --study clinical_slices

Arguments after ``--`` are given to the participant level. Takes about a minute on 2 cores
(2 subjects at 4 mm, four conditions by default).
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VOLATILE = [
    (re.compile(r"\d{8}-\d{6}_[0-9a-f]{8}"), "RUN"),
    (re.compile(r"\d{8}-\d{6}"), "TIME"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:?\d\d|Z)?"), "ISO"),
    (re.compile(r'runtime_s</td><td class="[a-z]">[0-9.]+'), "runtime_s"),
]
#: in the commit records, the digests and sizes of files that hold timestamps
STATE_VOLATILE = re.compile(r'"(sha256|size)": .*')


def _source(rev: str | None, dest: Path) -> Path:
    """A copy of the package at ``rev`` (``None``: the working tree) in ``dest``."""
    dest.mkdir(parents=True)
    if rev is None:
        for name in ("bids_stroke", "pipelines"):
            shutil.copytree(REPO / name, dest / name, symlinks=True)
    else:
        archive = subprocess.run(["git", "archive", rev, "bids_stroke", "pipelines"], cwd=REPO,
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def _run(src: Path, bids: Path, run: Path, conditions: list[str], extra: list[str]) -> None:
    """Both levels with the package in ``src`` (run from ``src``'s parent: ``python -m``
    puts the current folder first on the import path)."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    cli = [sys.executable, "-m", "bids_stroke.cli.run"]
    where = {"env": env, "cwd": src.parent, "check": True}
    probe = "import bids_stroke; print(bids_stroke.__file__)"
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           **where).stdout.strip()
    if not found.startswith(str(src)):
        raise SystemExit(f"the run would use {found}, not the copy in {src}")
    subprocess.run([*cli, str(bids), str(run / "out"), "participant", "-w", str(run / "work"),
                    "--conditions", *conditions, *extra], **where)
    subprocess.run([*cli, str(bids), str(run / "out"), "group"], **where)


def _text(data: bytes, state: bool) -> str | None:
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return None
    for pattern, word in VOLATILE:
        text = pattern.sub(word, text)
    return STATE_VOLATILE.sub('"X"', text) if state else text


def _files(root: Path) -> dict[str, bytes]:
    return {VOLATILE[0][0].sub("RUN", p.relative_to(root).as_posix()): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def compare(a: Path, b: Path) -> list[str]:
    """What differs between two output folders beyond the volatile parts."""
    fa, fb = _files(a), _files(b)
    problems = [f"only in the base run: {k}" for k in sorted(set(fa) - set(fb))]
    problems += [f"only in the new run: {k}" for k in sorted(set(fb) - set(fa))]
    for name in sorted(set(fa) & set(fb)):
        if fa[name] == fb[name]:
            continue
        state = name.startswith(".bids_stroke/")
        ta, tb = _text(fa[name], state), _text(fb[name], state)
        if ta is None or tb is None:
            problems.append(f"{name}: binary files differ")
        elif ta != tb:
            diff = difflib.unified_diff(ta.splitlines(), tb.splitlines(), lineterm="", n=0)
            problems.append(f"{name}:\n" + "\n".join(list(diff)[2:14]))
    return problems


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    extra = args[args.index("--") + 1:] if "--" in args else []
    args = args[:args.index("--")] if "--" in args else args
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="HEAD", help="git revision to compare with")
    parser.add_argument("--conditions", nargs="+",
                        default=["native", "crude:2", "thick:5", "kspace:2"])
    opts = parser.parse_args(args)
    with tempfile.TemporaryDirectory(prefix="bids_stroke-compare-") as tmp:
        root = Path(tmp)
        bids = root / "bids"
        subprocess.run([sys.executable, "-m", "bids_stroke.cli.run", "demo", str(bids),
                        "--seed", "0", "--n-subjects", "2", "--resolution", "4", "--quiet"],
                       check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        outputs = {}
        for label, rev in (("base", opts.base), ("new", None)):
            src = _source(rev, root / "src")  # the same path for both: outputs name it
            run = root / "run"
            _run(src, bids, run, opts.conditions, extra)
            outputs[label] = root / label
            shutil.move(str(run / "out"), outputs[label])
            shutil.rmtree(run)
            shutil.rmtree(src)
        problems = compare(outputs["base"], outputs["new"])
    print("\n".join(problems) if problems else "no difference beyond run ids, timestamps and "
          "run times")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
