"""Settings of one run: one typed, immutable, serialisable object.

A run's settings are built once, in layers, and then only read::

    defaults (the dataclass fields below)  <-  study file (pipelines/*.yml)  <-  command line

The defaults *are* the default study: ``Settings()`` equals the settings of
``pipelines/atlas_resolution.yml`` (name, description and source aside; a test keeps them
equal), and a library function that has a default for a setting takes it from here (e.g.
``n_boot: int = GroupSettings.n_boot``), so every default is written once.

(or ``--config-file logs/config-<run>.json`` in place of defaults + study file, to replay a run).
Every value of every layer goes through the *same* check — the ``check`` of its field — so a
study file's ``threshold: 1.5`` is refused exactly like ``--threshold 1.5``. The result is a
frozen :class:`Settings` whose sections (``data``, ``study``, ``registration``,
``segmentation``, ``metrics``, ``outputs``, ``group``, ``execution``) are passed explicitly to the
workflow factories; interfaces get plain values and own no defaults.

:meth:`Settings.to_dict` is JSON; :meth:`Settings.from_dict` re-checks every value, so a written
config replays the run. :meth:`Settings.results_key` is the digest of everything that can
change a result (not paths, threads or the run id): with the model checksum and the condition
it keys each committed result (see :mod:`bids_stroke.outputs.commit`).

Pure module: no nipype, no torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from bids_stroke.__about__ import __version__
from bids_stroke.core.cpus import (
    MAX_DEFAULT_THREADS,
    MIN_PARALLEL_CPUS,
    default_nprocs,
    default_omp_nthreads,
)
from bids_stroke.outputs.probseg import DEFAULT_MODE as DEFAULT_PROBSEG_MODE
from bids_stroke.outputs.probseg import PROBSEG_MODES

if TYPE_CHECKING:
    from bids_stroke.degradation import Condition

TEMPLATE = "MNI152NLin2009aSym"
DEFAULT_STUDY = "atlas_resolution"
_LABEL_RE = re.compile(r"^[A-Za-z0-9]+$")


class SettingsError(ValueError):
    """A bad setting; the message is one line naming where it came from and the fix."""

    def __init__(self, message: str, exit_code: int = 64) -> None:
        super().__init__(message)
        self.exit_code = exit_code


Check = Callable[[Any], Any]


def setting(default: Any, check: Check, help: str = "", *,
            factory: Callable[[], Any] | None = None, default_text: str | None = None) -> Any:
    """A dataclass field with its check and help text (the command line's help is made of it).

    ``factory`` computes the default when a setting is built (e.g. from the usable CPUs; then
    ``default`` must be None); ``default_text`` says what the default is where the value alone
    does not (``None`` meaning "the model's own", or a computed default).
    """
    if isinstance(default, list | dict):
        raise TypeError("settings defaults must be immutable (tuple / None)")
    metadata = {"check": check, "help": help, "default_text": default_text}
    if factory is not None:
        if default is not None:
            raise TypeError("a setting has a default or a factory, not both")
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


# ------------------------------------------------------------------------------- checks
# Each check takes a raw value (YAML/JSON/CLI) and returns the canonical value or raises
# ValueError with the reason (the caller adds where the value came from). A check made by a
# factory below says what it accepts (``choices``, ``item`` of a list, ``inner`` of an
# optional value), so the command line can be made from the fields (bids_stroke.cli.options).


def _about(check: Check, **what: Any) -> Check:
    for name, value in what.items():
        setattr(check, name, value)
    return check


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def number(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
           hi_open: bool = False) -> Check:
    """A finite float within bounds."""

    def check(value: Any) -> float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ValueError(f"must be a number, got {value!r}") from None
        if not _is_number(value) or not math.isfinite(float(value)):
            raise ValueError(f"must be a finite number, got {value!r}")
        v = float(value)
        lo_bad = lo is not None and (v <= lo if lo_open else v < lo)
        hi_bad = hi is not None and (v >= hi if hi_open else v > hi)
        if lo_bad or hi_bad:
            left = "(" if lo_open else "["
            right = ")" if hi_open else "]"
            raise ValueError(f"must be in {left}{_g(lo, '-inf')}, {_g(hi, 'inf')}{right}, "
                             f"got {value!r}")
        return v

    return check


def integer(lo: int | None = None, hi: int | None = None) -> Check:
    """An int within bounds (floats such as 2.0 are refused: say what you mean)."""

    def check(value: Any) -> int:
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"must be an integer, got {value!r}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ValueError(f"must be in [{_g(lo, '-inf')}, {_g(hi, 'inf')}], got {value!r}")
        return value

    return check


def optional(check: Check) -> Check:
    """``None`` or a value passing ``check``."""

    def wrapped(value: Any) -> Any:
        return None if value is None else check(value)

    return _about(wrapped, inner=check)


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


def choice(*choices: Any) -> Check:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or value not in choices:
            raise ValueError(f"must be one of {', '.join(map(str, choices))}; got {value!r}")
        return value

    return _about(check, choices=choices)


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {value!r}")
    if any(c in value for c in "\x00\r"):
        raise ValueError("must not contain control characters")
    return value


def path(value: Any) -> Path:
    if isinstance(value, Path):
        return value
    return Path(text(value))


def strings(item: Check = text, *, min_len: int = 0, max_len: int = 10_000) -> Check:
    """A list/tuple of values each passing ``item``; returned as a tuple."""

    def check(value: Any) -> tuple[Any, ...]:
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ValueError(f"must be a list, got {value!r}")
        if not min_len <= len(value) <= max_len:
            raise ValueError(f"must have {min_len}..{max_len} entries, got {len(value)}")
        out = []
        for i, v in enumerate(value):
            try:
                out.append(item(v))
            except ValueError as exc:
                raise ValueError(f"entry {i + 1}: {exc}") from None
        return tuple(out)

    return _about(check, item=item)


def bids_label(prefix: str) -> Check:
    """A BIDS label, with or without its ``sub-``/``ses-`` prefix (stored without)."""

    def check(value: Any) -> str:
        v = text(value).strip()
        if v.startswith(f"{prefix}-"):
            v = v[len(prefix) + 1:]
        if not _LABEL_RE.match(v):
            raise ValueError(f"invalid {prefix} label {value!r}: BIDS labels are alphanumeric "
                             f"(e.g. '{prefix}-01' or '01')")
        return v

    return check


def suffix(value: Any) -> str:
    """A BIDS suffix such as T1w, FLAIR, dwi, adc (aliases t1, t2, flair accepted)."""
    from bids_stroke.inputs.discovery import resolve_modality

    v = text(value).strip()
    if not re.fullmatch(r"[A-Za-z0-9]+", v):
        raise ValueError(f"{value!r} is not a BIDS suffix (e.g. T1w, FLAIR, dwi, adc)")
    return resolve_modality(v)


def device(value: Any) -> str:
    v = text(value).lower()
    if v not in ("auto", "cpu", "cuda") and not re.fullmatch(r"cuda:\d+", v):
        raise ValueError(f"must be auto, cpu, cuda or cuda:N, got {value!r}")
    return v


def metric_grid(value: Any) -> str:
    """``native`` or ``padded:<multiple>`` (the grid true negatives are counted on)."""
    v = text(value).strip().lower()
    m = re.fullmatch(r"padded:(\d+)", v)
    if v != "native" and not (m and 1 <= int(m.group(1)) <= 1024):
        raise ValueError(f"must be 'native' or 'padded:<multiple>' (e.g. padded:16), got "
                         f"{value!r}")
    return v


def fold(value: Any) -> str:
    """An nnU-Net fold: ``all`` or a non-negative integer (stored as text)."""
    v = str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if v != "all" and not v.isdigit():
        raise ValueError(f"must be 'all' or a fold number, got {value!r}")
    return v


def _condition_or_text(value: Any) -> Any:
    from bids_stroke.degradation import Condition

    return value if isinstance(value, Condition) else text(value)


def conditions(value: Any) -> tuple[Condition, ...]:
    """Parsed conditions from specs (or conditions), in order; duplicates and bad specs
    refused. The settings hold them parsed; :func:`thaw` writes their canonical specs."""
    from bids_stroke.degradation import ConditionError, parse_conditions

    items = strings(_condition_or_text, min_len=1, max_len=100)(value)
    try:
        return tuple(parse_conditions(list(items)))
    except ConditionError as exc:
        raise ValueError(str(exc)) from None


_about(conditions, item=_condition_or_text)  # a list of specs (or conditions)


def condition(value: Any) -> Condition:
    """One parsed condition from its spec (e.g. the reference condition)."""
    from bids_stroke.degradation import ConditionError, parse_condition

    try:
        return parse_condition(_condition_or_text(value))
    except ConditionError as exc:
        raise ValueError(str(exc)) from None


def frozen_json(value: Any) -> Any:
    """A JSON-like mapping made read-only (dicts -> mappingproxy, lists -> tuples)."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): frozen_json(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(frozen_json(v) for v in value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise ValueError(f"must be JSON data, got {type(value).__name__}")


def dataset_labels(value: Any) -> Any:
    """``{label: folder}`` of at least two datasets (labels: letters, digits, - and _)."""
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a mapping of LABEL: folder, got {value!r}")
    out = {}
    for label, folder in value.items():
        if (not isinstance(label, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", label)
                or not isinstance(folder, str) or not folder.strip()):
            raise ValueError(f"item {label}={folder!r} must be LABEL: folder (label: letters, "
                             "digits, - or _; folder: a path)")
        out[label] = text(folder).strip()
    if len(out) < 2:
        raise ValueError("needs at least two datasets")
    return frozen_json(out)


class FrozenMapping(Mapping[str, Any]):
    """A read-only, hashable mapping of plain values (a settings default may be one)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, Any]) -> None:
        self._items = dict(items)

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(tuple(self._items.items()))

    def __repr__(self) -> str:
        return f"FrozenMapping({self._items!r})"


_METRIC_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_DATASET_CONDITION_RE = re.compile(r"^[A-Za-z0-9_-]+:[A-Za-z0-9]+$")


def metric_name(value: Any) -> str:
    """A metric column name (``dice``, ``hd95``); whether the outputs have it is checked by
    the group level."""
    v = text(value).strip()
    if not _METRIC_RE.match(v):
        raise ValueError(f"must be a metric column name such as dice or hd95, got {value!r}")
    return v


def margin_map(value: Any) -> Any:
    """``{metric: margin}``: equivalence margins, positive, in the metric's own units."""
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a mapping of metric: margin (e.g. {{dice: 0.05}}), got "
                         f"{value!r}")
    out = {}
    for key, raw in value.items():
        name = metric_name(key)
        try:
            out[name] = number(0, None, lo_open=True)(raw)
        except ValueError as exc:
            raise ValueError(f"{name} {exc}") from None
    return FrozenMapping(out)


def dataset_pairs(value: Any) -> tuple[tuple[str, str], ...]:
    """Dataset comparisons across conditions: ``[[ISLES:native, ATLAS:crude2], ...]`` (each
    side ``LABEL:desc``, a dataset label of group.compare and a condition label)."""
    items = strings(lambda v: v, min_len=1, max_len=1000)(value)
    out = []
    for i, item in enumerate(items):
        sides = item.split() if isinstance(item, str) else item
        if (not isinstance(sides, list | tuple) or len(sides) != 2
                or not all(isinstance(v, str) and _DATASET_CONDITION_RE.match(v.strip())
                           for v in sides)):
            raise ValueError(f"entry {i + 1} must be two LABEL:condition items (e.g. "
                             f"[ISLES:native, ATLAS:crude2]), got {item!r}")
        out.append((sides[0].strip(), sides[1].strip()))
    return tuple(out)


def mapping(value: Any) -> Any:
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a mapping, got {value!r}")
    return frozen_json(value)


def _g(value: float | None, default: str) -> str:
    return default if value is None else f"{value:g}"


def thaw(value: Any) -> Any:
    """JSON form of a setting value (inverse of :func:`frozen_json`, paths as strings,
    conditions as their canonical specs)."""
    from bids_stroke.degradation.base import Condition

    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Condition):
        return value.spec
    return value


# ----------------------------------------------------------------------------- sections
# Each field's help is the command line's help of its option (bids_stroke.cli.options), so it
# never says what the default is: the option adds "(default: ...)" from the field's default, or
# from ``default_text`` where the value alone does not say it.
@dataclass(frozen=True)
class DataSettings:
    """What to read: the input dataset and the selection."""

    bids_dir: Path = setting(Path("."), path, "root of the input BIDS dataset")
    output_dir: Path = setting(Path("."), path, "root of the derivatives written")
    participant_label: tuple[str, ...] | None = setting(
        None, optional(strings(bids_label("sub"), min_len=1)),
        "subjects to process, with or without 'sub-'", default_text="all")
    session_label: tuple[str, ...] | None = setting(
        None, optional(strings(bids_label("ses"), min_len=1)),
        "sessions to process, with or without 'ses-'", default_text="all")
    modality: str | None = setting(
        None, optional(suffix),
        "BIDS suffix of the reference image (the grid of its lesion mask): T1w (ATLAS), FLAIR, "
        "dwi or adc (ISLES'22)",
        default_text="the model's first channel, T1w for the bundled model")
    bids_filters: Mapping[str, Any] | None = setting(
        None, optional(mapping), "extra pybids filters per query")
    derivatives: tuple[Path, ...] = setting(
        (), strings(path),
        "extra folders searched for lesion masks (bids_dir/derivatives is always searched)")
    database_dir: Path | None = setting(
        None, optional(path),
        "persistent pybids database folder, so large datasets are indexed once")
    skip_bids_validation: bool = setting(False, boolean,
                                         "skip the structural check of the input dataset")


@dataclass(frozen=True)
class StudySettings:
    """The study: its name and the resolution conditions (parsed :class:`Condition` objects;
    given as specs, e.g. the defaults below, they are parsed when the section is made)."""

    name: str = setting(DEFAULT_STUDY, text, "study name")
    description: str = setting("", text, "one paragraph")
    conditions: tuple[Condition, ...] = setting(
        ("native", "crude:2", "linear:2"), conditions,
        "resolution conditions, in order, e.g. native crude:2 linear:2 thick:5 thick:5:gap=1 "
        "kspace:2")
    reference: str = setting(
        "mask", choice("mask", "prediction", "auto"),
        "what each prediction is scored against: 'mask', the image's lesion mask (accuracy; "
        "images without one are not run); 'prediction', the segmentation's own prediction at "
        "the reference condition (agreement, no mask needed; that condition is not scored "
        "against itself); 'auto', the mask where there is one, else the prediction")
    reference_condition: Condition = setting(
        "native", condition,
        "the condition whose prediction is the reference of --reference prediction/auto; it "
        "must be one of the conditions")
    source: str | None = setting(None, optional(text), "study file it came from")

    def __post_init__(self) -> None:
        object.__setattr__(self, "conditions", conditions(self.conditions))
        object.__setattr__(self, "reference_condition", condition(self.reference_condition))


@dataclass(frozen=True)
class RegistrationSettings:
    """Spatial normalisation to the template (template-space models only)."""

    kind: str = setting("affine", choice("affine", "rigid", "syn"),
                        f"registration to {TEMPLATE} when the image is not already there")
    template: str = setting(TEMPLATE, choice(TEMPLATE), "TemplateFlow template")
    template_resolution: int = setting(
        1, choice(1, 2),
        f"resolution (mm) of the {TEMPLATE} grid that native-space images are registered to")


@dataclass(frozen=True)
class SegmentationSettings:
    """The model and how it is run."""

    model: Path | None = setting(
        None, optional(path),
        "the model: a bids_stroke checkpoint (.pt), a TorchScript file, an ONNX file or an "
        "nnU-Net v2 trained-model folder; see 'bids_stroke model info MODEL'",
        default_text="the bundled model")
    device: str = setting("auto", device,
                          "where the model runs: auto (CUDA when available, else the CPU), cpu, "
                          "cuda or cuda:N")
    precision: str = setting("auto", choice("auto", "fp32", "bf16", "fp16"),
                             "inference precision; auto uses AMP on GPU and bf16 on CPUs with "
                             "AMX")
    engine: str = setting("auto", choice("auto", "torch", "openvino"),
                          "engine of fp32 inference on the CPU (bids_stroke checkpoints): auto "
                          "uses OpenVINO when installed (1.4x faster here, checked to give "
                          "torch's masks), else torch")
    threshold: float | None = setting(
        None, optional(number(0, 1, lo_open=True, hi_open=True)),
        "probability threshold: a voxel is lesion where its probability is >= the threshold",
        default_text="the model's own: 0.5 for the bundled model, what 'bids_stroke model "
        "info MODEL' prints for yours")
    min_size: int = setting(0, integer(0, 10**9), "drop predicted components below (voxels)")
    tta: bool = setting(False, boolean, "mirror test-time augmentation")
    mode: str = setting("auto", choice("auto", "full", "sliding"), "inference mode")
    channels: tuple[str, ...] | None = setting(
        None, optional(strings(suffix, min_len=1, max_len=16)),
        "the model's input channels as BIDS suffixes, in order (e.g. dwi adc)",
        default_text="what the model declares")
    folds: tuple[str, ...] | None = setting(
        None, optional(strings(fold, min_len=1, max_len=64)),
        "nnU-Net folds to ensemble, e.g. 0 1 2 3 4 or all", default_text="the folders present")
    checkpoint: str = setting("final", choice("final", "best"),
                              "nnU-Net checkpoint_final.pth or checkpoint_best.pth")
    trust_model_code: bool = setting(
        False, boolean,
        "allow a model file whose loading runs pickled code (nnU-Net checkpoints saved with "
        "custom classes); only for files you trust")
    allow_modality_mismatch: bool = setting(
        False, boolean,
        "run the model on an image whose modality differs from the model's channels (warned "
        "in every report)")


@dataclass(frozen=True)
class MetricsSettings:
    """How predictions are scored."""

    connectivity: int = setting(26, choice(6, 18, 26), "lesion connectivity")
    tolerance_mm: float = setting(2.0, number(0, 100, lo_open=True), "surface Dice tolerance")
    grid: str = setting("padded:16", metric_grid,
                        "grid over which true negatives (specificity, accuracy, predicted "
                        "fraction) are counted: native, or padded:16 as the original study")


@dataclass(frozen=True)
class OutputSettings:
    """What is written besides masks, maps and tables."""

    save_degraded: bool = setting(True, boolean,
                                  "write the degraded images (masks are always written)")
    save_degraded_masks: bool = setting(False, boolean, "write reference masks degraded alike")
    save_probseg: str = setting(
        DEFAULT_PROBSEG_MODE, choice(*PROBSEG_MODES),
        "how lesion probability maps are written: compact (16-bit, within 1e-4 of the model's "
        "output, below 1e-4 stored as 0; ~40x smaller), full (float32 as computed) or none; "
        "masks and metrics are identical in every mode")


@dataclass(frozen=True)
class GroupSettings:
    """Group-level statistics."""

    metrics: tuple[str, ...] = setting(
        ("dice", "precision", "recall", "jaccard", "specificity", "accuracy", "rel_volume_diff",
         "pred_fraction_pct"),
        strings(text, min_len=1, max_len=100), "metrics tested")
    alpha: float = setting(0.05, number(0, 1, lo_open=True, hi_open=True), "significance level")
    n_boot: int = setting(2000, integer(100, 1_000_000), "bootstrap resamples")
    unit: str = setting("participant", choice("participant", "image"),
                        "statistical unit: 'participant' averages a participant's sessions/runs "
                        "before the tests, 'image' keeps every image")
    compare: Mapping[str, str] | None = setting(
        None, optional(dataset_labels),
        "compare datasets: participant-level output folders with a label each, e.g. "
        "ATLAS=/out_atlas ISLES=/out_isles (unpaired tests per condition); "
        "LABEL=DIR:native,crude2 compares only those conditions of that dataset, with every "
        "condition of the others (ISLES=/out_isles:native ATLAS=/out_atlas: ISLES native "
        "against each ATLAS condition)", default_text="no dataset comparison")
    pairs: tuple[tuple[str, str], ...] | None = setting(
        None, optional(dataset_pairs),
        "dataset comparisons across conditions, e.g. [[ISLES:native, ATLAS:crude2]]",
        default_text="every pair of datasets under each condition they share")
    primary: str = setting("dice", metric_name,
                           "primary metric: its comparisons with the reference condition are the "
                           "confirmatory family and head the findings")
    margins: Mapping[str, float] = setting(
        FrozenMapping({"dice": 0.05}), margin_map,
        "equivalence margin of a metric in its own units, e.g. dice=0.03 or hd95=2 (a starting "
        "point to change, not a clinical truth); repeat for several metrics; added to the "
        "study's margins")
    digits_rank: int | None = setting(
        7, optional(integer(1, 22)),
        "significant digits kept before ranking, so decimal-equal values tie (R's "
        "digits.rank; null: exact binary comparison)")
    bland_altman: str = setting("log", choice("log", "raw"),
                                "Bland-Altman scale: log (ratio of volumes) or raw (ml)")
    strict: bool = setting(
        False, boolean,
        "exit 66 and write nothing when an image of output_dir is incomplete (a run killed "
        "before its commit, a quarantined journal, files changed after their commit); without "
        "it, such an image is left out and named in one line and in the report")


@dataclass(frozen=True)
class ExecutionSettings:
    """How this run executes (never changes a result)."""

    levels: tuple[str, ...] = setting(("participant",), strings(
        choice("participant", "group"), min_len=1, max_len=2), "analysis levels")
    work_dir: Path | None = setting(
        None, optional(path),
        "nipype work folder; a re-run with the same folder resumes, and two runs never share "
        "one", default_text="a new $TMPDIR/bids_stroke-<user>/<run id>, removed after a fully "
        "successful run and named in the log otherwise")
    nprocs: int = setting(
        None, integer(1, 4096),
        "processes for nipype's MultiProc plugin; the segmentation uses all of them, one image "
        f"at a time; one process below {MIN_PARALLEL_CPUS} CPUs, where a second was slower",
        factory=default_nprocs, default_text="half the CPUs this process may use, at least 1")
    omp_nthreads: int = setting(
        None, integer(1, 4096), "threads per process", factory=default_omp_nthreads,
        default_text=f"CPUs / --nprocs, at most {MAX_DEFAULT_THREADS}")
    mem_gb: float | None = setting(None, optional(number(0, 1e6, lo_open=True)),
                                   "memory nipype may schedule", default_text="no limit")
    max_image_gb: float | None = setting(
        None, optional(number(0, 1e6, lo_open=True)),
        "largest image accepted, as the data size its header declares (voxels x bytes per "
        "voxel), checked before anything is decompressed",
        default_text="1 GiB or a quarter of --mem-gb or of the available memory, whichever is "
        "smaller")
    plugin: Mapping[str, Any] | None = setting(None, optional(mapping), "nipype plugin")
    stop_on_first_crash: bool = setting(
        False, boolean,
        "stop at the first failing node instead of continuing with the other subjects")
    seed: int = setting(0, integer(0, 2**31 - 1), "seed for everything random")
    clean: bool = setting(
        False, boolean,
        "remove (and list) results of conditions the current study no longer has; without it "
        "re-runs only add or replace conditions")
    prepare: bool = setting(
        False, boolean,
        "participant level only: validate and check the inputs, build the pybids database "
        "(--bids-database-dir) and write the dataset-level files of output_dir, then exit "
        "without processing anyone. Run it once before a SLURM array, whose tasks then only "
        "read them")
    lock_wait_s: float = setting(
        0.0, number(0, 7 * 86400), "wait up to this long for a subject locked by another run",
        default_text="do not wait; the subject is skipped with exit code 75")
    run_uuid: str = setting("", text, "run identifier")
    command: str = setting("", text, "the command line")
    verbose: int = setting(0, integer(0, 5), "log verbosity")


SECTIONS: dict[str, type] = {
    "data": DataSettings,
    "study": StudySettings,
    "registration": RegistrationSettings,
    "segmentation": SegmentationSettings,
    "metrics": MetricsSettings,
    "outputs": OutputSettings,
    "group": GroupSettings,
    "execution": ExecutionSettings,
}
#: top-level keys of a study file that set the ``study`` section
STUDY_TOP_LEVEL = ("name", "description", "conditions", "reference", "reference_condition",
                   "source")
#: sections a study file may set (``study`` keys are top-level there: name, conditions, ...)
STUDY_FILE_SECTIONS = ("registration", "segmentation", "metrics", "outputs", "group")
#: sections whose values can change a result (keyed into each committed result)
RESULT_SECTIONS = ("registration", "segmentation", "metrics")
#: the engine is left out like the device: engines are used only when they reproduce torch
#: fp32 (probabilities within 1e-4, the same masks; bids_stroke.model.engines)
_NOT_RESULT = {("segmentation", "device"), ("segmentation", "model"),
               ("segmentation", "engine")}


def check_value(cls: type, key: str, raw: Any) -> Any:
    """The canonical value of ``cls.key`` from a raw value (``ValueError`` with the reason)."""
    known = {f.name: f for f in fields(cls)}
    if key not in known:
        raise KeyError(key)
    return known[key].metadata["check"](raw)


def build_section(cls: type, values: Mapping[str, Any], where: str, base: Any | None = None,
                  *, prefix: str = "") -> Any:
    """``cls`` from ``base`` (or defaults) with ``values`` applied, each value checked.

    Errors read ``"<where>: <prefix><key> <reason>"``, e.g.
    ``"study.yml: segmentation.threshold must be in (0, 1), got 1.5"``.
    """
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise SettingsError(f"{where}: unknown key {prefix}{unknown[0]} "
                            f"(allowed: {', '.join(sorted(known))})")
    updates = {}
    for key, raw in values.items():
        try:
            updates[key] = check_value(cls, key, raw)
        except ValueError as exc:
            raise SettingsError(f"{where}: {prefix}{key} {exc}") from None
    obj = base if base is not None else cls()
    return dataclasses.replace(obj, **updates)


@dataclass(frozen=True)
class Settings:
    """Every setting of a run, in sections (see the module docstring)."""

    data: DataSettings = field(default_factory=DataSettings)
    study: StudySettings = field(default_factory=StudySettings)
    registration: RegistrationSettings = field(default_factory=RegistrationSettings)
    segmentation: SegmentationSettings = field(default_factory=SegmentationSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    outputs: OutputSettings = field(default_factory=OutputSettings)
    group: GroupSettings = field(default_factory=GroupSettings)
    execution: ExecutionSettings = field(default_factory=ExecutionSettings)
    version: str = __version__

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (the ``logs/config-<run>.json`` content)."""
        out: dict[str, Any] = {"bids_stroke_version": self.version}
        for name in SECTIONS:
            section = getattr(self, name)
            out[name] = {f.name: thaw(getattr(section, f.name)) for f in fields(section)}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "config") -> Settings:
        """Rebuild (and re-check) settings written by :meth:`to_dict`."""
        if not isinstance(data, Mapping):
            raise SettingsError(f"{where}: must be a JSON object of settings sections")
        unknown = sorted(set(data) - set(SECTIONS) - {"bids_stroke_version"})
        if unknown:
            raise SettingsError(f"{where}: unknown section {unknown[0]!r}")
        parts = {}
        for name, section_cls in SECTIONS.items():
            values = data.get(name) or {}
            if not isinstance(values, Mapping):
                raise SettingsError(f"{where}: section {name!r} must be a mapping")
            parts[name] = build_section(section_cls, values, where, prefix=f"{name}.")
        return check_consistency(cls(**parts), where)

    def replace(self, **sections: Mapping[str, Any]) -> Settings:
        """A copy with some values of some sections changed (each value checked)."""
        parts = {}
        for name, values in sections.items():
            parts[name] = build_section(SECTIONS[name], values, "settings", getattr(self, name),
                                        prefix=f"{name}.")
        return dataclasses.replace(self, **parts)

    def results_key(self, reference: str = "mask") -> str:
        """Digest of every setting that can change a result (16 hex characters).

        ``reference``: what the image was actually scored against (``mask`` or
        ``prediction``, see :func:`bids_stroke.metrics.reference.resolve`); a prediction reference
        and its condition enter the digest, so results scored against a prediction are never mixed
        with results scored against a mask (mask-scored results keep the digest they always
        had).
        """
        content: dict[str, Any] = {
            name: {k: v for k, v in self.to_dict()[name].items() if (name, k) not in _NOT_RESULT}
            for name in RESULT_SECTIONS
        }
        content["seed"] = self.execution.seed
        if reference == "prediction":
            content["reference"] = {"kind": "prediction",
                                    "condition": self.study.reference_condition.spec}
        elif reference != "mask":
            raise ValueError(f"reference must be mask or prediction, got {reference!r}")
        blob = json.dumps(content, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def write(self, folder: Path) -> Path:
        """Record the settings as ``folder/config-<run>.json`` (atomic)."""
        from bids_stroke.core.atomic import atomic_write_text

        path = Path(folder) / f"config-{self.execution.run_uuid or 'norun'}.json"
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2, sort_keys=True)
                                 + "\n")


def check_consistency(settings: Settings, where: str) -> Settings:
    """Checks across fields (one line naming the keys and the fix)."""
    group = settings.group
    if group.primary not in group.margins:
        raise SettingsError(f"{where}: group.primary {group.primary} has no margin: add it to "
                            f"group.margins (command line: --margin {group.primary}=VALUE)")
    return settings


def settings_from_layers(
    study: Mapping[str, Any] | None = None,
    *,
    base: Settings | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    study_where: str = "study file",
) -> Settings:
    """Settings = ``base`` (default: defaults) <- ``study`` (a parsed study file) <- ``overrides``.

    ``study`` has the study-file shape (``name``, ``description``, ``conditions`` and the
    sections of :data:`STUDY_FILE_SECTIONS`); ``overrides`` maps section -> {key: raw value}
    (the command line).
    """
    settings = base or Settings()
    if study is not None:
        top = {k: study[k] for k in STUDY_TOP_LEVEL if k in study}
        parts = {"study": build_section(StudySettings, top, study_where, settings.study)}
        for name in STUDY_FILE_SECTIONS:
            values = study.get(name) or {}
            if not isinstance(values, Mapping):
                raise SettingsError(f"{study_where}: section {name!r} must be a mapping")
            parts[name] = build_section(SECTIONS[name], values, study_where,
                                        getattr(settings, name), prefix=f"{name}.")
        settings = dataclasses.replace(settings, **parts)
    for name, values in (overrides or {}).items():
        section = build_section(SECTIONS[name], values, "command line",
                                getattr(settings, name), prefix=f"{name}.")
        settings = dataclasses.replace(settings, **{name: section})
    return check_consistency(settings, "command line" if overrides else study_where)


def study_keys() -> dict[str, tuple[str, ...]]:
    """Keys a study file may set, per section (for docs and errors)."""
    return {name: tuple(f.name for f in fields(SECTIONS[name])) for name in STUDY_FILE_SECTIONS}
