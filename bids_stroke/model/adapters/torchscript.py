"""TorchScript files: input ``(1, C, D, H, W)`` normalised float, output logits of the same
spatial size (one lesion channel, or background/lesion). Behaviour unchanged from
:func:`bids_stroke.model.load_model`."""

from __future__ import annotations

from collections.abc import Sequence

from bids_stroke.model.adapters.bids_stroke import BidsStrokeSegmenter

__all__ = ["TorchScriptSegmenter"]


class TorchScriptSegmenter(BidsStrokeSegmenter):
    """A TorchScript file (metadata in the extra file ``bids_stroke.json`` when present)."""

    kind = "torchscript"

    def input_channels(self) -> int | None:
        n = self.model.info.get("in_channels")
        return None if n is None else int(n)

    def estimate_memory_gb(
        self, shape: Sequence[int], spacing_mm: Sequence[float] | None = None
    ) -> float | None:
        return None  # the architecture of a TorchScript file is not known
