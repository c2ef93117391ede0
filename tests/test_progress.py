"""The participant progress reporter and the CLI logging setup, driven with fake nipype nodes."""

from __future__ import annotations

import io
import logging
import pickle
import warnings
from dataclasses import dataclass

import pytest

from bids_stroke.core import progress as P
from bids_stroke.core.progress import ParticipantProgress, format_duration, setup_logging

SUBJECTS = ["single_subject_r001s001_ses_1_wf", "single_subject_r001s002_ses_1_wf"]


@dataclass
class FakeNode:
    """What the callback reads of a nipype node: name, fullname, itername."""

    fullname: str
    itername: str

    @property
    def name(self) -> str:
        return self.fullname.split(".")[-1]


def unet(subject: str, cond: int) -> FakeNode:
    hier = f"bids_stroke_wf.{subject}.segment_wf"
    return FakeNode(f"{hier}.unet", f"{hier}.a{cond}.unet")


def other(subject: str, name: str = "degrade", cond: int = 0) -> FakeNode:
    hier = f"bids_stroke_wf.{subject}.degrade_wf"
    return FakeNode(f"{hier}.{name}", f"{hier}.a{cond}.{name}")


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(P.time, "monotonic", c)
    return c


def run_unit(progress: ParticipantProgress, node: FakeNode) -> None:
    progress(node, "start")
    progress(node, "end")


def test_counts_only_unet_nodes_per_subject_and_condition(clock: Clock) -> None:
    prog = ParticipantProgress(SUBJECTS, 3, mode="off")
    with prog:
        run_unit(prog, other(SUBJECTS[0]))
        assert prog.completed == 0
        run_unit(prog, unet(SUBJECTS[0], 0))
        run_unit(prog, unet(SUBJECTS[0], 0))  # the same node twice counts once
        run_unit(prog, unet(SUBJECTS[1], 2))
        assert prog.completed == 2 and prog.total == 6
        assert prog.done_units[SUBJECTS[0]] == {unet(SUBJECTS[0], 0).itername}
    assert prog.failed == set()


def writer(subject: str) -> FakeNode:
    hier = f"bids_stroke_wf.{subject}.outputs_wf"
    return FakeNode(f"{hier}.write_derivatives", f"{hier}.write_derivatives")


def test_eta_from_computed_steps_only_writing_included(clock: Clock) -> None:
    prog = ParticipantProgress(SUBJECTS, 2, mode="off").start()
    assert prog.eta() != prog.eta()  # NaN before any unit ended
    prog(unet(SUBJECTS[0], 0), "end")  # cached: "end" without "start" (MultiProc)
    prog(unet(SUBJECTS[0], 1), "end")
    assert prog.cached == 2 and prog.completed == 2
    clock.t += 40.0
    run_unit(prog, writer(SUBJECTS[0]))  # subject 0 written: one computed step in 40 s
    # left: subject 1's two segmentations and its writing, at 40 s a step
    assert prog.eta() == pytest.approx(120.0)
    clock.t += 40.0
    run_unit(prog, unet(SUBJECTS[1], 0))
    assert prog.eta() == pytest.approx(80.0)
    assert "3/4 segmentations (75%)" in prog.status_text()
    assert "elapsed 1m20s, ETA 1m20s" in prog.status_text()
    clock.t += 40.0
    run_unit(prog, unet(SUBJECTS[1], 1))
    # every segmentation done, the writing of subject 1 left: still an ETA
    assert prog.eta() == pytest.approx(40.0)
    assert prog.status_text().endswith("(100%), elapsed 2m00s, writing outputs, ETA 40s")
    run_unit(prog, writer(SUBJECTS[1]))
    assert prog.eta() == 0.0
    assert prog.status_text().endswith("(100%), elapsed 2m00s, writing outputs")


def test_cached_subjects_count_as_cached_and_are_no_work(clock: Clock) -> None:
    prog = ParticipantProgress(SUBJECTS, 3, mode="off").start()
    prog.mark_cached(SUBJECTS[0])
    assert prog.cached == 3 and prog.completed == 3 and prog.segmented == 3
    clock.t += 10.0
    run_unit(prog, unet(SUBJECTS[1], 0))
    assert prog.eta() == pytest.approx(30.0)  # 2 segmentations + writing of subject 1 only


def test_linear_plugin_cached_node_is_counted_as_cached(tmp_path, clock: Clock) -> None:
    """nipype's Linear plugin reports "start" for cached nodes too: a unit whose result file
    did not change between its start and its end came from the cache."""
    import os

    class DiskNode(FakeNode):
        def output_dir(self) -> str:
            return str(tmp_path / self.itername)

    cached, computed = (DiskNode(n.fullname, n.itername) for n in
                        (unet(SUBJECTS[0], 0), unet(SUBJECTS[0], 1)))
    for node in (cached, computed):
        os.makedirs(node.output_dir())
        with open(os.path.join(node.output_dir(), "result_unet.pklz"), "wb") as fh:
            fh.write(b"old")
    prog = ParticipantProgress(SUBJECTS, 2, mode="off").start()
    run_unit(prog, cached)
    prog(computed, "start")
    result = os.path.join(computed.output_dir(), "result_unet.pklz")
    with open(tmp_path / "new", "wb") as fh:  # the node ran: its result file is replaced
        fh.write(b"new")
    os.replace(tmp_path / "new", result)
    prog(computed, "end")
    assert prog.cached == 1 and prog.segmented == 2


def test_failed_subject_is_recorded_and_its_units_count_as_finished(clock: Clock) -> None:
    prog = ParticipantProgress(SUBJECTS, 2, mode="off").start()
    run_unit(prog, unet(SUBJECTS[1], 0))
    node = other(SUBJECTS[1], "metrics")
    prog(node, "start")
    prog(node, "exception")
    prog(FakeNode("bids_stroke_wf.unrelated.node", "bids_stroke_wf.unrelated.node"), "exception")
    assert prog.failed == {SUBJECTS[1]}
    assert prog.completed == 2  # subject 2: both units accounted for (1 done, 1 given up)
    assert prog.segmented == 1
    assert "1 subject(s) failed" in prog.status_text()


def test_subject_match_is_by_whole_name_component() -> None:
    names = ["single_subject_01_wf", "single_subject_010_wf"]
    prog = ParticipantProgress(names, 1, mode="off")
    assert prog.subject_of(unet("single_subject_010_wf", 0)) == "single_subject_010_wf"
    assert prog.subject_of(unet("single_subject_01_wf", 0)) == "single_subject_01_wf"
    assert prog.subject_of(FakeNode("x.single_subject_0_wf.unet", "")) is None


def test_lines_mode_every_decile_and_interval_then_summary(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bids_stroke.progress")
    subjects = [f"single_subject_{i:02d}_wf" for i in range(10)]
    prog = ParticipantProgress(subjects, 2, mode="lines", interval_s=30.0)
    with prog.start():
        for i, sub in enumerate(subjects):
            clock.t += 1.0
            run_unit(prog, unet(sub, 0))  # 5 %, 15 %, ...: a line at each new 10 %
            run_unit(prog, unet(sub, 1))
            if i == 4:
                clock.t += 31.0
                prog(other(sub), "end")  # no unit, but the interval has passed
                prog._update()
    lines = [r.getMessage() for r in caplog.records if r.name == "bids_stroke.progress"]
    assert lines[0].startswith("Progress: 0/20 segmentations (10 subject(s) x 2 condition(s))")
    progress_lines = [m for m in lines[1:] if m.startswith("Progress: ")]
    assert [m.split()[1] for m in progress_lines] == [
        "2/20", "4/20", "6/20", "8/20", "10/20", "10/20", "12/20", "14/20", "16/20", "18/20",
    ]
    assert lines[-1].startswith("Progress summary: 20/20 segmentations in 41s")
    assert lines[-1].endswith("(0 cached); 10/10 subject(s) ok")
    assert len(lines) == 12


def test_keepalive_thread_logs_during_silence(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bids_stroke.progress")
    prog = ParticipantProgress(SUBJECTS, 1, mode="lines", interval_s=0.05)
    import time

    with prog.start():
        time.sleep(0.5)  # the thread wakes every min(interval, 5 s)
    msgs = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("Progress: 0/2 segmentations (0%), elapsed") for m in msgs)


def test_bar_mode_writes_a_tqdm_bar_to_the_stream(clock: Clock) -> None:
    stream = io.StringIO()
    prog = ParticipantProgress(SUBJECTS, 1, stream=stream, mode="bar")
    with prog:
        run_unit(prog, unet(SUBJECTS[0], 0))
        run_unit(prog, unet(SUBJECTS[1], 0))
    text = stream.getvalue()
    assert "participant: 100%" in text and "2/2 segmentations" in text and "done" in text


def test_silent_when_never_called(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bids_stroke.progress")
    with ParticipantProgress(SUBJECTS, 1, mode="lines") as prog:
        pass
    assert prog._t0 is None and not caplog.records


def test_auto_mode_is_lines_when_not_a_terminal() -> None:
    assert ParticipantProgress(SUBJECTS, 1, stream=io.StringIO())._resolved_mode() == "lines"


def test_picklable_mid_run_and_copy_is_inert(clock: Clock) -> None:
    prog = ParticipantProgress(SUBJECTS, 2, stream=io.StringIO(), mode="bar").start()
    run_unit(prog, unet(SUBJECTS[0], 0))
    copy = pickle.loads(pickle.dumps(prog))
    prog.close()
    assert copy.done_units == prog.done_units and copy.names == SUBJECTS
    assert copy._bar is None and copy._thread is None


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        ParticipantProgress(SUBJECTS, 0)
    with pytest.raises(ValueError):
        ParticipantProgress(SUBJECTS, 1, interval_s=0)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59.4, "59s"), (61, "1m01s"), (3599, "59m59s"), (3720, "1h02m"),
     (float("nan"), "?"), (-1, "?")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, warnings.showwarning)
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    warnings.showwarning = saved[2]


def test_setup_logging_format_levels_and_warnings(restore_logging) -> None:
    stream = io.StringIO()
    setup_logging(0, stream=stream, workers=False)
    logging.getLogger("bids_stroke.templates").warning("using a STAND-IN for tpl-X")
    logging.getLogger("bids_stroke.workflow").info("running")
    logging.getLogger("bids_stroke.workflow").debug("hidden")
    logging.getLogger("nipype.workflow").info("[Node] Setting-up")  # chatter: hidden
    logging.getLogger("nipype.workflow").warning("node warning")
    logging.getLogger("bidsschematools.schema").info("Loading schema")  # hidden
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = P._showwarning
        warnings.warn("something odd\nsecond line", UserWarning, stacklevel=1)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4, lines
    assert all(" [bids_stroke] " in line for line in lines)
    assert lines[0].endswith("WARNING: using a STAND-IN for tpl-X")
    assert lines[1].endswith("INFO: running")
    assert lines[2].endswith("WARNING: nipype.workflow: node warning")
    assert "WARNING: UserWarning: something odd (test_progress.py:" in lines[3]


def test_setup_logging_verbose_shows_nipype_nodes(restore_logging) -> None:
    stream = io.StringIO()
    setup_logging(1, stream=stream, workers=False)
    logging.getLogger("nipype.workflow").info("[Node] Setting-up")
    logging.getLogger("bids_stroke.x").debug("detail")
    logging.getLogger("bidsschematools").info("schema")  # still hidden at -v
    text = stream.getvalue()
    assert "nipype.workflow: [Node] Setting-up" in text and "detail" in text
    assert "schema" not in text


def test_worker_configuration_from_environment(restore_logging, monkeypatch) -> None:
    monkeypatch.delenv(P.ENV_VERBOSITY, raising=False)
    root = logging.getLogger()
    before = list(root.handlers)
    P.configure_from_environment()  # no variable: nothing changes
    assert root.handlers == before
    monkeypatch.setenv(P.ENV_VERBOSITY, "0")
    P.configure_from_environment()
    assert len(root.handlers) == 1 and isinstance(root.handlers[0], P._Handler)
    assert logging.getLogger("nipype.workflow").level == logging.WARNING


def test_module_does_not_import_nipype() -> None:
    import subprocess
    import sys

    code = "import sys, bids_stroke.core.progress; print('nipype' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
