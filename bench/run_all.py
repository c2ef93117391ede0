"""Run every benchmark present and collect the results.

Usage::

    python -m bench.run_all [--smoke] [--only NAME ...]

Each module ``bench/bench_<name>.py`` exposes ``run(smoke: bool) -> dict`` and writes its own
``bench/results/<name>.{md,json}``. This runner calls them in order (:data:`BENCHMARKS`),
skips missing modules with a note, records failures without stopping, and writes
``bench/results/summary.{md,json}`` with the machine description (CPU model, cores, torch
threads, library versions). Exit code 1 when a benchmark failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import time
import traceback
from pathlib import Path
from typing import Any

BENCHMARKS = ("degrade", "metrics", "inference", "engines", "registration", "group",
              "participant", "floor", "realism", "reference")
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine_info() -> dict[str, Any]:
    """CPU model, cores, torch threads and the versions that matter for the timings."""
    cpu = platform.processor() or "unknown"
    flags: list[str] = []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu in ("unknown", "", platform.machine()):
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                have = set(line.split(":", 1)[1].split())
                flags = sorted(have & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cpu_flags": flags,
        "cores": os.cpu_count(),
        "affinity_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    try:
        info["memory_gb"] = round(
            os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    for mod in ("bids_stroke", "torch", "numpy", "scipy", "nibabel", "nipype", "pandas"):
        try:
            module = importlib.import_module(mod)
            info[mod] = str(getattr(module, "__version__", "unknown"))
        except ImportError:
            info[mod] = "not installed"
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.is_available()
    except ImportError:
        pass
    return info


def _headline(name: str, result: dict[str, Any]) -> str:
    """One line per benchmark for the summary table (best effort on each module's keys)."""
    try:
        if name == "participant":
            one, sc = result["one_subject_four_conditions"], result["scaling"]
            return (f"1 x 4 conditions: {one['seconds']:.1f} s, {one['peak_tree_rss_mb']:.0f} MB "
                    f"tree peak; --nprocs 2 speed-up {sc['speedup']:.2f}x")
        if name == "reference":
            return str(result["headline"])
        if name == "floor":
            c = result["cohort"]
            return (f"1 x 3: whole/floor {result['ratio']:.2f}; 2 workers "
                    f"{c['speedup_2_over_1']:.2f}x of 1 process; re-run "
                    f"{c['rerun_ratio']:.2f} of the first")
        if name == "engines":
            return f"fastest exact engine: {result['fastest_exact']}"
        if name == "degrade":
            worst = max(result["conditions"], key=lambda r: r["seconds"])
            return f"slowest condition {worst['condition']}: {worst['seconds'] * 1e3:.0f} ms"
        for key in ("all_under_target", "under_target", "results_identical"):
            if key in result:
                return f"{key}: {result[key]}"
    except (KeyError, TypeError, ValueError):
        pass
    return "see its report"


def _verdict(result: dict[str, Any]) -> str:
    for key in ("all_under_target", "under_target"):
        if isinstance(result.get(key), bool):
            return "meets target" if result[key] else "MISSES target"
    one = result.get("one_subject_four_conditions")
    if isinstance(one, dict) and not result.get("smoke"):
        ok = one.get("under_time_target") and one.get("under_memory_target")
        return "meets target" if ok else "MISSES target"
    return "-"


def run_all(smoke: bool = False, only: list[str] | None = None) -> dict[str, Any]:
    names = [n for n in BENCHMARKS if not only or n in only]
    unknown = sorted(set(only or []) - set(BENCHMARKS))
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    summary: dict[str, Any] = {"started": started, "smoke": smoke, "machine": machine_info(),
                               "benchmarks": {}}
    for name in unknown:
        summary["benchmarks"][name] = {"status": "unknown", "note": "no such benchmark"}
    for name in names:
        entry: dict[str, Any] = {}
        try:
            module = importlib.import_module(f"bench.bench_{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"bench.bench_{name}":
                raise
            summary["benchmarks"][name] = {"status": "skipped",
                                           "note": f"bench/bench_{name}.py is not present"}
            print(f"[bench] {name}: skipped (module missing)", flush=True)
            continue
        print(f"[bench] {name}: running{' (smoke)' if smoke else ''}...", flush=True)
        t0 = time.perf_counter()
        try:
            result = module.run(smoke=smoke)
            entry = {"status": "ok", "result": result, "headline": _headline(name, result),
                     "verdict": _verdict(result)}
        except Exception as exc:  # one failing benchmark must not stop the others
            entry = {"status": "failed", "error": f"{type(exc).__name__}: {exc}",
                     "traceback": traceback.format_exc()}
            print(f"[bench] {name}: FAILED: {exc}", flush=True)
        entry["seconds"] = time.perf_counter() - t0
        summary["benchmarks"][name] = entry
    _write(summary)
    return summary


def _write(summary: dict[str, Any]) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    m = summary["machine"]
    lines = [
        "# Benchmark summary",
        "",
        f"{summary['started']}{' (smoke)' if summary['smoke'] else ''}. Machine: {m['cpu']} "
        f"({', '.join(m.get('cpu_flags') or []) or 'no AVX-512/AMX'}), {m['cores']} cores, "
        f"{m.get('memory_gb', '?')} GB, load {m.get('load_average_1m', 0):.2f}; torch "
        f"{m.get('torch')} with {m.get('torch_threads')} threads, numpy {m.get('numpy')}, "
        f"scipy {m.get('scipy')}, nipype {m.get('nipype')}, Python {m['python']}.",
        "",
        "| benchmark | status | verdict | headline | run time (s) | report |",
        "|---|---|---|---|---:|---|",
    ]
    for name, e in summary["benchmarks"].items():
        report = f"[{name}.md]({name}.md)" if e.get("status") == "ok" else "-"
        detail = e.get("headline") or e.get("note") or e.get("error", "")
        lines.append(f"| {name} | {e['status']} | {e.get('verdict', '-')} | "
                     f"{str(detail).replace('|', '/')} | {e.get('seconds', 0):.1f} | {report} |")
    lines.append("")
    (RESULTS_DIR / "summary.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small, fast versions")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=BENCHMARKS,
                        help=f"run only these ({', '.join(BENCHMARKS)})")
    args = parser.parse_args(argv)
    summary = run_all(smoke=args.smoke, only=args.only)
    print((RESULTS_DIR / "summary.md").read_text())
    return 1 if any(e["status"] == "failed" for e in summary["benchmarks"].values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
