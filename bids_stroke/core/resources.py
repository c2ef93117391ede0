"""Memory each node of a subject's graph needs, from the size of its image.

nipype's MultiProc plugin starts a node only when the ``mem_gb`` of the running nodes plus
its own fit in ``--mem-gb`` (default: this machine's memory), so these figures decide what
runs side by side. They are upper estimates of the peak resident memory of the worker
process running the node: a fixed cost (the interpreter with numpy, nibabel and nipype
imported; torch and the model for the segmentation) plus a cost per voxel of the grid the
node works on. ``tests/test_resources.py`` checks them against the peak measured in a fresh
process (Linux ``VmHWM``). :func:`segment_threads` gives the segmentation its CPU threads.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

__all__ = [
    "DEFAULT_PREDICT_GB",
    "WORKER_BASE_GB",
    "degrade_mem_gb",
    "metrics_mem_gb",
    "release_memory",
    "segment_mem_gb",
    "segment_threads",
]

#: A nipype worker with numpy, scipy, nibabel and nipype imported (measured 0.10-0.12 GB).
WORKER_BASE_GB = 0.15
#: torch and a small 3D U-Net on top of :data:`WORKER_BASE_GB` (measured ~0.3 GB).
TORCH_BASE_GB = 0.35
#: A prediction whose model cannot estimate its own memory (external TorchScript/ONNX).
DEFAULT_PREDICT_GB = 3.5

# Bytes per voxel of one channel at the peak of each kind of node, measured as the slope of
# the peak between a 197x233x189 and a 300^3 volume (2026-12-04): degradation 18-21
# (linear down/up the most; k-space truncation works one axis at a time), metrics 19 (far
# false positives: the cropped distance transforms span the volume); rounded up to 32.
_DEGRADE_BYTES = 32
_METRICS_BYTES = 32


def _gb(n_voxels: int, bytes_per_voxel: float) -> float:
    return float(n_voxels) * bytes_per_voxel / 1e9


def degrade_mem_gb(n_voxels: int, n_channels: int = 1) -> float:
    """Peak memory (GB) of degrading ``n_channels`` images of ``n_voxels`` (one at a time)."""
    return round(WORKER_BASE_GB + _gb(n_voxels, _DEGRADE_BYTES) + _gb(
        n_voxels * max(0, n_channels - 1), 4), 2)


def metrics_mem_gb(n_voxels: int) -> float:
    """Peak memory (GB) of the metrics of one subject (all conditions, one at a time)."""
    return round(WORKER_BASE_GB + _gb(n_voxels, _METRICS_BYTES), 2)


def segment_mem_gb(predict_gb: float | None) -> float:
    """Peak memory (GB) of the segmentation node, from the model's own estimate of one
    prediction (:meth:`Segmenter.estimate_memory_gb`) or :data:`DEFAULT_PREDICT_GB`."""
    need = DEFAULT_PREDICT_GB if predict_gb is None else float(predict_gb)
    return round(WORKER_BASE_GB + TORCH_BASE_GB + need, 2)


def segment_threads(nprocs: int, omp_nthreads: int) -> int:
    """CPU threads of one segmentation: every core of the run (``--nprocs``, or
    ``--omp-nthreads`` when larger). One segmentation at a time with every core: two
    single-threaded U-Nets side by side were no faster and doubled the memory."""
    return max(int(nprocs), int(omp_nthreads))


def release_memory(*, collect: bool = True) -> None:
    """Hand freed memory back to the system after a large step (a prediction).

    A 1 mm prediction frees a few hundred MB that glibc's allocator keeps for the process
    (the idle worker of a parallel run held ~650 MB); ``malloc_trim(0)`` returns it. A no-op
    where the C library has no ``malloc_trim`` (musl, macOS). ``collect`` first runs a full
    garbage collection, for objects held in reference cycles (a dropped model); after a
    prediction, whose arrays are freed by reference counting, it is not needed and cost
    ~0.23 s per segmentation (a full pass over every object of a process holding torch and
    nipype).
    """
    if collect:
        gc.collect()
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        trim = getattr(libc, "malloc_trim", None)
    except OSError:
        trim = None
    if trim is not None:
        trim(0)
