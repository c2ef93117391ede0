"""Commit protocol: all-or-nothing subjects, accumulating re-runs, recovery after a kill at
every step, readers that see only committed subjects."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bids_stroke.outputs.commit import (
    STEPS,
    CommitError,
    ConditionRecord,
    PlannedFile,
    PlannedTable,
    commit_image,
    committed_images,
    journal_path,
    lock_path,
    plan_conditions,
    read_manifest,
    remove_stale_staging,
    staging_root,
)
from bids_stroke.outputs.locks import FileLock, is_locked

KEY = "sub-01"
HEADER = "participant_id\tdesc\tdice\n"


def _work(tmp: Path, labels: list[str], tag: str) -> tuple[list[PlannedFile], PlannedTable]:
    """Fake outputs of a run: one mask per condition, a shared report, a metrics table."""
    src = tmp / f"work-{tag}"
    src.mkdir(parents=True, exist_ok=True)
    files = []
    for label in labels:
        f = src / f"{label}.nii"
        f.write_bytes(f"{tag}-{label}".encode() * 100)
        files.append(PlannedFile(f"sub-01/anat/sub-01_desc-{label}_mask.nii.gz", source=str(f),
                                 conditions=(label,), compress=True))
    files.append(PlannedFile("sub-01.html", content=f"report {tag}".encode()))
    tsv = src / "seg.tsv"
    tsv.write_text(HEADER + "".join(f"sub-01\t{lab}\t0.{len(tag)}{i}\n"
                                    for i, lab in enumerate(labels)))
    return files, PlannedTable("sub-01/anat/sub-01_label-L_segmetrics.tsv", str(tsv))


def _records(labels, model="m1", key="k1", run="r1"):
    return [ConditionRecord(lab, lab, model, key, run) for lab in labels]


def _commit(out, tmp, labels, tag, *, model="m1", clean=False):
    files, table = _work(tmp, labels, tag)
    records = _records(labels, model=model, run=tag)
    plan = plan_conditions(read_manifest(out, KEY), records, clean=clean)
    return commit_image(out, KEY, files=files, tables=[table], conditions=records, plan=plan,
                          run_uuid=tag)


def _tree(out: Path) -> dict[str, str]:
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file() and ".bids_stroke" not in p.parts}


def _rows(out: Path) -> list[str]:
    return (out / "sub-01/anat/sub-01_label-L_segmetrics.tsv").read_text().splitlines()[1:]


def test_first_commit_writes_files_and_manifest(tmp_path):
    out = tmp_path / "out"
    manifest, removed = _commit(out, tmp_path, ["native", "crude2"], "a")
    assert removed == []
    assert set(manifest.conditions) == {"native", "crude2"}
    for rel, info in manifest.files.items():
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == info["sha256"]
    assert manifest.tables == {"segmetrics": "sub-01/anat/sub-01_label-L_segmetrics.tsv"}
    assert not journal_path(out, KEY).exists()
    assert not list(staging_root(out).iterdir())


def test_rerun_with_other_conditions_accumulates(tmp_path):
    out = tmp_path / "out"
    _commit(out, tmp_path, ["native", "crude2"], "a")
    manifest, _ = _commit(out, tmp_path, ["native", "linear2"], "bb")
    assert set(manifest.conditions) == {"native", "crude2", "linear2"}
    assert (out / "sub-01/anat/sub-01_desc-crude2_mask.nii.gz").is_file()
    rows = _rows(out)
    assert [r.split("\t")[1] for r in rows] == ["crude2", "native", "linear2"]
    assert rows[0].endswith("0.11")  # crude2 kept from run a, native replaced by run bb
    assert rows[1].endswith("0.20")
    assert manifest.conditions["crude2"].run_uuid == "a"
    assert manifest.conditions["native"].run_uuid == "bb"


def test_other_model_never_mixed_silently(tmp_path):
    out = tmp_path / "out"
    _commit(out, tmp_path, ["native", "crude2"], "a")
    with pytest.raises(CommitError, match="--clean"):
        _commit(out, tmp_path, ["native"], "b", model="m2")
    # covering every committed condition replaces them all
    manifest, _ = _commit(out, tmp_path, ["native", "crude2"], "c", model="m2")
    assert {c.model_sha256 for c in manifest.conditions.values()} == {"m2"}


def test_clean_removes_and_lists(tmp_path):
    out = tmp_path / "out"
    _commit(out, tmp_path, ["native", "crude2", "thick5mm"], "a")
    manifest, removed = _commit(out, tmp_path, ["native", "crude2"], "b", model="m2",
                                clean=True)
    assert set(manifest.conditions) == {"native", "crude2"}
    assert removed == ["sub-01/anat/sub-01_desc-thick5mm_mask.nii.gz"]
    assert not (out / removed[0]).exists()
    assert [r.split("\t")[1] for r in _rows(out)] == ["native", "crude2"]


def test_plan_conditions_reports_keep_replace_remove(tmp_path):
    out = tmp_path / "out"
    _commit(out, tmp_path, ["native", "crude2"], "a")
    plan = plan_conditions(read_manifest(out, KEY), _records(["native", "linear2"]),
                           clean=False)
    assert (plan.keep, plan.replace, plan.remove) == (("crude2",), ("native",), ())


_CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from test_commit import _commit
    out, tmp = Path({out!r}), Path({tmp!r})
    _commit(out, tmp, ["native", "linear2"], "new")
""")


@pytest.mark.parametrize("how", ["KILL", "TERM"])
@pytest.mark.parametrize("step", STEPS)
def test_kill_at_every_commit_step_leaves_old_or_new(tmp_path, step, how):
    """SIGKILL right after each step of a commit over an existing subject: a reader (group)
    then sees exactly the old subject or exactly the new one, never a mix. SIGTERM at the
    same points waits for the end of the commit: the new subject, nothing left over, then
    the signal takes effect (the child process dies of it)."""
    out = tmp_path / "out"
    _commit(out, tmp_path, ["native", "crude2"], "old")
    old = _tree(out)
    # the state the commit would produce, computed in a copy
    ref = tmp_path / "ref"
    ref_out = ref / "out"
    import shutil

    shutil.copytree(out, ref_out)
    _commit(ref_out, ref, ["native", "linear2"], "new")
    new = _tree(ref_out)
    assert old != new

    code = _CHILD.format(tests=str(Path(__file__).parent), out=str(out), tmp=str(tmp_path))
    env = {**os.environ, "BIDS_STROKE_FAULT": step if how == "KILL" else f"{step}:TERM"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True)
    if how == "TERM":
        assert proc.returncode == -15, proc.stderr.decode()[-500:]
        assert _tree(out) == new and not journal_path(out, KEY).exists()
        assert not list(staging_root(out).iterdir())  # the commit ran to its end
    else:
        assert proc.returncode == -9, proc.stderr.decode()[-500:]
    states = committed_images(out)  # finishes an interrupted commit, as group does
    assert [s.key for s in states] == [KEY] and states[0].manifest is not None
    after = _tree(out)
    assert after in (old, new), step
    if step != "staged":
        assert after == new  # once the journal exists the commit is finished
    assert not journal_path(out, KEY).exists()


def test_reader_skips_a_subject_being_committed(tmp_path):
    out = tmp_path / "out"
    _commit(out, tmp_path, ["native"], "a")
    journal_path(out, KEY).parent.mkdir(parents=True, exist_ok=True)
    journal_path(out, KEY).write_text(json.dumps({"staging": "x", "moves": [], "deletes": [],
                                                  "manifest": {}}))
    with FileLock(lock_path(out, KEY), run="live"):
        states = committed_images(out)
    assert states[0].manifest is None and "being written" in states[0].problem


def test_reader_refuses_tables_changed_after_commit(tmp_path):
    out = tmp_path / "out"
    _commit(out, tmp_path, ["native"], "a")
    tsv = out / "sub-01/anat/sub-01_label-L_segmetrics.tsv"
    tsv.write_text(tsv.read_text().replace("0.10", "0.99"))
    states = committed_images(out)
    assert states[0].manifest is None and "changed after it was committed" in states[0].problem


def test_stale_staging_removed_only_when_unlocked(tmp_path):
    out = tmp_path / "out"
    live = staging_root(out) / f"{KEY}.run1.abcd"
    dead = staging_root(out) / "sub-02.run1.abcd"
    live.mkdir(parents=True)
    dead.mkdir(parents=True)
    with FileLock(lock_path(out, KEY)):
        removed = remove_stale_staging(out, lambda k: not is_locked(lock_path(out, k)))
    assert removed == [dead] and live.is_dir()


def test_lock_is_released_when_its_holder_dies(tmp_path):
    """flock, not host+PID guessing: a killed holder frees the lock at once."""
    path = tmp_path / "x.lock"
    code = ("import sys, os, signal; sys.path.insert(0, %r)\n"
            "from bids_stroke.outputs.locks import FileLock\n"
            "FileLock(%r).acquire(); print('held', flush=True); os.kill(os.getpid(), 9)")
    proc = subprocess.run([sys.executable, "-c", code % (str(Path.cwd()), str(path))],
                          capture_output=True, text=True)
    assert "held" in proc.stdout and proc.returncode == -9
    assert not is_locked(path)
