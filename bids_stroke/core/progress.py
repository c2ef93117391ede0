"""What a run prints: one log format, quiet third-party loggers, one progress bar.

Two parts, both free of nipype imports at module level (the runner imports nipype itself):

* :func:`setup_logging` configures the command line's logging once: every record goes to
  stderr as ``HH:MM:SS [bids_stroke] LEVEL: message`` (third-party records say where they come
  from), nipype's per-node chatter is off unless ``-v``, ``bidsschematools``/pybids INFO is
  silenced, and Python warnings (and the TemplateFlow stand-in warning, a log record) go
  through the same handler with the same prefix. Nodes run in nipype's MultiProc workers
  (``forkserver`` processes), which do not inherit the parent's logging: the settings travel
  in the environment (:data:`ENV_VERBOSITY`) and :mod:`bids_stroke.core._worker_logging`, preloaded
  by the forkserver, applies them there.
* :class:`ParticipantProgress` is a nipype ``status_callback`` counting finished
  segmentations over subjects x conditions, with elapsed time and ETA: a tqdm bar on a
  terminal, one log line every ``interval_s`` seconds or 10 % otherwise (SLURM logs), and a
  summary line at the end. It also records which subjects failed. Inside a long
  segmentation (an nnU-Net ensemble on the CPU takes minutes) the node reports its forward
  passes through a :class:`StepFile` in the work folder; the line then shows how far the
  running segmentation is, and the ETA comes from the measured time per forward pass until
  whole segmentations have been timed.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from typing import IO, Any, Literal

__all__ = [
    "ENV_VERBOSITY",
    "PREFIX",
    "UNIT_NODE",
    "ParticipantProgress",
    "StepFile",
    "configure_from_environment",
    "format_duration",
    "running_steps",
    "setup_logging",
]

PREFIX = "bids_stroke"
ENV_VERBOSITY = "BIDS_STROKE_VERBOSITY"
"""Environment variable carrying ``-v`` to nipype's worker processes."""

UNIT_NODE = "unet"
#: node whose end means a subject's outputs are written (metrics, report and commit done)
WRITE_NODE = "write_derivatives"
"""Name of the node whose end marks one subject x condition done (``segment_wf.unet``)."""

WORKER_LOGGING_MODULE = "bids_stroke.core._worker_logging"

#: third-party loggers and their level at verbosity 0, 1 and >= 2
_THIRD_PARTY: dict[str, tuple[int, int, int]] = {
    "nipype": (logging.WARNING, logging.INFO, logging.DEBUG),
    "nipype.workflow": (logging.WARNING, logging.INFO, logging.DEBUG),
    "nipype.interface": (logging.WARNING, logging.INFO, logging.DEBUG),
    "nipype.utils": (logging.WARNING, logging.INFO, logging.DEBUG),
    "nipype.filemanip": (logging.WARNING, logging.INFO, logging.DEBUG),
    "bidsschematools": (logging.WARNING, logging.WARNING, logging.DEBUG),
    "bids": (logging.WARNING, logging.WARNING, logging.DEBUG),
    "matplotlib": (logging.WARNING, logging.WARNING, logging.WARNING),
    "PIL": (logging.WARNING, logging.WARNING, logging.WARNING),
    "urllib3": (logging.WARNING, logging.WARNING, logging.DEBUG),
    "templateflow": (logging.WARNING, logging.INFO, logging.DEBUG),
}


class _Formatter(logging.Formatter):
    """``HH:MM:SS [bids_stroke] LEVEL: message``; other packages' records name their logger."""

    def __init__(self) -> None:
        super().__init__(fmt="%(asctime)s [" + PREFIX + "] %(levelname)s: %(message)s",
                         datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        name = record.name
        if name == PREFIX or name.startswith(PREFIX + ".") or name in ("root", "py.warnings"):
            return text
        head, sep, tail = text.partition(": ")
        return f"{head}{sep}{name}: {tail}" if sep else text


class _Handler(logging.StreamHandler[IO[str]]):
    """A stream handler that keeps a tqdm bar on the same stream at the bottom."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = self.format(record)
            stream = self.stream
            try:
                from tqdm import tqdm

                tqdm.write(msg, file=stream)
            except ImportError:  # pragma: no cover - tqdm is a dependency
                stream.write(msg + "\n")
            self.flush()
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


class _NodeTracebacks(logging.Filter):
    """nipype logs a failed node's traceback with its error: the terminal gets the first line
    (the crash file, named there, has the rest; ``-vv`` shows it all). After SIGTERM/SIGINT
    nipype's records about the node it was running are dropped: the run prints one line."""

    def __init__(self, full: bool) -> None:
        super().__init__()
        self.full = full

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("nipype"):
            return True
        from bids_stroke.core.interrupt import received

        if received() is not None:
            return False
        if not self.full:
            text = record.getMessage()
            if "\n" in text or record.exc_info:
                record.msg, record.args = text.split("\n", 1)[0], None
                record.exc_info = record.exc_text = None
        return True


def _showwarning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: IO[str] | None = None, line: str | None = None) -> None:
    """Python warnings as one log line: ``WARNING: UserWarning: text (file.py:12)``."""
    where = f"{os.path.basename(str(filename))}:{lineno}"
    text = str(message).strip().splitlines()
    first = text[0] if text else ""
    logging.getLogger("py.warnings").warning("%s: %s (%s)", category.__name__, first, where)


def _level(levels: tuple[int, int, int], verbose: int) -> int:
    return levels[min(max(verbose, 0), 2)]


def setup_logging(
    verbose: int = 0,
    *,
    stream: IO[str] | None = None,
    workers: bool = True,
) -> logging.Handler:
    """Configure logging for the command line (idempotent; replaces earlier handlers).

    Parameters
    ----------
    verbose : int
        Count of ``-v``: 0 our INFO and everyone's warnings; 1 adds our DEBUG and nipype's
        node messages; 2 or more is DEBUG everywhere.
    stream : file, optional
        Where records go (default ``sys.stderr`` at call time).
    workers : bool
        Also configure nipype's MultiProc workers: export :data:`ENV_VERBOSITY` and preload
        :mod:`bids_stroke.core._worker_logging` in the multiprocessing forkserver. Only effective
        before the forkserver starts (the CLI calls this first thing).

    Returns
    -------
    logging.Handler
        The handler installed on the root logger.
    """
    handler = _Handler(stream if stream is not None else sys.stderr)
    handler.setFormatter(_Formatter())
    handler.addFilter(_NodeTracebacks(full=verbose >= 2))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose >= 2 else logging.INFO)
    logging.getLogger(PREFIX).setLevel(logging.DEBUG if verbose >= 1 else logging.INFO)
    for name, levels in _THIRD_PARTY.items():
        log = logging.getLogger(name)
        log.handlers.clear()  # nipype and bidsschematools install their own stdout handlers
        log.propagate = True
        log.setLevel(_level(levels, verbose))
    logging.captureWarnings(False)
    warnings.showwarning = _showwarning
    if workers:  # the entry point exports ENV_VERBOSITY (see bids_stroke.cli.run.main)
        _preload_in_forkserver()
    return handler


def quiet_nipype(verbose: int = 0) -> None:
    """Re-apply the nipype logger levels (nipype resets them when a workflow starts)."""
    for name, levels in _THIRD_PARTY.items():
        if name.startswith("nipype"):
            log = logging.getLogger(name)
            log.handlers.clear()
            log.propagate = True
            log.setLevel(_level(levels, verbose))


def configure_from_environment() -> None:
    """In a worker process: the parent's :func:`setup_logging`, read from the environment."""
    value = os.environ.get(ENV_VERBOSITY)
    if value is None:
        return
    try:
        verbose = int(value)
    except ValueError:
        verbose = 0
    setup_logging(verbose, workers=False)
    try:  # nipype re-installs its stdout handler when imported after us
        from nipype import logging as nlogging  # noqa: F401
    except ImportError:  # pragma: no cover - nipype is a dependency
        return
    quiet_nipype(verbose)


def _preload_in_forkserver() -> None:
    try:
        ctx = multiprocessing.get_context("forkserver")
    except ValueError:  # pragma: no cover - platforms without forkserver
        return
    ctx.set_forkserver_preload(["__main__", WORKER_LOGGING_MODULE])


def format_duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


class StepFile:
    """``callback(done, total)`` of a running prediction, written for the command's progress
    line: a small JSON file (``pid``, ``done``, ``total``, ``started``, ``updated``; wall
    seconds), replaced atomically at most once per ``min_interval_s`` (and at the first and
    last step). :meth:`remove` when the prediction ends."""

    def __init__(self, path: str | os.PathLike[str], *, min_interval_s: float = 1.0) -> None:
        self.path = os.fspath(path)
        self.min_interval_s = float(min_interval_s)
        self._started: float | None = None
        self._last = -math.inf

    def __call__(self, done: int, total: int | None) -> None:
        now = time.time()
        if self._started is None or done == 0:
            self._started = now
        if done not in (0, total) and now - self._last < self.min_interval_s:
            return
        self._last = now
        import json

        from bids_stroke.core.atomic import atomic_write_text

        atomic_write_text(self.path, json.dumps(
            {"pid": os.getpid(), "done": int(done), "total": total, "started": self._started,
             "updated": now}))

    def remove(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def _alive(pid: Any) -> bool:
    """Whether process ``pid`` (a step file's JSON value, any type) is running."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, TypeError, ValueError, OverflowError):
        return isinstance(pid, int)
    return True


def running_steps(folder: str | os.PathLike[str] | None) -> list[dict[str, Any]]:
    """The :class:`StepFile` records in ``folder`` of predictions still running (their
    process alive), with a known ``total``."""
    if folder is None or not os.path.isdir(folder):
        return []
    import json

    out = []
    for entry in os.scandir(folder):
        if not entry.name.endswith(".json"):
            continue
        try:
            with open(entry.path) as fh:
                rec = json.load(fh)
        except (OSError, ValueError):
            continue  # being replaced, or removed
        if (isinstance(rec, dict) and isinstance(rec.get("total"), int) and rec["total"] > 0
                and _alive(rec.get("pid"))):
            out.append(rec)
    return out


Mode = Literal["auto", "bar", "lines", "off"]


class ParticipantProgress:
    """nipype ``status_callback``: finished segmentations over subjects x conditions.

    One *unit* is one subject x condition; it is done when that subject's node named
    :data:`UNIT_NODE` (``unet``, the U-Net inference of ``segment_wf``, expanded once per
    condition by the ``condition_source`` iterables) ends, cached or computed. A subject
    belongs to a node when its workflow name (e.g. ``single_subject_r001s001_ses_1_wf``) is a
    dot-separated component of the node's ``fullname``. Any node ending in ``"exception"``
    marks its subject failed (:attr:`failed`); a failed subject's remaining units count as
    finished so the bar reaches its end.

    Parameters
    ----------
    subject_names : sequence of str
        Workflow names of the subjects (``subject_wf_name``).
    n_conditions : int
        Conditions per subject.
    stream : file, optional
        Terminal of the bar (default ``sys.stderr`` at first use). When it is not a terminal
        the progress goes to the ``bids_stroke.progress`` logger as one line every
        ``interval_s`` seconds, at every 10 % and at the end.
    interval_s : float
        Seconds between two lines (lines mode); also the keep-alive of a silent stretch.
    mode : {"auto", "bar", "lines", "off"}
        ``auto``: a bar on a terminal, lines otherwise; ``off`` counts without printing.
    unit_node : str
        Node name that counts (default :data:`UNIT_NODE`).
    steps_dir : path, optional
        Folder where running segmentations write their :class:`StepFile`: their forward
        passes are shown and time the ETA before a whole segmentation has.

    The first callback starts the clock, the bar or the keep-alive thread (or call
    :meth:`start`); use it as a context manager around ``wf.run`` so that :meth:`close` stops
    the thread and logs the summary (nothing when it never started: plugins without
    ``status_callback`` support, e.g. SLURM, leave it silent instead of showing 0 %).
    Picklable: nipype stores ``plugin_args`` (this object) on MapNodes and pickles them; the
    copy has no stream, bar, lock or thread and is never called.
    """

    def __init__(
        self,
        subject_names: Sequence[str],
        n_conditions: int,
        *,
        stream: IO[str] | None = None,
        interval_s: float = 30.0,
        mode: Mode = "auto",
        unit_node: str = UNIT_NODE,
        steps_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if n_conditions < 1:
            raise ValueError(f"n_conditions must be >= 1, got {n_conditions}")
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        self.names = list(subject_names)
        self.n_conditions = int(n_conditions)
        self.total = len(self.names) * self.n_conditions
        self.interval_s = float(interval_s)
        self.unit_node = unit_node
        self.steps_dir = None if steps_dir is None else os.fspath(steps_dir)
        self.failed: set[str] = set()
        self.done_units: dict[str, set[str]] = {name: set() for name in self.names}
        self.cached = 0
        #: subjects whose outputs were written in this run, and those cached before it
        self.written: set[str] = set()
        self.cached_subjects: set[str] = set()
        self._started_nodes: dict[str, tuple[int, int] | None] = {}
        self._stream = stream
        self._mode: Mode = mode
        self._t0: float | None = None
        self._last_line = -math.inf
        self._last_decile = -1
        self._bar: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.RLock()
        self._closed = False
        self._log = logging.getLogger(f"{PREFIX}.progress")

    # ----------------------------------------------------------------- pickling
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in ("_stream", "_bar", "_thread", "_stop", "_lock", "_log"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._stream = None
        self._bar = None
        self._thread = None
        self._stop = threading.Event()
        self._lock = threading.RLock()
        self._log = logging.getLogger(f"{PREFIX}.progress")

    # ----------------------------------------------------------------- counting
    def subject_of(self, node: Any) -> str | None:
        """Workflow name of the subject ``node`` belongs to, or None."""
        parts = (getattr(node, "fullname", "") or "").split(".")
        return next((name for name in self.names if name in parts), None)

    @staticmethod
    def _node_name(node: Any) -> str:
        return getattr(node, "name", None) or (getattr(node, "fullname", "") or "").split(".")[-1]

    def _is_unit(self, node: Any) -> bool:
        return self._node_name(node) == self.unit_node

    @staticmethod
    def _key(node: Any) -> str:
        return str(getattr(node, "itername", None) or getattr(node, "fullname", "") or id(node))

    @property
    def completed(self) -> int:
        """Units finished: segmented, plus the remaining ones of failed subjects."""
        return sum(
            self.n_conditions if name in self.failed
            else min(len(units), self.n_conditions)
            for name, units in self.done_units.items()
        )

    @property
    def segmented(self) -> int:
        """Segmentations that ended (cached or computed)."""
        return sum(min(len(u), self.n_conditions) for u in self.done_units.values())

    def mark_cached(self, name: str) -> None:
        """Count every unit of subject ``name`` as done from a cache (nothing to run)."""
        with self._lock:
            units = self.done_units.setdefault(name, set())
            new = {f"{name}.cached{i}" for i in range(self.n_conditions)} - units
            units |= new
            self.cached += len(new)
            self.cached_subjects.add(name)

    @staticmethod
    def _result_stamp(node: Any) -> tuple[int, int] | None:
        """(mtime ns, inode) of a node's result file; ``None`` when it has none (yet)."""
        try:
            st = os.stat(os.path.join(node.output_dir(), f"result_{node.name}.pklz"))
        except (AttributeError, OSError, TypeError):
            return None
        return st.st_mtime_ns, st.st_ino

    def __call__(self, node: Any, status: str) -> None:
        """The nipype callback: ``status`` is ``start``, ``end`` or ``exception``."""
        self.start()
        with self._lock:
            key = self._key(node)
            sub = self.subject_of(node)
            if status == "start":
                # nipype's Linear plugin reports a cached node as started too: a node ran
                # when its result file changed between its start and its end
                self._started_nodes[key] = (self._result_stamp(node)
                                            if self._is_unit(node) else None)
                return
            if status == "exception":
                from bids_stroke.core.interrupt import received

                if received() is not None:
                    return  # the node was cut by SIGTERM/SIGINT: not a failure
                if sub is not None and sub not in self.failed:
                    self.failed.add(sub)
                    self._log.error("%s: node %s failed", sub,
                                    getattr(node, "fullname", node))
                self._update()
                return
            if status != "end":
                return
            computed = key in self._started_nodes and (
                not self._is_unit(node) or self._started_nodes[key] is None
                or self._result_stamp(node) != self._started_nodes[key])
            self._log.debug("finished %s%s", getattr(node, "fullname", node),
                            "" if computed else " (cached)")
            if sub is not None and self._node_name(node) == WRITE_NODE:
                self.written.add(sub)
                self._update()
                return
            if sub is None or not self._is_unit(node):
                return
            if key not in self.done_units[sub]:
                self.done_units[sub].add(key)
                if not computed:
                    self.cached += 1
            self._update()

    # ----------------------------------------------------------------- display
    def _resolved_mode(self) -> Mode:
        if self._mode != "auto":
            return self._mode
        stream = self._stream if self._stream is not None else sys.stderr
        try:
            return "bar" if stream.isatty() else "lines"
        except (AttributeError, ValueError):
            return "lines"

    def elapsed(self) -> float:
        return 0.0 if self._t0 is None else time.monotonic() - self._t0

    def running(self) -> list[dict[str, Any]]:
        """The forward-pass records of the segmentations running now (see :class:`StepFile`)."""
        return running_steps(self.steps_dir)

    def _steps(self) -> tuple[int, int]:
        """``(computed, remaining)`` steps of this run: a step is one segmentation or the
        writing of one subject's outputs (metrics, report, commit), which costs about as
        much as one segmentation; cached steps and failed subjects are not work."""
        computed = self.segmented - self.cached + len(self.written)
        remaining = sum(
            max(0, self.n_conditions - len(units)) + (name not in self.written)
            for name, units in self.done_units.items()
            if name not in self.failed and name not in self.cached_subjects)
        return computed, remaining

    def _pending_writes(self) -> int:
        """Subjects of this run whose outputs are still to be written."""
        return sum(1 for name in self.done_units if name not in self.written
                   and name not in self.failed and name not in self.cached_subjects)

    def eta(self, running: Sequence[dict[str, Any]] | None = None) -> float:
        """Seconds left, from the rate of the steps computed so far (see :meth:`_steps`,
        writing outputs included), each running segmentation counted by its share of forward
        passes done; before any step ended, from the measured time per forward pass of the
        running ones. NaN when nothing was measured yet."""
        running = self.running() if running is None else running
        partial = sum(min(r["done"] / r["total"], 1.0) for r in running)
        computed, remaining = self._steps()
        remaining -= partial
        if remaining <= 0:
            return 0.0
        if computed > 0:
            eta: float = remaining * self.elapsed() / (computed + partial)
            return eta
        timed = [r for r in running if r["done"] > 0 and r["updated"] > r["started"]]
        if not timed:
            return math.nan
        per_pass = [(r["updated"] - r["started"]) / r["done"] for r in timed]
        # the running ones end together at the latest; the others follow, as many at a time
        left_now = max((r["total"] - min(r["done"], r["total"])) * t
                       for r, t in zip(timed, per_pass, strict=True))
        per_unit = sum(r["total"] * t for r, t in zip(timed, per_pass, strict=True)) / len(timed)
        # only segmentations can be timed by their forward passes: writing steps are not
        # counted until one has been measured
        untouched = (remaining - self._pending_writes()
                     - sum(1 - min(r["done"] / r["total"], 1.0) for r in timed))
        eta = left_now + max(untouched, 0.0) * per_unit / len(timed)
        return eta

    def _eta_text(self, running: Sequence[dict[str, Any]] = ()) -> str:
        eta = f"ETA {format_duration(self.eta(running))}"
        if self.completed >= self.total:  # metrics, reports and commits follow the last unit
            return "writing outputs" + (f", {eta}" if self._steps()[1] else "")
        return eta

    @staticmethod
    def _running_text(running: Sequence[dict[str, Any]]) -> str:
        if not running:
            return ""
        done = sum(min(r["done"], r["total"]) for r in running)
        total = sum(r["total"] for r in running)
        return (f" (running: {done}/{total} forward passes"
                + (f" of {len(running)} segmentations" if len(running) > 1 else "") + ")")

    def status_text(self) -> str:
        """``3/8 segmentations (38%) (running: 45/120 forward passes), elapsed 2m05s,
        ETA 3m20s, 1 subject failed``."""
        running = self.running() if self.completed < self.total else []
        pct = 100.0 * self.completed / self.total if self.total else 100.0
        text = (f"{self.completed}/{self.total} segmentations ({pct:.0f}%)"
                f"{self._running_text(running)}, elapsed {format_duration(self.elapsed())}, "
                f"{self._eta_text(running)}")
        if self.failed:
            text += f", {len(self.failed)} subject(s) failed"
        return text

    def start(self) -> ParticipantProgress:
        """Start the clock (and the bar or keep-alive thread); idempotent."""
        with self._lock:
            if self._t0 is not None:
                return self
            self._t0 = time.monotonic()
            mode = self._resolved_mode()
            if mode == "bar":
                from tqdm import tqdm

                self._bar = tqdm(
                    total=self.total,
                    desc="participant",
                    unit="seg",
                    file=self._stream if self._stream is not None else sys.stderr,
                    bar_format="{desc}: {percentage:3.0f}%|{bar}| {n}/{total} segmentations "
                    "[{elapsed}{postfix}]",
                    dynamic_ncols=True,
                )
                self._bar.set_postfix_str("ETA ?", refresh=True)
            elif mode == "lines":
                self._log.info("Progress: %d/%d segmentations (%d subject(s) x %d condition(s)%s)",
                               self.completed, self.total, len(self.names), self.n_conditions,
                               f", {self.cached} cached" if self.cached else "")
                self._last_line = time.monotonic()
                self._last_decile = 0
            if mode != "off":
                self._thread = threading.Thread(target=self._tick, name="bids_stroke-progress",
                                                daemon=True)
                self._thread.start()
        return self

    def _tick(self) -> None:
        period = 1.0 if self._bar is not None else min(self.interval_s, 5.0)
        while not self._stop.wait(period):
            with self._lock:
                if self._closed:
                    return
                self._update(tick=True)

    def _update(self, tick: bool = False) -> None:
        if self._bar is not None:
            self._bar.n = self.completed
            running = self.running() if self.completed < self.total else []
            extra = f", {len(self.failed)} failed" if self.failed else ""
            self._bar.set_postfix_str(f"{self._eta_text(running)}{extra}"
                                      f"{self._running_text(running)}", refresh=True)
            return
        if self._resolved_mode() != "lines" or self._t0 is None:
            return
        now = time.monotonic()
        decile = (10 * self.completed) // self.total if self.total else 10
        due = now - self._last_line >= self.interval_s
        if (decile > self._last_decile and self.completed < self.total) or due:
            self._last_decile = max(decile, self._last_decile)
            self._last_line = now
            self._log.info("Progress: %s", self.status_text())

    def close(self) -> None:
        """Stop the keep-alive thread, close the bar, log the summary line (once)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop.set()
            if self._bar is not None:
                self._bar.n = self.completed
                self._bar.set_postfix_str("done", refresh=True)
                self._bar.close()
                self._bar = None
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        from bids_stroke.core.interrupt import received

        if self._t0 is None or self._resolved_mode() == "off" or received() is not None:
            return  # interrupted: the run's one line says so
        ok = len(self.names) - len(self.failed)
        self._log.info(
            "Progress summary: %d/%d segmentations in %s (%d cached); %d/%d subject(s) ok%s",
            self.segmented, self.total, format_duration(self.elapsed()), self.cached,
            ok, len(self.names),
            f", failed: {', '.join(sorted(self.failed))}" if self.failed else "",
        )

    def __enter__(self) -> ParticipantProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
