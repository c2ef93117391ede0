"""Build the real Dockerfile and run the image on the demo dataset (slow, root, marker
``image``).

No container registry is reachable from CI, so the base image is made locally:
``mmdebstrap --variant=minbase bookworm`` with Debian's python3.11 + venv (``python`` is
``python3``), imported with ``buildah``. The repository's Dockerfile is then built unchanged
with ``buildah bud --storage-driver vfs --isolation chroot`` and these build arguments only:
``BASE_IMAGE`` (the local base), ``WHEELHOUSE`` (the locked wheels, downloaded once by
``pip download --require-hashes`` and served on 127.0.0.1: the lock's hashes still apply),
``TORCH_INDEX_URL=`` and ``ALLOW_TEMPLATE_STANDIN=1`` (TemplateFlow is unreachable here).

The image then runs through its own ENTRYPOINT with ``buildah run --isolation chroot`` (podman
fails on setrlimit here) under ``unshare -n`` (no network at all) as its non-root USER: the 2 mm
demo dataset mounted read-only, an output folder mounted read-write, ``participant`` then
``group``; the group report must exist. Users' models then run in the image, offline: the
bundled model exported to ONNX by the image's own exporter gives the checkpoint's masks exactly
(fp32), and a tiny nnU-Net v2 folder saved by the trainer variant ``nnUNetTrainer_5epochs`` (in
nnunetv2's ``variants/training_length`` subpackage; ``nnunet_variant_folders``, DWI + ADC)
segments an ISLES'22-like dataset in native space through nnunetv2, with exactly the mask of
``nnUNetPredictor.predict_from_files`` in the image (``tests/nnunet_reference.py``). torchvision in
the image is either absent (the CPU locks leave it out) or imports and runs ``ops.nms``
(``tests/torchvision_check.py``).
Labels, the template record, the refusal of the stand-in without ALLOW_TEMPLATE_STANDIN and
the image size are checked and recorded with the timings.

The base image tar and the wheelhouse are cached in ``$BIDS_STROKE_TEST_CACHE`` (default
``~/.cache/bids_stroke-tests``) because they are inputs, not what is tested; the build and the
run always happen from scratch in a temporary storage folder that is deleted afterwards.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from tests.nnunet_tiny import AFFINE, SHAPE, VARIANTS, write_isles_bids
from tests.test_lock import parse_lock

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
#: the Dockerfile's default lock: CPU torch with the nnunet and onnx extras
LOCK = ROOT / "requirements" / "lock-nnunet-onnx.txt"
BASE_PACKAGES = ("python3.11", "python3.11-venv", "python3-venv", "python-is-python3")
APT_PACKAGES = ("buildah", "mmdebstrap", "uidmap")
IMAGE = "localhost/bids_stroke:image-test"
#: the trainer variant whose model runs in the image
VARIANT = "nnUNetTrainer_5epochs"
BASE = "localhost/bids_stroke-test-base:bookworm"

pytestmark = [pytest.mark.slow, pytest.mark.image]


def cache_dir() -> Path:
    path = Path(os.environ.get("BIDS_STROKE_TEST_CACHE",
                               Path.home() / ".cache" / "bids_stroke-tests"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _run(argv: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)


def _require_tools() -> None:
    if os.geteuid() != 0:
        pytest.skip("building with buildah --isolation chroot and vfs storage needs root")
    missing = [t for t in ("buildah", "mmdebstrap") if shutil.which(t) is None]
    if missing and shutil.which("apt-get"):
        _run(["apt-get", "install", "-y", "-q", *APT_PACKAGES], timeout=900,
             env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        missing = [t for t in ("buildah", "mmdebstrap") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} missing: apt-get install {' '.join(APT_PACKAGES)}")


def base_rootfs() -> Path:
    """A minimal Debian bookworm root filesystem with python3.11 + venv, as a folder (cached;
    a marker beside it says it is complete, so an interrupted build is redone)."""
    key = hashlib.sha256(",".join(BASE_PACKAGES).encode()).hexdigest()[:12]
    root = cache_dir() / f"base-bookworm-{key}"
    done = cache_dir() / f"base-bookworm-{key}.complete"
    if not done.is_file():
        tmp = cache_dir() / f"base-bookworm-{key}.partial"  # no archive suffix: a folder
        for stale in (tmp, root, root.with_suffix(".tar"), root.with_suffix(".tmp")):
            if stale.is_dir():
                shutil.rmtree(stale)
        proc = _run(["mmdebstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
                     "bookworm", str(tmp)], timeout=1800)
        if proc.returncode != 0:
            pytest.skip(f"mmdebstrap could not build a bookworm base (Debian mirror "
                        f"unreachable?): {proc.stderr[-800:]}")
        tmp.replace(root)
        done.touch()
    return root


def wheelhouse() -> Path:
    """Every file of the image's lock file, downloaded once with its hash checked."""
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()[:12]
    folder = cache_dir() / f"wheelhouse-{digest}"
    done = folder / ".complete"
    if not done.is_file():
        folder.mkdir(exist_ok=True)
        proc = _run([sys.executable, "-m", "pip", "download", "--quiet", "--require-hashes",
                     "--no-deps", "-r", str(LOCK), "-d", str(folder)], timeout=3600)
        if proc.returncode != 0:
            pytest.skip(f"pip download of the locked wheels failed: {proc.stderr[-800:]}")
        done.write_text("")
    return folder


@pytest.fixture
def served_wheels() -> Iterator[str]:
    """The wheelhouse as a find-links page on 127.0.0.1 (the chroot build shares the host's
    network namespace)."""
    handler = functools.partial(_QuietHandler, directory=str(wheelhouse()))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no access log on stderr
        pass


class Buildah:
    """buildah with private vfs storage under ``root`` (removed by :meth:`destroy`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.base = ["buildah", "--storage-driver", "vfs", "--root", str(root / "storage"),
                     "--runroot", str(root / "run")]
        self.containers: list[str] = []

    def __call__(self, *args: str, timeout: float = 600, check: bool = True,
                 prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
        proc = _run([*prefix, *self.base, *args], timeout=timeout)
        if check:
            assert proc.returncode == 0, f"buildah {args[0]}: {proc.stdout[-3000:]}" \
                                         f"{proc.stderr[-3000:]}"
        return proc

    def import_rootfs(self, rootfs: Path, name: str) -> None:
        ctr = self("from", "scratch").stdout.strip()
        self("add", ctr, str(rootfs), "/")
        self("config", "--cmd", "/bin/bash", ctr)
        self("commit", "--rm", "--quiet", ctr, name)

    def container(self, image: str) -> str:
        ctr = self("from", "--quiet", "--pull-never", image).stdout.strip()
        self.containers.append(ctr)
        return ctr

    def destroy(self) -> None:
        for ctr in self.containers:
            self("rm", ctr, check=False)
        self("rmi", "--all", "--force", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def buildah(tmp_path: Path) -> Iterator[Buildah]:
    _require_tools()
    tool = Buildah(tmp_path / "buildah")
    try:
        yield tool
    finally:
        tool.destroy()


def test_dockerfile_builds_and_runs_the_demo(buildah: Buildah, served_wheels: str,
                                             nnunet_variant_folders: dict[str, Path],
                                             tmp_path: Path):
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    buildah.import_rootfs(base_rootfs(), BASE)
    timings["base"] = time.monotonic() - t0

    t1 = time.monotonic()
    buildah(
        "bud", "--isolation", "chroot", "--format", "docker", "--quiet",
        "-f", str(ROOT / "Dockerfile"),
        "--build-arg", f"BASE_IMAGE={BASE}",
        "--build-arg", f"WHEELHOUSE={served_wheels}",
        "--build-arg", "TORCH_INDEX_URL=",
        "--build-arg", "ALLOW_TEMPLATE_STANDIN=1",
        "--build-arg", "VCS_REF=test",
        "-t", IMAGE, str(ROOT), timeout=3600)
    timings["build"] = time.monotonic() - t1

    config = json.loads(buildah("inspect", "--type", "image", IMAGE).stdout)
    oci = config["OCIv1"]["config"]
    assert config["Docker"]["config"]["Healthcheck"]["Test"] == ["NONE"]
    labels = oci["Labels"]
    assert labels["org.bids_stroke.template"] == "MNI152NLin2009aSym"
    assert labels["org.bids_stroke.template.standin"] == "1"
    assert labels["org.opencontainers.image.base.name"] == BASE
    assert labels["org.bids_stroke.lock"] == LOCK.relative_to(ROOT).as_posix()
    assert oci["User"] == "1000:1000"
    entrypoint = oci["Entrypoint"]
    assert entrypoint == ["bids_stroke"]
    (image,) = json.loads(buildah("images", "--json", IMAGE).stdout)
    size = image["size"]  # buildah's own rounding, e.g. "1.89 GB"

    # the demo dataset (made outside the image: this test is about the image, not the demo)
    t2 = time.monotonic()
    bids, out, work = tmp_path / "bids", tmp_path / "out", tmp_path / "work"
    models, isles = tmp_path / "models", tmp_path / "isles"
    demo = _run([str(BIN / "bids_stroke"), "demo", str(bids), "--n-subjects", "2",
                 "--resolution", "2", "--seed", "0"], timeout=600)
    assert demo.returncode == 0, demo.stderr[-2000:]
    # a user's nnU-Net v2 folder (DWI + ADC, native space, a trainer variant in a subpackage),
    # a dataset in ISLES'22's layout, and the two check scripts that run inside the image
    shutil.copytree(nnunet_variant_folders[VARIANT], models / "nnunet")
    write_isles_bids(isles)
    for script in ("torchvision_check.py", "nnunet_reference.py"):
        shutil.copy(ROOT / "tests" / script, models / script)
    out.mkdir()
    work.mkdir()
    for folder in (out, work):  # the image's user (1000) writes there; the input stays root's
        os.chown(folder, 1000, 1000)
    before = sorted((p.relative_to(bids), p.stat().st_mtime_ns) for p in bids.rglob("*"))
    timings["demo"] = time.monotonic() - t2

    ctr = buildah.container(IMAGE)
    mounts = ["-v", f"{bids}:/data:ro", "-v", f"{out}:/out", "-v", f"{work}:/work",
              "-v", f"{models}:/models:ro", "-v", f"{isles}:/isles:ro"]
    # chroot isolation shares the host's network; `unshare -n` takes it away: the image must
    # run offline (templates and model inside, TEMPLATEFLOW_AUTOUPDATE=0, NIPYPE_NO_ET=1)
    offline = ("unshare", "-n")
    assert _run([*offline, "true"], timeout=60).returncode == 0, "root can unshare -n"

    def run(*argv: str, timeout: float = 1800) -> subprocess.CompletedProcess:
        return buildah("run", "--isolation", "chroot", *mounts, ctr, "--", *argv,
                       timeout=timeout, check=False, prefix=offline)

    who = run("id", "-u")
    assert who.returncode == 0 and who.stdout.strip() == "1000", who.stdout + who.stderr
    refused = run("touch", "/data/written-by-the-container")
    assert refused.returncode != 0, "the dataset mount must be read-only"
    # torchvision: absent (the lock leaves it out) or working, never installed but broken
    vision = run("python", "/models/torchvision_check.py")
    assert vision.returncode == 0, vision.stdout + vision.stderr
    expected = "ok " if "torchvision" in parse_lock(LOCK) else "absent"
    assert vision.stdout.strip().startswith(expected), vision.stdout
    info = run("python", "-m", "bids_stroke.templates", "info")
    assert json.loads(info.stdout)["source"] == "templateflow-standin", info.stdout[-2000:]
    # what the build runs with ALLOW_TEMPLATE_STANDIN=0 fails loudly without TemplateFlow
    strict = run("env", "BIDS_STROKE_OFFLINE=1", "python", "-m", "bids_stroke.templates",
                 "fetch", "--no-standin", "--dest", "/work/tf")
    assert strict.returncode == 1 and "ALLOW_TEMPLATE_STANDIN=1" in strict.stderr

    t3 = time.monotonic()
    # fp32, so that the ONNX export below must give exactly these masks
    participant = run(*entrypoint, "/data", "/out", "participant", "-w", "/work",
                      "--conditions", "native", "crude:2", "--nprocs", "1", "--seed", "0",
                      "--precision", "fp32")
    timings["participant"] = time.monotonic() - t3
    assert participant.returncode == 0, participant.stdout[-3000:] + participant.stderr[-3000:]
    t4 = time.monotonic()
    group = run(*entrypoint, "/data", "/out", "group", "--seed", "0")
    timings["group"] = time.monotonic() - t4
    assert group.returncode == 0, group.stdout[-3000:] + group.stderr[-3000:]

    assert (out / "group_report.html").is_file()
    assert len(list(out.glob("sub-*/**/*_segmetrics.tsv"))) == 2
    owners = {p.stat().st_uid for p in out.rglob("*")}
    assert owners == {1000}, f"outputs written by the image's non-root user, not {owners}"

    # users' models, offline, with the image's own packages: the bundled model exported to ONNX
    # by the image's exporter and run by onnxruntime gives the same masks as the checkpoint;
    # the nnU-Net v2 folder runs through nnunetv2 on the DWI + ADC of an ISLES'22-like dataset
    t5 = time.monotonic()
    export = run(*entrypoint, "model", "export", "--onnx", "bundled", "/work/bundled.onnx")
    assert export.returncode == 0, export.stderr[-3000:]
    onnx = run(*entrypoint, "/data", "/work/out-onnx", "participant", "-w", "/work/w-onnx",
               "--model", "/work/bundled.onnx", "--conditions", "native", "crude:2",
               "--nprocs", "1", "--seed", "0")
    assert onnx.returncode == 0, onnx.stdout[-3000:] + onnx.stderr[-3000:]
    masks = sorted(out.glob("sub-*/**/*_mask.nii.gz"))
    assert len(masks) == 4
    for mask in masks:
        twin = work / "out-onnx" / mask.relative_to(out)
        assert np.array_equal(np.asarray(nib.load(twin).dataobj),
                              np.asarray(nib.load(mask).dataobj)), twin
    timings["onnx"] = time.monotonic() - t5
    t6 = time.monotonic()
    nnunet = run(*entrypoint, "/isles", "/work/out-nnunet", "participant", "group",
                 "-w", "/work/w-nnunet", "--model", "/models/nnunet", "--modality", "dwi",
                 "--conditions", "native", "crude:2", "--nprocs", "1", "--seed", "0")
    assert nnunet.returncode == 0, nnunet.stdout[-3000:] + nnunet.stderr[-3000:]
    timings["nnunet"] = time.monotonic() - t6
    probs = sorted((work / "out-nnunet").glob("sub-*/ses-*/dwi/*_desc-*_probseg.nii.gz"))
    assert len(probs) == 4
    for prob in probs:  # native space: every output on the input's 2 mm grid
        img = nib.load(prob)
        assert img.shape == SHAPE and np.allclose(img.affine, AFFINE), prob
    side = json.loads(probs[0].with_name(probs[0].name.replace(".nii.gz", ".json"))
                      .read_text())
    assert side["SegmentationModel"]["kind"] == "nnunet"
    assert side["SegmentationModel"]["trainer"] == VARIANT
    assert side["SegmentationModel"]["network_builder"] == "nnUNetTrainer"
    assert (work / "out-nnunet" / "group_report.html").is_file()
    # ... with nnUNetPredictor's own mask, in the image
    sub = "sub-strokecase0001/ses-0001/dwi/sub-strokecase0001_ses-0001"
    parity = run("python", "/models/nnunet_reference.py", "/models/nnunet", "/work/nnunet-ref",
                 f"/isles/{sub}_dwi.nii.gz", f"/isles/{sub}_adc.nii.gz",
                 "--trainer-module", VARIANTS[VARIANT])
    assert parity.returncode == 0, parity.stdout[-3000:] + parity.stderr[-3000:]
    result = json.loads(parity.stdout.strip().splitlines()[-1])
    assert result["trainer"] == VARIANT and result["masks_equal"], result
    assert 0 < result["lesion_voxels"] < result["voxels"], result

    after = sorted((p.relative_to(bids), p.stat().st_mtime_ns) for p in bids.rglob("*"))
    assert after == before, "the input dataset was modified"

    timings["total"] = time.monotonic() - t0
    record = {"image_size": size, "seconds": {k: round(v) for k, v in timings.items()}}
    print(f"\nimage build + run: {json.dumps(record)}")
    (tmp_path / "image_test.json").write_text(json.dumps(record, indent=1))
