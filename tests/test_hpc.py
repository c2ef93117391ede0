"""Scale-out helpers: ``participant --prepare`` and the SLURM bookkeeping
of :mod:`bids_stroke.outputs.status`."""

from __future__ import annotations

from pathlib import Path

import pytest

from bids_stroke.cli.run import main
from bids_stroke.outputs import status


def test_prepare_writes_dataset_files_and_database_only(plain_layout: Path, tmp_path: Path):
    out, db = tmp_path / "out", tmp_path / "db"
    code = main([str(plain_layout), str(out), "participant", "--prepare",
                 "--bids-database-dir", str(db), "--skip-bids-validation",
                 "--conditions", "native", "crude:2"])
    assert code == 0
    for name in ("dataset_description.json", "descriptions.tsv", ".bidsignore",
                 ".bids_stroke/dataset.json", "README.md"):
        assert (out / name).is_file(), name
    rows = (out / "descriptions.tsv").read_text().splitlines()
    assert {r.split("\t")[0] for r in rows[1:]} == {"desc-preproc", "desc-native",
                                                     "desc-crude2"}
    assert list(db.rglob("*.sqlite")), "pybids database built"
    assert not list(out.glob("sub-*")), "nobody processed"


def test_prepare_is_participant_only(plain_layout: Path, tmp_path: Path, capsys):
    code = main([str(plain_layout), str(tmp_path / "out"), "participant", "group", "--prepare",
                 "--skip-bids-validation"])
    assert code == 64
    assert "--prepare goes with the participant level only" in capsys.readouterr().err


# --------------------------------------------------------------------------------------
# bids_stroke.outputs.status: who completed, failed or is missing
# --------------------------------------------------------------------------------------
def _commit(out: Path, label: str, session: str | None = None) -> None:
    """A subject committed through the real commit protocol (one table, one condition)."""
    from bids_stroke.outputs.commit import (
        ConditionPlan,
        ConditionRecord,
        PlannedTable,
        commit_image,
    )

    key = f"sub-{label}" + (f"_ses-{session}" if session else "")
    folder = Path(f"sub-{label}") / (f"ses-{session}" if session else "") / "anat"
    src = out.parent / f"{key}_seg.tsv"
    src.write_text("participant_id\tdesc\tdice\n" f"sub-{label}\tnative\t0.5\n")
    commit_image(out, key, files=[], conditions=[ConditionRecord("native", "native", "m",
                                                                   "k", "r")],
                   tables=[PlannedTable((folder / f"{key}_label-L_segmetrics.tsv").as_posix(),
                                        str(src))],
                   plan=ConditionPlan((), (), ()), run_uuid="r")


def _record(out: Path, label: str, code: int, job: str = "7_1") -> None:
    d = out / status.STATUS_DIR
    d.mkdir(parents=True, exist_ok=True)
    (d / f"sub-{label}.txt").write_text(f"exit_code={code}\njob={job}\nhost=n1\n")


def test_read_participants(tmp_path: Path):
    f = tmp_path / "p.txt"
    f.write_text("# cohort\nsub-01\n\n02  # note\nsub-01\n  sub-03\t\n")
    assert status.read_participants(f) == ["01", "02", "03"]
    tsv = tmp_path / "participants.tsv"
    tsv.write_text("participant_id\tage\nsub-r001s001\t50\nsub-r001s002\t61\n")
    assert status.read_participants(tsv) == ["r001s001", "r001s002"]


def test_subject_committed_needs_a_metrics_table(tmp_path: Path):
    out = tmp_path / "out"
    (out / "sub-01" / "anat").mkdir(parents=True)
    (out / "sub-01" / "anat" / "sub-01_desc-native_mask.nii.gz").write_text("")
    (out / "sub-01" / "anat" / "sub-01_label-L_segmetrics.tsv").write_text("x\n")
    assert not status.subject_committed(out, "01"), "files without a commit are not committed"
    assert not status.subject_committed(out, "02")
    _commit(out, "01", session="1")
    assert status.subject_committed(out, "01")
    assert not status.subject_committed(out, "0"), "no prefix match (sub-0 vs sub-01)"


@pytest.mark.parametrize(("committed", "code", "state"), [
    (True, None, "complete"),    # ran outside SLURM (or before task records)
    (True, 0, "complete"),
    (True, 1, "failed"),         # e.g. one of two sessions failed: partial outputs
    (False, 137, "failed"),      # out-of-memory kill
    (False, 0, "failed"),        # exited 0 without committing anything
    (False, None, "missing"),    # never ran, cancelled, SIGKILLed
])
def test_classify(committed: bool, code: int | None, state: str):
    record = None if code is None else {"exit_code": str(code), "job": "9_2"}
    st = status.classify("01", committed, record)
    assert st.state == state and st.exit_code == code
    assert st.job == ("9_2" if record else None)


def test_status_command_names_failed_and_missing(tmp_path: Path, capsys):
    out = tmp_path / "out"
    for label in ("01", "03"):
        _commit(out, label)
        _record(out, label, 0)
    _record(out, "02", 1, job="7_2")
    plist = tmp_path / "participants.txt"
    plist.write_text("sub-01\nsub-02\nsub-03\nsub-04\n")
    code = main(["status", str(out), "--participants-file", str(plist)])
    assert code == 1
    text = capsys.readouterr().out
    assert "4 participant(s): 2 complete, 1 failed, 1 missing" in text
    assert "FAILED  sub-02 (exit 1, job 7_2)" in text
    assert "MISSING sub-04" in text
    assert "sub-01" not in text and "sub-03" not in text  # complete ones are not listed
    rows = (out / status.STATUS_TABLE).read_text().splitlines()
    assert rows[0] == "participant_id\tstate\texit_code\tjob"
    assert rows[2] == "sub-02\tfailed\t1\t7_2" and rows[4] == "sub-04\tmissing\tn/a\tn/a"

    # a successful re-run of the failed one and the missing one: exit 0
    for label in ("02", "04"):
        _commit(out, label)
        _record(out, label, 0)
    assert main(["status", str(out), "--participants-file", str(plist)]) == 0
    assert "4 participant(s): 4 complete, 0 failed, 0 missing" in capsys.readouterr().out


def test_status_command_bad_input(tmp_path: Path, capsys):
    assert main(["status", str(tmp_path), "--participants-file", str(tmp_path / "no")]) == 66
    assert "participants file" in capsys.readouterr().err
    empty = tmp_path / "empty.txt"
    empty.write_text("# nobody\n")
    assert main(["status", str(tmp_path), "--participants-file", str(empty)]) == 66
