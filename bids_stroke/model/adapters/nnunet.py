"""nnU-Net v2 trained-model folders, predicted by nnunetv2's own ``nnUNetPredictor``.

A folder holds ``dataset.json``, ``plans.json`` and ``fold_N/checkpoint_final.pth``. The
predictor is set up once, like ``initialize_from_trained_model_folder`` but reading every
checkpoint with ``torch.load(weights_only=True)`` (nnU-Net itself unpickles them with
``weights_only=False``). A prediction is the path of ``predict_from_files``: the files are read
by the plans' own reader class, preprocessed by the configuration's preprocessor (crop,
normalisation, resampling to the target spacing), predicted by sliding windows with Gaussian
blending and mirroring over the folds, and converted back to the original shape with
``convert_predicted_logits_to_segmentation_with_correct_shape``. The probability of the lesion
label(s) is mapped back to the input grid with the reader's own ``write_seg`` (the geometry
nnU-Net gives its segmentations), so that it lies voxel for voxel on the input image.

Safety: the numpy scalar and dtype classes that nnU-Net's training logs put in checkpoints are
the only globals allowed besides torch's defaults (they rebuild numbers, nothing else). A
checkpoint needing anything more is refused unless ``trust_model_code=True``
(``--trust-model-code``), which unpickles it with full pickle: code in the file can run.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import json
import logging
import pickle
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch

from bids_stroke.core.digest import file_sha256
from bids_stroke.degradation.nifti import load_nifti
from bids_stroke.model.adapters.base import ChannelStack, Segmenter
from bids_stroke.model.adapters.nnunet_files import (
    NnUNetFileError,
    check_checkpoint,
    check_configuration,
    check_dataset_json,
    check_plans,
)
from bids_stroke.model.adapters.nnunet_trainers import TrainerLookupError, find_trainer
from bids_stroke.model.checkpoint import ModelLoadError
from bids_stroke.model.inference import select_device
from bids_stroke.model.memory import nnunet_memory_gb
from bids_stroke.model.spec import (
    DEFAULT_THRESHOLD,
    ModelSpec,
    map_nnunet_channels,
    resolve_spec,
)
from bids_stroke.model.steps import count_forward_passes

__all__ = [
    "ARGMAX_THRESHOLD",
    "CHECKPOINT_NAMES",
    "NnUNetSegmenter",
    "find_folds",
    "is_nnunet_folder",
    "numpy_safe_globals",
    "read_nnunet_checkpoint",
]

LOGGER = logging.getLogger("bids_stroke")
CHECKPOINT_NAMES = {"final": "checkpoint_final.pth", "best": "checkpoint_best.pth"}
#: nnU-Net's argmax of a background/lesion softmax gives exact ties to background, so its rule
#: is ``p > 0.5``; for float32 probabilities that is ``p >= nextafter(0.5, 1)``.
ARGMAX_THRESHOLD = float(np.nextafter(np.float32(DEFAULT_THRESHOLD), np.float32(1)))
_LESION_NAME = re.compile(r"lesion|stroke|infarct|core", re.IGNORECASE)
TRUST_HELP = (
    "pass --trust-model-code to unpickle it anyway (this runs code stored in the file: only "
    "for models from a source you trust)"
)


def is_nnunet_folder(path: Path) -> bool:
    return path.is_dir() and (path / "dataset.json").is_file() and (path / "plans.json").is_file()


def _import_nnunet() -> None:
    try:
        import nnunetv2  # noqa: F401
    except ImportError as exc:
        raise ModelLoadError(
            "nnU-Net models need nnunetv2: pip install 'bids_stroke[nnunet]'"
        ) from exc


def numpy_safe_globals() -> list[Any]:
    """numpy classes allowed in nnU-Net checkpoints: the scalar constructor and dtypes
    (``np.float64`` values in the training log). They rebuild numbers only."""
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import scalar  # type: ignore[no-redef]  # numpy 1's name
    from numpy import dtypes

    names = ("Float64DType", "Float32DType", "Float16DType", "Int64DType", "Int32DType",
             "Int16DType", "Int8DType", "UInt8DType", "UInt16DType", "BoolDType")
    return [scalar, np.dtype, *(getattr(dtypes, n) for n in names if hasattr(dtypes, n))]


def read_nnunet_checkpoint(path: Path, *, trust_model_code: bool = False) -> dict[str, Any]:
    """Read an nnU-Net ``.pth`` with ``weights_only=True`` (plus :func:`numpy_safe_globals`).

    Raises:
        ModelLoadError: missing/corrupt file, or a checkpoint that needs pickle code execution
            while ``trust_model_code`` is false.
    """
    if not path.is_file():
        raise ModelLoadError(f"nnU-Net checkpoint not found: {path}")
    try:
        with torch.serialization.safe_globals(numpy_safe_globals()):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not trust_model_code:
            try:
                unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
            except Exception:
                unsafe = []
            allowed = {f"{g.__module__}.{g.__qualname__}" for g in numpy_safe_globals()}
            names = [u for u in unsafe if u not in allowed] or ["unknown objects"]
            raise ModelLoadError(
                f"{path} holds pickled Python objects ({', '.join(names[:3])}) that loading "
                f"would run; refused. {TRUST_HELP}"
            ) from exc
        LOGGER.warning("--trust-model-code: unpickling %s with full pickle", path)
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"cannot read nnU-Net checkpoint {path}: {first}") from exc
    missing = [k for k in ("network_weights", "trainer_name", "init_args") if k not in ckpt]
    if not isinstance(ckpt, dict) or missing:
        raise ModelLoadError(f"{path} is not an nnU-Net v2 checkpoint (missing {missing})")
    try:
        check_checkpoint(ckpt, path)
    except NnUNetFileError as exc:
        raise ModelLoadError(str(exc)) from exc
    return ckpt


def find_folds(folder: Path, checkpoint_name: str) -> list[int | str]:
    """Folds with ``checkpoint_name``, like nnU-Net's auto-detection (``fold_all`` only
    when no numbered fold exists)."""
    found = sorted(
        int(p.name[5:]) for p in folder.glob("fold_*")
        if p.name[5:].isdigit() and (p / checkpoint_name).is_file()
    )
    if not found and (folder / "fold_all" / checkpoint_name).is_file():
        return ["all"]
    return list(found)


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}; fix or restore the file") from exc


def _lesion_labels(labels: dict[str, Any], where: Path) -> tuple[int, ...] | None:
    if any(isinstance(v, list | tuple) for v in labels.values()):
        raise ModelLoadError(
            f"{where}: region-based nnU-Net models (label lists) are not supported"
        )
    fg = {k: int(v) for k, v in labels.items() if int(v) != 0 and k != "ignore"}
    if len(fg) == 1:
        return tuple(fg.values())
    named = tuple(sorted(v for k, v in fg.items() if _LESION_NAME.search(k)))
    return named or None


class NnUNetSegmenter(Segmenter):
    """An nnU-Net v2 trained-model folder (see module docstring)."""

    def __init__(
        self,
        folder: Path,
        *,
        device: str = "auto",
        tta: bool | None = None,
        folds: Sequence[int | str] | None = None,
        checkpoint: str = "final",
        trust_model_code: bool = False,
        channels: Sequence[str] | None = None,
    ) -> None:
        _import_nnunet()
        self.folder = folder
        self.dataset_json = _load_json(folder / "dataset.json")
        self.plans = _load_json(folder / "plans.json")
        ckpt_name = CHECKPOINT_NAMES.get(checkpoint, checkpoint)
        use = [("all" if str(f) == "all" else int(f)) for f in folds] if folds else None
        use = use or find_folds(folder, ckpt_name)
        if not use:
            raise ModelLoadError(f"{folder}: no fold_*/{ckpt_name}; train a fold or pick "
                                 "--checkpoint best/final")
        files = [folder / f"fold_{f}" / ckpt_name for f in use]
        for f, path in zip(use, files, strict=True):
            if not path.is_file():
                have = ", ".join(str(x) for x in find_folds(folder, ckpt_name)) or "none"
                raise ModelLoadError(f"{folder}: fold {f} has no {ckpt_name} (folds with it: "
                                     f"{have}); pick --folds among them")
        # an unsafe checkpoint is refused first, whatever else is wrong with the folder
        ckpts = [read_nnunet_checkpoint(p, trust_model_code=trust_model_code) for p in files]
        try:
            n_channels = check_dataset_json(self.dataset_json, folder / "dataset.json")
            check_plans(self.plans, folder / "plans.json", n_channels)
            for ckpt in ckpts:
                check_configuration(self.plans, str(ckpt["init_args"]["configuration"]),
                                    folder / "plans.json", n_channels)
        except NnUNetFileError as exc:
            raise ModelLoadError(str(exc)) from exc
        self.folds = use
        self._setup(ckpts, select_device(device), tta)
        self.spec = self._spec(files, channels)
        self._grid_cache: dict[tuple[Any, ...], tuple[np.ndarray, ...]] = {}
        self.info = {
            "kind": "nnunet",
            "path": str(folder),
            "checksum": self.spec.checksum,
            "folds": [str(f) for f in use],
            "checkpoint": ckpt_name,
            "trainer": self.trainer_name,
            "trainer_module": self.trainer_module,
            "network_builder": self.network_builder,
            "trainer_note": self.trainer_note,
            "configuration": self.configuration,
            "plans": self.plans.get("plans_name"),
            "reader": self.plans_manager.image_reader_writer_class.__name__,
            "target_spacing": list(self.configuration_manager.spacing),
            "patch_size": list(self.configuration_manager.patch_size),
            "mirroring": bool(self.predictor.use_mirroring),
            "mirror_axes": None if self.mirror_axes is None else list(self.mirror_axes),
            "device": str(self.predictor.device),
            "nnunetv2_version": _version("nnunetv2"),
            "trust_model_code": bool(trust_model_code),
            "spec": self.spec.to_dict(),
        }

    def _setup(self, ckpts: list[dict[str, Any]], device: torch.device, tta: bool | None) -> None:
        from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
        from nnunetv2.utilities.label_handling.label_handling import (
            determine_num_input_channels,
        )
        from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

        first = ckpts[0]
        self.trainer_name = str(first["trainer_name"])
        self.configuration = str(first["init_args"]["configuration"])
        self.mirror_axes = first.get("inference_allowed_mirroring_axes")
        pm = PlansManager(self.plans)
        cm = pm.get_configuration(self.configuration)
        n_in = determine_num_input_channels(pm, cm, self.dataset_json)
        lm = pm.get_label_manager(self.dataset_json)
        self._check_plan_names(pm, cm)
        network = self._network(pm, cm, n_in, lm.num_segmentation_heads)
        params = [c["network_weights"] for c in ckpts]
        for fold, weights in zip(self.folds, params, strict=True):
            try:
                network.load_state_dict(weights, strict=True)
            except RuntimeError as exc:
                raise ModelLoadError(
                    f"{self.folder}: the weights of fold {fold} do not match the network of "
                    f"trainer {self.trainer_name} and plans.json ({str(exc).splitlines()[0]})"
                ) from exc
        network.load_state_dict(params[0], strict=True)
        with contextlib.redirect_stdout(io.StringIO()):
            predictor = nnUNetPredictor(
                tile_step_size=0.5,
                use_gaussian=True,
                use_mirroring=True if tta is None else bool(tta),
                perform_everything_on_device=device.type == "cuda",
                device=device,
                verbose=False,
                verbose_preprocessing=False,
                allow_tqdm=False,
            )
        predictor.manual_initialization(
            network, pm, cm, params, self.dataset_json, self.trainer_name, self.mirror_axes
        )
        self.predictor, self.plans_manager, self.configuration_manager = predictor, pm, cm
        self.label_manager, self.n_inputs = lm, int(n_in)

    def _check_plan_names(self, pm: Any, cm: Any) -> None:
        """Every class and function that plans.json names exists in this nnunetv2 (else the
        first prediction would fail, after the work before it)."""
        import nnunetv2
        from nnunetv2.utilities.find_class_by_name import recursive_find_python_class

        where = f"configurations.{self.configuration}"
        norm = Path(nnunetv2.__path__[0]) / "preprocessing" / "normalization"
        lookups: list[tuple[str, Any]] = [
            ("image_reader_writer", lambda: pm.image_reader_writer_class),
            (f"{where}.preprocessor_name", lambda: cm.preprocessor_class),
            (f"{where}.resampling_fn_data", lambda: cm.resampling_fn_data),
            (f"{where}.resampling_fn_seg", lambda: cm.resampling_fn_seg),
            (f"{where}.resampling_fn_probabilities", lambda: cm.resampling_fn_probabilities),
            *((f"{where}.normalization_schemes", lambda s=scheme: recursive_find_python_class(
                str(norm), s, "nnunetv2.preprocessing.normalization"))
              for scheme in cm.normalization_schemes),
        ]
        if "label_manager" in self.plans:
            lookups.append(("label_manager", lambda: pm.label_manager_class))
        for key, lookup in lookups:
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    found = lookup()
            except Exception as exc:  # nnU-Net raises RuntimeError, or an import error
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise ModelLoadError(f"{self.folder / 'plans.json'}: {key!r} names something "
                                     f"nnunetv2 {_version('nnunetv2')} cannot find ({first})"
                                     ) from exc
            if found is None:
                raise ModelLoadError(f"{self.folder / 'plans.json'}: {key!r} names a class "
                                     f"nnunetv2 {_version('nnunetv2')} does not have")

    def _check_network_class(self, name: str) -> None:
        """The standard network's class, named by its full path in plans.json, imports."""
        import pydoc

        key = f"configurations.{self.configuration}.architecture.network_class_name"
        try:
            found = pydoc.locate(name)
        except pydoc.ErrorDuringImport as exc:
            cause = exc.value if isinstance(exc.value, BaseException) else exc
            raise ModelLoadError(
                f"{self.folder / 'plans.json'}: {key!r} is {name!r}, which cannot be imported "
                f"({type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''})"
            ) from exc
        if found is None:
            raise ModelLoadError(f"{self.folder / 'plans.json'}: {key!r} is {name!r}, which is "
                                 f"not an importable class; restore the file nnU-Net wrote with "
                                 f"the model")

    def _network(self, pm: Any, cm: Any, n_in: int, n_out: int) -> torch.nn.Module:
        """The trainer's network (see :mod:`.nnunet_trainers`): its own
        ``build_network_architecture`` when it overrides it, else nnU-Net's standard one."""
        from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

        try:
            found = find_trainer(self.trainer_name)
        except TrainerLookupError as exc:
            raise ModelLoadError(f"{self.folder}: {exc}") from exc
        if found.note:
            LOGGER.warning("%s: %s", self.folder, found.note)
        self.trainer_module, self.trainer_note = found.module, found.note
        self.network_builder = "nnUNetTrainer" if found.standard_network else found.name
        # a trainer that builds its own network was imported (its class is known)
        builder = nnUNetTrainer if found.standard_network or found.cls is None else found.cls
        if found.standard_network:
            self._check_network_class(cm.network_arch_class_name)
        build: Callable[..., torch.nn.Module] = builder.build_network_architecture
        try:
            if "plans_manager" in inspect.signature(build).parameters:
                return build(pm, cm, n_in, n_out, enable_deep_supervision=False)
            # nnunetv2 < 2.6 signature
            return build(cm.network_arch_class_name, cm.network_arch_init_kwargs,
                         cm.network_arch_init_kwargs_req_import, n_in, n_out,
                         enable_deep_supervision=False)
        except Exception as exc:  # a network class or argument the plans name wrongly
            first = (str(exc).strip().splitlines() or [""])[0]
            raise ModelLoadError(
                f"{self.folder / 'plans.json'}: cannot build the network of configuration "
                f"{self.configuration!r} with {self.network_builder} ({type(exc).__name__}: "
                f"{first}); restore the file nnU-Net wrote with the model") from exc

    def _spec(self, files: list[Path], channels: Sequence[str] | None) -> ModelSpec:
        h = hashlib.sha256()
        for p in [self.folder / "dataset.json", self.folder / "plans.json", *files]:
            h.update(f"{p.relative_to(self.folder)}:{file_sha256(p)}\n".encode())
        names = self.dataset_json.get("channel_names") or self.dataset_json.get("modality") or {}
        dj = self.folder / "dataset.json"
        lesion = _lesion_labels(dict(self.dataset_json.get("labels", {})), dj)
        embedded: dict[str, Any] = {"channels": lambda: map_nnunet_channels(names, dj)}
        defaults: dict[str, Any] = {"space": "native", "threshold": DEFAULT_THRESHOLD}
        if lesion is not None:
            embedded["lesion_labels"] = lesion
        if lesion is not None and len(lesion) == 1 and len(self.label_manager.all_labels) == 2:
            embedded["threshold"] = ARGMAX_THRESHOLD
        spec = resolve_spec(kind="nnunet", source=self.folder, checksum=h.hexdigest(),
                            embedded=embedded, defaults=defaults, channels=channels)
        if spec.lesion_labels is None:
            raise ModelLoadError(
                f"{dj}: several foreground labels and none named lesion/stroke/infarct; write "
                f"{self.folder / 'bids_stroke.json'} with {{\"lesion_labels\": [1]}}"
            )
        unknown = set(spec.lesion_labels) - set(self.label_manager.foreground_labels)
        if unknown:
            raise ModelLoadError(f"{self.folder}: lesion_labels {sorted(unknown)} are not "
                                 f"labels of {dj}")
        return spec

    def input_channels(self) -> int | None:
        return self.n_inputs

    def _input_files(self, image: ChannelStack, tmp: Path) -> list[Path]:
        if image.paths is not None:
            for p in image.paths:
                hdr = load_nifti(p)
                if hdr.shape[:3] != image.shape or not np.allclose(hdr.affine, image.affine,
                                                                   atol=1e-4):
                    raise ValueError(f"{p} is not on the grid of the image being segmented")
            return list(image.paths)
        files = []
        for c in range(image.n_channels):
            img = nib.Nifti1Image(image.data[c], image.affine)
            img.set_qform(image.affine, code=1)
            img.set_sform(image.affine, code=1)
            files.append(tmp / f"channel_{c:04d}.nii")
            img.to_filename(files[-1])
        return files

    def _grid_index(self, props: dict[str, Any], shape: tuple[int, ...], image: ChannelStack,
                    tmp: Path) -> tuple[np.ndarray, ...]:
        """For every input voxel, its index in nnU-Net's output array, found by writing
        coordinate maps with the reader's own ``write_seg``."""
        key = (shape, image.shape, image.affine.round(6).tobytes(), self.info["reader"])
        if key not in self._grid_cache:
            rw = self.plans_manager.image_reader_writer_class()
            index = []
            for axis, n in enumerate(shape):
                view = [1] * len(shape)
                view[axis] = n
                coords = np.broadcast_to(np.arange(n).reshape(view), shape).copy()
                out = tmp / f"axis{axis}.nii"
                rw.write_seg(coords, str(out), props)
                index.append(np.asarray(load_nifti(out).dataobj).astype(np.intp))
            if index[0].shape != image.shape:
                raise RuntimeError(f"{self.folder}: nnU-Net output {index[0].shape} does not map "
                                   f"onto the input grid {image.shape}")
            self._grid_cache[key] = tuple(index)
        return self._grid_cache[key]

    def _forward_passes(self, shape: Sequence[int]) -> int | None:
        """Forward passes of one prediction of a preprocessed array of spatial ``shape``:
        sliding-window tiles x mirror flips x folds (``None`` if nnunetv2 cannot say)."""
        predictor = self.predictor
        patch = self.configuration_manager.patch_size
        padded = [*shape[:len(shape) - len(patch)],
                  *(max(int(s), int(p)) for s, p in zip(shape[-len(patch):], patch, strict=True))]
        try:  # the slicers nnunetv2 itself uses on the padded array
            tiles = len(predictor._internal_get_sliding_window_slicers(tuple(padded)))
        except Exception:
            return None
        axes = predictor.allowed_mirroring_axes if predictor.use_mirroring else None
        passes: int = tiles * 2 ** len(axes or ()) * len(predictor.list_of_parameters)
        return passes

    def predict(self, image: ChannelStack) -> np.ndarray:
        from nnunetv2.inference.export_prediction import (
            convert_predicted_logits_to_segmentation_with_correct_shape,
        )

        self._check_stack(image)
        pm, cm, lm = self.plans_manager, self.configuration_manager, self.label_manager
        with tempfile.TemporaryDirectory(prefix="bids_stroke_nnunet_") as tmp:
            files = [str(f) for f in self._input_files(image, Path(tmp))]
            preprocessor = cm.preprocessor_class(verbose=False)
            data, _, props = preprocessor.run_case(files, None, pm, cm, self.dataset_json)
            x = torch.from_numpy(data).to(dtype=torch.float32,
                                          memory_format=torch.contiguous_format)
            with count_forward_passes(self.predictor.network, self._forward_passes(x.shape[1:]),
                                      self.progress):
                logits = self.predictor.predict_logits_from_preprocessed_data(x)
            logits = logits.cpu().detach().numpy()
            _, probs = convert_predicted_logits_to_segmentation_with_correct_shape(
                logits, pm, cm, lm, props, return_probabilities=True
            )
            idx = [lm.all_labels.index(v) for v in self.spec.lesion_labels or ()]
            lesion = np.asarray(probs[idx], dtype=np.float32).sum(0)
            grid = self._grid_index(props, lesion.shape, image, Path(tmp))
        return np.ascontiguousarray(lesion[grid], dtype=np.float32)

    def dry_run(self) -> tuple[tuple[int, int, int], np.ndarray]:
        strides = self.configuration_manager.network_arch_init_kwargs.get("strides")
        dims = len(self.configuration_manager.patch_size)
        # twice the total stride: instance norm needs more than one voxel at the bottleneck
        total = [2 * int(np.prod([s[a] for s in strides])) for a in range(dims)] if strides \
            else [32] * dims
        shape = (total[0], total[1], total[2]) if dims == 3 else (1, total[0], total[1])
        x = torch.from_numpy(np.random.default_rng(0).normal(
            size=(1, self.spec.n_channels, *shape)).astype(np.float32))
        net = self.predictor.network
        net.load_state_dict(self.predictor.list_of_parameters[0])
        net.eval()
        with torch.inference_mode():
            out = net(x.to(self.predictor.device) if dims == 3 else x[:, :, 0])
        if isinstance(out, tuple | list):
            out = out[0]
        probs = self.label_manager.apply_inference_nonlin(out[0].float().cpu())
        idx = [self.label_manager.all_labels.index(v) for v in self.spec.lesion_labels or ()]
        prob = np.asarray(probs[idx].sum(0), dtype=np.float32)
        return shape, prob.reshape(shape)

    def estimate_memory_gb(self, shape: Sequence[int],
                           spacing_mm: Sequence[float] | None = None) -> float | None:
        cm, pm = self.configuration_manager, self.plans_manager
        kw = cm.network_arch_init_kwargs
        if "features_per_stage" not in kw or "strides" not in kw or len(cm.spacing) != 3:
            return None
        t_shape = [list(shape)[::-1][i] for i in pm.transpose_forward]
        resampled = t_shape  # image already at the target spacing when its spacing is unknown
        if spacing_mm is not None:
            t_sp = [list(spacing_mm)[::-1][i] for i in pm.transpose_forward]
            resampled = [n * s / t for n, s, t in zip(t_shape, t_sp, cm.spacing, strict=True)]
        return nnunet_memory_gb(kw["features_per_stage"], kw["strides"], cm.patch_size,
                                resampled, self.n_inputs, self.label_manager.num_segmentation_heads)


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None
