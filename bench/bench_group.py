"""Benchmark the group level (:func:`bids_stroke.group.run.run_group`).

Usage::

    python -m bench.bench_group [--smoke] [--subjects N]

Every figure is a ratio against a baseline measured in the same run, with the machine's load
average recorded before and after:

* **fixed cost** - the command a user runs, ``bids_stroke BIDS OUT group``, in a fresh process
  on 3 subjects x 3 conditions, against a fresh process that only imports numpy, pandas,
  scipy.stats and matplotlib (the floor of any Python group analysis). Target: < 1.5 s. Beside
  it: ``run_group`` alone in a fresh ``python -c``, and the command calling ``main`` without
  the garbage-collector freeze of the console entry point (the switch, measured in this run).
* **large study** - ``run_group`` on N synthetic subjects x 6 conditions (default 10 000; smoke:
  500) against one ``pandas.read_csv`` per subject file + ``concat`` (just reading the data).
  Target: <= 15 s for 10 000 x 6. Components: validated collection, the paired tests with all
  their bootstrap CIs.
* **bootstrap switch** - the rank-biserial CIs of all pairs with one resample of the
  participants shared by every statistic (the group level's way) against the previous way, a
  separate bootstrap per test.

Writes ``bench/results/group.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import scipy

from bids_stroke.group.bootstrap import SignedRankBiserial, bootstrap_units, evaluate
from bids_stroke.group.collect import SEGMETRICS_GLOB, read_segmetrics
from bids_stroke.group.paired import (
    bootstrap_rank_biserial_ci,
    pairwise_wilcoxon,
    unit_matrix,
)
from bids_stroke.group.synthetic import DEFAULT_SYNTHETIC_CONDITIONS, make_synthetic_output

FIXED_TARGET_S = 1.5
LARGE_TARGET_S = 15.0
LARGE_TARGET_N = 10_000
N_BOOT = 2000
#: the metrics the recorded timings were measured with (bench/RESULTS.md)
METRICS = ("dice", "hd95", "lesion_f1", "abs_volume_diff_ml")
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _best(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _fresh(code: str) -> float:
    """Wall time of a fresh Python process running ``code``."""
    return _fresh_argv(["-c", code])


def _fresh_argv(argv: list[str]) -> float:
    """Wall time of ``python ARGV`` in a fresh process."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *argv], check=True, capture_output=True)
    return time.perf_counter() - t0


def _baseline_read(root: Path) -> pd.DataFrame:
    files = sorted(root.glob(SEGMETRICS_GLOB))
    return pd.concat([pd.read_csv(f, sep="\t", na_values="n/a") for f in files],
                     ignore_index=True)


def _per_test_bootstrap(table: pd.DataFrame, conditions: list[str]) -> None:
    mats = unit_matrix(table, METRICS, conditions)
    for m in METRICS:
        for i, j in combinations(range(len(conditions)), 2):
            d = mats[m][:, i] - mats[m][:, j]
            bootstrap_rank_biserial_ci(d[np.isfinite(d)], n_boot=N_BOOT, seed=[0, i, j])


def _shared_bootstrap(table: pd.DataFrame, conditions: list[str]) -> None:
    mats = unit_matrix(table, METRICS, conditions)
    stats = [SignedRankBiserial(mats[m][:, i] - mats[m][:, j]) for m in METRICS
             for i, j in combinations(range(len(conditions)), 2)]
    n_units = next(iter(mats.values())).shape[0]
    bootstrap_units([n_units], lambda c: evaluate(stats, c), len(stats), n_boot=N_BOOT, seed=0)


def _load() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def run(smoke: bool = False, n_subjects: int | None = None) -> dict:
    """Run the benchmark; return (and write) the summary dictionary."""
    n = n_subjects or (500 if smoke else LARGE_TARGET_N)
    repeats = 1 if smoke or n >= 5000 else 3
    load_before = _load()
    conds = [c[0] for c in DEFAULT_SYNTHETIC_CONDITIONS]
    with tempfile.TemporaryDirectory(prefix="bench_group_") as tmp:
        root = Path(tmp)
        tiny = make_synthetic_output(root / "tiny", 3, conditions=DEFAULT_SYNTHETIC_CONDITIONS[:3])
        bids = root / "bids"  # the group level reads OUT only; BIDS_DIR must exist
        bids.mkdir()
        args = [str(bids), str(tiny), "group"]  # the default study: n_boot = N_BOOT
        n_fresh = repeats if smoke else 3
        fixed = min(_fresh_argv(["-m", "bids_stroke.cli.run", *args]) for _ in range(n_fresh))
        no_freeze = min(_fresh(f"import sys; from bids_stroke.cli.run import main; "
                               f"sys.exit(main({args!r}))") for _ in range(n_fresh))
        code = (f"from bids_stroke.group.run import run_group; run_group({str(tiny)!r}, "
                f"n_boot={N_BOOT})")
        run_group_fresh = min(_fresh(code) for _ in range(n_fresh))
        floor = min(_fresh("import numpy, pandas, scipy.stats, matplotlib.figure")
                    for _ in range(repeats if smoke else 3))
        big = make_synthetic_output(root / "big", n, seed=0)
        table = read_segmetrics(big)
        times = {
            "baseline_read": _best(lambda: _baseline_read(big), repeats),
            "collect": _best(lambda: read_segmetrics(big), repeats),
            "paired_tests": _best(lambda: pairwise_wilcoxon(table, METRICS, conds,
                                                            n_boot=N_BOOT), repeats),
            "run_group": _best(lambda: _run_group(big), repeats),
        }
        small = table[table["participant_id"].isin(sorted(set(table["participant_id"]))[:500])]
        shared = _best(lambda: _shared_bootstrap(small, conds), 1)
        per_test = _best(lambda: _per_test_bootstrap(small, conds), 1)
        report_kib = (big / "group_report.html").stat().st_size / 1024
    k = len(conds)
    summary = {
        "benchmark": "group", "smoke": smoke, "n_subjects": n, "n_conditions": k,
        "n_tests": len(METRICS) * k * (k - 1) // 2, "n_boot": N_BOOT,
        "repeats": repeats, "load_average_before": load_before, "load_average_after": _load(),
        "cores": os.cpu_count(),
        "fixed_s": round(fixed, 3), "import_floor_s": round(floor, 3),
        "fixed_vs_import_floor": round(fixed / floor, 2),
        "command_without_gc_freeze_s": round(no_freeze, 3),
        "run_group_fresh_s": round(run_group_fresh, 3),
        "seconds": {key: round(v, 3) for key, v in times.items()},
        "run_group_vs_baseline_read": round(times["run_group"] / times["baseline_read"], 2),
        "collect_vs_baseline_read": round(times["collect"] / times["baseline_read"], 3),
        "bootstrap_500_shared_s": round(shared, 3), "bootstrap_500_per_test_s": round(per_test, 3),
        "bootstrap_per_test_vs_shared": round(per_test / shared, 2),
        "report_kib": round(report_kib, 1),
        "fixed_target_s": FIXED_TARGET_S, "meets_fixed_target": fixed < FIXED_TARGET_S,
        "large_target_s": LARGE_TARGET_S,
        "meets_large_target": (times["run_group"] <= LARGE_TARGET_S
                               if n >= LARGE_TARGET_N else None),
        "platform": platform.platform(), "python": platform.python_version(),
        "numpy": np.__version__, "scipy": scipy.__version__, "pandas": pd.__version__,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "group.json").write_text(json.dumps(summary, indent=2) + "\n")
    (RESULTS_DIR / "group.md").write_text(_markdown(summary))
    return summary


def _run_group(root: Path) -> None:
    from bids_stroke.group.run import run_group

    run_group(root, n_boot=N_BOOT)


def _markdown(s: dict) -> str:
    sec = s["seconds"]
    base = sec["baseline_read"]

    def verdict(ok: bool | None) -> str:
        return "n/a (fewer subjects)" if ok is None else "yes" if ok else "no"

    rows = [
        ("baseline: pandas read_csv per file + concat", "baseline_read"),
        ("collect.read_segmetrics (validated)", "collect"),
        (f"paired tests, {s['n_tests']} tests, all CIs ({s['n_boot']} resamples)",
         "paired_tests"),
        ("run_group (everything: TSVs, figures, report)", "run_group"),
    ]
    lines = [
        "# Group level benchmark", "",
        f"{s['cores']} cores, load average {s['load_average_before']} before / "
        f"{s['load_average_after']} after; {s['platform']}, Python {s['python']}, numpy "
        f"{s['numpy']}, scipy {s['scipy']}, pandas {s['pandas']}" + (" (smoke)" if s["smoke"]
                                                                   else "") + ".", "",
        "| fixed cost (fresh process, 3 subjects x 3 conditions) | seconds | x import floor |",
        "|---|---:|---:|",
        f"| import numpy, pandas, scipy.stats, matplotlib (floor) | {s['import_floor_s']:.3f} "
        "| 1.00 |",
        f"| `bids_stroke BIDS OUT group` (the command) | {s['fixed_s']:.3f} | "
        f"{s['fixed_vs_import_floor']:.2f} |",
        f"| the command without the gc freeze at exit (before) | "
        f"{s['command_without_gc_freeze_s']:.3f} | "
        f"{s['command_without_gc_freeze_s'] / s['import_floor_s']:.2f} |",
        f"| `run_group` alone in `python -c` | {s['run_group_fresh_s']:.3f} | "
        f"{s['run_group_fresh_s'] / s['import_floor_s']:.2f} |", "",
        f"Target: fixed cost < {s['fixed_target_s']:g} s -> {verdict(s['meets_fixed_target'])}.",
        "",
        f"| {s['n_subjects']} subjects x {s['n_conditions']} conditions, best of "
        f"{s['repeats']} | seconds | x baseline read |",
        "|---|---:|---:|",
    ]
    lines += [f"| {label} | {sec[key]:.3f} | {sec[key] / base:.2f} |" for label, key in rows]
    lines += [
        "", f"Target: run_group <= {s['large_target_s']:g} s for {LARGE_TARGET_N} x 6 -> "
        f"{verdict(s['meets_large_target'])}. Report size: {s['report_kib']} KiB.", "",
        "| bootstrap of the rank-biserial CIs, 500 subjects | seconds | x shared |",
        "|---|---:|---:|",
        f"| one participant resample shared by all statistics | "
        f"{s['bootstrap_500_shared_s']:.3f} | 1.00 |",
        f"| a separate bootstrap per test (before) | {s['bootstrap_500_per_test_s']:.3f} | "
        f"{s['bootstrap_per_test_vs_shared']:.2f} |", "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="500 subjects, best of 1")
    parser.add_argument("--subjects", type=int, default=None, help="subjects of the large study")
    args = parser.parse_args(argv)
    summary = run(smoke=args.smoke, n_subjects=args.subjects)
    print((RESULTS_DIR / "group.md").read_text())
    ok = summary["meets_fixed_target"] and summary["meets_large_target"] in (True, None)
    return 0 if ok or args.smoke else 1


if __name__ == "__main__":
    raise SystemExit(main())
