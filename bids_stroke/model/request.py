"""What a run asks of its segmentation model, decided once: :class:`ModelRequest`.

The parent process builds the request in two steps, the way nnU-Net's predictor is first
configured and then initialised from its trained-model folder:

1. :meth:`ModelRequest.from_settings` - what the user asked (``SegmentationSettings``): which
   model (``path``; ``None`` is the bundled model, and nothing else is), how to open it
   (``channels``, ``folds``, ``checkpoint``, ``trust_model_code``), how to run it (``device``,
   ``precision``, ``engine``, ``mode``, ``tta``, ``threads``) and the decision rule
   (``threshold``, ``min_size``);
2. :meth:`ModelRequest.describe` - what the opened model says of itself (its
   :class:`~bids_stroke.model.spec.ModelSpec`) and the decisions that follow from it, taken
   here and nowhere else: the threshold (the user's, else the model's), the template
   resolution of a template-space model, the modality the lesion masks are drawn on.

The request is frozen. :func:`bids_stroke.model.adapters.open_model` takes it as its one
argument; the segmentation node receives it as one JSON dict (:meth:`ModelRequest.node_input`)
and rebuilds it with :meth:`ModelRequest.from_dict`. No torch here: the command line builds
requests before the heavy imports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bids_stroke.model.records import refuse_unknown_keys
from bids_stroke.model.spec import ModelSpec

if TYPE_CHECKING:
    from bids_stroke.core.settings import SegmentationSettings

__all__ = ["NOT_IN_NODE_INPUT", "ModelRequest"]

#: fields that schedule the run without changing any segmentation: left out of the node input,
#: so that another largest image (another memory estimate) keeps cached segmentations valid
NOT_IN_NODE_INPUT = ("predict_gb",)


def _strings(values: Sequence[Any] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(str(v) for v in values)


@dataclass(frozen=True)
class ModelRequest:
    """The model of a run and how it is run (see the module docstring).

    Attributes:
        path: model file or nnU-Net trained-model folder (stored absolute); ``None``: the
            bundled model.
        channels: input channels asked for (BIDS suffixes, in the model's order; ``None``:
            what the model says). The model's own, after this override, are
            :attr:`input_channels`.
        folds: nnU-Net folds (``None``: every fold with the checkpoint).
        checkpoint: nnU-Net ``final``, ``best`` or a checkpoint file name.
        trust_model_code: allow nnU-Net checkpoints that need full unpickling.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16`` (bids_stroke/TorchScript models).
        engine: fp32 CPU engine of bids_stroke checkpoints (:mod:`bids_stroke.model.engines`).
        mode: ``auto``, ``full`` or ``sliding`` inference.
        tta: mirror test-time augmentation; ``None``: the model's own default (off for
            bids_stroke/TorchScript/ONNX, nnU-Net's configured mirroring for nnU-Net).
        threads: torch/onnxruntime CPU threads (0: the library's default).
        threshold: probability ``>= threshold`` is lesion; ``None``: the model's own, settled
            by :meth:`describe` (or, for a request never described, by the segmentation).
        min_size: predicted components smaller than this (voxels) are dropped.
        spec: the model's description (``None`` until :meth:`describe`).
        resolution: template grid resolution in mm (template-space models; ``None`` native).
        reference: BIDS suffix of the images the lesion masks are drawn on.
        predict_gb: the model's memory estimate for the largest image of the run (GB;
            ``None``: unknown or not checked yet).
    """

    path: str | None = None
    channels: tuple[str, ...] | None = None
    folds: tuple[str, ...] | None = None
    checkpoint: str = "final"
    trust_model_code: bool = False
    device: str = "auto"
    precision: str = "auto"
    engine: str = "torch"
    mode: str = "auto"
    tta: bool | None = None
    threads: int = 0
    threshold: float | None = None
    min_size: int = 0
    spec: ModelSpec | None = None
    resolution: int | None = None
    reference: str | None = None
    predict_gb: float | None = None

    def __post_init__(self) -> None:
        if self.path is not None:
            if str(self.path) == "":
                raise ValueError("ModelRequest.path: give None for the bundled model, not ''")
            object.__setattr__(self, "path", str(Path(self.path).expanduser().absolute()))
        object.__setattr__(self, "channels", _strings(self.channels))
        object.__setattr__(self, "folds", _strings(self.folds))

    # -------------------------------------------------------------------------- building
    @classmethod
    def from_settings(cls, segmentation: SegmentationSettings, *, threads: int = 0
                      ) -> ModelRequest:
        """What the run's ``segmentation`` settings ask for; ``threads``: the CPU threads of
        one segmentation (:func:`bids_stroke.core.resources.segment_threads`)."""
        seg = segmentation
        return cls(
            path=None if seg.model is None else str(seg.model),
            channels=seg.channels or None, folds=seg.folds or None,
            checkpoint=seg.checkpoint, trust_model_code=seg.trust_model_code,
            device=seg.device, precision=seg.precision, engine=seg.engine, mode=seg.mode,
            # the setting forces mirroring on; off means the model's own default
            tta=True if seg.tta else None,
            threads=threads, threshold=seg.threshold, min_size=seg.min_size,
        )

    def threshold_for(self, spec: ModelSpec) -> float:
        """The decision threshold: the one asked for, else the model's own."""
        return float(spec.threshold if self.threshold is None else self.threshold)

    def describe(self, spec: ModelSpec, *, template_resolution: int,
                 reference: str | None = None) -> ModelRequest:
        """This request with the model's description ``spec`` and what follows from it.

        ``template_resolution``: the grid (mm) of a template-space model whose spec does not
        declare its resolution (the run's ``registration.template_resolution``);
        ``reference``: the modality of the lesion masks (``None``: the model's first
        channel).
        """
        resolution = None
        if spec.space != "native":
            declared = None if "resolution_mm" in spec.assumed else spec.resolution_mm
            resolution = round(declared) if declared is not None else template_resolution
        return replace(self, spec=spec, threshold=self.threshold_for(spec),
                       resolution=resolution, reference=reference or spec.channels[0])

    def for_checks(self) -> ModelRequest:
        """The model the parent process opens for its checks (channels, dry run, memory):
        this request on the CPU. A parent that may fork segmentation workers never
        initialises CUDA; on a CPU-only machine it is the model the segmentation uses."""
        return replace(self, device="cpu")

    # -------------------------------------------------------------------------- the model
    @property
    def bundled(self) -> bool:
        return self.path is None

    def _described(self) -> ModelSpec:
        if self.spec is None:
            raise ValueError("this ModelRequest has no model description yet: describe it "
                             "with the opened model's spec (ModelRequest.describe)")
        return self.spec

    @property
    def kind(self) -> str:
        return self._described().kind

    @property
    def sha256(self) -> str:
        """sha256 of the model (nnU-Net: of the folder's files that define it)."""
        return self._described().checksum

    @property
    def input_channels(self) -> tuple[str, ...]:
        """BIDS suffixes fed to the model, in its input order."""
        return self._described().channels

    @property
    def space(self) -> str:
        """``MNI152NLin2009aSym`` (template-space models) or ``native``."""
        return self._described().space

    @property
    def native(self) -> bool:
        return self.space == "native"

    # -------------------------------------------------------------------------- serialising
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (lists for tuples, the spec as ``ModelSpec.to_dict()``)."""
        d = asdict(self)
        for name in ("channels", "folds"):
            d[name] = None if d[name] is None else list(d[name])
        d["spec"] = None if self.spec is None else self.spec.to_dict()
        return d

    def node_input(self) -> dict[str, Any]:
        """What the segmentation node receives (and nipype hashes): :meth:`to_dict` without
        :data:`NOT_IN_NODE_INPUT`."""
        d = self.to_dict()
        for name in NOT_IN_NODE_INPUT:
            d.pop(name)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelRequest:
        """Inverse of :meth:`to_dict` and :meth:`node_input`; unknown keys are refused."""
        refuse_unknown_keys(cls, d)
        spec = d.get("spec")
        return cls(**{**d, "spec": None if spec is None else ModelSpec.from_dict(spec)})
