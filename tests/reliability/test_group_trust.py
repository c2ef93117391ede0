"""The group level: bad tables refused with the right code, files written all or nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from bids_stroke.group.synthetic import make_synthetic_output, record_commits

from .conftest import assert_error_line, read_tsv, run_inprocess

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


def _interrupted_before_commit(out: Path, key: str) -> None:
    """What a run killed in a subject's commit leaves: its staging folder, no manifest (and
    its tables, written by an older layout, not committed)."""
    from bids_stroke.outputs.commit import manifest_path, staging_root

    manifest_path(out, key).unlink()
    folder = staging_root(out) / f"{key}.20260101-000000_deadbeef.1234abcd"
    folder.mkdir(parents=True)
    (folder / "partial.nii.gz").write_bytes(b"half")


def test_group_names_the_images_it_left_out(synthetic: Path, tmp_path: Path, capsys):
    """A kill left one subject uncommitted: the group level analyses the others, says in one
    line and in the report which images it left out and why, exits 0; ``--strict`` refuses
    (exit 66) and writes nothing."""
    _interrupted_before_commit(synthetic, "sub-0003")
    strict = run_inprocess([_bids(tmp_path), synthetic, "group", "--strict"], capsys)
    assert strict.code == 66, strict.stderr[-2000:]
    line = assert_error_line(strict.stderr, "--strict: 1 of 6 images is incomplete")
    assert "sub-0003 (interrupted)" in line
    assert not list(synthetic.glob("group_*"))
    res = run_inprocess([_bids(tmp_path), synthetic, "group"], capsys)
    assert res.code == 0, res.stderr[-2000:]
    listed = [ln for ln in res.stderr.splitlines() if "incomplete" in ln]
    assert len(listed) == 1 and "1 of 6 images is incomplete and was not used: sub-0003 " \
        "(interrupted)" in listed[0], res.stderr
    assert "sub-0003" not in res.stderr.replace(listed[0], "")  # named once, not per table
    assert "1 of 6 images is incomplete and was not used" in (
        synthetic / "group_report.html").read_text()
    used = {r["participant_id"] for r in read_tsv(synthetic / "group_segmetrics.tsv")}
    assert "sub-0003" not in used and len(used) == 5
