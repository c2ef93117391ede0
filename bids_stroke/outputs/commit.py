"""All-or-nothing commits of one subject's outputs, and reading only committed subjects.

Layout (inside the derivatives folder ``OUT``)::

    OUT/.bids_stroke/locks/<key>.lock        held (flock) by the run working on a subject
    OUT/.bids_stroke/staging/<key>.<run>.<n>/ the new files, complete, before they move
    OUT/.bids_stroke/journal/<key>.json      a commit in progress (its moves + new manifest)
    OUT/.bids_stroke/subjects/<key>.json     the manifest: every file of the subject with its
                                             sha256, and what produced each condition

Protocol (:func:`commit_image`, under the subject's lock):

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
never sees a mix (:func:`committed_images`).

Re-runs accumulate: a subject's committed conditions are kept unless the new run produces the
same condition (then exactly that condition's files and rows are replaced) or ``--clean``
removes it (listed in the log). Conditions made with another model or other result-changing
settings are never silently mixed with new ones (:func:`plan_conditions`).

Everything under ``OUT/.bids_stroke`` is untrusted input (OUT is often writable by colleagues
and other tools): a journal is checked against its schema and every path in it must stay in its
folder (staging under ``staging/``, targets in the subject's own folder or its report) before
anything is moved or deleted; a journal that fails is moved aside to ``quarantine/``
(:class:`JournalRejected`) and nothing is touched. Manifests are checked the same way, the
state folders must not be links (:func:`check_state`), locks refuse links
(:mod:`bids_stroke.outputs.state_files`). SIGTERM/SIGINT wait for the end of a commit
(:func:`bids_stroke.core.interrupt.deferred`).

Tests arm a fault-injection hook with ``BIDS_STROKE_FAULT=<step>`` (see :data:`STEPS`): the
process kills itself (SIGKILL) right after that step, or sends itself SIGTERM with
``BIDS_STROKE_FAULT=<step>:TERM`` (:func:`fault`). Pure module (no nipype).
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import json
import os
import re
import shutil
import signal
import stat
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bids_stroke.core.atomic import atomic_write_json, fsync_dir
from bids_stroke.core.digest import file_sha256
from bids_stroke.core.interrupt import deferred
from bids_stroke.outputs.state_files import UnsafeStateError, confined, is_plain_relative, real_dir
from bids_stroke.outputs.tsv import text_tsv

FORMAT = "bids_stroke-subject-manifest"
FORMAT_VERSION = 1
STATE_DIR = ".bids_stroke"
#: commit steps after which the fault hook can kill the process (``move`` fires per file)
STEPS = ("staged", "journal", "move", "deleted", "manifest", "done")


class CommitError(RuntimeError):
    """A commit cannot be made or recovered (one-line message naming the subject)."""


class JournalRejected(CommitError):
    """A commit journal failed its checks: it was moved to ``quarantine`` and nothing it
    lists was moved or deleted (bad data in OUT: exit 65 for that subject)."""


#: a subject key (``sub-X[_ses-Y][_acq-..][_rec-..][_run-..]``) as file names carry it
KEY_RE = re.compile(r"sub-[A-Za-z0-9]+(?:_[a-z]+-[A-Za-z0-9]+)*")
STATE_FOLDERS = ("subjects", "journal", "staging", "locks", "quarantine")


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


def quarantine_dir(out: Path) -> Path:
    return state_dir(out) / "quarantine"


def check_state(out: Path) -> None:
    """Refuse (:class:`UnsafeStateError`) a state folder that is a link to elsewhere."""
    for folder in (state_dir(out), *(state_dir(out) / n for n in STATE_FOLDERS)):
        if folder.is_symlink():
            raise UnsafeStateError(
                f"{folder} is a symbolic link: bids_stroke never writes through a link in its "
                "state folder; remove the link (someone or another tool put it there) and "
                "re-run")


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
        if not isinstance(data, Mapping) or data.get("format") != FORMAT \
                or data.get("format_version") != FORMAT_VERSION:
            raise ValueError("not a bids_stroke subject manifest of a known version")
        rels = [*data["files"], *data.get("tables", {}).values()]
        bad = [r for r in rels if not is_plain_relative(r)]
        if bad:
            raise ValueError(f"file name {bad[0]!r} is not a plain path inside OUT")
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
        manifest = Manifest.from_dict(json.loads(path.read_text()))
        if manifest.key != key:
            raise ValueError(f"it describes {manifest.key!r}")
        return manifest
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CommitError(f"{path}: unreadable manifest ({exc}); remove the subject's "
                          "outputs and re-run it") from exc


# ----------------------------------------------------------------------------- fault hook
def fault(step: str) -> None:
    """Kill this process right after ``step`` when the tests armed ``BIDS_STROKE_FAULT``
    (``<step>``: SIGKILL; ``<step>:TERM``: SIGTERM, which waits for the end of the commit).
    Besides the commit steps, every checksummed interface calls it as ``node-<class>`` when
    its computation has ended, inside nipype's handling of the node."""
    armed = os.environ.get("BIDS_STROKE_FAULT")
    if not armed:
        return
    name, _, how = armed.partition(":")
    if name == step:
        os.kill(os.getpid(), signal.SIGTERM if how == "TERM" else signal.SIGKILL)


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
    return text_tsv(header, ([row.get(c, "n/a") for c in header]
                             for row in [*kept, *rows])).encode("utf-8")


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
    staging = real_dir(staging_root(out)) / f"{key}.{run_uuid}.{uuid.uuid4().hex[:8]}"
    staging.mkdir(mode=0o700)  # nobody else writes into it
    try:
        return staging, _fill(staging, out, files, tables, previous, drop)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)  # e.g. a full disk: leave nothing behind
        if exc.filename is None:  # a write() that failed names no file: name the folder
            raise type(exc)(exc.errno, exc.strerror, str(staging)) from exc
        raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
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
        elif source is None:  # PlannedFile refuses it: one of source and content is set
            raise ValueError(f"{rel}: neither content nor a source file")
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


def commit_image(
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
    check_state(out)
    recover(out, key)
    previous = read_manifest(out, key)
    with deferred():
        staging, entries = _stage(out, key, run_uuid, files, tables, previous, plan.remove)
        fault("staged")
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
        try:
            check_journal(out, key, journal)
        except (UnsafeStateError, ValueError) as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise CommitError(f"{key}: refusing to commit: {exc}") from None
        atomic_write_json(journal_path(out, key), journal)
        fault("journal")
        _apply(out, key, journal)
    return manifest, sorted(deletes)


# ----------------------------------------------------------------------------- journal checks
def _subject_folder(key: str) -> str:
    return key.split("_", 1)[0]


def _strings(journal: Mapping[str, Any], name: str) -> list[str]:
    value = journal.get(name)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"'{name}' is not a list of file names")
    return value


def _target(out: Path, key: str, rel: str) -> Path:
    """``OUT/rel`` when ``rel`` may be written by ``key``'s commit: a file of the subject's
    own folder (``sub-X/...``, or ``<label>/sub-X/...`` in an export's condition datasets) or
    its report (a subject), a group file (the group level)."""
    if not is_plain_relative(rel):
        raise ValueError(f"{rel!r} is not a plain relative path")
    parts = rel.split("/")
    if key == GROUP_KEY:
        if parts[0].startswith("sub-") or parts[0] == STATE_DIR:
            raise ValueError(f"{rel!r} is not a group-level file")
        return confined(out, rel)
    folder = _subject_folder(key)
    if len(parts) > 1 and parts[0] == folder:
        return confined(out, rel, folder)
    if len(parts) > 2 and parts[1] == folder and not parts[0].startswith(("sub-", ".")):
        return confined(out, rel, f"{parts[0]}/{folder}")
    if len(parts) == 1 and rel.endswith(".html") and rel.startswith((f"{folder}_",
                                                                     f"{folder}.")):
        return confined(out, rel)
    raise ValueError(f"{rel!r} is not inside {folder}/ (nor its report)")


def check_journal(out: Path, key: str, journal: Any) -> None:
    """Refuse (``ValueError``/:class:`UnsafeStateError`) a journal that is not exactly what
    :func:`commit_image` or :func:`commit_group` writes for ``key``: unknown keys, a staging
    folder of another subject or outside ``staging/``, a move or deletion outside the
    subject's folder, a staged file that is not a regular file, a manifest of another key."""
    if key != GROUP_KEY and not KEY_RE.fullmatch(key):
        raise ValueError(f"{key!r} is not a subject key")
    if not isinstance(journal, Mapping):
        raise ValueError("not a JSON object")
    allowed = {"staging", "moves", "deletes", "manifest", "manifest_rel"}
    unknown = sorted(set(journal) - allowed)
    if unknown or not {"staging", "moves", "deletes", "manifest"} <= set(journal):
        raise ValueError(f"unexpected or missing entries ({', '.join(unknown) or 'missing'})")
    staging = _journal_staging(out, key, journal["staging"])
    moves, deletes = _strings(journal, "moves"), _strings(journal, "deletes")
    for rel in moves:
        _target(out, key, rel)
        src = confined(staging, rel)
        try:
            mode = os.lstat(src).st_mode
        except FileNotFoundError:
            continue  # already moved
        if not stat.S_ISREG(mode):
            raise UnsafeStateError(f"staged {src} is not a regular file")
    for rel in deletes:
        _target(out, key, rel)
    files = _journal_manifest_files(key, journal)
    if not set(moves) <= files or set(deletes) & files:
        raise ValueError("its moves and deletions disagree with its manifest")


def _journal_staging(out: Path, key: str, name: Any) -> Path:
    """The staging folder a journal of ``key`` names: one of ``key``'s, in ``staging/``, not
    a link."""
    if not (isinstance(name, str) and name.startswith(f"{key}.") and "/" not in name
            and is_plain_relative(name)):
        raise ValueError(f"staging folder {name!r} is not one of {key}")
    staging = confined(staging_root(out), name)
    if staging.is_symlink():
        raise UnsafeStateError(f"{staging} is a symbolic link")
    return staging


def _journal_manifest_files(key: str, journal: Mapping[str, Any]) -> set[str]:
    """The files of the manifest a journal of ``key`` commits (the group level's, with its
    ``manifest_rel``, or a subject's manifest of that key)."""
    manifest = journal["manifest"]
    if key == GROUP_KEY:
        if journal.get("manifest_rel") != f"{STATE_DIR}/group.json" or not (
                isinstance(manifest, Mapping) and manifest.get("key") == GROUP_KEY
                and isinstance(manifest.get("files"), Mapping)):
            raise ValueError("not a group-level journal")
        return set(manifest["files"])
    if "manifest_rel" in journal:
        raise ValueError("'manifest_rel' belongs to the group level")
    parsed = Manifest.from_dict(manifest)
    if parsed.key != key:
        raise ValueError(f"its manifest describes {parsed.key!r}")
    return set(parsed.files)


def _quarantine(out: Path, key: str, path: Path, reason: str) -> JournalRejected:
    folder = real_dir(quarantine_dir(out))
    dest = folder / f"{path.name}.{time.strftime('%Y%m%d-%H%M%S')}.{uuid.uuid4().hex[:6]}"
    os.replace(path, dest)  # moves a link itself, never what it points to
    return JournalRejected(
        f"{key}: the commit journal {path} failed its checks ({reason}); nothing it lists was "
        f"moved or deleted; it was moved to {dest}: check who writes into "
        f"{state_dir(out)}, then re-run")


def _apply(out: Path, key: str, journal: Mapping[str, Any]) -> None:
    """Roll a checked journal forward (idempotent: a move already done is skipped)."""
    staging = staging_root(out) / str(journal["staging"])
    folders: set[Path] = set()
    for rel in journal["moves"]:
        src, dst = staging / rel, out / rel
        if src.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            folders.add(dst.parent)
            fault("move")
    for rel in journal["deletes"]:
        with contextlib.suppress(FileNotFoundError):
            (out / rel).unlink()
    fault("deleted")
    for folder in folders:
        fsync_dir(folder)
    target = (out / journal["manifest_rel"]) if journal.get("manifest_rel") else \
        manifest_path(out, key)
    atomic_write_json(target, journal["manifest"])
    fault("manifest")
    journal_path(out, key).unlink()
    shutil.rmtree(staging, ignore_errors=True)
    fault("done")


def recover(out: Path, key: str) -> bool:
    """Finish an interrupted commit of ``key`` (caller holds the lock); True if one was.

    A journal that fails :func:`check_journal` (or is unreadable, or a link) is moved to
    ``quarantine/`` and :class:`JournalRejected` raised: nothing it lists is touched.
    """
    out = Path(out)
    path = journal_path(out, key)
    if not (path.is_file() or path.is_symlink()):
        return False
    check_state(out)
    try:
        if path.is_symlink():
            raise UnsafeStateError("it is a symbolic link")
        journal = json.loads(path.read_text())
        check_journal(out, key, journal)
    except (UnicodeDecodeError, ValueError, UnsafeStateError, KeyError, TypeError) as exc:
        raise _quarantine(out, key, path, str(exc)) from None
    except OSError as exc:
        raise CommitError(f"{path}: unreadable commit journal ({exc.strerror}); fix the "
                          "permissions of the state folder, then re-run") from exc
    with deferred():
        _apply(out, key, journal)
    return True


def staging_key(name: str) -> str | None:
    """The key a staging folder name ``<key>.<run>.<n>`` belongs to (``None``: not one)."""
    key = name.split(".", 1)[0]
    return key if (key == GROUP_KEY or KEY_RE.fullmatch(key)) and "." in name else None


def remove_stale_staging(out: Path, is_free: Any) -> list[Path]:
    """Remove staging folders whose subject lock is free (``is_free(key) -> bool``)."""
    removed: list[Path] = []
    check_state(out)
    root = staging_root(out)
    if not root.is_dir():
        return removed
    for folder in sorted(root.iterdir()):
        key = staging_key(folder.name)
        if key is None:
            continue  # not ours: left alone
        if journal_path(out, key).exists():
            continue  # belongs to a commit that recovery will finish
        if is_free(key):
            if folder.is_symlink() or not folder.is_dir():
                folder.unlink()  # the link itself, never what it points to
            else:
                shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


# ----------------------------------------------------------------------------- readers
@dataclass(frozen=True)
class ImageState:
    """A subject as ``group`` sees it: committed (with its manifest) or skipped (why).

    ``reason`` is a few words for the one-line list of incomplete images; ``problem`` the
    full sentence. ``quarantined``: its journal failed the checks (bad data in OUT).
    """

    key: str
    manifest: Manifest | None
    problem: str | None = None
    reason: str = ""
    quarantined: bool = False


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


def _keys(out: Path) -> tuple[set[str], set[str], set[str]]:
    """Keys with a manifest, with a journal, with a staging folder."""
    state = state_dir(out)
    manifests = {p.stem for p in (state / "subjects").glob("*.json") if KEY_RE.fullmatch(p.stem)}
    journals = {p.stem for p in (state / "journal").glob("*.json") if p.stem != GROUP_KEY}
    root = staging_root(out)
    staged = {k for p in (root.iterdir() if root.is_dir() else ())
              if (k := staging_key(p.name)) is not None and k != GROUP_KEY}
    return manifests, journals, staged


def _failed_folders(out: Path, keys: set[str]) -> list[str]:
    """Subject folders with crash files and no committed image at all (a failed run)."""
    seen = {_subject_folder(k) for k in keys}
    failed = []
    with os.scandir(out) as entries:
        for e in entries:
            if (e.name.startswith("sub-") and KEY_RE.fullmatch(e.name) and e.name not in seen
                    and e.is_dir(follow_symlinks=False) and (Path(e.path) / "log").is_dir()):
                failed.append(e.name)
    return sorted(failed)


def committed_images(out: str | os.PathLike[str], *,
                       recover_free: bool = True) -> list[ImageState]:
    """Every image of OUT with a manifest, a journal or a staging folder, committed or skipped
    with a reason, and subject folders holding only crash files (a failed run).

    Interrupted commits whose lock is free are finished first (``recover_free``); a journal
    that fails its checks is quarantined; a subject a live run is committing right now is
    skipped ("being written"). The tables a manifest lists are checked against their
    checksums.
    """
    from bids_stroke.outputs.locks import FileLock, LockBusyError, is_locked

    out = Path(out)
    check_state(out)
    manifests, journals, staged = _keys(out)
    states = []
    for key in sorted(manifests | journals | staged):
        if key in journals:
            if not recover_free:
                states.append(ImageState(key, None, "a commit is unfinished", "unfinished"))
                continue
            try:
                lock = FileLock(lock_path(out, key), run="group-recovery").acquire(timeout=0)
            except LockBusyError:
                states.append(ImageState(key, None, "being written by a live run",
                                           "being written"))
                continue
            except UnsafeStateError as exc:
                states.append(ImageState(key, None, str(exc), "unsafe lock file"))
                continue
            try:
                recover(out, key)
            except JournalRejected as exc:
                states.append(ImageState(key, None, str(exc), "journal quarantined", True))
                continue
            except (CommitError, OSError) as exc:
                states.append(ImageState(key, None, str(exc), "unfinished commit"))
                continue
            finally:
                lock.release()
        try:
            manifest = read_manifest(out, key)
        except CommitError as exc:
            states.append(ImageState(key, None, str(exc), "unreadable manifest"))
            continue
        if manifest is None:
            if key in staged and KEY_RE.fullmatch(key):
                live = is_locked(lock_path(out, key))
                states.append(ImageState(
                    key, None, "being written by a live run" if live else
                    "left uncommitted by an interrupted run (its staging folder remains)",
                    "being written" if live else "interrupted"))
            continue
        problems = [p for rel in manifest.tables.values()
                    if (p := verify_file(out, manifest, rel)) is not None]
        states.append(ImageState(key, manifest if not problems else None,
                                   problems[0] if problems else None,
                                   problems[0] if problems else ""))
    for folder in _failed_folders(out, manifests | journals | staged):
        states.append(ImageState(folder, None, f"its participant level failed (crash files "
                                   f"under {folder}/log/)", "failed"))
    return states


# ----------------------------------------------------------------------------- group outputs
GROUP_KEY = "_group"


def group_staging(out: Path, run_uuid: str) -> Path:
    """A fresh staging folder for the group level's files (same filesystem as OUT)."""
    check_state(out)
    folder = real_dir(staging_root(out)) / f"{GROUP_KEY}.{run_uuid}.{uuid.uuid4().hex[:8]}"
    folder.mkdir(mode=0o700)
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
    with deferred():
        journal = {"staging": staged.name, "moves": rels, "deletes": [], "manifest": manifest,
                   "manifest_rel": f"{STATE_DIR}/group.json"}
        check_journal(out, GROUP_KEY, journal)
        atomic_write_json(journal_path(out, GROUP_KEY), journal)
        fault("journal")
        _apply(out, GROUP_KEY, journal)
    return rels
