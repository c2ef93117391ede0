"""The scheduler's memory figures (bids_stroke.core.resources) against the peak resident memory
of a worker doing the same work in a fresh process (Linux ``VmHWM``, which exec resets): each
estimate must cover the measured peak without asking for more than ~2.5x of it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bids_stroke.core.resources import degrade_mem_gb, metrics_mem_gb

SHAPE = (197, 233, 189)  # MNI152NLin2009aSym at 1 mm

_HWM = """
import re
def hwm_gb():
    with open("/proc/self/status") as f:
        return int(re.search(r"VmHWM:\\s+(\\d+) kB", f.read()).group(1)) * 1024 / 1e9
"""

_DEGRADE = _HWM + """
import os, sys, numpy as np, nibabel as nib
from nipype.pipeline import engine  # what a nipype worker has imported
from bids_stroke.interfaces.degrade import DegradeImage
shape = {shape}
rng = np.random.default_rng(0)
path = os.path.join(sys.argv[1], "image.nii")
image = rng.standard_normal(shape, dtype=np.float32) * 20 + 100
nib.Nifti1Image(image, np.eye(4)).to_filename(path)
del image
os.chdir(sys.argv[1])
DegradeImage(in_file=path, condition="{condition}").run()
print(hwm_gb())
"""

_METRICS = _HWM + """
import numpy as np
from nipype.pipeline import engine
from bids_stroke.metrics.compute import compute_metrics
shape = {shape}
ref = np.zeros(shape, np.uint8); ref[60:110, 80:140, 70:120] = 1
pred = np.zeros(shape, np.uint8); pred[65:112, 85:138, 72:118] = 1
pred[2:6, 2:6, 2:6] = 1; pred[-6:-2, -6:-2, -6:-2] = 1  # far false positives (worst case)
compute_metrics(ref, pred, (1.0, 1.0, 1.0))
print(hwm_gb())
"""


def _measure(code: str, *args: str) -> float:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         check=True, timeout=600)
    return float(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("condition", ["kspace:2", "linear:2", "thick:5"])
def test_degrade_estimate_covers_the_measured_peak(tmp_path, condition) -> None:
    measured = _measure(_DEGRADE.format(shape=SHAPE, condition=condition), str(tmp_path))
    estimate = degrade_mem_gb(int(SHAPE[0] * SHAPE[1] * SHAPE[2]))
    assert measured <= estimate <= 2.5 * measured, (condition, measured, estimate)


def test_metrics_estimate_covers_the_measured_peak() -> None:
    measured = _measure(_METRICS.format(shape=SHAPE))
    estimate = metrics_mem_gb(int(SHAPE[0] * SHAPE[1] * SHAPE[2]))
    assert measured <= estimate <= 2.5 * measured, (measured, estimate)


_SEGMENT = _HWM + """
import os, sys, numpy as np, nibabel as nib
from nipype.pipeline import engine
from bids_stroke.interfaces.segment import SegmentImage
shape = {shape}
path = os.path.join(sys.argv[1], "image.nii")
nib.Nifti1Image(np.random.default_rng(0).standard_normal(shape, dtype=np.float32) * 20 + 100,
                np.eye(4)).to_filename(path)
os.chdir(sys.argv[1])
from bids_stroke.model.request import ModelRequest
from bids_stroke.outputs.probseg import DEFAULT_MODE
from bids_stroke.core.settings import SegmentationSettings
settings = SegmentationSettings(device="cpu", precision="{precision}", mode="full")
SegmentImage(in_file=path, model=ModelRequest.from_settings(settings, threads=1).node_input(),
             probseg=DEFAULT_MODE).run()
print(hwm_gb())
"""


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_segment_estimate_covers_the_measured_peak(tmp_path, precision) -> None:
    from bids_stroke.core.resources import segment_mem_gb
    from bids_stroke.model.adapters import open_model
    from bids_stroke.model.inference import cpu_supports_bf16

    if precision == "bf16" and not cpu_supports_bf16():
        pytest.skip("this CPU has no native bf16 (--precision auto runs fp32 here)")

    measured = _measure(_SEGMENT.format(shape=SHAPE, precision=precision), str(tmp_path))
    predict = open_model(None, device="cpu", precision=precision,
                         mode="full").estimate_memory_gb(SHAPE)
    estimate = segment_mem_gb(predict)
    assert measured <= estimate <= 2.5 * measured, (measured, predict, estimate)
