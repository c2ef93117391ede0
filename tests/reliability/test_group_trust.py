"""The group level: bad tables refused with the right code, files written all or nothing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bids_stroke.group.synthetic import make_synthetic_output, record_commits

from .conftest import assert_error_line, run_inprocess

CONDS = [("native", "native", 1.0, "native"), ("crude2", "crude:2", 2.0, "crude")]


@pytest.fixture
def synthetic(tmp_path: Path) -> Path:
    return make_synthetic_output(tmp_path / "out", 6, conditions=CONDS, seed=1)


def _bids(tmp_path: Path) -> Path:
    """The group level reads only OUT; BIDS_DIR must exist and be elsewhere."""
    bids = tmp_path / "bids"
    bids.mkdir(exist_ok=True)
    return bids


def _one_table(out: Path) -> Path:
    return sorted(out.glob("sub-*/**/*_segmetrics.tsv"))[0]


def test_dice_out_of_range_is_bad_data(synthetic: Path, tmp_path: Path, capsys):
    tsv = _one_table(synthetic)
    lines = tsv.read_text().splitlines()
    header = lines[0].split("\t")
    row = lines[1].split("\t")
    row[header.index("dice")] = "1.7"
    tsv.write_text("\n".join([lines[0], "\t".join(row), *lines[2:]]) + "\n")
    record_commits(synthetic)  # a consistent commit of an impossible value
    res = run_inprocess([_bids(tmp_path), synthetic, "group"], capsys)
    assert res.code == 65
    line = assert_error_line(res.stderr, "dice = 1.7")
    assert tsv.name in line and "outside its range [0, 1]" in line
    assert not list(synthetic.glob("group_*"))


def test_malformed_table_is_bad_data_and_no_table_is_missing_input(synthetic: Path,
                                                                     tmp_path: Path, capsys):
    tsv = _one_table(synthetic)
    tsv.write_text(tsv.read_text().replace("\tnative\t", "\tnative\tx\t", 1))
    record_commits(synthetic)
    assert run_inprocess([_bids(tmp_path), synthetic, "group"], capsys).code == 65
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_inprocess([_bids(tmp_path), empty, "group"], capsys).code == 66


def test_an_edited_table_is_skipped_and_named(synthetic: Path, tmp_path: Path, capsys):
    tsv = _one_table(synthetic)
    tsv.write_text(tsv.read_text() + "\n")  # changed after its commit (no record_commits)
    res = run_inprocess([_bids(tmp_path), synthetic, "group"], capsys)
    assert res.code == 0, res.stderr[-2000:]
    assert "changed after it was committed" in res.stderr


def test_group_files_are_committed_at_once(synthetic: Path, tmp_path: Path, capsys):
    assert run_inprocess([_bids(tmp_path), synthetic, "group"], capsys).code == 0
    state = synthetic / ".bids_stroke"
    assert (state / "group.json").is_file()
    assert not list((state / "staging").glob("*")) and not list((state / "journal").glob("*"))
    assert (synthetic / "group_report.html").is_file()


def _mount_tmpfs(mnt: Path, kib: int) -> None:
    mnt.mkdir()
    try:
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(mnt)],
                              capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot mount a tmpfs to simulate a full disk: {exc}")
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to simulate a full disk: {proc.stderr.strip()}")


def test_group_on_a_full_disk(synthetic: Path, tmp_path: Path, capsys):
    """Room for the inputs and a little more: the group level fails (exit 73, one line) and
    leaves neither a group file nor a staging folder behind."""
    used = sum(p.stat().st_size + 4096 for p in synthetic.rglob("*"))
    mnt = tmp_path / "tmpfs"
    _mount_tmpfs(mnt, used // 1024 + 64)
    try:
        out = mnt / "out"
        shutil.copytree(synthetic, out)
        before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
        res = run_inprocess([_bids(tmp_path), out, "group"], capsys)
        assert res.code == 73, res.stderr[-2000:]
        assert_error_line(res.stderr, "No space left on device")
        after = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
        assert [p for p in after if p.startswith("group") or "figures" in p] == []
        assert not list((out / ".bids_stroke" / "staging").glob("*"))
        assert set(after) <= set(before) | {".bids_stroke/staging", ".bids_stroke/locks",
                                            ".bids_stroke/locks/_group.lock"}
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=20)
