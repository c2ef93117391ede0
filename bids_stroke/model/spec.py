"""What a segmentation model needs: :class:`ModelSpec` and where it comes from.

A model is described by its input channels (BIDS suffixes, in input order), the space it works
in (a template at a resolution, or ``native``), and the probability threshold of its lesion
class. Each field is taken from the first of these sources that has it:

1. the command line (``--channels``);
2. a sidecar file next to the model, strictly validated: ``<model file>.bids_stroke.json``
   (or ``.yaml``/``.yml``; ``<stem>.bids_stroke.json`` also accepted), and for an nnU-Net
   folder ``bids_stroke.json``/``.yaml`` inside it;
3. metadata embedded in the model (our checkpoint dict, the TorchScript extra file, ONNX
   ``metadata_props``, nnU-Net ``dataset.json`` ``channel_names`` mapped to BIDS suffixes);
4. defaults of the model kind, listed in :attr:`ModelSpec.assumed` so that every report can
   warn that they were not read from the model.

Sidecar schema (every key optional, no other key allowed)::

    {"channels": ["dwi", "adc"], "space": "native" | "MNI152NLin2009aSym",
     "resolution_mm": 1.0, "threshold": 0.5, "lesion_labels": [1]}
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bids_stroke.core.settings import TEMPLATE
from bids_stroke.model.records import refuse_unknown_keys

__all__ = [
    "DEFAULT_THRESHOLD",
    "KINDS",
    "NNUNET_CHANNEL_MAP",
    "SIDECAR_KEYS",
    "SPACES",
    "TEMPLATE_SPACE",
    "ModelSpec",
    "ModelSpecError",
    "find_sidecar",
    "map_nnunet_channels",
    "parse_channels",
    "read_sidecar",
    "resolve_spec",
    "validate_partial",
]

KINDS = ("bids_stroke", "torchscript", "nnunet", "onnx")
TEMPLATE_SPACE = TEMPLATE
#: Lesion probability threshold of a model that does not declare one (voxels >= it).
DEFAULT_THRESHOLD = 0.5
#: Sliding-window inference of a model that does not declare its own: patch (voxels per axis)
#: and the overlap of neighbouring patches (a fraction of the patch).
DEFAULT_PATCH_SIZE: tuple[int, int, int] = (128, 128, 128)
DEFAULT_OVERLAP = 0.5
SPACES = (TEMPLATE_SPACE, "native")
SIDECAR_KEYS = ("channels", "space", "resolution_mm", "threshold", "lesion_labels")
_SUFFIX = re.compile(r"^[A-Za-z0-9]+$")

#: nnU-Net ``dataset.json`` channel names (case-insensitive) -> BIDS suffixes.
NNUNET_CHANNEL_MAP: dict[str, str] = {
    "dwi": "dwi",
    "trace": "dwi",
    "b1000": "dwi",
    "adc": "adc",
    "flair": "FLAIR",
    "t1": "T1w",
    "t1w": "T1w",
    "mprage": "T1w",
    "t2": "T2w",
    "t2w": "T2w",
    "swi": "swi",
    "pd": "PDw",
    "pdw": "PDw",
}


class ModelSpecError(ValueError):
    """A model description is missing or invalid. The message is one line naming the file."""


@dataclass(frozen=True)
class ModelSpec:
    """Inputs, space and decision rule of a segmentation model.

    Attributes:
        kind: ``bids_stroke``, ``torchscript``, ``nnunet`` or ``onnx``.
        channels: BIDS suffixes in the model's input order, e.g. ``("dwi", "adc")``.
        space: ``MNI152NLin2009aSym`` or ``native``.
        resolution_mm: template resolution for template-space models; ``None`` for native.
        threshold: probability ``>= threshold`` is lesion.
        source: path of the model file or folder.
        checksum: sha256 of the file (nnU-Net: of the folder's files that define the model).
        assumed: names of fields that are defaults, not read from the model or a sidecar.
        lesion_labels: nnU-Net label values whose probabilities are summed into the lesion
            probability (``None`` for other kinds).
        origin: where each field came from (``cli``, ``sidecar:<path>``, ``model``, ``default``).
    """

    kind: str
    channels: tuple[str, ...]
    space: str
    resolution_mm: float | None
    threshold: float
    source: str
    checksum: str
    assumed: tuple[str, ...] = ()
    lesion_labels: tuple[int, ...] | None = None
    origin: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ModelSpecError(f"{self.source}: unknown model kind {self.kind!r}")
        validate_partial(
            {
                "channels": list(self.channels),
                "space": self.space,
                "resolution_mm": self.resolution_mm,
                "threshold": self.threshold,
            },
            self.source,
        )
        if self.space == "native" and self.resolution_mm is not None:
            raise ModelSpecError(
                f"{self.source}: resolution_mm applies to template space only (space is native)"
            )

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable representation (reports, sidecars, ONNX metadata)."""
        d = asdict(self)
        d["channels"] = list(self.channels)
        d["assumed"] = list(self.assumed)
        d["lesion_labels"] = None if self.lesion_labels is None else list(self.lesion_labels)
        d["origin"] = dict(self.origin)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelSpec:
        """Inverse of :meth:`to_dict`; unknown keys are rejected."""
        refuse_unknown_keys(cls, d, ModelSpecError)
        d = dict(d)
        d["channels"] = tuple(d["channels"])
        d["assumed"] = tuple(d.get("assumed", ()))
        if d.get("lesion_labels") is not None:
            d["lesion_labels"] = tuple(int(v) for v in d["lesion_labels"])
        d["origin"] = tuple(sorted(dict(d.get("origin", {})).items()))
        if d.get("resolution_mm") is not None:
            d["resolution_mm"] = float(d["resolution_mm"])
        d["threshold"] = float(d["threshold"])
        return cls(**d)

    def describe(self) -> str:
        """Multi-line human summary (``bids_stroke model info``)."""
        space = self.space
        if self.resolution_mm is not None:
            space = f"{self.space} at {self.resolution_mm:g} mm"
        threshold = f"{self.threshold:.9g} (probability >= threshold is lesion)"
        below = _float32_below(self.threshold)
        if float(f"{below:.4g}") == below != self.threshold:  # one step above a round value
            threshold = (f"{self.threshold:.9g}, i.e. probability > {below:g} is lesion (as the "
                         "model's argmax: a tie goes to the background)")
        lines = [
            f"model:      {self.source}",
            f"kind:       {self.kind}",
            f"channels:   {', '.join(self.channels)}",
            f"space:      {space}",
            f"threshold:  {threshold}",
            f"sha256:     {self.checksum}",
        ]
        if self.lesion_labels is not None:
            lines.append(f"lesion labels: {', '.join(str(v) for v in self.lesion_labels)}")
        if self.assumed:
            lines.append(
                "ASSUMED (not read from the model; write a sidecar to make them explicit): "
                + ", ".join(self.assumed)
            )
        return "\n".join(lines)


def _float32_below(value: float) -> float:
    """The float32 just below ``value`` (``nextafter`` towards 0)."""
    import numpy as np

    return float(np.nextafter(np.float32(value), np.float32(0)))


def parse_channels(values: Sequence[str] | str | None) -> tuple[str, ...] | None:
    """``["dwi", "adc"]``, ``["dwi,adc"]`` or ``"dwi,adc"`` -> ``("dwi", "adc")``."""
    if values is None:
        return None
    items = [values] if isinstance(values, str) else list(values)
    out = tuple(p.strip() for v in items for p in str(v).split(",") if p.strip())
    return out or None


def _err(where: str | Path, msg: str) -> ModelSpecError:
    return ModelSpecError(f"{where}: {msg}")


def validate_partial(d: Mapping[str, Any], where: str | Path) -> dict[str, Any]:
    """Check the values of a (partial) spec mapping; returns it with normalised types.

    Raises:
        ModelSpecError: unknown key or bad value, naming ``where`` and the key.
    """
    unknown = sorted(set(d) - set(SIDECAR_KEYS))
    if unknown:
        raise _err(where, f"unknown key {unknown[0]!r}; allowed keys: {', '.join(SIDECAR_KEYS)}")
    return {key: _VALUE_CHECKS[key](d[key], where) for key in SIDECAR_KEYS if key in d}


def _channels_value(ch: Any, where: str | Path) -> tuple[str, ...]:
    if isinstance(ch, str) or not isinstance(ch, Sequence) or not ch:
        raise _err(where, "'channels' must be a non-empty list of suffixes like [dwi, adc]")
    for c in ch:
        if not isinstance(c, str) or not _SUFFIX.match(c):
            raise _err(where, f"'channels' entry {c!r} is not a BIDS suffix (letters/digits)")
    if len(set(ch)) != len(ch):
        raise _err(where, f"'channels' lists a suffix twice: {list(ch)}")
    return tuple(ch)


def _space_value(space: Any, where: str | Path) -> str:
    if space not in SPACES:
        raise _err(where, f"'space' must be one of {', '.join(SPACES)}, got {space!r}")
    return str(space)


def _resolution_value(r: Any, where: str | Path) -> float | None:
    if r is None:
        return None
    if isinstance(r, bool) or not isinstance(r, int | float) or not 0 < float(r) <= 10:
        raise _err(where, f"'resolution_mm' must be a number in (0, 10] mm, got {r!r}")
    return float(r)


def _threshold_value(t: Any, where: str | Path) -> float:
    if isinstance(t, bool) or not isinstance(t, int | float) or not 0 < float(t) < 1:
        raise _err(where, f"'threshold' must be a number in (0, 1), got {t!r}")
    return float(t)


def _lesion_labels_value(labs: Any, where: str | Path) -> tuple[int, ...]:
    if (
        isinstance(labs, str)
        or not isinstance(labs, Sequence)
        or not labs
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in labs)
    ):
        raise _err(where, "'lesion_labels' must be a non-empty list of positive label values")
    return tuple(labs)


#: the check (and normalisation) of each sidecar key's value
_VALUE_CHECKS: dict[str, Callable[[Any, str | Path], Any]] = {
    "channels": _channels_value,
    "space": _space_value,
    "resolution_mm": _resolution_value,
    "threshold": _threshold_value,
    "lesion_labels": _lesion_labels_value,
}


def find_sidecar(model: Path) -> Path | None:
    """The sidecar of ``model`` (file or nnU-Net folder), or ``None``.

    Raises:
        ModelSpecError: more than one candidate exists.
    """
    if model.is_dir():
        cands = [model / f"bids_stroke.{e}" for e in ("json", "yaml", "yml")]
    else:
        cands = [
            model.with_name(f"{name}.bids_stroke.{e}")
            for name in dict.fromkeys((model.name, model.stem))
            for e in ("json", "yaml", "yml")
        ]
    found = [c for c in cands if c.is_file()]
    if len(found) > 1:
        raise ModelSpecError(
            f"{model}: several model sidecars ({', '.join(p.name for p in found)}); keep one"
        )
    return found[0] if found else None


def read_sidecar(path: Path) -> dict[str, Any]:
    """Read and strictly validate a sidecar (JSON or YAML mapping)."""
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except (json.JSONDecodeError, ValueError) as exc:
        first = str(exc).splitlines()[0]
        raise _err(path, f"not valid {path.suffix[1:].upper()} ({first}); fix the file") from exc
    except Exception as exc:  # yaml.YAMLError
        first = str(exc).splitlines()[0]
        raise _err(path, f"not valid YAML ({first}); fix the file") from exc
    if not isinstance(data, dict):
        raise _err(path, "must be a mapping like {\"channels\": [\"dwi\", \"adc\"]}")
    return validate_partial(data, path)


def map_nnunet_channels(channel_names: Mapping[str, Any], where: str | Path) -> tuple[str, ...]:
    """nnU-Net ``dataset.json`` ``channel_names`` (``{"0": "DWI", ...}``) -> BIDS suffixes.

    Raises:
        ModelSpecError: a name has no known BIDS suffix (write a sidecar or pass --channels).
    """
    try:
        ordered = [channel_names[k] for k in sorted(channel_names, key=lambda k: int(k))]
    except (TypeError, ValueError) as exc:
        raise _err(where, "'channel_names' keys must be 0, 1, ...") from exc
    out = []
    for name in ordered:
        key = re.sub(r"[^a-z0-9]", "", str(name).lower())
        if key not in NNUNET_CHANNEL_MAP:
            raise _err(
                where,
                f"channel name {name!r} has no known BIDS suffix; write "
                "bids_stroke.json in the model folder with e.g. {\"channels\": [\"dwi\", \"adc\"]} "
                "or pass --channels",
            )
        out.append(NNUNET_CHANNEL_MAP[key])
    return tuple(out)


def resolve_spec(
    *,
    kind: str,
    source: Path,
    checksum: str,
    embedded: Mapping[str, Any],
    defaults: Mapping[str, Any],
    channels: Sequence[str] | str | None = None,
    sidecar: Path | None = None,
) -> ModelSpec:
    """Merge CLI > sidecar > embedded > defaults into a :class:`ModelSpec`.

    ``embedded`` may hold a callable under ``"channels"`` that is only evaluated when neither the
    CLI nor a sidecar gives channels (so that an unmappable nnU-Net name is not an error when the
    user has already said what the channels are).
    """
    layers = _spec_layers(source, embedded, channels, sidecar)
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for name, layer in layers:
        for key, value in layer.items():
            if key not in merged:
                merged[key], origin[key] = value, name
    assumed = _assume_defaults(merged, origin, defaults, source)
    if kind != "nnunet" and "lesion_labels" in merged:
        raise _err(origin["lesion_labels"].removeprefix("sidecar:"),
                   "'lesion_labels' applies to nnU-Net models only")
    return ModelSpec(
        kind=kind,
        channels=tuple(merged["channels"]),
        space=merged["space"],
        resolution_mm=merged["resolution_mm"],
        threshold=float(merged["threshold"]),
        source=str(source),
        checksum=checksum,
        assumed=tuple(assumed),
        lesion_labels=merged.get("lesion_labels"),
        origin=tuple(sorted(origin.items())),
    )


def _spec_layers(source: Path, embedded: Mapping[str, Any],
                 channels: Sequence[str] | str | None, sidecar: Path | None
                 ) -> list[tuple[str, dict[str, Any]]]:
    """The checked layers of a spec, first wins: ``cli`` (``--channels``), the sidecar, then
    ``model`` (what the model file embeds; its callable ``channels`` is called only when
    neither of the others gives channels)."""
    layers: list[tuple[str, dict[str, Any]]] = []
    cli = parse_channels(channels)
    if cli is not None:
        layers.append(("cli", validate_partial({"channels": cli}, "--channels")))
    side = sidecar if sidecar is not None else find_sidecar(source)
    if side is not None:
        layers.append((f"sidecar:{side}", read_sidecar(side)))
    emb = dict(embedded)
    if callable(emb.get("channels")) and not any("channels" in d for _, d in layers):
        emb["channels"] = emb["channels"]()
    elif callable(emb.get("channels")):
        emb.pop("channels")
    layers.append(("model", validate_partial(emb, source)))
    return layers


def _assume_defaults(merged: dict[str, Any], origin: dict[str, str],
                     defaults: Mapping[str, Any], source: Path) -> list[str]:
    """Fill what no layer said (channels, space, threshold and a template model's
    resolution) from ``defaults``, in place; a native model has no resolution. Returns the
    keys assumed; refuses a key without a default."""
    assumed = []
    for key in ("channels", "space", "threshold"):
        if key not in merged:
            if key not in defaults:
                hint = " or pass --channels" if key == "channels" else ""
                raise _err(
                    source,
                    f"the model does not say its input {key}; write a sidecar "
                    f"{_sidecar_hint(source)}{hint}",
                )
            merged[key], origin[key] = defaults[key], "default"
            assumed.append(key)
    if merged["space"] == "native":
        if origin.get("resolution_mm", "").startswith("sidecar:") and merged["resolution_mm"]:
            raise _err(origin["resolution_mm"].removeprefix("sidecar:"),
                       "'resolution_mm' applies to template space only (space is native)")
        merged["resolution_mm"] = None
    elif merged.get("resolution_mm") is None:
        merged["resolution_mm"] = defaults.get("resolution_mm", 1.0)
        origin["resolution_mm"] = "default"
        assumed.append("resolution_mm")
    return assumed


def _sidecar_hint(source: Path) -> str:
    return str(source / "bids_stroke.json") if source.is_dir() else f"{source}.bids_stroke.json"
