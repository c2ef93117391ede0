"""Benchmark ``scripts/install.sh``: the hashed lock installed by pip and by uv.

Usage::

    python -m bench.bench_install [--smoke]

Each case installs the same lock (``requirements/lock.txt``, the runtime; ``--smoke``: a few
small packages of it) into a fresh virtual environment with ``BIDS_STROKE_INSTALL=deps``:

* ``pip``: ``BIDS_STROKE_INSTALLER=pip``, with this machine's pip cache as it is (the
  baseline: what ``make venv`` did so far);
* ``pip, no cache``: the same with ``PIP_NO_CACHE_DIR=1`` (a first install);
* ``uv, cold``: ``BIDS_STROKE_INSTALLER=uv`` with an empty uv cache (a first install);
* ``uv, warm``: the same cache again, into another fresh environment.

uv is the one on ``PATH``, else ``uv==UV_VERSION`` of the Makefile installed into a
throw-away environment. Reported per case: wall seconds, the ratio to ``pip``, and the longest
stretch without a line of output (what a user sees as a hang). Writes
``bench/results/install.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"
SMOKE_PACKAGES = ("tqdm", "pyyaml", "six", "packaging")


def _uv_version() -> str:
    text = (ROOT / "Makefile").read_text()
    return re.search(r"^UV_VERSION \?= (\S+)", text, re.M).group(1)


def _smoke_lock(dest: Path) -> Path:
    """The entries (with their hashes) of a few small packages of requirements/lock.txt."""
    text = (ROOT / "requirements" / "lock.txt").read_text()
    blocks = re.findall(r"^([A-Za-z0-9_.\-]+==\S+ \\\n(?:\s+--hash=\S+(?: \\)?\n)+)", text,
                        re.M)
    keep = [b for b in blocks if b.split("==")[0].lower() in SMOKE_PACKAGES]
    dest.write_text("".join(keep))
    return dest


def _find_uv(tmp: Path) -> str:
    found = shutil.which("uv")
    if found:
        return found
    tools = tmp / "uv-tool"
    subprocess.run([sys.executable, "-m", "venv", str(tools)], check=True)
    subprocess.run([str(tools / "bin" / "python"), "-m", "pip", "install", "--quiet",
                    f"uv=={_uv_version()}"], check=True)
    return str(tools / "bin" / "uv")


def _install(lock: Path, venv: Path, env: dict[str, str]) -> dict:
    """Run install.sh (dependencies only) into a fresh ``venv``: wall time, longest silence."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    cmd = ["bash", str(ROOT / "scripts" / "install.sh"), str(venv / "bin" / "python"), ""]
    t0 = last = time.perf_counter()
    silence = 0.0
    lines = 0
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "BIDS_STROKE_INSTALL": "deps",
                                 "BIDS_STROKE_LOCK": str(lock), **env})
    assert proc.stdout is not None
    for _ in proc.stdout:
        now = time.perf_counter()
        silence = max(silence, now - last)
        last = now
        lines += 1
    rc = proc.wait()
    end = time.perf_counter()
    return {"seconds": round(end - t0, 1), "longest_silence_s": round(max(silence, end - last), 1),
            "output_lines": lines, "exit_code": rc}


def run(smoke: bool = False) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench_install_") as tmp_name:
        tmp = Path(tmp_name)
        lock = _smoke_lock(tmp / "lock-smoke.txt") if smoke else ROOT / "requirements" / \
            "lock.txt"
        uv = _find_uv(tmp)
        uv_env = {"PATH": f"{Path(uv).parent}:{os.environ.get('PATH', '')}",
                  "BIDS_STROKE_INSTALLER": "uv", "UV_CACHE_DIR": str(tmp / "uv-cache")}
        cases = [("pip", {"BIDS_STROKE_INSTALLER": "pip"})]
        if not smoke:
            cases.append(("pip, no cache", {"BIDS_STROKE_INSTALLER": "pip",
                                            "PIP_NO_CACHE_DIR": "1"}))
        cases += [("uv, cold", uv_env), ("uv, warm", uv_env)]
        rows = []
        for i, (name, env) in enumerate(cases):
            row = {"case": name, **_install(lock, tmp / f"venv{i}", env)}
            shutil.rmtree(tmp / f"venv{i}", ignore_errors=True)
            rows.append(row)
        base = rows[0]["seconds"]
        for row in rows:
            row["ratio_to_pip"] = round(row["seconds"] / base, 2) if base else None
        result = {"benchmark": "install", "smoke": smoke, "lock": lock.name,
                  "uv": subprocess.run([uv, "--version"], capture_output=True,
                                       text=True).stdout.strip(),
                  "cpus": os.cpu_count(), "load": os.getloadavg()[0], "rows": rows}
    _write(result)
    return result


def _write(result: dict) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "install.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# install.sh: pip vs uv ({result['lock']}{', smoke' if result['smoke'] else ''})",
             "", f"{result['uv']}; {result['cpus']} CPUs, load {result['load']:.1f}", "",
             "| case | seconds | x pip | longest silence (s) | lines | exit |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['case']} | {r['seconds']} | {r['ratio_to_pip']} | "
              f"{r['longest_silence_s']} | {r['output_lines']} | {r['exit_code']} |"
              for r in result["rows"]]
    (RESULTS_DIR / "install.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    print(json.dumps(run(smoke=args.smoke), indent=2))


if __name__ == "__main__":
    main()
