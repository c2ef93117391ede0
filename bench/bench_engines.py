"""Which CPU engine runs the bundled U-Net fastest without changing a mask.

Usage::

    python -m bench.bench_engines [--smoke]

The bundled model on the demo's first image (1 mm, 197x233x189, normalised in the template
brain mask and padded to 208x240x192 exactly as the participant level does; ``--smoke``: the
2 mm demo grid), one forward pass + sigmoid per repeat, best of 3 (1 in smoke mode), with
every engine given this process's torch thread count:

* ``torch eager``: the network as the pipeline runs it (``channels_last_3d``), fp32 and bf16
  autocast (where oneDNN has native bf16);
* ``torch.compile`` (inductor), fp32 and bf16; its compile time is reported apart;
* ``onnxruntime`` on the model's ONNX export (``bids_stroke model export --onnx``), fp32;
* ``OpenVINO`` on the same ONNX file, fp32 and bf16 (its ``INFERENCE_PRECISION_HINT``), when
  the ``openvino`` package is installed (it is not a dependency of bids_stroke).

*Exact* means what the ONNX adapter promises: every probability within 1e-4 of torch eager
fp32 and the same mask at the model's threshold (0.5). The report gives each engine's time,
its ratio to torch eager fp32 measured in the same run, the largest probability difference,
the mask differences, and the achieved share of this machine's matmul peak (fp32 or bf16
``torch.mm``, same threads, same run). Writes ``bench/results/engines.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.bench_inference import _forward_flops, peak_matmul_gflops

RESULTS_DIR = Path(__file__).resolve().parent / "results"
EXACT_ATOL = 1e-4
THRESHOLD = 0.5

__all__ = ["run"]


def demo_input(smoke: bool, root: Path) -> np.ndarray:
    """The preprocessed, padded network input ``(1, 1, D, H, W)`` of the demo's first image."""
    import nibabel as nib

    from bids_stroke.demo import make_demo_dataset
    from bids_stroke.model import load_model
    from bids_stroke.model.preprocess import preprocess_volume
    from bids_stroke.templates import brain_mask_like

    bids = make_demo_dataset(root / "bids", n_subjects=1, seed=0,
                             resolution_mm=2.0 if smoke else 1.0, progress=False)
    image = next(bids.rglob("*_T1w.nii.gz"))
    img = nib.load(image)
    mask = np.asarray(brain_mask_like(img).dataobj) > 0
    model = load_model(None, device="cpu")
    padded, _ = preprocess_volume(np.asarray(img.dataobj, np.float32), mask,
                                  model.preprocessing, model.divisor)
    return padded[None, None].astype(np.float32)


def _best(fn: Callable[[], np.ndarray], repeats: int) -> tuple[float, np.ndarray]:
    out = fn()  # warm-up (oneDNN primitive caches, OpenVINO/ORT first-run allocations)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _torch_engine(net: torch.nn.Module, x: np.ndarray, bf16: bool,
                  compiled: bool) -> tuple[Callable[[], np.ndarray], float]:
    """A predict function and its set-up time (compilation included)."""
    xt = torch.from_numpy(x).contiguous(memory_format=torch.channels_last_3d)
    t0 = time.perf_counter()
    run = torch.compile(net) if compiled else net

    def predict() -> np.ndarray:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16,
                                                    enabled=bf16):
            return torch.sigmoid(run(xt).float()).numpy()

    if compiled:
        predict()  # compile now, so that the set-up time holds it
    return predict, time.perf_counter() - t0


def _onnx_file(root: Path) -> Path:
    from bids_stroke.model.export import export_onnx

    return export_onnx(None, root / "bundled.onnx")


def _ort_engine(onnx: Path, x: np.ndarray) -> tuple[Callable[[], np.ndarray], float]:
    import onnxruntime as ort

    t0 = time.perf_counter()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    sess = ort.InferenceSession(str(onnx), sess_options=opts,
                                providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name

    def predict() -> np.ndarray:
        logits = sess.run(None, {name: x})[0]
        return torch.sigmoid(torch.from_numpy(logits)).numpy()

    return predict, time.perf_counter() - t0


def _openvino_engine(onnx: Path, x: np.ndarray, bf16: bool
                     ) -> tuple[Callable[[], np.ndarray], float]:
    import openvino as ov

    t0 = time.perf_counter()
    core = ov.Core()
    model = core.read_model(str(onnx))
    model.reshape({model.inputs[0].any_name: list(x.shape)})
    compiled = core.compile_model(model, "CPU", {
        "INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32",
        "INFERENCE_NUM_THREADS": torch.get_num_threads(),
        "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()

    def predict() -> np.ndarray:
        logits = request.infer({0: x})[compiled.outputs[0]]
        return torch.sigmoid(torch.from_numpy(np.asarray(logits))).numpy()

    return predict, time.perf_counter() - t0


def _engines(net: torch.nn.Module, x: np.ndarray, onnx: Path, bf16_ok: bool, smoke: bool
             ) -> list[tuple[str, str, Callable[[], tuple[Callable[[], np.ndarray], float]]]]:
    engines = [("torch eager", "fp32", lambda: _torch_engine(net, x, False, False))]
    if bf16_ok:
        engines.append(("torch eager", "bf16", lambda: _torch_engine(net, x, True, False)))
    engines.append(("torch.compile", "fp32", lambda: _torch_engine(net, x, False, True)))
    if bf16_ok and not smoke:
        engines.append(("torch.compile", "bf16", lambda: _torch_engine(net, x, True, True)))
    engines.append(("onnxruntime", "fp32", lambda: _ort_engine(onnx, x)))
    try:
        import openvino  # noqa: F401
    except ImportError:
        return engines
    engines.append(("OpenVINO", "fp32", lambda: _openvino_engine(onnx, x, False)))
    if bf16_ok:
        engines.append(("OpenVINO", "bf16", lambda: _openvino_engine(onnx, x, True)))
    return engines


def _versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("torch", "onnxruntime", "openvino"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def run(smoke: bool = False) -> dict[str, Any]:
    from bids_stroke.model import load_model
    from bids_stroke.model.inference import cpu_supports_bf16

    repeats = 1 if smoke else 3
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        x = demo_input(smoke, root)
        onnx = _onnx_file(root)
        net = load_model(None, device="cpu").network  # channels_last_3d on CPU, eval mode
        flops = _forward_flops(net, tuple(x.shape))
        bf16_ok = cpu_supports_bf16()
        peak = {"fp32": peak_matmul_gflops(torch.float32, 1.0 if smoke else 2.0)}
        if bf16_ok:
            peak["bf16"] = peak_matmul_gflops(torch.bfloat16, 1.0 if smoke else 2.0)
        rows: list[dict[str, Any]] = []
        reference: np.ndarray | None = None
        for engine, precision, make in _engines(net, x, onnx, bf16_ok, smoke):
            row: dict[str, Any] = {"engine": engine, "precision": precision}
            try:
                predict, setup = make()
                seconds, prob = _best(predict, repeats)
            except Exception as exc:  # an engine that cannot run here is reported, not fatal
                row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
                rows.append(row)
                continue
            if reference is None:
                reference = prob
            diff = float(np.abs(prob - reference).max())
            masks = int(np.count_nonzero((prob >= THRESHOLD) != (reference >= THRESHOLD)))
            gflops = flops / seconds / 1e9
            row.update(seconds=seconds, setup_s=setup, max_abs_diff=diff,
                       mask_voxels_differing=masks, exact=diff <= EXACT_ATOL and masks == 0,
                       gflops=gflops, pct_peak=100 * gflops / peak[precision])
            rows.append(row)
        # the peak again after the engines, the higher kept: on a shared machine a peak taken
        # in a busy moment would make every engine look closer to it than it is
        for dtype, key in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
            if key in peak:
                peak[key] = max(peak[key], peak_matmul_gflops(dtype, 1.0 if smoke else 2.0))
        for r in rows:
            if "gflops" in r:
                r["pct_peak"] = 100 * r["gflops"] / peak[r["precision"]]
    base = rows[0]["seconds"]
    for row in rows:
        if "seconds" in row:
            row["x_eager_fp32"] = base / row["seconds"]
    exact = [r for r in rows if r.get("exact")]
    fastest = min(exact, key=lambda r: r["seconds"])
    result = {"smoke": smoke, "input_shape": list(x.shape), "repeats": repeats,
              "threads": torch.get_num_threads(), "network_gflop": flops / 1e9,
              "peak_gflops": peak, "versions": _versions(), "rows": rows,
              "fastest_exact": f"{fastest['engine']} {fastest['precision']}"}
    _write(result)
    return result


def _write(result: dict[str, Any]) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "engines.json").write_text(json.dumps(result, indent=2) + "\n")
    peak = ", ".join(f"{k} {v:.1f}" for k, v in result["peak_gflops"].items())
    lines = [
        "## CPU engines for the bundled U-Net",
        "",
        f"Input {'x'.join(map(str, result['input_shape']))} (the demo's first image, "
        f"normalised and padded as the pipeline does), {result['threads']} threads, best of "
        f"{result['repeats']}; network {result['network_gflop']:.1f} GFLOP; peak matmul "
        f"GFLOP/s in the same run: {peak}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in result["versions"].items() if v) + ".",
        "",
        "Exact = every probability within 1e-4 of torch eager fp32 and the same mask at 0.5.",
        "",
        "| engine | precision | seconds | x torch eager fp32 | set-up s | max abs diff | "
        "mask voxels differing | exact | % of peak matmul |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in result["rows"]:
        if "error" in r:
            lines.append(f"| {r['engine']} | {r['precision']} | failed: {r['error']} "
                         "| | | | | | |")
            continue
        lines.append(
            f"| {r['engine']} | {r['precision']} | {r['seconds']:.2f} | "
            f"{r['x_eager_fp32']:.2f} | {r['setup_s']:.1f} | {r['max_abs_diff']:.1e} | "
            f"{r['mask_voxels_differing']} | {'yes' if r['exact'] else 'no'} | "
            f"{r['pct_peak']:.0f} |")
    lines += ["", f"Fastest exact engine: {result['fastest_exact']}.", ""]
    (RESULTS_DIR / "engines.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="2 mm demo grid, one repeat")
    args = parser.parse_args(argv)
    result = run(smoke=args.smoke)
    print((RESULTS_DIR / "engines.md").read_text())
    return 0 if result["rows"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
