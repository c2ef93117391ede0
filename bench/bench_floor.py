"""A subject at the cost of its inference: the whole command against its inference floor.

Usage::

    python -m bench.bench_floor [--smoke]

On the demo dataset (``bids_stroke demo``, seed 0; 1 mm, ``--smoke``: 2 mm), with the bundled
model and the default settings (``atlas_resolution``: native, crude:2, linear:2), every run a
fresh process tree whose memory is sampled every 50 ms from ``/proc`` (sums over the tree of
``VmRSS`` and of ``Pss`` from ``smaps_rollup``):

* **whole vs floor**, one image x 3 conditions: the ``bids_stroke BIDS OUT participant``
  command (wall time, start-up and imports included) against the *inference floor*: in one
  process, the model opened once and the 3 degraded volumes predicted with the same
  precision and engine (degradation, brain mask, interpreter start and imports not timed);
  interleaved, best of 2 each; also in fp32 (full mode). Target (issue): whole / floor <=
  1.25;
* **the stage table**: the same command under ``cProfile``, cumulative seconds of each stage
  (imports are counted where they happen and again in their own row); shares of the profiled
  whole, so they carry cProfile's overhead on Python-heavy steps;
* **cohort throughput**: N images (4; smoke 2) x 3 conditions with ``--nprocs 1`` and with
  two nipype worker processes (a MultiProc ``--use-plugin`` file: ``--nprocs 2`` runs one
  process below 4 CPUs), images per minute, tree peak RSS and PSS; then the same ``--nprocs 1``
  command again (every image unchanged: kept as committed), as a ratio to the first run;
* **disk**: derivatives per image (by kind of file) at 1 mm and 2 mm with the default
  compact probability maps, at 1 mm also with ``--save-probseg full`` (full mode only), and
  the work folder left after the run.

Every figure is taken in one run on one machine; compare ratios, not seconds, across runs.
Writes ``bench/results/floor.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_participant import RUN_TIMEOUT_S, TreeSampler, _kill_tree

RESULTS_DIR = Path(__file__).resolve().parent / "results"
TARGET_RATIO = 1.25

_FLOOR = r"""
import json, sys, time
import numpy as np, nibabel as nib
from bids_stroke.degrade import apply_condition
from dataclasses import replace
from bids_stroke.model.adapters import ChannelStack, ModelRequest, open_model
from bids_stroke.core.settings import Settings
from bids_stroke.templates import brain_mask_like

seg = Settings().segmentation
precision = sys.argv[2]
img = nib.as_closest_canonical(nib.load(sys.argv[1]))
data = np.asarray(img.dataobj, dtype=np.float32)
zooms = [float(z) for z in img.header.get_zooms()[:3]]
mask = np.asarray(brain_mask_like(img).dataobj) > 0
volumes = [apply_condition(data, zooms, c) for c in sys.argv[3:]]
import torch  # noqa: imported before the clock, like the command's imports
t0 = time.perf_counter()
request = ModelRequest.from_settings(seg, threads=torch.get_num_threads())
model = open_model(replace(request, precision=precision))
t_open = time.perf_counter() - t0
for v in volumes:
    model.predict(ChannelStack(v[None], img.affine, None, mask))
print(json.dumps({"seconds": time.perf_counter() - t0, "open_s": t_open,
                  "engine": model.info.get("engine", "torch"),
                  "precision": precision}))
"""

#: what every participant command imports before its first step (interpreter start included)
_STARTUP = ("import torch, nipype.pipeline.engine, bids.layout, matplotlib.pyplot, pandas, "
            "scipy.stats, bids_stroke.cli.participant, bids_stroke.workflows.base, "
            "bids_stroke.reports.subject, bids_stroke.metrics.compute")

SEG_STEP = "segmentation step without inference (read, threshold, encode, write)"
#: stages of the profiled command: (row, function names as "file suffix:function")
STAGES = [
    ("inference (the 3 predictions)", ["adapters/bids_stroke.py:predict"]),
    (SEG_STEP, ["interfaces/segment.py:_run_interface"]),
    ("model opened and checked (dry run, memory)",
     ["cli/participant.py:plan_model", "cli/participant.py:check_model_memory"]),
    ("discovery (pybids) and input checks",
     ["cli/participant.py:discover", "preflight.py:preflight_check"]),
    ("fingerprints of the inputs", ["cli/participant.py:fingerprint_images"]),
    ("degradation", ["interfaces/degrade.py:_run_interface"]),
    ("metrics", ["interfaces/metrics.py:_run_interface"]),
    ("subject report (figures, HTML)", ["reports/subject.py:build_subject_report"]),
    ("writing derivatives + commit", ["commit.py:commit_image"]),
    ("nipype input hashing", ["nipype/interfaces/base/specs.py:get_hashval"]),
    ("work-folder checks", ["runner.py:scan_work_dir", "runner.py:check_inputs"]),
    ("imports (also inside the rows above)", ["<frozen importlib._bootstrap>:_find_and_load"]),
]


def _run(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``cmd``; wall time and peak RSS/PSS of its process tree."""
    with log.open("w") as fh:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT,
                                env={**os.environ, "NIPYPE_NO_ET": "1", **(env or {})})
        with TreeSampler(proc.pid) as sampler:
            try:
                code = proc.wait(timeout=RUN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                _kill_tree(proc.pid)
                proc.wait()
                raise RuntimeError(
                    f"{' '.join(cmd)} did not finish in {RUN_TIMEOUT_S:.0f} s") from None
        seconds = time.perf_counter() - t0
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed with exit {code}:\n"
                           f"{log.read_text(errors='replace')[-3000:]}")
    return {"seconds": seconds, "peak_tree_rss_mb": sampler.peak_kib / 1024.0,
            "peak_tree_pss_mb": sampler.peak_pss_kib / 1024.0}


def _cli(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "bids_stroke.cli.run", *[str(a) for a in args]]


def _stage_table(profile: Path) -> list[dict[str, Any]]:
    stats = pstats.Stats(str(profile)).stats  # type: ignore[attr-defined]
    total = max(ct for (_, _, _, ct, _) in stats.values())
    rows = []
    for label, names in STAGES:
        seconds = 0.0
        for (filename, _, func), (_, _, _, ct, _) in stats.items():
            for name in names:
                suffix, fn = name.rsplit(":", 1)
                if func == fn and filename.endswith(suffix):
                    seconds += ct
        if label == SEG_STEP:  # the step's cumulative time holds the predictions
            seconds -= rows[0]["seconds"]
        rows.append({"stage": label, "seconds": seconds, "pct": 100 * seconds / total})
    rows.append({"stage": "whole command (profiled)", "seconds": total, "pct": 100.0})
    return rows


def _sizes(out: Path, n_images: int) -> dict[str, float]:
    """MB per image of the derivatives, by kind of file."""
    kinds = {"probability maps": "_probseg.nii.gz", "masks": "_mask.nii.gz",
             "images (preproc, degraded)": ".nii.gz"}
    sizes = dict.fromkeys([*kinds, "tables, sidecars, report"], 0.0)
    for p in out.rglob("*"):
        if not p.is_file() or p.relative_to(out).parts[0] in ("logs", ".bids_stroke"):
            continue
        if not (p.name.startswith("sub-")):
            continue
        kind = next((k for k, end in kinds.items() if p.name.endswith(end)),
                    "tables, sidecars, report")
        sizes[kind] += p.stat().st_size / 1e6 / n_images
    sizes["total"] = sum(sizes.values())
    return sizes


def _du_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def run(smoke: bool = False) -> dict[str, Any]:
    from bids_stroke.core.settings import Settings
    from bids_stroke.demo import make_demo_dataset

    conditions = [c.spec for c in Settings().study.conditions]
    n_cohort = 2 if smoke else 4
    resolution = 2.0 if smoke else 1.0
    tmp = Path(tempfile.mkdtemp(prefix="bench_floor_"))
    try:
        bids = make_demo_dataset(tmp / "bids", n_subjects=n_cohort, seed=0,
                                 resolution_mm=resolution, progress=False)
        logs = tmp / "logs"
        logs.mkdir()
        first = "r001s001"
        image = next((bids / f"sub-{first}").rglob("*_T1w.nii.gz"))

        def participant(name: str, *extra: str | Path) -> list[str]:
            return _cli(bids, tmp / f"out_{name}", "participant", "-w", tmp / f"work_{name}",
                        *extra)

        # the floor first: it also writes the engine's cache (the ONNX export for
        # OpenVINO), which the command then finds, as any later run does
        def floor_of(precision: str) -> dict[str, Any]:
            proc = subprocess.run([sys.executable, "-c", _FLOOR, str(image), precision,
                                   *conditions], capture_output=True, text=True,
                                  timeout=RUN_TIMEOUT_S, check=True)
            return json.loads(proc.stdout.strip().splitlines()[-1])

        precision = Settings().segmentation.precision
        floor_of(precision)  # warm-up: the engine's cache, the page cache of the files
        floor_proc = _run([sys.executable, "-c", _FLOOR, str(image), precision, *conditions],
                          logs / "floor.log")
        # floor and whole command interleaved, best of 2 each (a shared machine's load moves)
        floors, wholes = [], []
        for k in range(2):
            floors.append(floor_of(precision))
            wholes.append(_run(participant(f"one{k}", "--participant-label", first),
                               logs / f"one{k}.log"))
        floor = min(floors, key=lambda f: f["seconds"])
        startup = min(_run([sys.executable, "-c", _STARTUP], logs / "startup.log")["seconds"]
                      for _ in range(3))
        whole = min(wholes, key=lambda w: w["seconds"])
        fp32 = None
        if not smoke:  # the floor of a CPU without native bf16 (fp32, engine auto)
            fp32 = {"floor": min((floor_of("fp32") for _ in range(2)),
                                 key=lambda f: f["seconds"]),
                    "whole": _run(participant("fp32", "--participant-label", first,
                                              "--precision", "fp32"), logs / "fp32.log")}
            fp32["ratio"] = fp32["whole"]["seconds"] / fp32["floor"]["seconds"]
        profile = tmp / "one.prof"
        _run([sys.executable, "-m", "cProfile", "-o", str(profile), "-m",
              "bids_stroke.cli.run", *participant("prof", "--participant-label", first)[3:]],
             logs / "prof.log")
        stages = _stage_table(profile)
        sizes = {f"{resolution:g} mm": _sizes(tmp / "out_one0", 1)}
        work_left_mb = _du_mb(tmp / "work_one0")

        plugin = tmp / "multiproc.yml"
        plugin.write_text("plugin: MultiProc\nplugin_args: {n_procs: 2, raise_insufficient: "
                          "false, mp_context: forkserver}\n")
        seq = _run(participant("p1", "--nprocs", "1"), logs / "p1.log")
        par = _run(participant("p2", "--use-plugin", plugin), logs / "p2.log")
        again = _run(participant("p1", "--nprocs", "1"), logs / "p1_again.log")
        if not smoke:
            full = _run(participant("full", "--participant-label", first, "--save-probseg",
                                    "full"), logs / "full.log")
            sizes["1 mm, --save-probseg full"] = _sizes(tmp / "out_full", 1)
            bids2 = make_demo_dataset(tmp / "bids2", n_subjects=1, seed=0, resolution_mm=2.0,
                                      progress=False)
            _run(_cli(bids2, tmp / "out_2mm", "participant", "-w", tmp / "work_2mm"),
                 logs / "2mm.log")
            sizes["2 mm"] = _sizes(tmp / "out_2mm", 1)
        else:
            full = None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "smoke": smoke, "resolution_mm": resolution, "conditions": conditions,
        "floor": {**floor, "process": floor_proc},
        "whole": whole, "ratio": whole["seconds"] / floor["seconds"], "fp32": fp32,
        "startup_s": startup,
        "least_ratio": (floor["seconds"] + startup) / floor["seconds"],
        "overhead_s": whole["seconds"] - floor["seconds"],
        "target_ratio": TARGET_RATIO, "under_target": whole["seconds"] / floor["seconds"]
        <= TARGET_RATIO, "stages": stages,
        "cohort": {"images": n_cohort, "nprocs1": seq, "nprocs2_multiproc": par,
                   "speedup_2_over_1": seq["seconds"] / par["seconds"],
                   "pss_2_over_1": par["peak_tree_pss_mb"] / seq["peak_tree_pss_mb"],
                   "images_per_min_1": 60 * n_cohort / seq["seconds"],
                   "images_per_min_2": 60 * n_cohort / par["seconds"],
                   "rerun": again, "rerun_ratio": again["seconds"] / seq["seconds"]},
        "sizes_mb_per_image": sizes, "work_folder_left_mb": work_left_mb,
        "full_probseg_run": full, "cpus": len(os.sched_getaffinity(0)),
    }
    _write(result)
    return result


def _write(r: dict[str, Any]) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "floor.json").write_text(json.dumps(r, indent=2) + "\n")
    f, w, c = r["floor"], r["whole"], r["cohort"]
    lines = [
        "## Whole command against its inference floor",
        "",
        f"Demo at {r['resolution_mm']:g} mm, bundled model, default settings "
        f"({', '.join(r['conditions'])}), {r['cpus']} CPUs; one run, ratios within it.",
        "",
        "| 1 image x 3 conditions | seconds | tree peak RSS (MB) | tree peak PSS (MB) |",
        "|---|---:|---:|---:|",
        f"| floor: model opened + 3 predictions ({f['precision']}, engine {f['engine']}) | "
        f"{f['seconds']:.1f} | - | - |",
        f"| the floor's process (interpreter, imports, degradation included) | "
        f"{f['process']['seconds']:.1f} | {f['process']['peak_tree_rss_mb']:.0f} | "
        f"{f['process']['peak_tree_pss_mb']:.0f} |",
        f"| `bids_stroke BIDS OUT participant` | {w['seconds']:.1f} | "
        f"{w['peak_tree_rss_mb']:.0f} | {w['peak_tree_pss_mb']:.0f} |",
        f"| interpreter start + the command's imports (torch, nipype, pybids, matplotlib, "
        f"pandas, scipy.stats, bids_stroke), best of 3 | {r['startup_s']:.1f} | - | - |",
        "",
        f"whole / floor = **{r['ratio']:.2f}** (target <= {r['target_ratio']}: "
        f"{'yes' if r['under_target'] else 'no'}); the command's time beyond the floor "
        f"{r['overhead_s']:.1f} s, of which {r['startup_s']:.1f} s start-up and imports: no "
        f"Python command can be under (floor + start-up) / floor = {r['least_ratio']:.2f} "
        "here.",
        "",
        *([f"In fp32 (`--precision fp32`, what a CPU without native bf16 runs; engine "
           f"{r['fp32']['floor']['engine']}): floor {r['fp32']['floor']['seconds']:.1f} s, "
           f"whole command {r['fp32']['whole']['seconds']:.1f} s, whole / floor "
           f"**{r['fp32']['ratio']:.2f}**.", ""] if r.get("fp32") else []),
        "Stages of the same command under cProfile (cumulative; imports also counted in the "
        "row that triggered them):",
        "",
        "| stage | s | % of whole |",
        "|---|---:|---:|",
        *[f"| {s['stage']} | {s['seconds']:.2f} | {s['pct']:.1f} |" for s in r["stages"]],
        "",
        f"Cohort: {c['images']} images x {len(r['conditions'])} conditions.",
        "",
        "| run | seconds | images/min | tree peak RSS (MB) | tree peak PSS (MB) |",
        "|---|---:|---:|---:|---:|",
        f"| `--nprocs 1` | {c['nprocs1']['seconds']:.1f} | {c['images_per_min_1']:.2f} | "
        f"{c['nprocs1']['peak_tree_rss_mb']:.0f} | {c['nprocs1']['peak_tree_pss_mb']:.0f} |",
        f"| 2 MultiProc workers (`--use-plugin`) | {c['nprocs2_multiproc']['seconds']:.1f} | "
        f"{c['images_per_min_2']:.2f} | {c['nprocs2_multiproc']['peak_tree_rss_mb']:.0f} | "
        f"{c['nprocs2_multiproc']['peak_tree_pss_mb']:.0f} |",
        f"| `--nprocs 1` again (every image unchanged) | {c['rerun']['seconds']:.1f} | - | "
        f"{c['rerun']['peak_tree_rss_mb']:.0f} | {c['rerun']['peak_tree_pss_mb']:.0f} |",
        "",
        f"2 workers / 1 process: speed {c['speedup_2_over_1']:.2f}x, PSS "
        f"{c['pss_2_over_1']:.2f}x; re-run / first run: {c['rerun_ratio']:.2f}.",
        "",
        "Derivatives per image (MB):",
        "",
        "| grid | probability maps | masks | images (preproc, degraded) | tables, sidecars, "
        "report | total |",
        "|---|---:|---:|---:|---:|---:|",
        *[f"| {g} | {s['probability maps']:.2f} | {s['masks']:.2f} | "
          f"{s['images (preproc, degraded)']:.2f} | "
          f"{s['tables, sidecars, report']:.2f} | {s['total']:.2f} |"
          for g, s in r["sizes_mb_per_image"].items()],
        "",
        f"Work folder left after the 1-image run (committed: its registration only): "
        f"{r['work_folder_left_mb']:.1f} MB.",
        "",
    ]
    (RESULTS_DIR / "floor.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="2 mm, 2-image cohort")
    args = parser.parse_args(argv)
    run(smoke=args.smoke)
    print((RESULTS_DIR / "floor.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
