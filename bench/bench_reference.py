"""How far can label-free results be trusted? Agreement with the native prediction against the
mask-based Dice drop, on data that has masks.

Usage::

    python -m bench.bench_reference [--smoke] [--n-subjects N] [--resolution MM] [--seed S]

``--reference prediction`` scores each degraded prediction against the model's own native
prediction (agreement), so it needs no mask; what a user wants to know is how much the
resolution changes the model's *accuracy*. This benchmark runs the participant level of the
same study twice on demo data that has masks, once ``--reference mask`` and once
``--reference prediction`` (the second reuses the segmentations of the first: one work folder),
and compares, per condition and subject:

* the mask-based Dice drop ``dDice = Dice(condition, mask) - Dice(native, mask)`` (what the
  user wants; <= 0 when the resolution hurts), and
* the label-free change ``agreement - 1 = Dice(condition, native prediction) - 1`` (what
  ``--reference prediction`` gives; 0 when the prediction did not change).

Per condition it reports the Spearman rank correlation of the two paired changes over the
subjects (does a low agreement flag the subjects whose accuracy dropped most?) and their
Bland-Altman agreement (mean of ``(agreement - 1) - dDice`` and its 95% limits: how far the
label-free number is from the mask-based one, in Dice units); across conditions, the rank
correlation of the mean changes (does agreement order the conditions as the masks do?).

Two sets: the demo's synthetic lesions, and (when ``../shared`` is present) the same anatomy with
real lesion shapes (the LESYMAP masks, :mod:`bids_stroke.demo.real_lesions`). Default: 8
subjects per set at 1 mm (the grid the bundled model was trained on: on the demo's coarser
grids it finds little, which would make both numbers meaningless) with four conditions
(native, crude:2, linear:2, thick:5), degraded images not written; ``--smoke``: 3 subjects at
2 mm, three conditions. A "pooled" row correlates every (subject, condition) pair. Writes
``bench/results/reference.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
LESYMAP = REPO_ROOT.parent / "shared" / "data" / "real" / "lesymap" / "lesions"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
CONDITIONS = ("native", "crude:2", "linear:2", "thick:5")
SMOKE_CONDITIONS = ("native", "crude:2", "linear:2")


def _participant(bids: Path, out: Path, work: Path, reference: str,
                 conditions: tuple[str, ...]) -> float:
    from bids_stroke.cli.run import main as run_main

    t0 = time.perf_counter()
    code = run_main([str(bids), str(out), "participant", "-w", str(work), "--nprocs", "1",
                     "--reference", reference, "--no-degraded-images",
                     "--conditions", *conditions])
    if code != 0:
        raise RuntimeError(f"participant --reference {reference} on {bids} exited with {code}")
    return time.perf_counter() - t0


def paired_changes(mask_frame: Any, pred_frame: Any) -> dict[str, list[tuple[str, float, float]]]:
    """Per degraded condition: ``(participant, dDice, agreement - 1)`` for every subject with
    both values (``mask_frame``/``pred_frame``: ``read_segmetrics`` of the two runs)."""
    native = mask_frame[mask_frame["desc"] == "native"].set_index("participant_id")["dice"]
    out: dict[str, list[tuple[str, float, float]]] = {}
    for desc in dict.fromkeys(pred_frame["desc"]):
        masked = mask_frame[mask_frame["desc"] == desc].set_index("participant_id")["dice"]
        agree = pred_frame[pred_frame["desc"] == desc].set_index("participant_id")["dice"]
        rows = []
        for pid in sorted(set(masked.index) & set(agree.index) & set(native.index)):
            drop, change = float(masked[pid] - native[pid]), float(agree[pid] - 1.0)
            if math.isfinite(drop) and math.isfinite(change):
                rows.append((pid, drop, change))
        out[str(desc)] = rows
    return out


def compare(rows: list[tuple[str, float, float]]) -> dict[str, Any]:
    """Spearman correlation and Bland-Altman of the label-free change against the drop."""
    import numpy as np
    from scipy.stats import spearmanr

    drop = np.array([r[1] for r in rows])
    change = np.array([r[2] for r in rows])
    n = len(rows)
    out: dict[str, Any] = {"n": n, "mean_drop": float(drop.mean()) if n else None,
                           "mean_change": float(change.mean()) if n else None}
    if n >= 3 and np.ptp(drop) > 0 and np.ptp(change) > 0:
        res = spearmanr(change, drop)
        out.update(spearman_rho=float(res.statistic), spearman_p=float(res.pvalue))
    else:
        out.update(spearman_rho=None, spearman_p=None)
    if n >= 2:
        diff = change - drop
        bias, sd = float(diff.mean()), float(diff.std(ddof=1))
        out.update(ba_bias=bias, ba_low=bias - 1.96 * sd, ba_high=bias + 1.96 * sd)
    else:
        out.update(ba_bias=None, ba_low=None, ba_high=None)
    return out


def _one_set(name: str, tmp: Path, n: int, seed: int, resolution: float,
             conditions: tuple[str, ...], masks: list[Path] | None) -> dict[str, Any]:
    from bids_stroke.demo import make_demo_dataset
    from bids_stroke.group.collect import read_segmetrics

    bids = make_demo_dataset(tmp / f"bids_{name}", n_subjects=n, seed=seed,
                             resolution_mm=resolution, lesion_masks=masks, progress=False)
    work = tmp / f"work_{name}"
    t_mask = _participant(bids, tmp / f"mask_{name}", work, "mask", conditions)
    t_pred = _participant(bids, tmp / f"pred_{name}", work, "prediction", conditions)
    mask_frame = read_segmetrics(tmp / f"mask_{name}")
    pred_frame = read_segmetrics(tmp / f"pred_{name}")
    per = paired_changes(mask_frame, pred_frame)
    stats = {desc: compare(rows) for desc, rows in per.items()}
    conds = [d for d in stats if stats[d]["n"]]
    if len(conds) > 1:
        stats["pooled"] = compare([r for d in conds for r in per[d]])
    across = None
    if len(conds) >= 3:
        from scipy.stats import spearmanr

        res = spearmanr([stats[d]["mean_change"] for d in conds],
                        [stats[d]["mean_drop"] for d in conds])
        across = {"n_conditions": len(conds), "spearman_rho": float(res.statistic),
                  "spearman_p": float(res.pvalue)}
    native = mask_frame[mask_frame["desc"] == "native"]["dice"]
    return {
        "n_subjects": n,
        "mask_run_seconds": t_mask,
        "prediction_run_seconds": t_pred,
        "native_dice_mean": float(native.mean()),
        "conditions": stats,
        "across_conditions": across,
        "subjects": {d: [{"participant_id": p, "dice_drop": a, "agreement_change": b}
                         for p, a, b in rows] for d, rows in per.items()},
    }


def run(smoke: bool = False, *, n_subjects: int | None = None, resolution: float | None = None,
        seed: int = 0) -> dict[str, Any]:
    """Run both sets (the real-shape one only with ``../shared``); write and return."""
    from bids_stroke.demo import find_lesion_masks

    n = n_subjects if n_subjects is not None else (3 if smoke else 8)
    res = resolution if resolution is not None else (2.0 if smoke else 1.0)
    conditions = SMOKE_CONDITIONS if smoke else CONDITIONS
    tmp = Path(tempfile.mkdtemp(prefix="bench_reference_"))
    sets: dict[str, Any] = {}
    skipped = None
    try:
        sets["synthetic"] = _one_set("synthetic", tmp, n, seed, res, conditions, None)
        if LESYMAP.is_dir():
            sets["real shapes"] = _one_set("real", tmp, n, seed, res, conditions,
                                           find_lesion_masks(LESYMAP))
        else:
            skipped = f"real lesion shapes not measured ({LESYMAP} is absent)"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summary = {"benchmark": "reference", "smoke": smoke, "n_subjects": n, "resolution_mm": res,
               "seed": seed, "conditions": list(conditions), "sets": sets,
               "note": skipped, "headline": _headline(sets)}
    _write(summary)
    return summary


def _headline(sets: dict[str, Any]) -> str:
    parts = []
    for name, s in sets.items():
        rhos = [c["spearman_rho"] for d, c in s["conditions"].items()
                if c["spearman_rho"] is not None and d != "pooled"]
        across = s["across_conditions"]
        parts.append(f"{name}: per-condition Spearman rho {min(rhos):.2f} to {max(rhos):.2f}"
                     if rhos else f"{name}: no correlation computable")
        pooled = s["conditions"].get("pooled", {}).get("spearman_rho")
        if pooled is not None:
            parts[-1] += f", pooled {pooled:.2f}"
        if across:
            parts[-1] += f", across conditions {across['spearman_rho']:.2f}"
    return "; ".join(parts)


def _f(value: float | None, digits: int = 3, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _write(s: dict[str, Any]) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "reference.json").write_text(json.dumps(s, indent=2) + "\n")
    lines = [
        "# Label-free (agreement with the native prediction) against mask-based Dice change",
        "",
        f"{s['n_subjects']} demo subjects per set at {s['resolution_mm']:g} mm"
        f"{' (smoke run)' if s['smoke'] else ''}, seed {s['seed']}, bundled model, conditions "
        f"{', '.join(s['conditions'])}. For each subject and degraded condition: dDice = "
        "Dice(condition, mask) - Dice(native, mask), the mask-based change; agreement - 1 = "
        "Dice(condition, native prediction) - 1, what `--reference prediction` gives. rho: "
        "Spearman rank correlation of the two over the subjects (p in brackets); "
        "Bland-Altman: mean of (agreement - 1) - dDice and its 95% limits, in Dice units.",
        "",
        "| set | condition | n | mean dDice | mean agreement - 1 | Spearman rho (p) | "
        "BA bias | BA 95% limits |",
        "|---|---|---:|---:|---:|---|---:|---|",
    ]
    for name, st in s["sets"].items():
        for desc, c in st["conditions"].items():
            rho = (f"{c['spearman_rho']:.2f} ({c['spearman_p']:.2g})"
                   if c["spearman_rho"] is not None else "n/a")
            lines.append(
                f"| {name} | {desc} | {c['n']} | {_f(c['mean_drop'], signed=True)} | "
                f"{_f(c['mean_change'], signed=True)} | {rho} | "
                f"{_f(c['ba_bias'], signed=True)} | "
                f"{_f(c['ba_low'], signed=True)} to {_f(c['ba_high'], signed=True)} |")
    lines += ["", "| set | native Dice (mask) | across conditions: Spearman rho of the mean "
              "changes | mask run (s) | prediction run (s, segmentations reused) |",
              "|---|---:|---|---:|---:|"]
    for name, st in s["sets"].items():
        a = st["across_conditions"]
        across = (f"{a['spearman_rho']:.2f} over {a['n_conditions']} conditions"
                  if a else "n/a (fewer than 3 conditions)")
        lines.append(f"| {name} | {st['native_dice_mean']:.3f} | {across} | "
                     f"{st['mask_run_seconds']:.0f} | {st['prediction_run_seconds']:.0f} |")
    if s.get("note"):
        lines += ["", f"Note: {s['note']}."]
    lines += ["", f"Headline: {s['headline']}", ""]
    (RESULTS_DIR / "reference.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="3 subjects at 2 mm")
    parser.add_argument("--n-subjects", type=int, default=None, metavar="N",
                        help="subjects per set (default 8; smoke 3)")
    parser.add_argument("--resolution", type=float, default=None, metavar="MM",
                        help="demo grid (default 1; smoke 2)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="demo seed")
    args = parser.parse_args(argv)
    run(args.smoke, n_subjects=args.n_subjects, resolution=args.resolution, seed=args.seed)
    print((RESULTS_DIR / "reference.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
