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
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from bids_stroke.core import interrupt
from bids_stroke.core.atomic import atomic_write_text
from bids_stroke.core.interrupt import Interrupted

__all__ = ["Interrupted", "configure_nipype", "distribute_crash_files", "make_plugin",
           "run_graph", "scan_work_dir", "signals_raise"]

LOGGER = logging.getLogger("bids_stroke.runner")


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """SIGTERM and SIGINT become :class:`Interrupted` for the block (unless an enclosing
    block, the command line's, already handles them: :func:`bids_stroke.core.interrupt.handled`)."""
    with interrupt.handled():
        yield


def configure_nipype(crash_dir: Path, *, stop_on_first_crash: bool) -> None:
    """nipype's global execution settings for one run (text crash files, hashing).

    Files are hashed by size and time stamp, not read again: every file of the work folder
    was written by a step that recorded its sha256 (:data:`CHECKSUMS`), checked by
    :func:`scan_work_dir` before each run, and the input files' sha256 are recorded and
    checked by :func:`check_inputs`, so a changed file is still seen (reading each
    intermediate again cost ~6 s per 1 mm subject).
    """
    from nipype import config as ncfg

    ncfg.update_config({
        "execution": {
            "crashdump_dir": str(crash_dir),
            "stop_on_first_crash": stop_on_first_crash,
            "crashfile_format": "txt",
            "hash_method": "timestamp",
            "remove_unnecessary_outputs": False,
            "get_linked_libs": False,
            "check_version": False,
            "poll_sleep_duration": 0.2,
        },
        "monitoring": {"enabled": False},
    })


def _kill_workers(runner: Any) -> None:
    """Stop every worker process of a MultiProc plugin (and any other child) now."""
    # the pool's pending futures then fail with BrokenProcessPool, which concurrent.futures
    # logs with a traceback from its callback thread: expected here, not an error to show
    logging.getLogger("concurrent.futures").disabled = True
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


class _Checking:
    """A status callback that stops the run at the next node boundary once a signal arrived
    (nipype turns an exception raised inside a node, :class:`Interrupted` included, into a
    failed node and goes on with the next one). Picklable: nipype pickles nodes with it."""

    def __init__(self, callback: Any) -> None:
        self.callback = callback

    def __call__(self, node: Any, status: str, *args: Any, **kwargs: Any) -> None:
        if self.callback is not None:
            self.callback(node, status, *args, **kwargs)
        interrupt.check()


def run_graph(wf: Any, plugin: Mapping[str, Any] | None, callback: Any) -> str | None:
    """Run ``wf``; returns ``None`` or the error that stopped nipype (its full text).

    Raises :class:`Interrupted` after stopping every worker when a signal arrives.
    """
    runner = make_plugin(plugin, _Checking(callback))
    try:
        with signals_raise():
            try:
                wf.run(plugin=runner)
            finally:
                interrupt.check()  # a signal swallowed by nipype still stops the run
    except Interrupted:
        _kill_workers(runner)
        raise
    except Exception as exc:  # Linear re-raises the node's own exception type
        text = str(exc).strip()
        return text or type(exc).__name__
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
#: an input's record of its input files (path -> sha256, size, mtime) in its work folder
INPUTS = "_inputs.sha256.json"


def check_inputs(folder: Path, digests: Mapping[str, Mapping[str, Any]]) -> str | None:
    """Drop ``folder`` (an input's node folders) when one of its input files changed while
    keeping its size and time stamp (what timestamp hashing cannot see); record ``digests``
    (role -> path, sha256, size, mtime_ns) for the next run. Returns the reason it was
    dropped, else ``None``.
    """
    import json

    record = folder / INPUTS
    reason = None
    try:
        before = json.loads(record.read_text()) if record.is_file() else {}
    except (OSError, ValueError):
        before, reason = {}, "its record of the input files is unreadable"
    for role, now in digests.items():
        old = before.get(role)
        if (reason is None and isinstance(old, Mapping) and old.get("path") == now["path"]
                and (old.get("size"), old.get("mtime_ns")) == (now["size"], now["mtime_ns"])
                and old.get("sha256") != now["sha256"]):
            reason = f"{now['path']} changed without a new size or time stamp"
    if reason is not None and folder.is_dir():
        LOGGER.warning("work folder: recomputing %s: %s", folder.name, reason)
        shutil.rmtree(folder, ignore_errors=True)
    if digests:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(record, json.dumps(dict(digests), indent=1, sort_keys=True) + "\n")
    return reason


def scan_work_dir(root: Path) -> list[Path]:
    """Remove cached node folders that cannot be trusted, and every node downstream of them;
    returns them.

    A node folder is dropped (so nipype recomputes it) when its ``result_*.pklz`` cannot be
    loaded, when a file our interfaces recorded in :data:`CHECKSUMS` changed since it was
    written (e.g. a mask zeroed on disk), when one of our interfaces left no record (deleted:
    a partial cache) or when an output file its result names is missing. Then the chain is
    invalidated as a whole: a MapNode whose sub-node was dropped, and every node whose inputs
    (its hash file) name a file of a dropped folder, are dropped too, so no cached node is
    ever given a recomputed or missing input. Nothing cached is copied into OUT unchecked.
    """
    from nipype.utils.filemanip import loadpkl

    from bids_stroke.interfaces.checksums import verify_outputs

    dropped: list[Path] = []
    if not root.is_dir():
        return dropped

    def drop(node_dir: Path, reason: str) -> None:
        LOGGER.warning("work folder: recomputing %s: %s", node_dir.relative_to(root), reason)
        shutil.rmtree(node_dir, ignore_errors=True)
        dropped.append(node_dir)

    for result in sorted(root.rglob("result_*.pklz")):
        node_dir = result.parent
        if any(node_dir.is_relative_to(d) for d in dropped) or not result.exists():
            continue
        try:
            reason = verify_outputs(node_dir) or _incomplete(loadpkl(result), node_dir)
        except Exception as exc:  # corrupt gzip, truncated pickle, missing class...
            reason = f"cached result unreadable ({type(exc).__name__})"
        if reason is not None:
            drop(node_dir, reason)
    changed = bool(dropped)
    while changed:  # downstream of what was dropped, until nothing more is
        changed = False
        for node_dir in _node_dirs(root):
            if any(node_dir.is_relative_to(d) for d in dropped):
                continue
            why = _depends_on(node_dir, dropped)
            if why is not None:
                drop(node_dir, why)
                changed = True
    return dropped


def _node_dirs(root: Path) -> list[Path]:
    """Node folders of the work folder (they hold a ``_0x<hash>.json`` hash file)."""
    return sorted({p.parent for p in root.rglob("_0x*.json")})


def _depends_on(node_dir: Path, dropped: list[Path]) -> str | None:
    """Why ``node_dir`` must be recomputed with the ``dropped`` folders, or ``None``."""
    for d in dropped:
        if d.parent.name == "mapflow" and d.parent.parent == node_dir:
            return f"its sub-node {d.name} is recomputed"
    for hashfile in node_dir.glob("_0x*.json"):
        try:
            text = hashfile.read_text(errors="replace")
        except OSError:
            return "its hash file is unreadable"
        for d in dropped:
            if f"{d}{os.sep}" in text:
                return f"an input comes from {d.name}, which is recomputed"
    return None


def _incomplete(result: Any, node_dir: Path) -> str | None:
    """What is missing from a cached node (our checksum record, an output file)."""
    from bids_stroke.interfaces.checksums import CHECKSUMS as RECORD
    from bids_stroke.interfaces.checksums import ChecksummedInterface, output_paths

    iface = getattr(result, "interface", None)
    if (isinstance(iface, type) and issubclass(iface, ChecksummedInterface)
            and getattr(getattr(result, "runtime", None), "traceback", None) is None
            and not (node_dir / RECORD).is_file()):
        return f"its checksum record {RECORD} is missing"
    outputs = getattr(result, "outputs", None)
    try:  # a TraitedSpec, or a Bunch for a MapNode
        values = ({} if outputs is None else outputs.dictcopy() if hasattr(outputs, "dictcopy")
                  else outputs.get())
    except Exception:  # an outputs object nipype cannot read back
        return "its outputs cannot be read"
    for name in output_paths(values):
        path = Path(name)
        if path.is_absolute() and path.is_relative_to(node_dir) and not path.exists():
            return f"{path.name} is missing"
    return None


def prune_work_dir(folder: Path, keep: tuple[str, ...] = ()) -> list[Path]:
    """Remove a committed input's node folders from the work folder, except ``keep``.

    A resume never needs them: a committed input whose inputs, settings and model are
    unchanged is not run again (its manifest is verified instead), and a changed one
    recomputes what changed. ``keep`` names sub-workflows worth reusing when only the
    conditions or the scoring change (the registration). Returns what was removed.
    """
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for child in sorted(folder.iterdir()):
        if child.name in keep:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                child.unlink()
        removed.append(child)
    return removed
