"""Checks of an nnU-Net folder's ``dataset.json`` and ``plans.json`` against the keys that
inference reads (the adapter, ``PlansManager``/``ConfigurationManager``, the preprocessor and
the export of the prediction), so that a malformed file is refused with one line naming the file
and the key before any work, instead of a ``KeyError`` deep inside nnunetv2.

Only what inference reads is required: training-only keys (batch size, data identifier, the
dataset fingerprint) may be absent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["NnUNetFileError", "check_checkpoint", "check_configuration", "check_dataset_json",
           "check_plans"]

_RESTORE = "restore the file nnU-Net wrote with the model"
#: resampling functions and their keyword arguments read for every prediction
_RESAMPLING = ("resampling_fn_data", "resampling_fn_seg", "resampling_fn_probabilities")
#: the network of plans written before nnunetv2 2.4 (ConfigurationManager rebuilds it)
_OLD_ARCHITECTURE = {
    "UNet_class_name": "string", "UNet_base_num_features": "integer",
    "unet_max_num_features": "integer", "n_conv_per_stage_encoder": "list of integers",
    "n_conv_per_stage_decoder": "list of integers", "num_pool_per_axis": "list of integers",
    "pool_op_kernel_sizes": "list", "conv_kernel_sizes": "list",
}


class NnUNetFileError(ValueError):
    """A malformed ``dataset.json``/``plans.json``/checkpoint. The message is one line."""


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else type(value).__name__


def _is(value: Any, kind: str) -> bool:
    def number(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool)

    def integer(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    checks: dict[str, Callable[[Any], bool]] = {
        "object": lambda v: isinstance(v, Mapping),
        "non-empty object": lambda v: isinstance(v, Mapping) and len(v) > 0,
        "string": lambda v: isinstance(v, str) and v != "",
        "integer": integer,
        "list": lambda v: isinstance(v, list | tuple),
        "list of integers": lambda v: isinstance(v, list | tuple) and all(map(integer, v)),
        "list of numbers": lambda v: isinstance(v, list | tuple) and all(map(number, v)),
        "list of strings": lambda v: isinstance(v, list | tuple)
        and all(isinstance(x, str) for x in v),
    }
    return checks[kind](value)


def _need(obj: Mapping[str, Any], key: str, kind: str, path: Path, where: str = "") -> Any:
    name = f"{where}.{key}" if where else key
    if key not in obj:
        raise NnUNetFileError(f"{path}: missing key {name!r}; {_RESTORE}")
    value = obj[key]
    if not _is(value, kind):
        raise NnUNetFileError(f"{path}: {name!r} must be a {kind}, not {_json_type(value)}; "
                              f"{_RESTORE}")
    return value


def _top(data: Any, path: Path) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise NnUNetFileError(f"{path} must hold a JSON object, not {_json_type(data)}; "
                              f"{_RESTORE}")
    return data


def check_dataset_json(data: Any, path: Path) -> int:
    """Check ``dataset.json``; returns the number of input channels."""
    data = _top(data, path)
    key = "channel_names" if "channel_names" in data or "modality" not in data else "modality"
    channels = _need(data, key, "non-empty object", path)
    labels = _need(data, "labels", "non-empty object", path)
    for name, value in labels.items():
        ok = (_is(value, "list of integers") if isinstance(value, list | tuple)
              else isinstance(value, int) and not isinstance(value, bool))
        if not ok:
            raise NnUNetFileError(f"{path}: label {name!r} must be an integer (or a list of "
                                  f"integers), not {_json_type(value)}; {_RESTORE}")
    if "regions_class_order" in data and data["regions_class_order"] is not None:
        _need(data, "regions_class_order", "list of integers", path)
    return len(channels)


def check_plans(data: Any, path: Path, n_channels: int) -> Mapping[str, Any]:
    """Check the top level of ``plans.json`` (every configuration is checked when used, by
    :func:`check_configuration`)."""
    plans = _top(data, path)
    _need(plans, "configurations", "non-empty object", path)
    _need(plans, "image_reader_writer", "string", path)
    for key in ("transpose_forward", "transpose_backward"):
        order = _need(plans, key, "list of integers", path)
        if sorted(order) != list(range(len(order))) or len(order) not in (2, 3):
            raise NnUNetFileError(f"{path}: {key!r} must be an axis order such as [0, 1, 2], "
                                  f"not {order}; {_RESTORE}")
    if "label_manager" in plans:
        _need(plans, "label_manager", "string", path)
    key = "foreground_intensity_properties_per_channel"
    if key not in plans and "foreground_intensity_properties_by_modality" in plans:
        key = "foreground_intensity_properties_by_modality"
    props = _need(plans, key, "object", path)
    for c in range(n_channels):
        _need(props, str(c), "object", path, key)
    return plans


def _resolve(configurations: Mapping[str, Any], name: str, path: Path) -> dict[str, Any]:
    """The configuration with its ``inherits_from`` chain merged (as ``PlansManager`` does)."""
    chain: list[str] = []
    current = name
    while True:
        if current not in configurations:
            have = ", ".join(sorted(map(str, configurations))) or "none"
            what = ("the checkpoint's configuration" if current == name
                    else f"inherited by {chain[-1]!r}")
            raise NnUNetFileError(f"{path}: no configuration {current!r} ({what}); it has: "
                                  f"{have}; {_RESTORE}")
        if current in chain:
            raise NnUNetFileError(f"{path}: configurations inherit in a circle "
                                  f"({' -> '.join([*chain, current])}); {_RESTORE}")
        chain.append(current)
        conf = configurations[current]
        if not isinstance(conf, Mapping):
            raise NnUNetFileError(f"{path}: 'configurations.{current}' must be an object, not "
                                  f"{_json_type(conf)}; {_RESTORE}")
        parent = conf.get("inherits_from")
        if parent is None:
            break
        if not isinstance(parent, str):
            raise NnUNetFileError(f"{path}: 'configurations.{current}.inherits_from' must be a "
                                  f"string, not {_json_type(parent)}; {_RESTORE}")
        current = parent
    merged: dict[str, Any] = {}
    for part in reversed(chain):
        merged.update(configurations[part])
    return merged


def check_configuration(plans: Mapping[str, Any], name: str, path: Path,
                        n_channels: int) -> None:
    """Check configuration ``name`` of ``plans.json`` (its ``inherits_from`` chain resolved)."""
    conf = _resolve(plans["configurations"], name, path)
    where = f"configurations.{name}"
    _need(conf, "preprocessor_name", "string", path, where)
    patch = _need(conf, "patch_size", "list of integers", path, where)
    spacing = _need(conf, "spacing", "list of numbers", path, where)
    if len(patch) not in (2, 3) or len(spacing) != len(patch) or min(patch, default=0) < 1 \
            or min(spacing, default=0) <= 0:
        raise NnUNetFileError(f"{path}: '{where}' needs a 2D or 3D 'patch_size' and a positive "
                              f"'spacing' of the same length (has {patch} and {spacing}); "
                              f"{_RESTORE}")
    for key, kind in (("normalization_schemes", "list of strings"), ("use_mask_for_norm", "list")):
        value = _need(conf, key, kind, path, where)
        if len(value) < n_channels:
            raise NnUNetFileError(f"{path}: '{where}.{key}' has {len(value)} entries for "
                                  f"{n_channels} input channel(s); {_RESTORE}")
    for key in _RESAMPLING:
        _need(conf, key, "string", path, where)
        _need(conf, f"{key}_kwargs", "object", path, where)
    if "architecture" not in conf and "UNet_class_name" in conf:
        for key, kind in _OLD_ARCHITECTURE.items():
            _need(conf, key, kind, path, where)
        return
    arch = _need(conf, "architecture", "object", path, where)
    _need(arch, "network_class_name", "string", path, f"{where}.architecture")
    _need(arch, "arch_kwargs", "object", path, f"{where}.architecture")
    _need(arch, "_kw_requires_import", "list of strings", path, f"{where}.architecture")


def check_checkpoint(ckpt: Mapping[str, Any], path: Path) -> None:
    """The keys of an nnU-Net checkpoint that inference reads, with their types."""
    if not isinstance(ckpt.get("trainer_name"), str) or not ckpt["trainer_name"]:
        raise NnUNetFileError(f"{path}: 'trainer_name' must be a non-empty string; this is not "
                              "a checkpoint written by nnU-Net v2")
    init = ckpt.get("init_args")
    if not isinstance(init, Mapping) or not isinstance(init.get("configuration"), str):
        raise NnUNetFileError(f"{path}: 'init_args.configuration' is missing; this is not a "
                              "checkpoint written by nnU-Net v2")
    if not isinstance(ckpt.get("network_weights"), Mapping):
        raise NnUNetFileError(f"{path}: 'network_weights' must be a mapping of tensors, not "
                              f"{_json_type(ckpt.get('network_weights'))}")
