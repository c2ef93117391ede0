"""How lesion probability maps are stored: the one place that decides (pure numpy).

``outputs.save_probseg`` / ``--save-probseg`` picks one of :data:`PROBSEG_MODES`:

* ``compact`` (default): unsigned 16-bit integers with ``scl_slope = 1/65535``, probabilities
  below :data:`FLOOR` stored as 0. Every stored value is within :data:`FLOOR` of the model's
  output (the rounding step is 1/65535 = 1.5e-5), and a stored map thresholded at 0.5 gives
  the mask exactly (0.5 is a rounding boundary). Measured on the demo at 1 mm
  (``bench/bench_probseg.py``): 0.72 MB gzipped instead of 29.7 MB for the float32 map of a
  fp32 prediction, written in 0.04 s instead of 0.85 s: 97% of a float32 map's voxels are
  tiny non-zero values (below 1e-4) that gzip cannot compress.
* ``full``: float32, exactly what the model returned (the layout of earlier versions).
* ``none``: no probability map is written.

Masks and metrics never come from the stored map: the segmentation step thresholds the
full-precision probability before it is encoded, so they are identical in every mode.
Why not the others (same measurement): ``uint8`` with ``scl_slope = 1/255`` is smaller still
(0.07 MB) but off by up to 2e-3; float16 has no NIfTI-1 data type; cropping would move the
file off the grid its sidecar names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy is imported where maps are encoded (settings import this module)
    import numpy as np

__all__ = [
    "COMPACT_LEVELS",
    "DEFAULT_MODE",
    "FLOOR",
    "PROBSEG_MODES",
    "EncodedProbseg",
    "encode_probseg",
    "encoding_sidecar",
]

PROBSEG_MODES = ("none", "compact", "full")
DEFAULT_MODE = "compact"
#: probabilities below this are stored as 0 in ``compact`` maps (also the largest error)
FLOOR = 1e-4
#: quantisation levels of ``compact`` maps: value = stored integer / COMPACT_LEVELS
COMPACT_LEVELS = 65535


@dataclass(frozen=True)
class EncodedProbseg:
    """A probability map ready to write: ``data`` with NIfTI scaling ``slope``/``inter``."""

    data: np.ndarray
    slope: float
    inter: float


def encode_probseg(prob: np.ndarray, mode: str) -> EncodedProbseg | None:
    """The stored form of the float probability map ``prob`` (``None`` for ``none``).

    Raises ``ValueError`` for an unknown mode.
    """
    if mode not in PROBSEG_MODES:
        raise ValueError(f"probability map mode must be one of {', '.join(PROBSEG_MODES)}, "
                         f"got {mode!r}")
    if mode == "none":
        return None
    import numpy as np

    prob = np.asarray(prob, dtype=np.float32)
    if mode == "full":
        return EncodedProbseg(prob, 1.0, 0.0)
    scaled = np.clip(prob.astype(np.float64), 0.0, 1.0) * COMPACT_LEVELS
    scaled[prob < FLOOR] = 0.0
    return EncodedProbseg(np.rint(scaled).astype(np.uint16), 1.0 / COMPACT_LEVELS, 0.0)


def encoding_sidecar(mode: str) -> dict[str, Any]:
    """Sidecar fields of a probability map stored in ``mode`` (``{}`` for ``none``)."""
    if mode == "compact":
        return {"ProbabilityEncoding": {
            "Mode": "compact",
            "DataType": "uint16",
            "Scale": f"1/{COMPACT_LEVELS} (scl_slope)",
            "Floor": FLOOR,
            "Description": f"probabilities below {FLOOR:g} stored as 0; every stored value "
                           f"within {FLOOR:g} of the model's output; the mask was made from "
                           "the full-precision probability",
        }}
    if mode == "full":
        return {"ProbabilityEncoding": {"Mode": "full", "DataType": "float32",
                                        "Description": "the model's output as computed"}}
    return {}
