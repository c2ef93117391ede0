"""Running a built nipype graph: plugin, progress, signals, crash files, work-folder integrity.

The graph is built by :mod:`bids_stroke.workflows` (wiring only); this module executes it.
It never decides what a subject's outputs are: a subject succeeded when its writer committed
it in this run (its manifest carries this run's id), whatever the nipype plugin reports — so
per-subject success is right with MultiProc, Linear and the SLURM plugins alike.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import shutil
import signal
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

LOGGER = logging.getLogger("bids_stroke.runner")


class Interrupted(BaseException):
    """SIGTERM/SIGINT arrived while the graph was running (``signum`` says which)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """Turn SIGTERM and SIGINT into :class:`Interrupted` in the main thread for the block."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        raise Interrupted(signum)

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def configure_nipype(crash_dir: Path, *, stop_on_first_crash: bool) -> None:
    """nipype's global execution settings for one run (content hashing, text crash files)."""
    from nipype import config as ncfg

    ncfg.update_config({
        "execution": {
            "crashdump_dir": str(crash_dir),
            "stop_on_first_crash": stop_on_first_crash,
            "crashfile_format": "txt",
            "hash_method": "content",
            "remove_unnecessary_outputs": False,
            "get_linked_libs": False,
            "check_version": False,
            "poll_sleep_duration": 0.2,
        },
        "monitoring": {"enabled": False},
    })


def quiet_nipype(verbose: int = 0) -> None:
    """nipype logs through the root handler only (no duplicates); node chatter unless -v."""
    for name in ("nipype", "nipype.workflow", "nipype.interface", "nipype.utils"):
        log = logging.getLogger(name)
        log.handlers.clear()
        log.propagate = True
        log.setLevel(logging.WARNING if verbose == 0 else logging.INFO)


class ProgressLogger:
    """nipype ``status_callback``: a line per finished segmentation, and failed subjects."""

    def __init__(self, names: Sequence[str], n_conditions: int = 1) -> None:
        self.names = list(names)
        self.total = max(1, len(self.names) * max(1, n_conditions))
        self.done = 0
        self.failed: set[str] = set()
        self.start = time.monotonic()
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()  # nipype pickles plugin args with every MapNode
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def subject_of(self, node: Any) -> str | None:
        fullname = getattr(node, "fullname", "") or ""
        return next((n for n in self.names if f".{n}." in f".{fullname}."), None)

    def __call__(self, node: Any, status: str) -> None:
        with self._lock:
            sub = self.subject_of(node)
            if status == "end" and getattr(node, "name", "") == "segment":
                self.done += 1
                elapsed = time.monotonic() - self.start
                eta = elapsed / self.done * (self.total - self.done)
                LOGGER.info("segmented %d/%d | %s | elapsed %.0fs, about %.0fs left",
                            self.done, self.total, sub or "-", elapsed, eta)
            elif status == "exception":
                if sub:
                    self.failed.add(sub)
                LOGGER.error("%s: step %s failed", sub or "-",
                             str(getattr(node, "fullname", node)).split(".", 2)[-1])


def _kill_workers(runner: Any) -> None:
    """Stop every worker process of a MultiProc plugin (and any other child) now."""
    pool = getattr(runner, "pool", None)
    if pool is not None:
        with contextlib.suppress(Exception):
            pool.shutdown(wait=False, cancel_futures=True)
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            with contextlib.suppress(Exception):
                proc.kill()
    for child in multiprocessing.active_children():
        with contextlib.suppress(Exception):
            child.kill()
            child.join(timeout=5)


def make_plugin(plugin: Mapping[str, Any] | None, callback: Any) -> Any:
    """A nipype plugin instance (so the runner can stop its workers on a signal)."""
    from nipype.pipeline import plugins

    spec = dict(plugin or {"plugin": "Linear", "plugin_args": {}})
    name = str(spec["plugin"])
    args = dict(spec.get("plugin_args") or {})
    if name in ("MultiProc", "Linear", "LegacyMultiProc"):
        args["status_callback"] = callback
    cls = getattr(plugins, f"{name}Plugin", None)
    if cls is None:
        raise ValueError(f"unknown nipype plugin {name!r}")
    return cls(plugin_args=args)


def run_graph(wf: Any, plugin: Mapping[str, Any] | None, callback: Any) -> str | None:
    """Run ``wf``; returns ``None`` or the first line of the error that stopped nipype.

    Raises :class:`Interrupted` after stopping every worker when a signal arrives.
    """
    runner = make_plugin(plugin, callback)
    try:
        with signals_raise():
            wf.run(plugin=runner)
    except Interrupted:
        _kill_workers(runner)
        raise
    except Exception as exc:  # Linear re-raises the node's own exception type
        text = str(exc).strip()
        return text.splitlines()[0] if text else type(exc).__name__
    return None


def distribute_crash_files(crash_dir: Path, destinations: Mapping[str, Path],
                           fallback: Path) -> None:
    """Move nipype crash files next to the subject they belong to (by workflow name)."""
    if not crash_dir.is_dir():
        return
    for crash in sorted(crash_dir.glob("crash-*")):
        text = crash.read_text(errors="replace")
        dest = next((d for n, d in destinations.items() if f".{n}." in text or f"{n}." in text),
                    fallback)
        try:
            dest.mkdir(parents=True, exist_ok=True)
            shutil.move(str(crash), dest / crash.name)
        except OSError as exc:  # e.g. the output disk is full: the crash file stays put
            with contextlib.suppress(OSError):
                (dest / crash.name).unlink()
            LOGGER.error("cannot move %s into %s (%s); it stays in the work folder", crash.name,
                         dest, exc.strerror)


# ----------------------------------------------------------------------- work-folder integrity
CHECKSUMS = "_outputs.sha256.json"


def scan_work_dir(root: Path) -> list[Path]:
    """Remove cached node folders that cannot be trusted; returns them.

    A node folder is dropped (so nipype recomputes it) when its ``result_*.pklz`` cannot be
    loaded or when a file our interfaces recorded in :data:`CHECKSUMS` changed since it was
    written (e.g. a mask zeroed on disk). Nothing cached is ever copied into OUT unchecked.
    """
    from nipype.utils.filemanip import loadpkl

    from bids_stroke.interfaces.checksums import verify_outputs

    dropped: list[Path] = []
    if not root.is_dir():
        return dropped
    for result in sorted(root.rglob("result_*.pklz")):
        node_dir = result.parent
        reason = None
        try:
            loadpkl(result)
        except Exception as exc:  # corrupt gzip, truncated pickle, missing class...
            reason = f"cached result unreadable ({type(exc).__name__})"
        if reason is None:
            reason = verify_outputs(node_dir)
        if reason is not None:
            LOGGER.warning("work folder: recomputing %s: %s", node_dir.relative_to(root),
                           reason)
            shutil.rmtree(node_dir, ignore_errors=True)
            dropped.append(node_dir)
    return dropped
