"""The model request: built once from the settings and the model's description, opened once
per process, handed to the segmentation node as one hashed dict."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest
import torch

from bids_stroke.core.settings import SegmentationSettings
from bids_stroke.model import adapters
from bids_stroke.model.adapters import clear_model_cache, open_model
from bids_stroke.model.request import NOT_IN_NODE_INPUT, ModelRequest
from bids_stroke.model.spec import TEMPLATE_SPACE, ModelSpec


def _spec(**kw) -> ModelSpec:
    fields = {"kind": "bids_stroke", "channels": ("T1w",), "space": TEMPLATE_SPACE,
              "resolution_mm": 2.0, "threshold": 0.4, "source": "/m.pt", "checksum": "ab" * 32}
    return ModelSpec(**{**fields, **kw})


def test_from_settings_carries_every_segmentation_setting(tmp_path):
    model = tmp_path / "m.pt"
    seg = SegmentationSettings(model=model, device="cpu", precision="bf16", engine="openvino",
                               threshold=0.3, min_size=5, tta=True, mode="sliding",
                               channels=("dwi", "adc"), folds=("0", "2"), checkpoint="best",
                               trust_model_code=True)
    r = ModelRequest.from_settings(seg, threads=3)
    assert (r.path, r.device, r.precision, r.engine, r.mode, r.threads) == (
        str(model), "cpu", "bf16", "openvino", "sliding", 3)
    assert (r.threshold, r.min_size, r.tta, r.channels, r.folds, r.checkpoint,
            r.trust_model_code) == (0.3, 5, True, ("dwi", "adc"), ("0", "2"), "best", True)
    # the defaults: the bundled model (None, nothing else), the model's own mirroring
    r = ModelRequest.from_settings(SegmentationSettings())
    assert r.path is None and r.bundled and r.tta is None and r.threshold is None
    with pytest.raises(ValueError, match="None for the bundled model"):
        ModelRequest("")
    # a relative path is stored absolute: the node runs in its own folder
    assert ModelRequest("rel/m.pt").path == str(Path("rel/m.pt").absolute())


def test_describe_settles_threshold_resolution_and_reference_once():
    asked = ModelRequest()
    r = asked.describe(_spec(), template_resolution=1)
    assert r.threshold == 0.4 and r.resolution == 2 and r.reference == "T1w"  # the model's
    assert r.space == TEMPLATE_SPACE and not r.native and r.sha256 == "ab" * 32
    r = replace(asked, threshold=0.7).describe(_spec(), template_resolution=1, reference="FLAIR")
    assert r.threshold == 0.7 and r.reference == "FLAIR"  # the user's
    # a resolution the model does not declare is the run's template resolution
    r = asked.describe(_spec(assumed=("resolution_mm",)), template_resolution=1)
    assert r.resolution == 1
    r = asked.describe(_spec(space="native", resolution_mm=None, channels=("dwi", "adc")),
                       template_resolution=1)
    assert r.native and r.resolution is None and r.input_channels == ("dwi", "adc")
    assert r.threshold_for(_spec(threshold=0.9)) == 0.4  # settled: the description is kept
    with pytest.raises(ValueError, match="no model description"):
        _ = ModelRequest().sha256


def test_round_trip_and_node_input():
    r = replace(ModelRequest("/x/m.pt", channels=["dwi"], folds=[0, 1], threads=2)
                .describe(_spec(channels=("dwi",)), template_resolution=1), predict_gb=1.5)
    d = json.loads(json.dumps(r.to_dict()))  # JSON as it is: no tuples, no objects
    assert ModelRequest.from_dict(d).to_dict() == r.to_dict()
    assert ModelRequest.from_dict(d).folds == ("0", "1")
    node = r.node_input()
    assert set(NOT_IN_NODE_INPUT).isdisjoint(node)
    assert ModelRequest.from_dict(node) == replace(r, predict_gb=None)
    with pytest.raises(ValueError, match="unknown ModelRequest keys"):
        ModelRequest.from_dict({**d, "thresold": 0.5})


def test_node_hash_follows_what_changes_a_segmentation():
    """The segmentation node's nipype hash: another memory estimate (another largest image)
    keeps cached segmentations; another threshold, model or device does not."""
    from bids_stroke.interfaces.segment import SegmentImage

    def hashed(request: ModelRequest) -> str:
        return SegmentImage(model=request.node_input(), probseg="compact").inputs \
            .get_hashval()[1]

    r = ModelRequest(device="cpu", threads=2).describe(_spec(), template_resolution=1)
    assert hashed(r) == hashed(replace(r, predict_gb=7.0))
    for other in (replace(r, threshold=0.45), replace(r, device="auto"), r.describe(
            _spec(checksum="cd" * 32), template_resolution=1), replace(r, min_size=3)):
        assert hashed(other) != hashed(r)


def test_segment_node_gets_one_request():
    from bids_stroke.core.resources import segment_mem_gb
    from bids_stroke.workflows.segment import init_segment_wf

    r = replace(ModelRequest(threads=3).describe(_spec(), template_resolution=1), predict_gb=1.0)
    node = init_segment_wf(model=r, channel_order=[0]).get_node("unet")
    assert node.inputs.model == r.node_input()
    assert node.n_procs == 3 and node.mem_gb == segment_mem_gb(1.0)


def test_open_model_takes_the_request_and_the_keyword_form():
    clear_model_cache()
    r = ModelRequest(device="cpu", precision="fp32")
    seg = open_model(r)
    assert open_model(None, device="cpu", precision="fp32") is seg  # earlier releases' form
    assert open_model("", device="cpu", precision="fp32") is seg
    # neither the threshold nor the description reopen the model
    assert open_model(replace(r, threshold=0.2, min_size=4).describe(
        seg.spec, template_resolution=1)) is seg
    with pytest.raises(TypeError, match="takes no options"):
        open_model(r, device="cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="the checks run on the CPU, the "
                    "segmentation on the GPU: two models by design")
def test_parent_opens_the_model_once(tmp_path, monkeypatch):
    """plan_model, the memory check and (Linear plugin) the segmentations of the parent
    share one loaded model: 'auto' is the CPU here, and torch threads do not reopen it."""
    from bids_stroke.cli.config import settings_from_cli
    from bids_stroke.cli.parser import build_parser
    from bids_stroke.cli.participant import check_model_memory, plan_model

    loads = []
    real = adapters._load
    monkeypatch.setattr(adapters, "_load", lambda *a, **k: loads.append(a) or real(*a, **k))
    clear_model_cache()
    bids = tmp_path / "bids"
    bids.mkdir()
    image = tmp_path / "t1.nii.gz"
    nib.Nifti1Image(np.zeros((8, 8, 8), np.float32), np.eye(4)).to_filename(image)
    opts = build_parser().parse_args([str(bids), str(tmp_path / "out"), "participant",
                                      "--nprocs", "2"])
    settings = settings_from_cli(opts)
    request, _ = plan_model(settings)
    assert request.threads == 2 and request.device == settings.segmentation.device
    gb = check_model_memory(settings, request, [SimpleNamespace(image=image)],
                            lambda s, img: ((16, 16, 16), (1.0, 1.0, 1.0)))
    assert gb is not None and gb > 0
    node = open_model(replace(request, predict_gb=gb))  # what a node in this process opens
    assert len(loads) == 1 and node is open_model(request.for_checks())
    clear_model_cache()
