"""What each prediction is scored against: the lesion mask, or the model's own prediction.

Three settings (``--reference``, study file ``reference:``):

``mask`` (default)
    every degraded prediction is scored against the image's lesion mask (accuracy); images
    without a mask are not run.
``prediction``
    every condition's prediction is scored against the model's own prediction at the
    *reference condition* (``--reference-condition``, default ``native``), with the same metric
    code on the same grid: *agreement* with the model's native-resolution prediction, which
    needs no manual mask. The reference condition is not scored against itself.
``auto``
    the mask where the image has one, the prediction elsewhere (said per image).

:func:`resolve` turns the setting into the :class:`Reference` of one image. Prediction-
referenced tables carry the reference in their names (:attr:`Reference.desc`, a BIDS ``desc``
label such as ``refnativeprediction``), their sidecars record it (:meth:`Reference.record`), and
results of the two kinds are never mixed: a prediction reference is part of the digest that
keys committed results (:meth:`bids_stroke.core.settings.Settings.results_key`).

Pure module (no nipype, no numpy).
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bids_stroke.degradation import Condition

__all__ = [
    "KINDS",
    "SETTINGS",
    "Reference",
    "ReferenceError",
    "check_reference_condition",
    "nifti_sha256",
    "resolve",
]

#: values of the ``reference`` setting
SETTINGS = ("mask", "prediction", "auto")
#: what an image is actually scored against
KINDS = ("mask", "prediction")


class ReferenceError(ValueError):
    """A reference setting that cannot work (one line naming the fix)."""


@dataclass(frozen=True)
class Reference:
    """The reference of one image: ``kind`` ``mask`` or ``prediction`` (then ``condition``, the
    canonical spec of the reference condition, and ``label``, its ``desc`` label)."""

    kind: str = "mask"
    condition: str | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"reference kind must be one of {', '.join(KINDS)}, got "
                             f"{self.kind!r}")
        if self.kind == "prediction" and not (self.condition and self.label):
            raise ValueError("a prediction reference needs its condition and label")

    @classmethod
    def prediction(cls, condition: Condition | str) -> Reference:
        from bids_stroke.degradation import parse_condition

        cond = parse_condition(condition)
        return cls("prediction", cond.spec, cond.label)

    @property
    def is_prediction(self) -> bool:
        return self.kind == "prediction"

    @property
    def desc(self) -> str | None:
        """``desc`` label of the metric tables (``None``: the mask tables keep their names)."""
        return f"ref{self.label}prediction" if self.is_prediction else None

    @property
    def key(self) -> str:
        """Identifies a set of results that may be analysed together (``mask``,
        ``prediction:native``)."""
        return f"prediction:{self.condition}" if self.is_prediction else "mask"

    @property
    def condition_words(self) -> str:
        """``native-resolution`` or ``'linear:2'`` (the reference condition in words)."""
        return "native-resolution" if self.condition == "native" else f"'{self.condition}'"

    @property
    def words(self) -> str:
        """What the values measure, e.g. "agreement with the model's native-resolution
        prediction" or "accuracy against the lesion mask"."""
        if self.is_prediction:
            return f"agreement with the model's {self.condition_words} prediction"
        return "accuracy against the lesion mask"

    @property
    def reference_words(self) -> str:
        """The reference itself: "the lesion mask" / "the model's native-resolution
        prediction"."""
        if self.is_prediction:
            return f"the model's {self.condition_words} prediction"
        return "the lesion mask"

    def record(self, **extra: Any) -> dict[str, Any]:
        """The ``Reference`` object of sidecars and manifests (``extra``: ``File``,
        ``SHA256``)."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.is_prediction:
            out["condition"] = self.condition
        out.update({k: v for k, v in extra.items() if v is not None})
        return out

    @classmethod
    def from_record(cls, record: Any) -> Reference:
        """From :meth:`record` (``None`` or no record: the mask, as before references were
        recorded)."""
        if not isinstance(record, dict) or record.get("kind", "mask") == "mask":
            return cls()
        return cls.prediction(str(record.get("condition") or "native"))


def resolve(setting: str, has_mask: bool, condition: Condition | str = "native"
            ) -> Reference | None:
    """The reference of an image under ``setting``; ``None`` when it cannot be scored (the
    ``mask`` setting and no mask)."""
    if setting not in SETTINGS:
        raise ValueError(f"reference must be one of {', '.join(SETTINGS)}, got {setting!r}")
    if setting == "prediction" or (setting == "auto" and not has_mask):
        return Reference.prediction(condition)
    return Reference() if has_mask else None


def check_reference_condition(setting: str, condition: Condition,
                              conditions: Sequence[Condition | str],
                              option: str = "--reference-condition") -> None:
    """Refuse a prediction reference whose condition the study does not run (``condition``
    as :class:`~bids_stroke.core.settings.StudySettings` holds it; ``conditions`` those of the
    study, or the specs an export's manifests list)."""
    if setting == "mask":
        return
    from bids_stroke.degradation import parse_condition

    wanted = condition.label
    labels = [parse_condition(c).label for c in conditions]
    if wanted not in labels:
        raise ReferenceError(
            f"{option} {condition}: the reference condition must be one of the study's "
            f"conditions ({' '.join(map(str, conditions))}); add it to --conditions or choose "
            f"another {option}")
    if len(labels) < 2:
        raise ReferenceError(
            f"--reference {setting} needs at least one condition besides the reference "
            f"condition {condition} (the reference is not scored against itself); add "
            "conditions with --conditions")


def nifti_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 of a NIfTI's bytes, decompressed when the file is gzipped: the same for the
    ``.nii`` a model wrote and the ``.nii.gz`` committed from it (``gzip -dc FILE |
    sha256sum``)."""
    h = hashlib.sha256()
    path = Path(path)
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    with opener(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
