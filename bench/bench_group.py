"""Benchmark the group level (:func:`bids_stroke.group.run.run_group`).

Usage::

    python -m bench.bench_group [--smoke]

Generates synthetic participant-level derivatives (1000 subjects x 6 conditions, with the
per-lesion tables) in a temporary directory and times, best of N:

* ``baseline_read`` - the obvious way of just reading the per-subject metric TSVs: one
  ``pandas.read_csv`` per file + ``pandas.concat`` (no statistics, no figures, no report);
* ``collect`` - :func:`bids_stroke.group.collect.read_segmetrics` (validated, one parse);
* ``wilcoxon`` - all pairwise Wilcoxon tests with the 2000-resample bootstrap CIs;
* ``run_group`` - the whole group level (TSVs + sidecars, 5 figures, HTML report).

Target: ``run_group`` < 10 s for 1000 subjects x 6 conditions. Writes
``bench/results/group.{md,json}``. ``--smoke``: 200 subjects, best of 1.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import scipy

from bids_stroke.group.collect import SEGMETRICS_GLOB, read_segmetrics
from bids_stroke.group.run import run_group
from bids_stroke.group.stats import DEFAULT_METRICS, pairwise_wilcoxon
from bids_stroke.group.synthetic import DEFAULT_SYNTHETIC_CONDITIONS, make_synthetic_output

TARGET_S = 10.0
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _best(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _baseline_read(root: Path) -> pd.DataFrame:
    files = sorted(root.glob(SEGMETRICS_GLOB))
    return pd.concat([pd.read_csv(f, sep="\t", na_values="n/a") for f in files],
                     ignore_index=True)


def run(smoke: bool = False) -> dict:
    """Run the benchmark; return (and write) the summary dictionary."""
    n_subjects = 200 if smoke else 1000
    repeats = 1 if smoke else 3
    n_boot = 2000
    with tempfile.TemporaryDirectory(prefix="bench_group_") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        make_synthetic_output(root, n_subjects, seed=0)
        t_gen = time.perf_counter() - t0
        n_files = len(list(root.glob("sub-*/**/anat/*.tsv")))
        table = read_segmetrics(root)
        times = {
            "baseline_read": _best(lambda: _baseline_read(root), repeats),
            "collect": _best(lambda: read_segmetrics(root), repeats),
            "wilcoxon": _best(lambda: pairwise_wilcoxon(table, DEFAULT_METRICS, n_boot=n_boot,
                                                        seed=0), repeats),
            "run_group": _best(lambda: run_group(root, n_boot=n_boot, seed=0), repeats),
        }
        report_kb = (root / "group_report.html").stat().st_size / 1024
    k = len(DEFAULT_SYNTHETIC_CONDITIONS)
    summary = {
        "benchmark": "group",
        "smoke": smoke,
        "n_subjects": n_subjects,
        "n_conditions": k,
        "n_tests": len(DEFAULT_METRICS) * k * (k - 1) // 2,
        "n_boot": n_boot,
        "repeats": repeats,
        "input_tsv_files": n_files,
        "generate_s": round(t_gen, 3),
        "seconds": {key: round(v, 3) for key, v in times.items()},
        "run_group_vs_baseline_read": round(times["run_group"] / times["baseline_read"], 2),
        "collect_vs_baseline_read": round(times["collect"] / times["baseline_read"], 3),
        "report_kib": round(report_kb, 1),
        "target_s": TARGET_S,
        "meets_target": (times["run_group"] < TARGET_S) if not smoke else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "group.json").write_text(json.dumps(summary, indent=2) + "\n")
    (RESULTS_DIR / "group.md").write_text(_markdown(summary))
    return summary


def _markdown(s: dict) -> str:
    sec = s["seconds"]
    base = sec["baseline_read"]
    rows = [
        ("baseline: pandas read_csv per file + concat", "baseline_read"),
        ("collect.read_segmetrics (validated)", "collect"),
        (f"pairwise Wilcoxon, {s['n_tests']} tests, {s['n_boot']} bootstrap", "wilcoxon"),
        ("run_group (everything: TSVs, figures, report)", "run_group"),
    ]
    lines = [
        "# Group level benchmark",
        "",
        f"{s['n_subjects']} synthetic subjects x {s['n_conditions']} conditions "
        f"({s['input_tsv_files']} input TSV files), best of {s['repeats']}"
        + (" (smoke)" if s["smoke"] else "") + f"; {s['platform']}, Python {s['python']}, "
        f"numpy {s['numpy']}, scipy {s['scipy']}, pandas {s['pandas']}.",
        "",
        "| step | seconds | x baseline read |",
        "|---|---:|---:|",
    ]
    lines += [f"| {label} | {sec[key]:.3f} | {sec[key] / base:.2f} |" for label, key in rows]
    verdict = ("n/a (smoke)" if s["meets_target"] is None else
               "yes" if s["meets_target"] else "no")
    lines += ["", f"Target: run_group < {s['target_s']:g} s for 1000 subjects x 6 conditions "
              f"-> {verdict}. Report size: {s['report_kib']} KiB.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="200 subjects, best of 1")
    args = parser.parse_args(argv)
    summary = run(smoke=args.smoke)
    print((RESULTS_DIR / "group.md").read_text())
    return 0 if summary["meets_target"] in (True, None) else 1


if __name__ == "__main__":
    raise SystemExit(main())
