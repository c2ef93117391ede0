"""ModelSpec: sources in priority (CLI > sidecar > embedded > defaults), strict sidecars."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bids_stroke.model.spec import (
    ModelSpec,
    ModelSpecError,
    find_sidecar,
    map_nnunet_channels,
    parse_channels,
    resolve_spec,
)

DEFAULTS = {"channels": ("T1w",), "space": "MNI152NLin2009aSym", "resolution_mm": 1.0,
            "threshold": 0.5}


def _model(tmp_path: Path, name: str = "m.pt") -> Path:
    p = tmp_path / name
    p.write_bytes(b"x")
    return p


def _resolve(src: Path, embedded=None, channels=None, defaults=DEFAULTS) -> ModelSpec:
    return resolve_spec(kind="bids_stroke", source=src, checksum="0" * 64,
                        embedded=embedded or {}, defaults=defaults, channels=channels)


def test_defaults_are_flagged_as_assumed(tmp_path: Path) -> None:
    spec = _resolve(_model(tmp_path))
    assert spec.channels == ("T1w",)
    assert set(spec.assumed) == {"channels", "space", "resolution_mm", "threshold"}
    assert "ASSUMED" in spec.describe()


def test_priority_cli_over_sidecar_over_embedded(tmp_path: Path) -> None:
    src = _model(tmp_path)
    (tmp_path / "m.pt.bids_stroke.json").write_text(
        json.dumps({"channels": ["dwi", "adc"], "space": "native", "threshold": 0.4}))
    emb = {"channels": ["FLAIR"], "threshold": 0.7, "space": "MNI152NLin2009aSym"}
    spec = _resolve(src, emb)
    assert spec.channels == ("dwi", "adc") and spec.threshold == 0.4
    assert spec.space == "native" and spec.resolution_mm is None and spec.assumed == ()
    spec = _resolve(src, emb, channels=["T2w"])
    assert spec.channels == ("T2w",) and dict(spec.origin)["channels"] == "cli"
    assert dict(spec.origin)["threshold"].startswith("sidecar:")


def test_yaml_sidecar_by_stem_and_roundtrip(tmp_path: Path) -> None:
    src = _model(tmp_path, "net.onnx")
    (tmp_path / "net.bids_stroke.yaml").write_text("channels: [T1w]\nresolution_mm: 2\n")
    spec = _resolve(src)
    assert spec.resolution_mm == 2.0 and spec.assumed == ("space", "threshold")
    assert ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_two_sidecars_refused(tmp_path: Path) -> None:
    src = _model(tmp_path)
    for name in ("m.pt.bids_stroke.json", "m.bids_stroke.yaml"):
        (tmp_path / name).write_text("{}")
    with pytest.raises(ModelSpecError, match="several model sidecars"):
        find_sidecar(src)


def test_parse_channels_forms() -> None:
    assert parse_channels(["dwi,adc"]) == ("dwi", "adc")
    assert parse_channels("dwi, adc") == ("dwi", "adc")
    assert parse_channels(["dwi", "adc"]) == ("dwi", "adc")
    assert parse_channels(None) is None


def test_nnunet_channel_names_map_to_bids_suffixes() -> None:
    names = {"1": "ADC", "0": "DWI", "2": "FLAIR"}
    assert map_nnunet_channels(names, "dataset.json") == ("dwi", "adc", "FLAIR")
    assert map_nnunet_channels({"0": "T1"}, "d") == ("T1w",)


def test_multi_channel_network_without_description_is_an_error(tmp_path: Path) -> None:
    defaults = {k: v for k, v in DEFAULTS.items() if k != "channels"}
    with pytest.raises(ModelSpecError, match=r"does not say its input channels.*--channels"):
        _resolve(_model(tmp_path), defaults=defaults)


def test_describe_states_a_strict_argmax_threshold(tmp_path: Path) -> None:
    """nnU-Net's argmax is ``p > 0.5``, stored as the float32 just above 0.5: ``model info``
    says so in words; an ordinary threshold reads as ``>=``."""
    import numpy as np

    src = _model(tmp_path)
    strict = float(np.nextafter(np.float32(0.5), np.float32(1)))
    text = _resolve(src, embedded={"threshold": strict}).describe()
    assert "probability > 0.5 is lesion" in text and "a tie goes to the background" in text
    for value in (0.5, 0.3, 0.42):
        text = _resolve(src, embedded={"threshold": value}).describe()
        assert f"threshold:  {value:g} (probability >= threshold is lesion)" in text
