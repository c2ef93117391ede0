"""Checks of a loaded model before any work (the CLI turns failures into exit 65).

* :func:`check_model` - channel counts, a dry forward pass on a small synthetic input (output
  must be one finite probability map of the input's size; tuples, wrong shapes and NaN/inf are
  refused) and, when an image shape is given, the estimated peak memory against a limit.
* :func:`modality_mismatch` - the model's channels against the suffixes the data has.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from bids_stroke.model.adapters.base import Segmenter
from bids_stroke.model.spec import ModelSpec

__all__ = ["ModelCheckError", "available_memory_gb", "check_model", "modality_mismatch"]


class ModelCheckError(RuntimeError):
    """A model that cannot be used as configured. The message is one line."""


def available_memory_gb() -> float | None:
    """Physical memory of this machine (cgroup limit when lower), in GB."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (ValueError, OSError, AttributeError):
        return None
    for f in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = open(f).read().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text) / 1024**3)
    return total


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_channels(seg: Segmenter, available: Sequence[str] | None) -> None:
    spec = seg.spec
    n_net = seg.input_channels()
    if n_net is not None and n_net != spec.n_channels:
        raise ModelCheckError(
            f"{spec.source}: the network takes {n_net} input channel(s) but the model is "
            f"described with {spec.n_channels} ({', '.join(spec.channels)}); fix --channels or "
            "the model sidecar"
        )
    if available is not None and len(available) < spec.n_channels:
        raise ModelCheckError(
            f"{spec.source}: the model needs {spec.n_channels} channels "
            f"({', '.join(spec.channels)}) but only {len(available)} were found "
            f"({', '.join(available) or 'none'}); add the missing images or use another model"
        )


def _check_output(seg: Segmenter) -> None:
    src = seg.spec.source
    try:
        shape, prob = seg.dry_run()
    except Exception as exc:
        raise ModelCheckError(
            f"{src}: dry run on a small {seg.spec.n_channels}-channel input failed: "
            f"{_first_line(exc)}"
        ) from exc
    prob = np.asarray(prob)
    if prob.shape != tuple(shape):
        raise ModelCheckError(
            f"{src}: output shape {prob.shape} differs from the input {tuple(shape)}; the model "
            "must return one probability/logit map on the input grid"
        )
    if not np.all(np.isfinite(prob)):
        bad = int(np.count_nonzero(~np.isfinite(prob)))
        raise ModelCheckError(
            f"{src}: the dry run gave {bad} NaN/inf output value(s); the weights or the export "
            "are broken (re-export the model)"
        )
    if prob.min() < 0 or prob.max() > 1:
        raise ModelCheckError(
            f"{src}: output outside [0, 1] ({prob.min():.3g}..{prob.max():.3g}); the model "
            "must return logits or probabilities"
        )


def check_model(
    segmenter: Segmenter,
    *,
    channels_available: Sequence[str] | None = None,
    image_shape: Sequence[int] | None = None,
    spacing_mm: Sequence[float] | None = None,
    mem_limit_gb: float | None = None,
    dry_run: bool = True,
) -> float | None:
    """Refuse a model that cannot run as configured (see module docstring); returns the
    model's memory estimate (GB) for ``image_shape`` (``None``: not given or unknown).

    Args:
        segmenter: from :func:`bids_stroke.model.adapters.open_model`.
        channels_available: BIDS suffixes found for an image (``None``: not checked).
        image_shape: spatial shape of the largest image to segment (memory check).
        spacing_mm: its voxel size (nnU-Net resamples to its own spacing).
        mem_limit_gb: memory budget (default: this machine's memory).
        dry_run: run the dry forward pass (``False`` when this model passed it already in
            this process, e.g. the memory check after the pre-flight check).

    Raises:
        ModelCheckError: one line naming the model and the fix.
    """
    _check_channels(segmenter, channels_available)
    if dry_run:
        _check_output(segmenter)
    if image_shape is None:
        return None
    need = segmenter.estimate_memory_gb(image_shape, spacing_mm)
    limit = mem_limit_gb if mem_limit_gb is not None else available_memory_gb()
    if need is not None and limit is not None and need > limit:
        shape = "x".join(str(int(s)) for s in image_shape)
        raise ModelCheckError(
            f"{segmenter.spec.source}: predicting a {shape} image needs about {need:.1f} GB, "
            f"more than the {limit:.1f} GB available; use sliding-window inference (segmentation "
            "mode: sliding), a smaller patch, or raise --mem-gb on a larger machine"
        )
    return need


def modality_mismatch(spec: ModelSpec, available_suffixes: Sequence[str]) -> str | None:
    """A one-line message when the data lacks a channel the model needs, else ``None``.

    Suffixes are compared case-insensitively (``flair`` is ``FLAIR``). The CLI exits 65 with this
    message unless ``--allow-modality-mismatch``, in which case every report repeats it.
    """
    have = {s.lower() for s in available_suffixes}
    missing = [c for c in spec.channels if c.lower() not in have]
    if not missing:
        return None
    return (
        f"model {spec.source} expects {', '.join(spec.channels)} but the data has "
        f"{', '.join(available_suffixes) or 'no image'} (missing {', '.join(missing)}); use a "
        "model for this modality, --channels, or --allow-modality-mismatch"
    )
