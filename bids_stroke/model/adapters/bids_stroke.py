"""bids_stroke checkpoints (``bids_stroke train``): :class:`SegmentationModel` behind the
:class:`Segmenter` interface, behaviour unchanged (multi-channel when ``in_channels > 1``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bids_stroke.model.adapters.base import ChannelStack, Segmenter, synthetic_stack
from bids_stroke.model.checkpoint import SegmentationModel, load_model
from bids_stroke.model.inference import resolve_precision
from bids_stroke.model.memory import unet_memory_gb
from bids_stroke.model.spec import DEFAULT_THRESHOLD, TEMPLATE_SPACE, ModelSpec, resolve_spec

__all__ = ["BidsStrokeSegmenter", "template_defaults"]


def template_defaults(n_channels: int | None) -> dict[str, Any]:
    """Defaults for models without a description: today's single-channel T1w model in
    MNI152NLin2009aSym at 1 mm (no channel default for multi-channel networks)."""
    d: dict[str, Any] = {"space": TEMPLATE_SPACE, "resolution_mm": 1.0,
                          "threshold": DEFAULT_THRESHOLD}
    if n_channels in (None, 1):
        d["channels"] = ("T1w",)
    return d


class BidsStrokeSegmenter(Segmenter):
    """A ``bids_stroke-unet`` checkpoint (or, in the subclass, a TorchScript file)."""

    kind = "bids_stroke"

    def __init__(
        self,
        path: Path | None,
        *,
        device: str = "auto",
        precision: str = "auto",
        mode: str = "auto",
        tta: bool = False,
        channels: Sequence[str] | None = None,
        loaded: SegmentationModel | None = None,
        engine: str = "torch",
    ) -> None:
        # ``loaded``: the network already read from ``path`` (shared between segmenters)
        self.model: SegmentationModel = loaded if loaded is not None else load_model(
            path, device=device)
        self.precision, self.mode, self.tta = precision, mode, bool(tta)
        self.engine = engine
        source = Path(self.model.info["path"])
        self.spec: ModelSpec = resolve_spec(
            kind=self.kind,
            source=source,
            checksum=str(self.model.checksum),
            embedded=self._embedded(),
            defaults=template_defaults(self.input_channels()),
            channels=channels,
        )
        self.info: dict[str, Any] = {
            **self.model.info,  # "kind" stays "bids_stroke-unet"/"torchscript" as before
            "spec": self.spec.to_dict(),
            "precision": precision,
            "mode": mode,
            "tta": self.tta,
        }

    def _embedded(self) -> dict[str, Any]:
        emb = dict(self.model.info.get("model_spec") or {})
        suffix = (self.model.info.get("training") or {}).get("config", {}).get("suffix")
        if "channels" not in emb and suffix and self.input_channels() == 1:
            emb["channels"] = [suffix]
        return emb

    def input_channels(self) -> int | None:
        cfg = self.model.info.get("model_config") or {}
        return int(cfg.get("in_channels", 1))

    def predict(self, image: ChannelStack) -> np.ndarray:
        self._check_stack(image)
        prob = self.model.predict_channels(
            image.data,
            image.brain_mask,
            mode=self.mode,
            tta=self.tta,
            precision=self.precision,
            engine=self.engine,
        )
        self.info["engine"] = self.model.engine_used  # provenance: what really ran
        return prob

    def dry_run(self) -> tuple[tuple[int, int, int], np.ndarray]:
        d = self.model.divisor
        stack = synthetic_stack(self.spec.n_channels, (2 * d, 3 * d, 2 * d))
        return stack.shape, self.model.predict_channels(
            stack.data, stack.brain_mask, mode="full", tta=False, precision="fp32"
        )

    def estimate_memory_gb(
        self, shape: Sequence[int], spacing_mm: Sequence[float] | None = None
    ) -> float | None:
        cfg = self.model.info.get("model_config")
        if not cfg:
            return None
        try:
            autocast = resolve_precision(self.precision, self.model.device) is not None
        except ValueError:  # bf16 forced on a CPU without it: prediction says so, not this
            autocast = False
        return unet_memory_gb(
            cfg,
            shape,
            divisor=self.model.divisor,
            mode=self.mode,
            patch_size=self.model.inference["patch_size"],
            activation_bytes=2 if autocast else 4,
        )
