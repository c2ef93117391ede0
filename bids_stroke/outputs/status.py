"""Bookkeeping of a SLURM (or any batch) submission: who completed, who failed, who is missing.

``bids_stroke status OUT_DIR --participants-file FILE`` (:mod:`bids_stroke.cli.status`)
compares the participants of a submission with what the array tasks left behind and exits
non-zero when anyone is not complete; ``examples/slurm/group.sbatch`` runs it before the group
level.

* **complete**: the subject's outputs are committed (:func:`subject_committed`) and its last
  task, when one was recorded, exited 0;
* **failed**: its last task recorded a non-zero exit code (a Python error, a bad input, an
  out-of-memory kill: 137, a time-limit SIGTERM: 143) -- partial outputs may exist;
* **missing**: no committed outputs and no recorded task (never started, cancelled, or
  killed without a chance to record: SIGKILL, node failure).

Each array task records its exit code in ``OUT_DIR/logs/status/sub-<label>.txt``
(``key=value`` lines: ``exit_code``, ``job``, ``host``, ``finished``), rewritten by a re-run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bids_stroke.core.atomic import atomic_write_text
from bids_stroke.outputs.tsv import text_tsv

#: where the array tasks record their exit codes, relative to the output folder
STATUS_DIR = Path("logs") / "status"
#: the per-subject table written next to them
STATUS_TABLE = Path("logs") / "participants_status.tsv"


@dataclass(frozen=True)
class SubjectStatus:
    """The state of one participant of a submission."""

    label: str
    state: str  # complete | failed | missing
    exit_code: int | None = None
    job: str | None = None
    committed: bool = False


def read_participants(path: Path) -> list[str]:
    """Labels (without ``sub-``) of a participants file: one per line, ``#`` comments and
    blank lines ignored, first occurrence kept. A BIDS ``participants.tsv`` works too (its
    ``participant_id`` header line is skipped, the first column is used)."""
    labels: list[str] = []
    for raw in Path(path).read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        first = line.split()[0]
        if first == "participant_id":
            continue
        label = first.removeprefix("sub-")
        if label not in labels:
            labels.append(label)
    return labels


def subject_committed(output_dir: Path, label: str) -> bool:
    """Whether the outputs of ``sub-<label>`` are committed in ``output_dir``.

    The one completion check of the batch recipes: a subject is complete when every input
    image of it has a committed manifest (``OUT/.bids_stroke/subjects/sub-<label>[_...].json``,
    tables intact; :func:`bids_stroke.outputs.commit.committed_images`) and at least one exists.
    """
    from bids_stroke.outputs.commit import committed_images

    states = [s for s in committed_images(Path(output_dir))
              if s.key == f"sub-{label}" or s.key.startswith(f"sub-{label}_")]
    return bool(states) and all(s.manifest is not None for s in states)


def read_task_record(path: Path) -> dict[str, str] | None:
    """The ``key=value`` record of an array task, or None when absent/unreadable."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    record = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            record[key.strip()] = value.strip()
    return record


def _exit_code(record: dict[str, str] | None) -> int | None:
    try:
        return int(record["exit_code"]) if record else None
    except (KeyError, ValueError):
        return None


def classify(label: str, committed: bool, record: dict[str, str] | None) -> SubjectStatus:
    """Pure rule: committed outputs and a zero (or no) recorded exit -> complete; a recorded
    non-zero exit -> failed; nothing -> missing."""
    code = _exit_code(record)
    job = record.get("job") if record else None
    if code not in (None, 0):
        state = "failed"
    elif committed:
        state = "complete"
    elif code == 0:
        state = "failed"  # exited 0 but committed nothing: not a success
    else:
        state = "missing"
    return SubjectStatus(label, state, code, job, committed)


def participant_status(output_dir: Path, labels: Iterable[str]) -> list[SubjectStatus]:
    """:class:`SubjectStatus` of every label, in order."""
    status_dir = Path(output_dir) / STATUS_DIR
    return [
        classify(label, subject_committed(output_dir, label),
                 read_task_record(status_dir / f"sub-{label}.txt"))
        for label in labels
    ]


def format_report(statuses: Sequence[SubjectStatus]) -> str:
    """A few human-readable lines: counts, then every subject that is not complete."""
    counts = {s: sum(1 for x in statuses if x.state == s)
              for s in ("complete", "failed", "missing")}
    lines = [f"{len(statuses)} participant(s): {counts['complete']} complete, "
             f"{counts['failed']} failed, {counts['missing']} missing"]
    for st in statuses:
        if st.state == "failed":
            detail = f"exit {st.exit_code}" if st.exit_code is not None else "no outputs"
            if st.job:
                detail += f", job {st.job}"
            if st.committed:
                detail += ", partial outputs"
            lines.append(f"FAILED  sub-{st.label} ({detail})")
        elif st.state == "missing":
            lines.append(f"MISSING sub-{st.label} (no outputs, no task record: never ran, "
                         "cancelled or killed)")
    return "\n".join(lines)


def write_table(path: Path, statuses: Sequence[SubjectStatus]) -> Path:
    """``participant_id  state  exit_code  job`` TSV (``n/a`` for unknown), written atomically."""
    rows = [[f"sub-{st.label}", st.state, "n/a" if st.exit_code is None else str(st.exit_code),
             st.job or "n/a"] for st in statuses]
    return atomic_write_text(path, text_tsv(["participant_id", "state", "exit_code", "job"],
                                            rows))
