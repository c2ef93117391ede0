"""Benchmark U-Net inference on one whole-brain volume.

Usage::

    python -m bench.bench_inference [--smoke]

For the bundled default model (base 8, depth 4) and the study-size configuration (base 16,
depth 4, random weights: FLOPs and timings do not depend on the weight values) this times
:meth:`bids_stroke.model.SegmentationModel.predict` end to end (normalisation, padding,
network, cropping) on a 197x233x189 float32 volume (MNI152NLin2009aSym at 1 mm):

* full volume, fp32, in the default (contiguous) layout and in ``channels_last_3d`` (what
  :class:`~bids_stroke.model.SegmentationModel` uses on CPU for networks up to 8 feature maps
  wide, the bundled one); the speed-up column is the ratio of the two in this run;
* the same in bf16 autocast (when the device supports it);
* sliding window (128^3 patches, 50 % overlap, Gaussian blending), fp32, channels-last;
* batching: the bundled network on the 3 conditions of one subject in one forward pass
  against 3 passes one after the other (network only, same layout), fp32 and bf16.

For each case it reports the best wall time, the peak resident memory during the case
(sampled from ``/proc/self/status``), the network FLOPs (counted with
:class:`torch.utils.flop_counter.FlopCounterMode` on the meta device), the achieved GFLOP/s and
its ratio to this machine's peak matmul GFLOP/s measured in the same run (a 2048^2 fp32 / bf16
``torch.mm`` loop with the same thread count).  Writes ``bench/results/inference.{md,json}``.
``--smoke`` uses a 96x112x96 volume, the bundled model only and a single repeat.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from bids_stroke.model import PreprocessConfig, SegmentationModel, UNet3D, UNetConfig, load_model
from bids_stroke.model.checkpoint import ModelLoadError
from bids_stroke.model.inference import cpu_supports_bf16, sliding_window_starts
from bids_stroke.model.preprocess import pad_to_multiple

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SHAPE = (197, 233, 189)
SMOKE_SHAPE = (96, 112, 96)
PATCH = (128, 128, 128)
OVERLAP = 0.5

__all__ = ["peak_matmul_gflops", "run"]


class _PeakRSS:
    """Sample the resident set size of this process in a background thread."""

    def __init__(self, interval: float = 0.01):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    @staticmethod
    def current() -> int:
        try:
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.current())
            time.sleep(self.interval)

    def __enter__(self) -> _PeakRSS:
        self.peak = self.current()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.current())


def peak_matmul_gflops(dtype: torch.dtype = torch.float32, seconds: float = 2.0) -> float:
    """Best GFLOP/s of repeated 2048x2048 ``torch.mm`` (this machine's practical peak)."""
    n = 2048
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    best = 0.0
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        torch.mm(a, b)
        dt = time.perf_counter() - t0
        best = max(best, 2 * n**3 / dt / 1e9)
    return best


def _forward_flops(net: torch.nn.Module, shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass on an input of ``shape`` (counted on the meta device)."""
    meta = copy.deepcopy(net).to("meta")
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        meta(torch.empty(shape, device="meta"))
    return int(fc.get_total_flops())


def _network_flops(net: torch.nn.Module, padded: tuple[int, int, int], mode: str) -> int:
    if mode == "full":
        return _forward_flops(net, (1, 1, *padded))
    patch = [min(p, s) for p, s in zip(PATCH, padded, strict=True)]
    n = math.prod(
        len(sliding_window_starts(s, p, OVERLAP, 8)) for s, p in zip(padded, patch, strict=True)
    )
    return n * _forward_flops(net, (1, 1, *patch))


def _models(smoke: bool) -> list[tuple[str, SegmentationModel]]:
    out = []
    try:
        out.append(("bundled (base 8, depth 4)", load_model(None, device="cpu")))
    except ModelLoadError:
        torch.manual_seed(0)
        net = UNet3D(UNetConfig(base_channels=8, depth=4, norm="batch"))
        out.append(("base 8, depth 4 (random; bundled missing)", SegmentationModel(net)))
    if not smoke:
        torch.manual_seed(0)
        net = UNet3D(UNetConfig(base_channels=16, depth=4, norm="instance"))
        out.append(
            (
                "study size (base 16, depth 4)",
                SegmentationModel(net, PreprocessConfig(), device="cpu"),
            )
        )
    return out


def _volume(shape: tuple[int, int, int]) -> np.ndarray:
    rng = np.random.default_rng(0)
    zz, yy, xx = np.indices(shape, dtype=np.float32)
    c = [s / 2 for s in shape]
    r = ((zz - c[0]) / (0.45 * shape[0])) ** 2 + ((yy - c[1]) / (0.45 * shape[1])) ** 2
    r += ((xx - c[2]) / (0.45 * shape[2])) ** 2
    vol = np.where(r < 1, 100 + 10 * rng.standard_normal(shape), 0).astype(np.float32)
    return vol


def run(smoke: bool = False) -> dict[str, Any]:
    """Run the benchmark, write ``bench/results/inference.{md,json}``, return the results."""
    shape = SMOKE_SHAPE if smoke else SHAPE
    repeats = 1 if smoke else 2
    vol = _volume(shape)
    bf16 = cpu_supports_bf16()
    peaks = {"fp32": peak_matmul_gflops(torch.float32, 1.0 if smoke else 3.0)}
    if bf16:
        peaks["bf16"] = peak_matmul_gflops(torch.bfloat16, 1.0 if smoke else 3.0)
    layouts = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last_3d}
    cases = [("full", "fp32", "contiguous"), ("full", "fp32", "channels_last")]
    if bf16:
        cases += [("full", "bf16", "contiguous"), ("full", "bf16", "channels_last")]
    cases.append(("sliding", "fp32", "channels_last"))
    rows = []
    for name, model in _models(smoke):
        padded = pad_to_multiple(np.zeros(shape, np.float32), model.divisor)[0].shape
        for mode, precision, layout in cases:
            model.set_memory_format(layouts[layout])
            flops = _network_flops(model.network, padded, mode)
            model.predict(vol[:32, :32, :32] if not smoke else vol, mode=mode, precision=precision)
            times = []
            with _PeakRSS() as rss:
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    prob = model.predict(vol, mode=mode, precision=precision)
                    times.append(time.perf_counter() - t0)
            assert prob.shape == shape and prob.dtype == np.float32
            best = min(times)
            gflops = flops / best / 1e9
            baseline = next((r["seconds"] for r in rows if r["model"] == name
                             and r["mode"] == mode and r["precision"] == precision
                             and r["layout"] == "contiguous"), None)
            rows.append(
                {
                    "model": name,
                    "mode": mode,
                    "precision": precision,
                    "layout": layout,
                    "speedup_vs_contiguous": None if baseline is None else baseline / best,
                    "seconds": best,
                    "peak_rss_mb": rss.peak / 2**20,
                    "network_gflop": flops / 1e9,
                    "achieved_gflops": gflops,
                    "peak_matmul_gflops": peaks[precision],
                    "fraction_of_peak": gflops / peaks[precision],
                }
            )
            print(
                f"{name:42s} {mode:8s} {precision:5s} {layout:13s} {best:7.2f} s "
                f"{rss.peak / 2**20:7.0f} MB {gflops:7.1f} GFLOP/s "
                f"({100 * gflops / peaks[precision]:.0f} % of peak)",
                flush=True,
            )
    batching = _batching(padded_shape=pad_to_multiple(np.zeros(shape, np.float32), 16)[0].shape,
                         precisions=["fp32", *(["bf16"] if bf16 else [])])
    result = {
        "benchmark": "inference",
        "smoke": smoke,
        "volume_shape": list(shape),
        "repeats": repeats,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor(),
        "bf16_supported": bf16,
        "peak_matmul_gflops": peaks,
        "sliding_window": {"patch_size": list(PATCH), "overlap": OVERLAP},
        "rows": rows,
        "batching": batching,
    }
    _write(result)
    return result


def _batching(padded_shape: tuple[int, ...], precisions: list[str],
              n: int = 3) -> list[dict[str, Any]]:
    """``n`` volumes through the bundled network in one batch vs one at a time."""
    try:
        model = load_model(None, device="cpu")
    except ModelLoadError:
        return []
    net = model.network
    x = torch.randn(n, 1, *padded_shape).contiguous(memory_format=model.memory_format)
    out = []
    for precision in precisions:
        ctx = (torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16"
               else torch.autocast("cpu", enabled=False))
        with torch.inference_mode(), ctx:
            net(x[:1])
            t0 = time.perf_counter()
            for i in range(n):
                net(x[i:i + 1])
            one_by_one = time.perf_counter() - t0
            t0 = time.perf_counter()
            net(x)
            batched = time.perf_counter() - t0
        out.append({"precision": precision, "volumes": n, "one_at_a_time_s": one_by_one,
                    "one_batch_s": batched, "speedup": one_by_one / batched})
        print(f"batching {n} volumes, {precision}: one at a time {one_by_one:.2f} s, one batch "
              f"{batched:.2f} s ({one_by_one / batched:.2f}x)", flush=True)
    return out


def _write(result: dict[str, Any]) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "inference.json").write_text(json.dumps(result, indent=2) + "\n")
    shape = "x".join(map(str, result["volume_shape"]))
    lines = [
        "# U-Net inference benchmark",
        "",
        f"Volume {shape} float32, best of {result['repeats']}, torch {result['torch']}, "
        f"{result['threads']} threads, {result['platform']}"
        + (" (smoke run)" if result["smoke"] else ""),
        "",
        "Peak matmul GFLOP/s measured in the same run: "
        + ", ".join(f"{k} {v:.1f}" for k, v in result["peak_matmul_gflops"].items()),
        "",
        "Time is `SegmentationModel.predict` end to end; GFLOP counts the network only "
        "(FlopCounterMode). The machine may be shared: compare rows of one run only.",
        "",
        "| model | mode | precision | layout | seconds | x contiguous | peak RSS (MB) "
        "| network GFLOP | GFLOP/s | % of peak matmul |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        ratio = r.get("speedup_vs_contiguous")
        lines.append(
            f"| {r['model']} | {r['mode']} | {r['precision']} | {r.get('layout', '-')} "
            f"| {r['seconds']:.2f} | {'-' if ratio is None else f'{ratio:.2f}x'} "
            f"| {r['peak_rss_mb']:.0f} | {r['network_gflop']:.1f} | {r['achieved_gflops']:.1f} "
            f"| {100 * r['fraction_of_peak']:.0f} |"
        )
    if result.get("batching"):
        lines += ["", "Batching the conditions of one subject (bundled network only, "
                  f"{result['batching'][0]['volumes']} volumes, same layout):", "",
                  "| precision | one at a time (s) | one batch (s) | x one at a time |",
                  "|---|---:|---:|---:|"]
        lines += [f"| {b['precision']} | {b['one_at_a_time_s']:.2f} | {b['one_batch_s']:.2f} "
                  f"| {b['speedup']:.2f}x |" for b in result["batching"]]
    (RESULTS_DIR / "inference.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small volume, one repeat")
    args = parser.parse_args(argv)
    run(smoke=args.smoke)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
