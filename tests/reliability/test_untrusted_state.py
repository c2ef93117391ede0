"""Everything under OUT/.bids_stroke and the work folder is untrusted input.

On a shared cluster a project folder is writable by colleagues and by other tools' jobs: a
planted commit journal must not move or delete anything outside the subject's folder, a link
planted in place of a lock or a state folder must never be followed (nor what it points to
truncated or removed). Each case refuses with one line and touches nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bids_stroke.group.synthetic import make_synthetic_output
from bids_stroke.outputs.commit import journal_path, lock_path, manifest_path, recover, staging_root
from bids_stroke.outputs.locks import FileLock, is_locked

from .conftest import (
    SUBJECTS,
    assert_error_line,
    participant_args,
    run_inprocess,
    snapshot,
)

CONDS = [("native", "native", 1.0, "native"), ("crude2", "crude:2", 2.0, "crude")]
KEY = "sub-0001"


@pytest.fixture
def synthetic(tmp_path: Path) -> Path:
    from bids_stroke.group.synthetic import record_commits

    out = make_synthetic_output(tmp_path / "project" / "out", 3, conditions=CONDS, seed=2)
    record_commits(out)
    return out


def _plant_journal(out: Path, key: str, **entries) -> Path:
    manifest = json.loads(manifest_path(out, key).read_text())
    journal = {"staging": f"{key}.x.1", "moves": [], "deletes": [], "manifest": manifest,
               **entries}
    path = journal_path(out, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(journal))
    return path


def test_planted_journal_moves_and_deletes_nothing_outside_out(synthetic: Path, tmp_path,
                                                               capsys):
    """The issue's reproduction: a journal whose moves and deletions leave OUT, run by
    ``group``. Nothing is created or deleted beside OUT, the journal is quarantined, one
    line names it, exit 65; the other subjects are analysed."""
    out = synthetic
    victim = out.parent / "victim.txt"
    victim.write_text("precious")
    staging = staging_root(out)
    (staging / "x").mkdir(parents=True)  # so that staging/x/../planted.txt exists
    (staging / "planted.txt").write_text("planted")
    journal = _plant_journal(out, KEY, staging="x", moves=["../planted.txt"],
                             deletes=["../victim.txt"])
    bids = tmp_path / "bids"
    bids.mkdir()
    res = run_inprocess([bids, out, "group"], capsys)
    assert victim.read_text() == "precious"
    assert not (out.parent / "planted.txt").exists()
    assert (staging / "planted.txt").read_text() == "planted"
    assert res.code == 65, res.stderr[-2000:]
    line = assert_error_line(res.stderr, "failed its checks")
    assert str(journal) in line and "quarantine" in line
    assert not journal.exists()
    assert len(list((out / ".bids_stroke" / "quarantine").iterdir())) == 1
    assert "1 of 3 images is incomplete and was not used: sub-0001 (journal quarantined)" \
        in res.stderr
    assert (out / "group_report.html").is_file()  # the two others were analysed


@pytest.mark.parametrize("entries", [
    {"moves": ["/etc/passwd"]},
    {"deletes": ["sub-0002/anat/sub-0002_label-L_segmetrics.tsv"]},  # another subject's file
    {"deletes": ["sub-0001/../victim.txt"]},
    {"deletes": ["dataset_description.json"]},
    {"staging": "sub-0002.x.1"},  # the staging folder of another subject
    {"staging": "../../elsewhere"},
    {"manifest": {"format": "nonsense"}},
    {"surprise": 1},
], ids=["absolute", "other-subject", "dotdot", "dataset-file", "other-staging",
        "staging-traversal", "bad-manifest", "unknown-entry"])
def test_journal_failing_its_schema_is_quarantined(synthetic: Path, entries: dict):
    from bids_stroke.outputs.commit import JournalRejected

    out = synthetic
    before = snapshot(out.parent)
    path = _plant_journal(out, KEY, **entries)
    with pytest.raises(JournalRejected, match="failed its checks"):
        recover(out, KEY)
    assert not path.exists()
    def outside_state(snap: dict) -> dict:
        return {k: v for k, v in snap.items() if not k.startswith("out/.bids_stroke")}

    assert outside_state(snapshot(out.parent)) == outside_state(before)


def test_journal_through_a_linked_subject_folder_is_refused(synthetic: Path, tmp_path):
    """A subject folder replaced by a link to elsewhere: its moves would land there."""
    from bids_stroke.outputs.commit import check_journal
    from bids_stroke.outputs.state_files import UnsafeStateError

    out = synthetic
    elsewhere = tmp_path / "elsewhere"
    (out / "sub-0001").rename(elsewhere)
    (out / "sub-0001").symlink_to(elsewhere)
    journal = {"staging": f"{KEY}.x.1", "moves": [],
               "deletes": ["sub-0001/anat/sub-0001_label-L_lesions.tsv"],
               "manifest": json.loads(manifest_path(out, KEY).read_text())}
    with pytest.raises(UnsafeStateError, match="leads out of"):
        check_journal(out, KEY, journal)


def test_tampered_manifest_cannot_delete_outside(synthetic: Path):
    """A manifest listing ``../victim.txt``: a --clean re-run would delete what it lists."""
    from bids_stroke.outputs.commit import CommitError, read_manifest

    out = synthetic
    data = json.loads(manifest_path(out, KEY).read_text())
    data["files"]["../victim.txt"] = {"sha256": "0", "size": 1, "conditions": ["crude2"]}
    manifest_path(out, KEY).write_text(json.dumps(data))
    with pytest.raises(CommitError, match="not a plain path inside OUT"):
        read_manifest(out, KEY)


def test_symlinked_lock_file_is_refused_not_truncated(make_bids, tmp_path, models, capsys):
    """The issue's reproduction: ``ln -s ~/precious.txt OUT/.bids_stroke/locks/KEY.lock``."""
    bids, out = make_bids(1), tmp_path / "out"
    precious = tmp_path / "precious.txt"
    precious.write_text("years of work\n")
    lock = lock_path(out, f"sub-{SUBJECTS[0]}_ses-1")
    lock.parent.mkdir(parents=True)
    lock.symlink_to(precious)
    res = run_inprocess(participant_args(bids, out, tmp_path / "work", models["random"]),
                        capsys)
    assert precious.read_text() == "years of work\n"
    assert res.code == 73, res.stderr[-3000:]
    line = assert_error_line(res.stderr, "symbolic link")
    assert str(lock) in line
    assert lock.is_symlink()  # left for the user to look at, not removed
    assert not (out / f"sub-{SUBJECTS[0]}" / "ses-1").exists()


def test_fixed_name_files_refuse_links_fifos_and_hard_links(tmp_path):
    from bids_stroke.outputs.state_files import UnsafeStateError

    precious = tmp_path / "precious.txt"
    precious.write_text("keep")
    link = tmp_path / "a.lock"
    link.symlink_to(precious)
    with pytest.raises(UnsafeStateError, match="symbolic link"):
        FileLock(link).acquire()
    assert is_locked(link)  # counts as held: nobody removes what it guards
    hard = tmp_path / "b.lock"
    os.link(precious, hard)
    with pytest.raises(UnsafeStateError, match="hard links"):
        FileLock(hard).acquire()
    fifo = tmp_path / "c.lock"
    os.mkfifo(fifo)
    with pytest.raises(UnsafeStateError, match="not a regular file"):
        FileLock(fifo).acquire()  # and does not hang
    assert precious.read_text() == "keep"


def test_linked_state_folder_is_refused_and_what_it_points_to_kept(make_bids, tmp_path,
                                                                    models, capsys):
    """``OUT/.bids_stroke/staging`` made a link to a folder of someone else's: removing
    stale staging folders must not remove theirs."""
    from bids_stroke.outputs.commit import remove_stale_staging
    from bids_stroke.outputs.state_files import UnsafeStateError

    bids, out = make_bids(1), tmp_path / "out"
    theirs = tmp_path / "theirs"
    (theirs / "sub-r001s001_ses-1.run.1").mkdir(parents=True)
    (theirs / "sub-r001s001_ses-1.run.1" / "data.txt").write_text("theirs")
    staging_root(out).parent.mkdir(parents=True)
    staging_root(out).symlink_to(theirs)
    with pytest.raises(UnsafeStateError):
        remove_stale_staging(out, lambda key: True)
    res = run_inprocess(participant_args(bids, out, tmp_path / "work", models["random"]),
                        capsys)
    assert res.code == 73, res.stderr[-3000:]
    assert_error_line(res.stderr, "symbolic link")
    assert (theirs / "sub-r001s001_ses-1.run.1" / "data.txt").read_text() == "theirs"


@pytest.mark.parametrize("name", [".bids_stroke-work.lock", "bids_stroke_wf/d3.js"])
def test_link_planted_in_the_work_folder_is_refused(name, make_bids, tmp_path, models,
                                                     capsys):
    """The work folder's lock, or a file nipype writes by a fixed name (and without
    O_NOFOLLOW), replaced by a link to someone's file: refused, the file intact."""
    bids, work = make_bids(1), tmp_path / "work"
    precious = tmp_path / "precious.txt"
    precious.write_text("keep")
    (work / name).parent.mkdir(parents=True, exist_ok=True)
    (work / name).symlink_to(precious)
    res = run_inprocess(participant_args(bids, tmp_path / "out", work, models["random"]),
                        capsys)
    assert precious.read_text() == "keep"
    assert res.code == 73, res.stderr[-3000:]
    assert_error_line(res.stderr, f"{work / name}")
    assert_error_line(res.stderr, "symbolic link")
