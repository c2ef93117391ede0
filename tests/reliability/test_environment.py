"""Environment failures: a full disk, a file-size limit, a folder bids_stroke may not write.

Each ends with one ``bids_stroke: error:`` line naming the folder and the fix, exit 73, no
traceback, nothing half-written, the input untouched; the same command succeeds once the
cause is gone. A full disk is simulated without mounting anything (CI runs as root without
tmpfs): ``RLIMIT_FSIZE`` in the child makes every write past the limit fail (``EFBIG``, the
errno ``ulimit -f`` gives), wherever it is. Permissions are checked as a process without the
capabilities that let root ignore them (:func:`unprivileged`), so the test runs as root too.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import signal
import subprocess

import pytest

from bids_stroke.group.synthetic import make_synthetic_output, record_commits

from .conftest import (
    ERROR_PREFIX,
    SUBJECTS,
    Result,
    assert_error_line,
    assert_no_partial,
    cli_command,
    cli_env,
    participant_args,
    snapshot,
)

#: capabilities that let root write where permission bits forbid it (linux/capability.h)
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER = 1, 2, 3
PR_CAPBSET_DROP = 24


def _limit_file_size(limit: int):
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death by SIGXFSZ
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def _drop_root_powers() -> None:
    """In the child: as root, drop the capabilities that bypass permission bits from the
    bounding set, so the program exec'ed next obeys them like any user (what
    ``setpriv --bounding-set -dac_override,-dac_read_search,-fowner`` does)."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def _run(argv, *, preexec=None, timeout: float = 300) -> Result:
    proc = subprocess.run(cli_command(argv), capture_output=True, text=True, timeout=timeout,
                          env=cli_env(), preexec_fn=preexec)
    return Result(proc.returncode, proc.stderr, proc.stdout)


def unprivileged(argv) -> Result:
    return _run(argv, preexec=_drop_root_powers)


def _one_error(res: Result, *words: str) -> str:
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith(ERROR_PREFIX)]
    assert len(errors) == 1, errors
    for word in words:
        assert word in errors[0], (word, errors[0])
    return errors[0]


def test_full_work_disk(make_bids, tmp_path, models):
    """The work folder's disk fills: exit 73, the work folder and the fix named, no
    traceback, nothing half-written in OUT (re-runs after a failure resume: the signal
    tests). (A failed write in OUT's staging folder: :func:`test_staging_folder_not_writable`; on a
    real small file system: ``test_bad_inputs.test_disk_full`` where mounting works.)"""
    bids, work = make_bids(1), tmp_path / "work"
    before = snapshot(bids)
    out = tmp_path / "out"
    argv = participant_args(bids, out, work, models["random"])
    res = _run(argv, preexec=_limit_file_size(1_000_000))  # intermediates are 1.3 MB
    assert res.code == 73, res.stderr[-3000:]
    line = _one_error(res, f"cannot write into {work}", "ulimit -f")
    assert "File too large" in line
    assert not (out / f"sub-{SUBJECTS[0]}" / "ses-1").exists()
    assert_no_partial(out)
    assert snapshot(bids) == before


def test_output_folder_read_only_for_a_user(make_bids, tmp_path, models):
    """A read-only parent folder, as a process that obeys permission bits (even when the
    tests run as root): refused before any work, exit 73, nothing created."""
    bids = make_bids(1)
    parent = tmp_path / "readonly"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        res = unprivileged(participant_args(bids, parent / "out", tmp_path / "work",
                                            models["random"]))
    finally:
        parent.chmod(0o755)
    assert res.code == 73, res.stderr[-3000:]
    assert_error_line(res.stderr, "output directory")
    assert not (parent / "out").exists()


def test_staging_folder_not_writable(make_bids, tmp_path, models):
    """OUT is writable but its staging folder is not (a colleague's umask, a quota on a
    sub-folder): the commit fails, exit 73 naming that folder, nothing half-written."""
    bids, out = make_bids(1), tmp_path / "out"
    staging = out / ".bids_stroke" / "staging"
    staging.mkdir(parents=True)
    staging.chmod(0o555)
    try:
        res = unprivileged(participant_args(bids, out, tmp_path / "work", models["random"]))
    finally:
        staging.chmod(0o755)
    assert res.code == 73, res.stderr[-3000:]
    _one_error(res, f"cannot write into {staging}", "Permission denied", "permissions")
    assert_no_partial(out)
    assert not (out / f"sub-{SUBJECTS[0]}" / "ses-1").exists()


def test_group_on_a_full_disk(tmp_path):
    """Room for the inputs, not for the figures: exit 73, one line, and neither a group file
    nor a staging folder is left behind."""
    out = make_synthetic_output(tmp_path / "out", 6, seed=1, conditions=[
        ("native", "native", 1.0, "native"), ("crude2", "crude:2", 2.0, "crude")])
    record_commits(out)
    bids = tmp_path / "bids"
    bids.mkdir()
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    res = _run([bids, out, "group"], preexec=_limit_file_size(20_000))
    assert res.code == 73, res.stderr[-3000:]
    _one_error(res, f"cannot write into {out}", "ulimit -f")
    after = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert [p for p in after if p.startswith("group") or "figures" in p] == []
    assert not list((out / ".bids_stroke" / "staging").glob("*"))
    assert set(after) <= set(before) | {".bids_stroke/staging", ".bids_stroke/locks",
                                        ".bids_stroke/locks/_group.lock"}


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES,
                                  errno.EFBIG])
def test_every_environment_errno_is_one_line_with_its_fix(code: int, tmp_path):
    """The errors a full disk, a quota, a read-only mount, a permission or ``ulimit -f``
    give: recognised on the exception (with its cause) and in a nipype crash file, named with
    the folder and the fix; other errors are not."""
    from bids_stroke.core.write_errors import environment_error, environment_error_in_text

    path = tmp_path / "out" / "sub-01" / "x.nii.gz"
    try:
        raise RuntimeError("wrapped") from OSError(code, os.strerror(code), str(path))
    except RuntimeError as exc:
        failure = environment_error(exc)
    assert failure is not None and failure.errno == code
    line = failure.message([tmp_path / "out", tmp_path / "work"], "?")
    assert line.startswith(f"cannot write into {tmp_path / 'out'} ({os.strerror(code)}")
    crash = (f"Working directory: {tmp_path}/work/node\n\nTraceback:\n"
             f"OSError: [Errno {code}] {os.strerror(code)}\n")
    from_text = environment_error_in_text(crash)
    assert from_text is not None and from_text.filename == f"{tmp_path}/work/node"
    assert environment_error(OSError(errno.ENOENT, "No such file")) is None
    assert environment_error_in_text("OSError: [Errno 2] No such file: 'x'") is None
