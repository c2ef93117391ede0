"""Realism check: does the resolution experiment behave the same with real lesion shapes?

Usage::

    python -m bench.bench_realism [--smoke] [--n-subjects N] [--seed S]

The demo phantoms have smooth synthetic blobs. This benchmark builds a second demo dataset
whose lesions take the *shapes* of real stroke masks (the 131 LESYMAP masks in the
developers' ``../shared/data/real/lesymap/lesions``; ``bids_stroke.demo`` with
``lesion_masks=``), with the same anatomy, contrast and noise model, and runs the participant
level of the ``atlas_resolution`` study (native, crude:2, linear:2, thick:5) with the bundled
model on both:

* ``real``: N subjects with real lesion shapes (seed S);
* ``synthetic``: the N synthetic-blob subjects of the same seed (the baseline), run in the
  same process, on the same machine, with the same model and settings.

It reports, per set and condition, the mean and median of Dice, HD95 and lesion-wise F1
(from the ``*_segmetrics.tsv`` outputs), the change from ``native``, and one row per subject.
Default: 8 subjects at 1 mm (the ATLAS v2.0 grid, ~10 s per inference on 2 cores, several
minutes in all); ``--smoke``: 3 subjects at 2 mm. Writes ``bench/results/realism.{md,json}``.

``../shared`` exists only on the developers' machines: without it the benchmark prints why
and returns ``{"skipped": ...}`` without touching the results.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
LESYMAP = SHARED / "data" / "real" / "lesymap" / "lesions"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
PIPELINE = "atlas_resolution"
METRICS = ("dice", "hd95", "lesion_f1")
SETS = ("real", "synthetic")


def _participant(bids: Path, out: Path, work: Path) -> float:
    """Run the participant level in-process; return its wall time in seconds."""
    from bids_stroke.cli.run import main as run_main

    t0 = time.perf_counter()
    code = run_main([str(bids), str(out), "participant", "-w", str(work),
                     "--study", PIPELINE, "--nprocs", "2"])  # fmt: skip
    seconds = time.perf_counter() - t0
    if code != 0:
        raise RuntimeError(f"bids_stroke {bids} {out} participant exited with {code}")
    return seconds


def _participants(root: Path) -> dict[str, dict[str, str]]:
    with (root / "participants.tsv").open() as fh:
        return {row["participant_id"]: row for row in csv.DictReader(fh, delimiter="\t")}


def _finite(values: list[float]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def _stats(values: list[float]) -> dict[str, Any]:
    import numpy as np

    ok = _finite(values)
    return {
        "mean": float(np.mean(ok)) if ok else None,
        "median": float(np.median(ok)) if ok else None,
        "n": len(ok),
        "n_undefined": len(values) - len(ok),
    }


def summarise(frame: Any) -> dict[str, Any]:
    """Per condition (in study order): n and mean/median of each metric, change from native.

    ``frame`` is a :func:`bids_stroke.group.collect.read_segmetrics` data frame.
    """
    order = list(dict.fromkeys(frame["desc"]))
    if "native" in order:
        order.remove("native")
        order.insert(0, "native")
    out: dict[str, Any] = {}
    for desc in order:
        rows = frame[frame["desc"] == desc]
        entry: dict[str, Any] = {"condition": str(rows["condition"].iloc[0]), "n": len(rows)}
        for metric in METRICS:
            entry[metric] = _stats([float(v) for v in rows[metric]])
        out[desc] = entry
    if "native" in out:
        base = frame[frame["desc"] == "native"].set_index("participant_id")
        for desc, entry in out.items():
            rows = frame[frame["desc"] == desc].set_index("participant_id")
            common = rows.index.intersection(base.index)
            diff = [float(rows.at[p, "dice"]) - float(base.at[p, "dice"]) for p in common]
            entry["dice_change_from_native"] = _stats(diff)
    return out


def run(smoke: bool = False, *, n_subjects: int | None = None, seed: int = 0) -> dict[str, Any]:
    """Run the realism check; write and return the summary (or ``{"skipped": reason}``)."""
    if not LESYMAP.is_dir():
        reason = f"real lesion masks not available ({LESYMAP} is absent); nothing measured"
        print(f"bench_realism: skipped: {reason}", file=sys.stderr)
        return {"benchmark": "realism", "smoke": smoke, "skipped": reason}

    from bids_stroke.demo import find_lesion_masks, make_demo_dataset
    from bids_stroke.group.collect import read_segmetrics
    from bids_stroke.model.checkpoint import bundled_model_path

    n = n_subjects if n_subjects is not None else (3 if smoke else 8)
    if n < 1:
        raise ValueError(f"n_subjects must be >= 1, got {n}")
    resolution = 2.0 if smoke else 1.0
    masks = find_lesion_masks(LESYMAP)
    tmp = Path(tempfile.mkdtemp(prefix="bench_realism_"))
    sets: dict[str, Any] = {}
    subjects: list[dict[str, Any]] = []
    try:
        for name in SETS:
            t0 = time.perf_counter()
            bids = make_demo_dataset(
                tmp / f"bids_{name}", n_subjects=n, seed=seed, resolution_mm=resolution,
                lesion_masks=masks if name == "real" else None, progress=False,
            )  # fmt: skip
            gen_seconds = time.perf_counter() - t0
            out = tmp / f"out_{name}"
            seconds = _participant(bids, out, tmp / f"work_{name}")
            frame = read_segmetrics(out)
            info = _participants(bids)
            volumes = [float(r["lesion_volume_ml"]) for r in info.values()]
            sets[name] = {
                "generate_seconds": gen_seconds,
                "participant_seconds": seconds,
                "n_subjects": len(info),
                "lesion_volume_ml": {
                    "median": statistics.median(volumes),
                    "min": min(volumes),
                    "max": max(volumes),
                },
                "conditions": summarise(frame),
            }
            for pid, row in sorted(info.items()):
                per = frame[frame["participant_id"] == pid].set_index("desc")
                subjects.append({
                    "set": name,
                    "participant_id": pid,
                    "lesion_source": row.get("lesion_source", "synthetic"),
                    "lesion_volume_ml": float(row["lesion_volume_ml"]),
                    "n_lesions": int(row["n_lesions"]),
                    **{f"dice_{d}": float(per.at[d, "dice"]) for d in per.index},
                })  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    summary: dict[str, Any] = {
        "benchmark": "realism",
        "smoke": smoke,
        "resolution_mm": resolution,
        "n_subjects": n,
        "seed": seed,
        "pipeline": PIPELINE,
        "model": f"bundled ({bundled_model_path().name})",
        "lesion_masks": f"{len(masks)} LESYMAP masks (shared/data/real/lesymap/lesions)",
        "sets": sets,
        "subjects": subjects,
        "headline": _headline(sets),
    }
    _write(summary)
    return summary


def _headline(sets: dict[str, Any]) -> str:
    parts = []
    for name in SETS:
        conds = sets[name]["conditions"]
        dice = ", ".join(f"{d} {_fmt(c['dice']['mean'])}" for d, c in conds.items())
        parts.append(f"{name}: mean Dice {dice}")
    return "; ".join(parts)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _write(s: dict[str, Any]) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "realism.json").write_text(json.dumps(s, indent=2) + "\n")
    lines = [
        "# Realism check: real lesion shapes vs synthetic blobs",
        "",
        f"{s['n_subjects']} subjects per set at {s['resolution_mm']:g} mm"
        f"{' (smoke run)' if s['smoke'] else ''}, seed {s['seed']}, study `{s['pipeline']}`, "
        f"model: {s['model']}, `--nprocs 2`. `real`: demo phantoms whose lesions take the "
        f"shapes of {s['lesion_masks']}; `synthetic`: the demo's synthetic-blob subjects of "
        "the same seed (baseline, same run). Anatomy, contrast and noise model are the same.",
        "",
        "| set | lesion volume median (min-max) ml | generate (s) | participant level (s) |",
        "|---|---|---:|---:|",
    ]
    for name in SETS:
        st = s["sets"][name]
        v = st["lesion_volume_ml"]
        lines.append(
            f"| {name} | {v['median']:.1f} ({v['min']:.1f}-{v['max']:.1f}) | "
            f"{st['generate_seconds']:.1f} | {st['participant_seconds']:.0f} |"
        )
    lines += [
        "",
        "Per condition: mean / median. HD95 in mm over the subjects where it is defined "
        "(`undef` = empty prediction); lesion F1 = 2TP / (2TP + FP + FN) on 26-connected "
        "lesions; ΔDice = paired change from `native` (mean).",
        "",
        "| set | condition | n | Dice | HD95 (mm) | undef | lesion F1 | ΔDice |",
        "|---|---|---:|---|---|---:|---|---:|",
    ]
    for name in SETS:
        for desc, c in s["sets"][name]["conditions"].items():
            d, h, f = c["dice"], c["hd95"], c["lesion_f1"]
            change = c.get("dice_change_from_native", {}).get("mean")
            lines.append(
                f"| {name} | {desc} | {c['n']} | {_fmt(d['mean'])} / {_fmt(d['median'])} | "
                f"{_fmt(h['mean'], 1)} / {_fmt(h['median'], 1)} | {h['n_undefined']} | "
                f"{_fmt(f['mean'])} / {_fmt(f['median'])} | {_fmt(change)} |"
            )
    descs = list(s["sets"]["real"]["conditions"])
    lines += [
        "",
        "## Per subject (Dice)",
        "",
        "| set | subject | lesion source | volume (ml) | lesions | " + " | ".join(descs) + " |",
        "|---|---|---|---:|---:|" + "---:|" * len(descs),
    ]
    for r in s["subjects"]:
        dice = " | ".join(_fmt(r.get(f"dice_{d}")) for d in descs)
        lines.append(
            f"| {r['set']} | {r['participant_id']} | {r['lesion_source']} | "
            f"{r['lesion_volume_ml']:.1f} | {r['n_lesions']} | {dice} |"
        )
    lines += ["", f"Headline: {s['headline']}", ""]
    (RESULTS_DIR / "realism.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="3 subjects at 2 mm")
    parser.add_argument("--n-subjects", type=int, default=None, metavar="N",
                        help="subjects per set (default 8; smoke 3)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="demo seed (default 0)")
    args = parser.parse_args(argv)
    result = run(args.smoke, n_subjects=args.n_subjects, seed=args.seed)
    if "skipped" not in result:
        print((RESULTS_DIR / "realism.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
