"""The bundled demo model: where it is, its checksum, and what it may be used for.

Light on purpose (no torch): the group level and the CLI's checks name the bundled model without
loading a network. The model is a 3D U-Net trained on synthetic phantoms (see
``bids_stroke/data/models/MODEL_CARD.md``); it makes the pipeline run end to end anywhere and
is never a real lesion segmenter, so every report of a run on other data says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from bids_stroke.core.digest import file_sha256

__all__ = [
    "BUNDLED_MODEL_NAME",
    "DEMO_DATASET_MARKER",
    "DEMO_MODEL_WARNING",
    "bundled_model_path",
    "bundled_sha256",
    "is_bundled",
    "is_demo_dataset",
]

BUNDLED_MODEL_NAME = "bids_stroke_unet_default.pt"
#: written by ``bids_stroke demo`` at the root of every demo dataset
DEMO_DATASET_MARKER = ".bids_stroke_demo.json"
DEMO_MODEL_WARNING = (
    "the bundled model is a demo trained on synthetic phantoms, not a lesion segmenter: its "
    "masks and metrics on real images mean nothing; pass --model with a real model "
    "(bids_stroke checkpoint, TorchScript, ONNX or nnU-Net v2 folder)")


def bundled_model_path() -> Path:
    """Path of the default model shipped in ``bids_stroke/data/models/``."""
    return Path(str(resources.files("bids_stroke") / "data" / "models" / BUNDLED_MODEL_NAME))


@lru_cache(maxsize=1)
def bundled_sha256() -> str:
    """sha256 of the bundled model file (cached; ``bundled_sha256.cache_clear()`` resets)."""
    return file_sha256(bundled_model_path())


def is_bundled(checksum: str | None, info: Mapping[str, Any] | None = None) -> bool:
    """Whether a model is the bundled one: its sha256, or an export of it (an ONNX file
    records the checkpoint it came from as ``source_checkpoint``)."""
    source = (info or {}).get("source_checkpoint") or {}
    return bundled_sha256() in (checksum, source.get("sha256") if isinstance(source, Mapping)
                                else None)


def is_demo_dataset(bids_dir: str | Path) -> bool:
    """Whether ``bids_dir`` was written by ``bids_stroke demo`` (its marker file is there)."""
    return (Path(bids_dir) / DEMO_DATASET_MARKER).is_file()
