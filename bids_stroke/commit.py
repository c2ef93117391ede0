"""All-or-nothing commits of one subject's outputs, and reading only committed subjects.

Layout (inside the derivatives folder ``OUT``)::

    OUT/.bids_stroke/locks/<key>.lock        held (flock) by the run working on a subject
    OUT/.bids_stroke/staging/<key>.<run>.<n>/ the new files, complete, before they move
    OUT/.bids_stroke/journal/<key>.json      a commit in progress (its moves + new manifest)
    OUT/.bids_stroke/subjects/<key>.json     the manifest: every file of the subject with its
                                             sha256, and what produced each condition

Protocol (:func:`commit_subject`, under the subject's lock):

1. **stage** every new file (copies, gzip where asked, merged tables) in a staging folder;
2. write the **journal** (atomic): the list of moves and deletions and the new manifest;
3. **move** each staged file to its final name (``os.replace``), then delete what the journal
   lists (files of conditions removed by ``--clean``);
4. write the **manifest** (atomic) — this is the commit point for readers;
5. remove the journal, then the staging folder.

A crash before (2) leaves the subject exactly as it was (the staging folder is garbage,
removed by the next run). A crash after (2) is finished by :func:`recover` — called by the next
participant run on that subject and by ``group`` when no live run holds the lock — which
replays the remaining moves: the subject becomes exactly the new state. ``group`` reads a
subject only through its manifest and checks the checksum of every table it reads, so it
never sees a mix (:func:`committed_subjects`).

Re-runs accumulate: a subject's committed conditions are kept unless the new run produces the
same condition (then exactly that condition's files and rows are replaced) or ``--clean``
removes it (listed in the log). Conditions made with another model or other result-changing
settings are never silently mixed with new ones (:func:`plan_conditions`).

Tests arm a fault-injection hook with ``BIDS_STROKE_FAULT=<step>`` (see :data:`STEPS`): the
process kills itself (SIGKILL) right after that step. Pure module (no nipype).
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import os
import shutil
import signal
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bids_stroke.atomic import atomic_write_json, fsync_dir
from bids_stroke.digest import file_sha256

FORMAT = "bids_stroke-subject-manifest"
FORMAT_VERSION = 1
STATE_DIR = ".bids_stroke"
#: commit steps after which the fault hook can kill the process (``move`` fires per file)
STEPS = ("staged", "journal", "move", "deleted", "manifest", "done")


class CommitError(RuntimeError):
    """A commit cannot be made or recovered (one-line message naming the subject)."""


# ----------------------------------------------------------------------------- paths
def state_dir(out: Path) -> Path:
    return Path(out) / STATE_DIR


def manifest_path(out: Path, key: str) -> Path:
    return state_dir(out) / "subjects" / f"{key}.json"


def journal_path(out: Path, key: str) -> Path:
    return state_dir(out) / "journal" / f"{key}.json"


def lock_path(out: Path, key: str) -> Path:
    return state_dir(out) / "locks" / f"{key}.lock"


def staging_root(out: Path) -> Path:
    return state_dir(out) / "staging"


# ----------------------------------------------------------------------------- data
@dataclass(frozen=True)
class PlannedFile:
    """One output file: its final path relative to OUT and where its content comes from.

    Exactly one of ``source`` (a file, gzip-compressed while staging when ``compress``) and
    ``content`` (bytes) is set. ``conditions`` names the condition labels the file belongs to
    (empty: shared by the subject, e.g. the preprocessed image).
    """

    rel: str
    source: str | None = None
    content: bytes | None = None
    conditions: tuple[str, ...] = ()
    compress: bool = False

    def __post_init__(self) -> None:
        if (self.source is None) == (self.content is None):
            raise ValueError(f"{self.rel}: give exactly one of source and content")
        if Path(self.rel).is_absolute() or ".." in Path(self.rel).parts:
            raise ValueError(f"{self.rel}: output paths are relative to OUT, without '..'")


@dataclass(frozen=True)
class PlannedTable:
    """A TSV whose rows are keyed by ``key_column`` (the condition label): the committed
    table's rows of other conditions are kept, rows of the new conditions replace them."""

    rel: str
    source: str
    key_column: str = "desc"


@dataclass(frozen=True)
class ConditionRecord:
    """What produced one committed condition of a subject."""

    label: str
    spec: str
    model_sha256: str
    results_key: str
    run_uuid: str

    def same_origin(self, other: ConditionRecord) -> bool:
        return (self.model_sha256, self.results_key) == (other.model_sha256, other.results_key)


@dataclass(frozen=True)
class Manifest:
    """A committed subject (see the module docstring)."""

    key: str
    files: Mapping[str, Mapping[str, Any]]
    conditions: Mapping[str, ConditionRecord]
    tables: Mapping[str, str] = field(default_factory=dict)
    run_uuid: str = ""
    committed: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "format_version": FORMAT_VERSION, "key": self.key,
            "run_uuid": self.run_uuid, "committed": self.committed,
            "files": {k: dict(v) for k, v in sorted(self.files.items())},
            "conditions": {k: vars(v) for k, v in self.conditions.items()},
            "tables": dict(self.tables), "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        if data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION:
            raise ValueError("not a bids_stroke subject manifest of a known version")
        return cls(
            key=str(data["key"]),
            files={str(k): dict(v) for k, v in data["files"].items()},
            conditions={str(k): ConditionRecord(**v) for k, v in data["conditions"].items()},
            tables={str(k): str(v) for k, v in data.get("tables", {}).items()},
            run_uuid=str(data.get("run_uuid", "")),
            committed=str(data.get("committed", "")),
            extra=dict(data.get("extra", {})),
        )


def read_manifest(out: Path, key: str) -> Manifest | None:
    """The committed manifest of ``key`` (``None`` when the subject was never committed)."""
    path = manifest_path(out, key)
    if not path.is_file():
        return None
    try:
        return Manifest.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CommitError(f"{path}: unreadable manifest ({exc}); remove the subject's "
                          "outputs and re-run it") from exc


# ----------------------------------------------------------------------------- fault hook
def _fault(step: str) -> None:
    """Kill this process right after ``step`` when the tests armed ``BIDS_STROKE_FAULT``."""
    armed = os.environ.get("BIDS_STROKE_FAULT")
    if armed and armed == step:
        os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the block ends (a commit is never cut by a signal)."""
    sigs = {signal.SIGINT, signal.SIGTERM}
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    except (ValueError, OSError):  # not the main thread of the interpreter
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


# ----------------------------------------------------------------------------- tables
def read_table(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows (cells kept as text, exactly as written)."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t")
        rows = list(reader)
    if not rows:
        return [], []
    header = rows[0]
    return header, [dict(zip(header, r, strict=False)) for r in rows[1:] if r]


def merge_table(new: Path, old: Path | None, key_column: str, drop: Iterable[str]) -> bytes:
    """``new``'s header and rows, preceded by ``old``'s rows whose key is neither in ``new``
    nor in ``drop`` (cells of columns an old row lacks are ``n/a``)."""
    header, rows = read_table(new)
    if key_column not in header:
        raise CommitError(f"{new}: no {key_column!r} column to merge on")
    kept: list[dict[str, str]] = []
    if old is not None and old.is_file():
        replaced = {r[key_column] for r in rows} | set(drop)
        _, old_rows = read_table(old)
        kept = [r for r in old_rows if r.get(key_column) not in replaced]
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n")
    writer.writerow(header)
    for row in [*kept, *rows]:
        writer.writerow([row.get(c, "n/a") for c in header])
    return buf.getvalue().encode("utf-8")


# ----------------------------------------------------------------------------- planning
@dataclass(frozen=True)
class ConditionPlan:
    """Which committed conditions a new run keeps, replaces and removes."""

    keep: tuple[str, ...]
    replace: tuple[str, ...]
    remove: tuple[str, ...]


def plan_conditions(previous: Manifest | None, new: Sequence[ConditionRecord], *,
                    clean: bool) -> ConditionPlan:
    """Decide what happens to a subject's committed conditions.

    Raises :class:`CommitError` when keeping a committed condition would mix results of
    another model or other settings with the new ones (the fix: ``--clean`` or another OUT).
    """
    if previous is None:
        return ConditionPlan((), (), ())
    new_labels = {c.label for c in new}
    old = previous.conditions
    replace = tuple(sorted(set(old) & new_labels))
    others = sorted(set(old) - new_labels)
    if clean:
        return ConditionPlan((), replace, tuple(others))
    mixed = [lab for lab in others if new and not old[lab].same_origin(new[0])]
    if mixed:
        raise CommitError(
            f"{previous.key}: committed condition(s) {', '.join(mixed)} were made with another "
            "model or other settings; re-run with --clean to replace them, or write to "
            "another output folder")
    return ConditionPlan(tuple(others), replace, ())


# ----------------------------------------------------------------------------- commit
def _stage(out: Path, key: str, run_uuid: str, files: Sequence[PlannedFile],
           tables: Sequence[PlannedTable], previous: Manifest | None,
           drop: Sequence[str]) -> tuple[Path, dict[str, dict[str, Any]]]:
    staging = staging_root(out) / f"{key}.{run_uuid}.{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    try:
        return staging, _fill(staging, out, files, tables, previous, drop)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # e.g. a full disk: leave nothing behind
        raise


#: gzip level of the NIfTI outputs: nibabel's own default. On a 1 mm float32 probability
#: map level 1 took 0.31 s against 1.37 s at level 6 for a 28 % larger file (2026-12-04):
#: compression was most of a subject's commit time.
GZIP_LEVEL = 1


def _fill(staging: Path, out: Path, files: Sequence[PlannedFile],
          tables: Sequence[PlannedTable], previous: Manifest | None,
          drop: Sequence[str]) -> dict[str, dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {}

    def put(rel: str, data: bytes | None, source: str | None, compress: bool,
            conditions: Sequence[str]) -> None:
        dst = staging / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if data is not None:
            dst.write_bytes(data)
        elif compress:
            with open(source, "rb") as inp, open(dst, "wb") as raw, \
                    gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                  compresslevel=GZIP_LEVEL) as gz:
                shutil.copyfileobj(inp, gz, 1 << 20)
        else:
            shutil.copyfile(source, dst)
        os.chmod(dst, 0o644)
        with open(dst, "rb") as fh:
            os.fsync(fh.fileno())
        entries[rel] = {"sha256": file_sha256(dst), "size": dst.stat().st_size,
                        "conditions": sorted(conditions)}

    for f in files:
        put(f.rel, f.content, f.source, f.compress, f.conditions)
    for t in tables:
        old = out / t.rel if previous is not None and t.rel in previous.files else None
        put(t.rel, merge_table(Path(t.source), old, t.key_column, drop), None, False, ())
    return entries


def table_kind(rel: str) -> str:
    """``segmetrics`` / ``lesions``: the suffix of a table's name (the manifest's key)."""
    return Path(rel).name.rsplit("_", 1)[-1].split(".")[0]


def _renamed_tables(previous: Manifest, tables: Sequence[PlannedTable]) -> list[str]:
    """Committed tables (and their JSON sidecars) that a new table of the same kind replaces
    under another name (results scored against another reference, after ``--clean``)."""
    new = {table_kind(t.rel): t.rel for t in tables}
    out = []
    for kind, rel in previous.tables.items():
        if kind in new and new[kind] != rel:
            side = rel[: -len(".tsv")] + ".json" if rel.endswith(".tsv") else None
            out += [r for r in (rel, side) if r is not None and r in previous.files]
    return out


def commit_subject(
    out: Path,
    key: str,
    *,
    files: Sequence[PlannedFile],
    tables: Sequence[PlannedTable] = (),
    conditions: Sequence[ConditionRecord],
    plan: ConditionPlan,
    run_uuid: str,
    extra: Mapping[str, Any] | None = None,
) -> tuple[Manifest, list[str]]:
    """Commit a subject's new outputs (see the module docstring); the caller holds its lock.

    Returns the new manifest and the files the commit removed (listed by the caller).
    """
    out = Path(out)
    recover(out, key)
    previous = read_manifest(out, key)
    with _signals_deferred():
        staging, entries = _stage(out, key, run_uuid, files, tables, previous, plan.remove)
        _fault("staged")
        files_now: dict[str, dict[str, Any]] = {}
        deletes: list[str] = []
        if previous is not None:
            for rel, info in previous.files.items():
                conds = set(info.get("conditions", ()))
                if rel in entries:
                    continue
                if conds and conds <= set(plan.remove):
                    deletes.append(rel)
                elif conds and not (conds & set(plan.keep)):
                    deletes.append(rel)  # a replaced condition's file the new run no longer writes
                else:
                    files_now[rel] = dict(info)
            for rel in _renamed_tables(previous, tables):  # e.g. another reference
                files_now.pop(rel, None)
                deletes.append(rel)
        files_now.update(entries)
        records = {lab: previous.conditions[lab] for lab in plan.keep} if previous else {}
        records.update({c.label: c for c in conditions})
        manifest = Manifest(
            key=key, files=files_now, conditions=records,
            tables={table_kind(t.rel): t.rel for t in tables},
            run_uuid=run_uuid, committed=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            extra=dict(extra or {}),
        )
        journal = {"staging": staging.name, "moves": sorted(entries), "deletes": sorted(deletes),
                   "manifest": manifest.to_dict()}
        atomic_write_json(journal_path(out, key), journal)
        _fault("journal")
        _apply(out, key, journal)
    return manifest, sorted(deletes)


def _apply(out: Path, key: str, journal: Mapping[str, Any]) -> None:
    """Roll a journal forward (idempotent: a move already done is skipped)."""
    staging = staging_root(out) / str(journal["staging"])
    folders: set[Path] = set()
    for rel in journal["moves"]:
        src, dst = staging / rel, out / rel
        if src.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            folders.add(dst.parent)
            _fault("move")
    for rel in journal["deletes"]:
        with contextlib.suppress(FileNotFoundError):
            (out / rel).unlink()
    _fault("deleted")
    for folder in folders:
        fsync_dir(folder)
    target = (out / journal["manifest_rel"]) if journal.get("manifest_rel") else \
        manifest_path(out, key)
    atomic_write_json(target, journal["manifest"])
    _fault("manifest")
    journal_path(out, key).unlink()
    shutil.rmtree(staging, ignore_errors=True)
    _fault("done")


def recover(out: Path, key: str) -> bool:
    """Finish an interrupted commit of ``key`` (caller holds the lock); True if one was."""
    path = journal_path(out, key)
    if not path.is_file():
        return False
    try:
        journal = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CommitError(f"{path}: unreadable commit journal ({exc}); remove it and the "
                          f"subject {key}'s outputs, then re-run it") from exc
    with _signals_deferred():
        _apply(Path(out), key, journal)
    return True


def remove_stale_staging(out: Path, is_free: Any) -> list[Path]:
    """Remove staging folders whose subject lock is free (``is_free(key) -> bool``)."""
    removed = []
    root = staging_root(out)
    if not root.is_dir():
        return removed
    for folder in sorted(root.iterdir()):
        key = folder.name.split(".", 1)[0]
        if journal_path(out, key).exists():
            continue  # belongs to a commit that recovery will finish
        if is_free(key):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


# ----------------------------------------------------------------------------- readers
@dataclass(frozen=True)
class SubjectState:
    """A subject as ``group`` sees it: committed (with its manifest) or skipped (why)."""

    key: str
    manifest: Manifest | None
    problem: str | None = None


def verify_file(out: Path, manifest: Manifest, rel: str) -> str | None:
    """``None`` when ``rel`` is as committed, else what is wrong."""
    info = manifest.files.get(rel)
    if info is None:
        return f"{rel} is not part of the commit"
    path = Path(out) / rel
    if not path.is_file():
        return f"{rel} is missing"
    if path.stat().st_size != info.get("size") or file_sha256(path) != info.get("sha256"):
        return f"{rel} changed after it was committed"
    return None


def committed_subjects(out: Path, *, recover_free: bool = True) -> list[SubjectState]:
    """Every subject of OUT with a manifest or a journal, committed or skipped with a reason.

    Interrupted commits whose lock is free are finished first (``recover_free``); a subject a
    live run is committing right now is skipped ("being written"). The tables a manifest lists
    are checked against their checksums.
    """
    from bids_stroke.locks import FileLock, LockBusyError

    out = Path(out)
    keys = {p.stem for p in (state_dir(out) / "subjects").glob("*.json")}
    keys |= {p.stem for p in (state_dir(out) / "journal").glob("*.json")
             if not p.stem.startswith("_")}  # "_group": the group level's own commit
    states = []
    for key in sorted(keys):
        if journal_path(out, key).exists():
            if not recover_free:
                states.append(SubjectState(key, None, "a commit is unfinished"))
                continue
            lock = FileLock(lock_path(out, key), run="group-recovery")
            try:
                lock.acquire(timeout=0)
            except LockBusyError:
                states.append(SubjectState(key, None, "being written by a live run"))
                continue
            try:
                recover(out, key)
            except (CommitError, OSError) as exc:
                states.append(SubjectState(key, None, str(exc)))
                continue
            finally:
                lock.release()
        try:
            manifest = read_manifest(out, key)
        except CommitError as exc:
            states.append(SubjectState(key, None, str(exc)))
            continue
        if manifest is None:
            continue
        problems = [p for rel in manifest.tables.values()
                    if (p := verify_file(out, manifest, rel)) is not None]
        states.append(SubjectState(key, manifest if not problems else None,
                                   problems[0] if problems else None))
    return states


# ----------------------------------------------------------------------------- group outputs
GROUP_KEY = "_group"


def group_staging(out: Path, run_uuid: str) -> Path:
    """A fresh staging folder for the group level's files (same filesystem as OUT)."""
    folder = staging_root(out) / f"{GROUP_KEY}.{run_uuid}.{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    return folder


def commit_group(out: Path, staged: Path, run_uuid: str) -> list[str]:
    """Move every file written in ``staged`` to the same place under OUT, all or nothing (the
    journal protocol of subjects; the caller holds the ``_group`` lock). Returns them."""
    out = Path(out)
    rels = sorted(p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file())
    files = {rel: {"sha256": file_sha256(staged / rel), "size": (staged / rel).stat().st_size}
             for rel in rels}
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "key": GROUP_KEY,
                "run_uuid": run_uuid, "committed": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "files": files}
    with _signals_deferred():
        journal = {"staging": staged.name, "moves": rels, "deletes": [], "manifest": manifest,
                   "manifest_rel": f"{STATE_DIR}/group.json"}
        atomic_write_json(journal_path(out, GROUP_KEY), journal)
        _fault("journal")
        _apply(out, GROUP_KEY, journal)
    return rels
