"""The CPUs this process may use and how a run shares them: the defaults of ``--nprocs`` and
``--omp-nthreads`` (:class:`~bids_stroke.core.settings.ExecutionSettings`)."""

from __future__ import annotations

import os

__all__ = ["MAX_DEFAULT_THREADS", "MIN_PARALLEL_CPUS", "default_nprocs", "default_omp_nthreads",
           "usable_cpus"]

#: most threads one process gets by default (more gave nothing measurable per image)
MAX_DEFAULT_THREADS = 8
#: fewest usable CPUs from which --nprocs > 1 runs parallel nipype processes (below, a second
#: process was slower than one: bench/RESULTS.md)
MIN_PARALLEL_CPUS = 4


def usable_cpus() -> int:
    """CPUs this process may run on (a SLURM task's or a container's allotment, not the
    machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def default_nprocs(cpus: int | None = None) -> int:
    """Parallel nipype processes by default: one per two CPUs (of ``cpus``, default: the
    usable ones), at least one.

    Every worker that segments imports torch and loads the model, and the segmentation
    already runs on all cores one image at a time; measured on 2 cores
    (``bench/bench_participant.py``), two workers were slower (0.83x) than one and used 1.5x
    the memory. Subjects still run side by side (degradation, metrics, reports) on larger
    machines.
    """
    return max(1, (usable_cpus() if cpus is None else cpus) // 2)


def default_omp_nthreads(nprocs: int | None = None, cpus: int | None = None) -> int:
    """Threads per process by default: the CPUs shared among ``nprocs`` processes (default:
    :func:`default_nprocs`), at most :data:`MAX_DEFAULT_THREADS`, at least one (no
    oversubscription)."""
    cpus = usable_cpus() if cpus is None else cpus
    nprocs = default_nprocs(cpus) if nprocs is None else nprocs
    return max(1, min(MAX_DEFAULT_THREADS, cpus // nprocs))
