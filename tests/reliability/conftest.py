"""Shared fixtures of the reliability corpus: one tiny demo dataset, tiny models, CLI helpers.

Every participant run here uses a random-weight U-Net checkpoint written by a fixture (never the
bundled model), the 3 mm demo grid, ``--nprocs 1`` and the ``native``/``crude:2`` conditions, so
the whole ``tests/reliability/`` suite stays within a few minutes on 2 cores.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest

CONDITIONS = ["native", "crude:2"]
LABELS = ["native", "crude2"]
SUBJECTS = ["r001s001", "r001s002"]
ERROR_PREFIX = "bids_stroke: error:"
#: the subject report embeds the run id (a time stamp); everything else must be reproducible
RUN_UUID_RE = re.compile(rb"\d{8}-\d{6}_[0-9a-f]{8}")
#: ... and the full command line of the run (absolute paths of this test's folders)
COMMAND_RE = re.compile(rb"bids_stroke /[^<]*")


# --------------------------------------------------------------------------- data and models


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory) -> Path:
    """A 2-subject ATLAS-layout demo dataset on a 3 mm grid (generated once per session)."""
    from bids_stroke.demo import make_demo_dataset

    root = tmp_path_factory.mktemp("demo") / "bids"
    make_demo_dataset(root, n_subjects=2, seed=0, resolution_mm=3.0, progress=False)
    return root


@pytest.fixture
def make_bids(demo_root: Path, tmp_path: Path) -> Callable[..., Path]:
    """Copy the demo dataset into the test's tmp dir, keeping ``n_subjects`` subjects."""

    def _make(n_subjects: int = 1, name: str = "bids") -> Path:
        dst = tmp_path / name
        shutil.copytree(demo_root, dst)
        for sub in SUBJECTS[n_subjects:]:
            shutil.rmtree(dst / f"sub-{sub}")
        return dst

    return _make


def subject_files(bids: Path, subject: str = SUBJECTS[0]) -> tuple[Path, Path]:
    """(T1w, lesion mask) of a demo subject."""
    anat = bids / f"sub-{subject}" / "ses-1" / "anat"
    return next(anat.glob("*_T1w.nii.gz")), next(anat.glob("*_mask.nii.gz"))


def _tiny_checkpoint(path: Path, head_bias: float | None = None, seed: int = 0) -> Path:
    import torch

    from bids_stroke.model.checkpoint import save_checkpoint
    from bids_stroke.model.preprocess import PreprocessConfig
    from bids_stroke.model.unet import UNet3D, UNetConfig

    torch.manual_seed(seed)
    net = UNet3D(UNetConfig(base_channels=4, depth=2))
    if head_bias is not None:
        with torch.no_grad():
            net.head.weight.zero_()
            net.head.bias.fill_(head_bias)
    return save_checkpoint(path, net, PreprocessConfig(),
                           {"command": "tests/reliability fixture", "seed": seed})


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, Path]:
    """Tiny random-weight checkpoints: ``random``, ``none`` (predicts nothing), ``all``."""
    root = tmp_path_factory.mktemp("models")
    return {
        "random": _tiny_checkpoint(root / "random.pt"),
        "none": _tiny_checkpoint(root / "none.pt", head_bias=-30.0),
        "all": _tiny_checkpoint(root / "all.pt", head_bias=30.0),
    }


# --------------------------------------------------------------------------- running the CLI


@dataclass
class Result:
    code: int
    stderr: str
    stdout: str = ""


def run_inprocess(argv: Iterable[str | Path], capsys) -> Result:
    """``bids_stroke.cli.run.main`` in this process (argparse's SystemExit becomes a code)."""
    from bids_stroke.cli.run import main

    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse errors
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return Result(code, captured.err, captured.out)


def cli_command(argv: Iterable[str | Path]) -> list[str]:
    return [sys.executable, "-m", "bids_stroke.cli.run", *[str(a) for a in argv]]


def run_subprocess(argv: Iterable[str | Path], timeout: float = 300) -> Result:
    proc = subprocess.run(cli_command(argv), capture_output=True, text=True, timeout=timeout,
                          env=cli_env())
    return Result(proc.returncode, proc.stderr, proc.stdout)


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"NIPYPE_NO_ET": "1", "BIDS_STROKE_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                "PYTHONUNBUFFERED": "1"})
    return env


def participant_args(bids: Path, out: Path, work: Path, model: Path,
                     *extra: str | Path, conditions: Iterable[str] = CONDITIONS) -> list[str]:
    return [str(bids), str(out), "participant", "-w", str(work), "--nprocs", "1",
            "--omp-nthreads", "1", "--model", str(model), "--conditions", *conditions,
            *[str(e) for e in extra]]


# --------------------------------------------------------------------------- checks


def assert_error_line(stderr: str, substring: str) -> str:
    """A ``bids_stroke: error: ...`` line containing ``substring``, and no traceback."""
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [ln for ln in stderr.splitlines() if ln.startswith(ERROR_PREFIX)]
    assert lines, f"no '{ERROR_PREFIX}' line in stderr:\n{stderr[-3000:]}"
    hits = [ln for ln in lines if substring.lower() in ln.lower()]
    assert hits, f"no error line contains {substring!r}: {lines}"
    return hits[0]


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every path below ``root`` (and ``root``) with size, mtime (ns) and mode."""
    paths = [root, *root.rglob("*")] if root.exists() else []
    out = {}
    for p in paths:
        st = p.lstat()
        out[p.relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns, st.st_mode)
    return out


def _read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    assert rows, f"{path} is empty"
    header = rows[0]
    assert all(len(r) == len(header) for r in rows[1:]), f"{path}: ragged rows"
    return [dict(zip(header, r, strict=True)) for r in rows[1:]]


def read_tsv(path: Path) -> list[dict[str, str]]:
    return _read_tsv(path)


def assert_no_partial(out: Path) -> None:
    """No staging folder and no half-written temporary file anywhere under ``out``."""
    if not out.exists():
        return
    state = out / ".bids_stroke"
    for folder in ("staging", "journal"):
        left = list((state / folder).glob("*")) if (state / folder).is_dir() else []
        assert not left, f"{folder} left behind: {left}"
    for p in out.rglob("*"):
        assert not p.name.startswith(".staging-"), f"staging left behind: {p}"
        assert not (p.name.startswith(".") and p.name.endswith(".tmp")), f"temp file: {p}"
        assert not p.name.endswith(".tmp"), f"temp file: {p}"


def assert_committed_by_sha256(out: Path) -> set[str]:
    """Every file a subject manifest lists is there with its sha256 and size, and every file
    of a subject folder (crash logs aside) and every subject report is listed by one."""
    listed: set[str] = set()
    for path in sorted((out / ".bids_stroke" / "subjects").glob("*.json")):
        manifest = json.loads(path.read_text())
        for rel, info in manifest["files"].items():
            data = (out / rel).read_bytes()
            assert len(data) == info["size"], f"{rel}: size differs from {path.name}"
            assert hashlib.sha256(data).hexdigest() == info["sha256"], \
                f"{rel}: sha256 differs from {path.name}"
            listed.add(rel)
    found = {p.relative_to(out).as_posix() for p in out.glob("sub-*/**/*")
             if p.is_file() and "log" not in p.relative_to(out).parts[1:]}
    found |= {p.name for p in out.glob("sub-*.html")}
    assert found <= listed, f"outputs no manifest lists: {sorted(found - listed)[:5]}"
    return listed


def assert_out_complete(out: Path, labels: Iterable[str] = LABELS,
                        expect_subjects: Iterable[str] | None = None) -> list[str]:
    """``out`` is absent or holds only complete, readable subject outputs.

    Every committed file matches the sha256 and size its manifest records and nothing else
    lies in a subject folder (:func:`assert_committed_by_sha256`), every NIfTI decompresses
    fully, every JSON/TSV parses, and each subject folder with outputs has a probseg + mask
    (+ sidecars) for every condition label and, when there is a metrics table, one row per
    label. Returns the subjects with outputs.
    """
    assert_no_partial(out)
    if not out.exists():
        assert not list(expect_subjects or []), f"{out} missing"
        return []
    assert_committed_by_sha256(out)
    labels = list(labels)
    for p in out.rglob("*"):
        if p.is_file():
            _assert_readable(p)
    done = []
    for subdir in sorted(out.glob("sub-*")):
        if not subdir.is_dir():
            continue
        anat_files = [p for p in subdir.rglob("*") if p.is_file() and "log" not in
                      p.relative_to(subdir).parts]
        if not anat_files:
            continue  # only crash logs: the subject failed and left nothing else
        _assert_subject_complete(out, subdir, {p.name for p in anat_files}, labels)
        done.append(subdir.name[4:])
    if expect_subjects is not None:
        assert sorted(done) == sorted(expect_subjects), (done, list(expect_subjects))
    return done


def _assert_readable(p: Path) -> None:
    """A NIfTI decompresses fully and has data, a JSON or TSV file parses."""
    if p.name.endswith(".nii.gz"):
        with gzip.open(p) as fh:
            fh.read()  # raises on truncated streams
        assert np.asanyarray(nb.load(str(p)).dataobj).size > 0
    elif p.suffix == ".json":
        json.loads(p.read_text())
    elif p.suffix == ".tsv":
        _read_tsv(p)


def _assert_subject_complete(out: Path, subdir: Path, names: set[str],
                             labels: list[str]) -> None:
    """A probseg + mask with sidecars per condition label, the preprocessed image, one
    metrics row per label and the report of the subject folder ``subdir`` (its files:
    ``names``)."""
    for label in labels:
        for suffix in ("probseg", "mask"):
            hits = [n for n in names if f"_desc-{label}_{suffix}.nii.gz" in n]
            assert hits, f"{subdir.name}: no desc-{label} {suffix} among {sorted(names)}"
            for h in hits:
                assert h.replace(".nii.gz", ".json") in names, f"no sidecar for {h}"
    assert any(n.endswith("_desc-preproc_T1w.nii.gz") for n in names)
    for tsv in subdir.rglob("*_segmetrics.tsv"):
        rows = _read_tsv(tsv)
        assert sorted(r["desc"] for r in rows) == sorted(labels), tsv
    report = out / (f"{subdir.name}_ses-1.html")
    alt = out / f"{subdir.name}.html"
    assert report.is_file() or alt.is_file(), f"no report for {subdir.name}"


def output_digests(out: Path) -> dict[str, bytes]:
    """File contents below ``out`` to compare runs: logs/, the run state and crash logs are left
    out, and the run id and command line embedded in the HTML reports are blanked."""
    digests: dict[str, bytes] = {}
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out)
        if not p.is_file() or rel.parts[0] in ("logs", ".bids_stroke") or "log" in rel.parts:
            continue
        data = p.read_bytes()
        if p.suffix == ".html":
            data = COMMAND_RE.sub(b"COMMAND", RUN_UUID_RE.sub(b"RUN", data))
        digests[rel.as_posix()] = data
    return digests


def session_processes(sid: int) -> list[int]:
    """Processes of the session ``sid`` still alive (a run started with
    ``start_new_session=True`` and its workers)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == sid:
                    pids.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                continue
    return pids


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# --------------------------------------------------------------------------- shared reference run


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory, demo_root: Path, models: dict[str, Path]) -> dict:
    """One uninterrupted 2-subject run on a READ-ONLY copy of the demo dataset (subprocess).

    Shared by the read-only-input case, the interruption test (the uninterrupted run to compare
    with) and the determinism test (first of two runs).
    """
    base = tmp_path_factory.mktemp("reference")
    bids = base / "bids"
    shutil.copytree(demo_root, bids)
    for p in [bids, *bids.rglob("*")]:
        p.chmod(p.stat().st_mode & ~0o222)
    before = snapshot(bids)
    out, work = base / "out", base / "work"
    t0 = time.perf_counter()
    res = run_subprocess(participant_args(bids, out, work, models["random"]))
    return {"bids": bids, "out": out, "work": work, "result": res, "before": before,
            "seconds": time.perf_counter() - t0}
