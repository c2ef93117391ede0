"""The per-image loop the participant level, ``export`` and ``score`` share
(:mod:`bids_stroke.cli.image_loop`), on a bare commit root: no images, no model."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from bids_stroke.cli.config import CLIError
from bids_stroke.cli.image_loop import ImageLoop, dataset_locked
from bids_stroke.outputs.commit import journal_path, lock_path, quarantine_dir, staging_root
from bids_stroke.outputs.locks import FileLock, is_locked
from bids_stroke.outputs.state_files import UnsafeStateError

KEYS = ["sub-01", "sub-02", "sub-03", "sub-04"]


def _loop(root: Path, keys=KEYS) -> ImageLoop:
    return ImageLoop(root, keys, run="test-run", wait=0, busy="another run is writing it")


def test_locks_recovers_cleans_and_releases(tmp_path, capsys):
    root = tmp_path / "out"
    other = FileLock(lock_path(root, "sub-02")).acquire()  # another live run (own descriptor)
    planted = journal_path(root, "sub-03")
    planted.parent.mkdir(parents=True)
    planted.write_text("not a journal")
    (tmp_path / "precious").write_text("keep")
    lock_path(root, "sub-04").symlink_to(tmp_path / "precious")
    stale = staging_root(root) / "sub-01.old-run.1"  # a crashed run's, its lock now ours
    busy_staging = staging_root(root) / "sub-02.live-run.1"  # the live run's
    for folder in (stale, busy_staging):
        folder.mkdir(parents=True)
    with _loop(root) as images:
        assert images.locked == ["sub-01"]
        assert images.busy == ["sub-02"]
        assert images.refused == {"sub-03": 65, "sub-04": 73}
        assert is_locked(lock_path(root, "sub-01"))
        assert not stale.exists() and busy_staging.is_dir()
    assert not is_locked(lock_path(root, "sub-01"))  # released with the block
    other.release()
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("bids_stroke: error: sub-02: locked by ")
    assert err[0].endswith(": another run is writing it; wait for it (or --lock-wait SECONDS)")
    assert err[1].startswith("bids_stroke: error: sub-03: the commit journal ")
    assert err[2].startswith("bids_stroke: error: sub-04: ") and "symbolic link" in err[2]
    assert len(list(quarantine_dir(root).iterdir())) == 1
    assert (tmp_path / "precious").read_text() == "keep"
    # the most serious first: refused by state (65 before 73), then busy
    assert images.exit_code() == 65
    assert images.exit_code(inputs=64) == 64


def test_a_linked_state_folder_refuses_the_whole_run_and_holds_nothing(tmp_path):
    root = tmp_path / "out"
    (tmp_path / "elsewhere").mkdir()
    (root / ".bids_stroke").mkdir(parents=True)
    (root / ".bids_stroke" / "locks").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafeStateError, match="symbolic link"), _loop(root):
        pass
    assert not list((tmp_path / "elsewhere").iterdir())


def test_work_each_goes_on_after_a_failed_image(tmp_path, capsys):
    root = tmp_path / "out"
    folders: list[Path] = []

    def work(key: str, folder: Path) -> None:
        folders.append(folder)
        (folder / "scratch").write_text(key)
        if key == "sub-02":
            raise ValueError("its prediction changed since it was checked")

    with _loop(root, KEYS[:3]) as images:
        images.work_each(work, errors=(ValueError,), prefix="bids_stroke-test-")
    assert images.failed == ["sub-02"] and images.done == ["sub-01", "sub-03"]
    assert not any(f.exists() for f in folders)  # every temporary folder removed
    assert "bids_stroke: error: sub-02: its prediction changed" in capsys.readouterr().err
    assert images.exit_code(inputs=65, gaps=66) == 1  # a failed image comes first


def test_a_failed_write_stops_the_loop_with_exit_73(tmp_path):
    def work(key: str, folder: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(CLIError, match="cannot write into") as exc, _loop(tmp_path) as images:
        images.work_each(work, errors=(ValueError,), prefix="bids_stroke-test-")
    assert exc.value.exit_code == 73


def test_exit_codes_in_order(tmp_path):
    images = _loop(tmp_path)
    assert images.exit_code() == 0
    assert images.exit_code(gaps=66) == 66
    images.busy.append("sub-01")
    assert images.exit_code(gaps=66) == 75
    images.refused["sub-02"] = 73
    assert images.exit_code(gaps=66) == 73
    assert images.exit_code(inputs=65) == 65
    images.finished(["sub-03"])
    assert images.exit_code(inputs=65) == 1


def test_dataset_lock_held_elsewhere_is_75_and_a_link_73(tmp_path):
    root = tmp_path / "out"
    with dataset_locked(root, "run-a", "the dataset-level files"):  # this run holds it
        # another holder (its own descriptor), without the ten-minute wait
        with pytest.raises(CLIError, match="; another run is writing the exported datasets"
                           ) as exc, dataset_locked(root, "run-b", "the exported datasets",
                                                    wait=0):
            pass
    assert exc.value.exit_code == 75
    linked = tmp_path / "linked"
    (tmp_path / "elsewhere").mkdir()
    linked.mkdir()
    (linked / ".bids_stroke").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafeStateError), dataset_locked(linked, "run-a", "x"):
        pass
    assert not list((tmp_path / "elsewhere").iterdir())
