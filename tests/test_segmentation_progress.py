"""Progress inside a long segmentation: forward passes counted as they happen, reported by
the node through a StepFile, shown on the progress line with an ETA from their measured
time (an nnU-Net ensemble on the CPU no longer shows "0/1 segmentations, ETA ?")."""

from __future__ import annotations

import io
import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import pytest

from bids_stroke.core.progress import ParticipantProgress, StepFile, running_steps


def test_forward_passes_are_counted_and_the_hook_removed() -> None:
    torch = pytest.importorskip("torch")
    from bids_stroke.model.steps import count_forward_passes

    net = torch.nn.Conv3d(1, 1, 1)
    seen: list[tuple[int, int | None]] = []
    with count_forward_passes(net, 3, lambda d, t: seen.append((d, t))):
        for _ in range(3):
            net(torch.zeros(1, 1, 2, 2, 2))
    net(torch.zeros(1, 1, 2, 2, 2))  # after the block: not counted
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]

    def broken(done, total):
        raise RuntimeError("display failed")

    with count_forward_passes(net, None, broken):  # a failing display never stops predicting
        net(torch.zeros(1, 1, 2, 2, 2))


@pytest.mark.slow
def test_nnunet_reports_every_forward_pass_of_its_prediction(nnunet_folder: Path) -> None:
    pytest.importorskip("nnunetv2")
    from bids_stroke.model.adapters import ChannelStack, open_model
    from tests.nnunet_tiny import AFFINE, phantom

    dwi, adc, _ = phantom(7)
    stack = ChannelStack(np.stack([dwi, adc]), AFFINE)
    seg = open_model(nnunet_folder, device="cpu")
    plain = seg.predict(stack)
    seen: list[tuple[int, int | None]] = []
    seg.progress = lambda done, total: seen.append((done, total))
    counted = seg.predict(stack)
    np.testing.assert_array_equal(counted, plain)  # counting changes nothing
    total = seen[0][1]
    assert isinstance(total, int) and total > 0
    # every pass, in order, and as many as announced: tiles x mirror flips x folds
    assert seen == [(i, total) for i in range(total + 1)]
    predictor = seg.predictor
    flips = 2 ** len(predictor.allowed_mirroring_axes or ()) if predictor.use_mirroring else 1
    assert total % (flips * len(predictor.list_of_parameters)) == 0
    # an image three times as long needs more sliding-window tiles: announced exactly too
    seen.clear()
    seg.predict(ChannelStack(np.concatenate([stack.data] * 3, axis=1), AFFINE))
    longer = seen[0][1]
    assert longer > total and seen == [(i, longer) for i in range(longer + 1)]


def _record(folder: Path, done: int, total: int, seconds: float, pid: int | None = None) -> None:
    now = time.time()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{pid or os.getpid()}-1.json").write_text(json.dumps(
        {"pid": pid or os.getpid(), "done": done, "total": total, "started": now - seconds,
         "updated": now}))


def test_eta_from_the_measured_time_per_forward_pass(tmp_path: Path) -> None:
    steps = tmp_path / "progress"
    prog = ParticipantProgress(["sub_a_wf"], 2, mode="lines", steps_dir=steps,
                               stream=io.StringIO())
    prog.start()
    try:
        assert np.isnan(prog.eta())  # nothing measured yet: "ETA ?"
        _record(steps, 30, 120, 60.0)  # 2 s per pass: 180 s left in this one, 240 s the next
        assert prog.eta() == pytest.approx(180 + 240, rel=0.02)
        text = prog.status_text()
        assert "0/2 segmentations" in text and "running: 30/120 forward passes" in text
        assert "ETA 7m00s" in text
        _record(steps, 30, 120, 60.0, pid=2**22 + 12345)  # a dead process: ignored
        assert len(running_steps(steps)) == 1
    finally:
        prog.close()


def test_step_file_is_written_throttled_and_removed(tmp_path: Path) -> None:
    path = tmp_path / "progress" / "node.json"
    steps = StepFile(path, min_interval_s=3600)
    steps(0, 10)
    first = json.loads(path.read_text())
    assert (first["done"], first["total"], first["pid"]) == (0, 10, os.getpid())
    steps(5, 10)  # within the interval: not rewritten
    assert json.loads(path.read_text())["done"] == 0
    steps(10, 10)  # the last step always is
    assert json.loads(path.read_text())["done"] == 10
    steps.remove()
    steps.remove()
    assert not path.exists()


def test_progress_line_shows_the_running_segmentation(tmp_path: Path, caplog) -> None:
    steps = tmp_path / "progress"
    _record(steps, 45, 120, 90.0)
    prog = ParticipantProgress(["sub_a_wf"], 1, mode="lines", interval_s=0.01,
                               steps_dir=steps)
    with caplog.at_level(logging.INFO, logger="bids_stroke.progress"):
        prog.start()
        time.sleep(0.05)
        prog._update(tick=True)
        prog.close()
    lines = [r.getMessage() for r in caplog.records if "running:" in r.getMessage()]
    assert lines and "0/1 segmentations (0%) (running: 45/120 forward passes)" in lines[-1]
    assert "ETA 2m30s" in lines[-1] or "ETA 2m2" in lines[-1]  # 75 passes x 2 s
