"""Benchmark the resolution degradations of :mod:`bids_stroke.degradation` on a 1 mm brain grid.

Usage::

    python -m bench.bench_degrade [--smoke]

Times :func:`bids_stroke.degradation.apply_condition` for each condition on a
197x233x189 float32 volume (MNI152NLin2009aSym at 1 mm) against two baselines
measured in the same run: a plain ``np.copy`` (memory bandwidth floor) and a
``scipy.ndimage.zoom(order=1)`` down-by-2 / up-to-shape round trip (the obvious
library way to change resolution). Reports best-of-N wall times, ratios to both
baselines and whether each condition meets the < 1 s target, and writes
``bench/results/degrade.{md,json}``. ``--smoke`` takes the best of 1 instead of 5
(same volume, same conditions).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy
from scipy import ndimage

from bids_stroke.degradation import apply_condition, parse_condition

SHAPE = (197, 233, 189)
ZOOMS = (1.0, 1.0, 1.0)
CONDITIONS = (
    "native",
    "crude:2",
    "linear:2",
    "thick:5",
    "kspace:2",
    # variants, for context
    "thick:5:gap=1:profile=boxcar",
    "kspace:2:window=tukey",
)
TARGET_S = 1.0
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def make_volume(seed: int = 0, shape: tuple[int, int, int] = SHAPE) -> np.ndarray:
    """Deterministic smooth random float32 volume with a brain-like value range."""
    rng = np.random.default_rng(seed)
    vol = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), 2.0)
    vol -= vol.min()
    vol *= 1000.0 / vol.max()
    return vol.astype(np.float32)


def _zoom_roundtrip(x: np.ndarray) -> np.ndarray:
    kw = {"order": 1, "grid_mode": True, "mode": "nearest"}
    low = ndimage.zoom(x, 0.5, **kw)
    return ndimage.zoom(low, [a / b for a, b in zip(x.shape, low.shape, strict=True)], **kw)


def _best_of(fn: Callable[[], np.ndarray], repeats: int) -> tuple[float, np.ndarray]:
    best, out = math.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    assert out is not None
    return best, out


def run(smoke: bool = False) -> dict:
    """Run the benchmark; returns (and writes) a JSON-serialisable summary."""
    repeats = 1 if smoke else 5
    vol = make_volume()
    t_copy, _ = _best_of(lambda: np.copy(vol), repeats)
    t_zoom, zoomed = _best_of(lambda: _zoom_roundtrip(vol), repeats)
    if zoomed.shape != vol.shape:
        raise AssertionError(f"zoom round trip changed the shape to {zoomed.shape}")

    rows = []
    for spec in CONDITIONS:
        cond = parse_condition(spec)
        t, out = _best_of(lambda c=cond: apply_condition(vol, ZOOMS, c), repeats)
        if out.shape != vol.shape or out.dtype != np.float32 or not np.isfinite(out).all():
            raise AssertionError(f"{spec}: bad output {out.shape} {out.dtype}")
        rows.append(
            {
                "condition": cond.spec,
                "label": cond.label,
                "seconds": t,
                "ratio_to_copy": t / t_copy,
                "ratio_to_zoom_roundtrip": t / t_zoom,
                "under_target": t < TARGET_S,
                "rmse_vs_native": float(np.sqrt(np.mean((out - vol) ** 2, dtype=np.float64))),
            }
        )
    summary = {
        "benchmark": "degrade",
        "smoke": smoke,
        "shape": list(SHAPE),
        "zooms_mm": list(ZOOMS),
        "dtype": "float32",
        "repeats_best_of": repeats,
        "target_s": TARGET_S,
        "baseline_copy_s": t_copy,
        "baseline_zoom_roundtrip_s": t_zoom,
        "all_under_target": all(r["under_target"] for r in rows),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "conditions": rows,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "degrade.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = [
        "# Degradation benchmark",
        "",
        f"Volume {'x'.join(map(str, SHAPE))} float32 at 1 mm, best of {repeats}, one process "
        "(numpy/scipy single-threaded). Baselines in the same run: `np.copy` "
        f"{t_copy * 1e3:.1f} ms; `scipy.ndimage.zoom(order=1)` down-2/up round trip "
        f"{t_zoom * 1e3:.1f} ms.",
        "",
        "| condition | label | time ms | x copy | x zoom round trip | < 1 s | RMSE vs native |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| `{r['condition']}` | {r['label']} | {r['seconds'] * 1e3:.1f} | "
            f"{r['ratio_to_copy']:.1f} | {r['ratio_to_zoom_roundtrip']:.2f} | "
            f"{'yes' if r['under_target'] else 'NO'} | {r['rmse_vs_native']:.2f} |"
        )
    lines.append("")
    (RESULTS_DIR / "degrade.md").write_text("\n".join(lines))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="best of 1 instead of 5")
    args = parser.parse_args(argv)
    summary = run(smoke=args.smoke)
    print((RESULTS_DIR / "degrade.md").read_text())
    return 0 if summary["all_under_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
