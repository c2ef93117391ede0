"""Training of the lesion U-Net on subjects with lesion masks.

Outline (nnU-Net flavoured, deliberately small):

* subjects come from :func:`bids_stroke.inputs.discovery.collect_images`; those without a mask are
  ignored; held-out subjects (``test_list``) are excluded; the rest are split 80/20 *by
  subject* (seeded) and the split is written to ``OUT_DIR/split.tsv`` (reused on resume);
* every volume is normalised with exactly the inference preprocessing
  (:func:`bids_stroke.model.preprocess.normalize_intensity`) and kept in memory;
* each step draws ``batch_size`` patches; a fraction ``fg_fraction`` (default 1/3) are centred on
  a random lesion voxel, the rest are uniform (foreground oversampling);
* augmentation: random flips, intensity scale/shift, Gaussian noise and, with
  ``augment_resolution``, a random resolution degradation of the *image only* drawn from
  ``crude:2-3``, ``linear:2-3``, ``thick:3-7`` (mm) and ``kspace:2-3``
  (:func:`bids_stroke.degradation.apply_condition`, applied to the patch with a margin);
* loss ``bce``, ``dice`` or ``bce+dice``; Adam with a polynomial learning-rate decay;
* after every ``val_every`` epochs the Dice of the thresholded full-volume prediction is
  computed on each validation volume (same code path as :class:`SegmentationModel.predict`);
* ``OUT_DIR/checkpoints/last.pt`` (with optimizer state, for ``resume``) and ``best.pt``
  (highest mean validation Dice) are safe format-1 checkpoints;
  ``OUT_DIR/training_log.tsv`` has one row per epoch.

Determinism: every epoch re-seeds ``torch`` and a :class:`numpy.random.Generator` from
``(seed, epoch)``, so a run resumed at an epoch boundary reproduces an uninterrupted run, and
``torch.use_deterministic_algorithms(True, warn_only=True)`` is set.
"""

from __future__ import annotations

import csv
import logging
import math
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bids_stroke.core.atomic import atomic_write_text
from bids_stroke.degradation import KINDS, Condition
from bids_stroke.degradation.nifti import load_nifti
from bids_stroke.model.checkpoint import (
    SegmentationModel,
    build_unet,
    load_checkpoint,
    save_checkpoint,
)
from bids_stroke.model.inference import binarize, resolve_precision, select_device
from bids_stroke.model.preprocess import PreprocessConfig, normalize_intensity
from bids_stroke.model.spec import DEFAULT_OVERLAP, DEFAULT_PATCH_SIZE, DEFAULT_THRESHOLD
from bids_stroke.model.unet import UNet3D, UNetConfig
from bids_stroke.outputs.tsv import text_tsv

LOGGER = logging.getLogger("bids_stroke.train")

__all__ = [
    "RESOLUTION_AUGMENTATIONS",
    "TrainConfig",
    "TrainingCase",
    "dice_score",
    "load_cases",
    "make_split",
    "train",
]

#: (kind, low, high) ranges of the random degradations used by ``augment_resolution``
RESOLUTION_AUGMENTATIONS: tuple[tuple[str, float, float], ...] = (
    ("crude", 2, 3),
    ("linear", 2, 3),
    ("thick", 3, 7),
    ("kspace", 2, 3),
)


@dataclass
class TrainConfig:
    """All training options (mirrors the ``bids_stroke train`` command line)."""

    bids_dir: Path
    out_dir: Path
    participant_label: Sequence[str] | None = None
    derivatives: Sequence[Path] = ()
    suffix: str = "T1w"
    test_list: Path | None = None
    val_fraction: float = 0.2
    epochs: int = 40
    steps_per_epoch: int = 50
    patch_size: tuple[int, int, int] = (96, 96, 96)
    batch_size: int = 2
    lr: float = 3e-3
    weight_decay: float = 1e-5
    loss: str = "bce+dice"
    base_channels: int = 8
    depth: int = 4
    norm: str = "instance"
    fg_fraction: float = 1.0 / 3.0
    augment: bool = True
    augment_resolution: bool = False
    resolution_probability: float = 0.5
    normalization: str = "zscore"
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    val_every: int = 1
    val_precision: str = "auto"
    threads: int | None = None
    resume: bool = False
    stop_after: int | None = None
    progress: bool = True
    command: str = field(default_factory=lambda: shlex.join(["bids_stroke-train", *sys.argv[1:]]))

    def __post_init__(self) -> None:
        self.bids_dir = Path(self.bids_dir)
        self.out_dir = Path(self.out_dir)
        patch = tuple(int(p) for p in self.patch_size)
        if len(patch) != 3:
            raise ValueError("patch_size needs 3 values")
        self.patch_size = (patch[0], patch[1], patch[2])
        div = 2 ** (self.depth - 1)
        if any(p % div for p in self.patch_size):
            raise ValueError(f"patch size {self.patch_size} must be a multiple of {div}")
        if self.loss not in ("bce", "dice", "bce+dice"):
            raise ValueError("loss must be bce, dice or bce+dice")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError("val_fraction must be in (0, 1)")
        if self.epochs < 1 or self.steps_per_epoch < 1 or self.batch_size < 1:
            raise ValueError("epochs, steps_per_epoch and batch_size must be >= 1")


@dataclass
class TrainingCase:
    """One in-memory training/validation volume (already normalised)."""

    key: str
    subject: str
    session: str | None
    image: np.ndarray  # float32, normalised
    mask: np.ndarray  # uint8
    zooms: tuple[float, float, float]
    fg: np.ndarray  # (K, 3) int32 lesion voxel coordinates (subsampled)


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------
def _read_label_list(path: Path) -> set[str]:
    """Subject labels (with or without ``sub-``) from a text/TSV file (``participant_id``)."""
    labels: set[str] = set()
    for i, line in enumerate(Path(path).read_text().splitlines()):
        tok = line.strip().split("\t")[0].strip()
        if not tok or tok.startswith("#") or (i == 0 and tok == "participant_id"):
            continue
        labels.add(tok.removeprefix("sub-"))
    return labels


def _discover(cfg: TrainConfig) -> list[Any]:
    from bids_stroke.inputs.discovery import collect_images

    subjects = collect_images(
        cfg.bids_dir,
        participant_label=cfg.participant_label,
        suffix=cfg.suffix,
        derivatives=tuple(cfg.derivatives),
    )
    return [s for s in subjects if s.mask is not None]


def make_split(
    subjects: Sequence[str], val_fraction: float, seed: int, test: set[str] | None = None
) -> dict[str, str]:
    """Seeded subject-level split: ``{subject: 'train' | 'val' | 'test'}``.

    At least one validation subject when there are two or more non-test subjects.
    """
    test = test or set()
    pool = sorted(set(subjects) - test)
    rng = np.random.default_rng(seed)
    order = [pool[i] for i in rng.permutation(len(pool))]
    n_val = max(1, round(len(pool) * val_fraction)) if len(pool) >= 2 else 0
    split = {s: ("val" if i < n_val else "train") for i, s in enumerate(order)}
    split.update({s: "test" for s in sorted(set(subjects) & test)})
    return split


def _write_split(path: Path, split: dict[str, str]) -> None:
    atomic_write_text(path, text_tsv(["participant_id", "split"],
                                     ([f"sub-{s}", split[s]] for s in sorted(split))))


def _read_split(path: Path) -> dict[str, str]:
    with open(path, newline="") as fh:
        return {
            r["participant_id"].removeprefix("sub-"): r["split"]
            for r in csv.DictReader(fh, delimiter="\t")
        }


def load_cases(
    subjects: Sequence[Any], preprocessing: PreprocessConfig, max_fg: int = 20000, seed: int = 0
) -> list[TrainingCase]:
    """Read, reorient-free load and normalise ``ImageInputs``-like objects."""
    rng = np.random.default_rng(seed)
    cases = []
    for s in subjects:
        img = load_nifti(s.image)
        data = np.asarray(img.dataobj, dtype=np.float32)
        if data.ndim == 4:
            data = data[..., 0]
        mask = np.asarray(load_nifti(s.mask).dataobj) > 0.5
        if mask.ndim == 4:
            mask = mask[..., 0]
        if mask.shape != data.shape:
            raise ValueError(f"{s.mask}: mask shape {mask.shape} != image shape {data.shape}")
        fg = np.argwhere(mask).astype(np.int32)
        if len(fg) > max_fg:
            fg = fg[np.sort(rng.choice(len(fg), max_fg, replace=False))]
        key = f"sub-{s.subject}" + (f"_ses-{s.session}" if s.session else "")
        zx, zy, zz = (float(z) for z in img.header.get_zooms()[:3])
        cases.append(
            TrainingCase(
                key=key,
                subject=s.subject,
                session=s.session,
                image=normalize_intensity(data, None, preprocessing),
                mask=mask.astype(np.uint8),
                zooms=(zx, zy, zz),
                fg=fg,
            )
        )
    return cases


# --------------------------------------------------------------------------------------------
# sampling and augmentation
# --------------------------------------------------------------------------------------------
def _crop(arr: np.ndarray, start: Sequence[int], size: Sequence[int]) -> np.ndarray:
    """Crop with zero padding where the window leaves the array."""
    out = np.zeros(tuple(size), dtype=arr.dtype)
    src, dst = [], []
    for st, sz, n in zip(start, size, arr.shape, strict=True):
        a, b = max(st, 0), min(st + sz, n)
        src.append(slice(a, b))
        dst.append(slice(a - st, b - st))
    out[tuple(dst)] = arr[tuple(src)]
    return out


def _random_condition(rng: np.random.Generator) -> Condition:
    """A condition of a random augmentation kind at a random integer strength."""
    kind, lo, hi = RESOLUTION_AUGMENTATIONS[int(rng.integers(len(RESOLUTION_AUGMENTATIONS)))]
    return KINDS[kind].from_strength(int(rng.integers(int(lo), int(hi) + 1)))


def sample_patch(
    case: TrainingCase,
    patch: Sequence[int],
    rng: np.random.Generator,
    *,
    foreground: bool,
    augment: bool,
    augment_resolution: bool,
    resolution_probability: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """One augmented ``(image, mask)`` patch (float32, float32)."""
    shape = case.image.shape
    if foreground and len(case.fg):
        centre = case.fg[int(rng.integers(len(case.fg)))]
    else:
        centre = np.array([int(rng.integers(s)) for s in shape])
    # random jitter so lesions are not always exactly centred
    start = [
        int(
            np.clip(
                c - p // 2 + int(rng.integers(-p // 4, p // 4 + 1)), min(0, s - p), max(0, s - p)
            )
        )
        for c, p, s in zip(centre, patch, shape, strict=True)
    ]
    degrade = augment_resolution and rng.random() < resolution_probability
    if degrade:
        margin = 8
        big = _crop(case.image, [s - margin for s in start], [p + 2 * margin for p in patch])
        big = np.asarray(_random_condition(rng).apply(big, case.zooms), np.float32)
        img = big[margin:-margin, margin:-margin, margin:-margin]
        # degradations change the contrast slightly; keep background at 0 as in preprocessing
        img = np.where(_crop(case.image, start, patch) != 0, img, 0.0).astype(np.float32)
    else:
        img = _crop(case.image, start, patch)
    msk = _crop(case.mask, start, patch).astype(np.float32)
    if augment:
        for ax in range(3):
            if rng.random() < 0.5:
                img, msk = np.flip(img, ax), np.flip(msk, ax)
        if rng.random() < 0.5:
            img = img * float(rng.uniform(0.85, 1.15)) + float(rng.uniform(-0.15, 0.15))
        if rng.random() < 0.2:
            img = img + rng.normal(0.0, float(rng.uniform(0.0, 0.1)), img.shape)
    return np.ascontiguousarray(img, np.float32), np.ascontiguousarray(msk, np.float32)


# --------------------------------------------------------------------------------------------
# loss / metric
# --------------------------------------------------------------------------------------------
def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Batch soft Dice loss (nnU-Net ``batch_dice``) on sigmoid probabilities."""
    p = torch.sigmoid(logits.float())
    inter = (p * target).sum()
    return 1.0 - (2.0 * inter + eps) / (p.sum() + target.sum() + eps)


def make_loss(kind: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``bce``, ``dice`` or ``bce+dice`` loss on logits."""

    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = logits.new_zeros((), dtype=torch.float32)
        if "bce" in kind:
            total = total + F.binary_cross_entropy_with_logits(logits.float(), target)
        if "dice" in kind:
            total = total + soft_dice_loss(logits, target)
        return total

    return loss


def dice_score(reference: np.ndarray, prediction: np.ndarray) -> float:
    """Dice of two binary arrays (1.0 when both are empty)."""
    r, p = reference.astype(bool), prediction.astype(bool)
    denom = int(r.sum()) + int(p.sum())
    return 1.0 if denom == 0 else 2.0 * int((r & p).sum()) / denom


def evaluate(
    model: SegmentationModel, cases: Sequence[TrainingCase], precision: str = "auto"
) -> list[float]:
    """Dice per case of the thresholded (0.5) full-volume prediction.

    The cases hold images already normalised by the model's preprocessing, so only padding,
    the network and cropping are applied (the same code as :meth:`SegmentationModel.predict`).
    """
    model.network.eval()
    return [
        dice_score(c.mask, binarize(_predict_normalised(model, c.image, precision),
                                          DEFAULT_THRESHOLD))
        for c in cases
    ]


def _predict_normalised(model: SegmentationModel, image: np.ndarray, precision: str) -> np.ndarray:
    from bids_stroke.model.inference import predict_probabilities
    from bids_stroke.model.preprocess import crop_back, pad_to_multiple

    padded, spec = pad_to_multiple(image, model.divisor)
    prob = predict_probabilities(
        model.network,
        padded,
        device=model.device,
        mode="auto",
        patch_size=tuple(model.inference["patch_size"]),
        overlap=float(model.inference["overlap"]),
        autocast_dtype=resolve_precision(precision, model.device),
        divisor=model.divisor,
    )
    return crop_back(prob, spec)


# --------------------------------------------------------------------------------------------
# main loop
# --------------------------------------------------------------------------------------------
LOG_COLUMNS = ("epoch", "train_loss", "val_dice", "best_val_dice", "lr", "seconds")


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def train(cfg: TrainConfig, subjects: Sequence[Any] | None = None) -> dict[str, Any]:
    """Train according to ``cfg``; returns a summary dict (best/last paths, Dice, epochs).

    ``subjects`` (``ImageInputs``-like objects with ``subject, session, image, mask``)
    overrides discovery in ``cfg.bids_dir``.
    """
    device = _set_up_torch(cfg)
    out = cfg.out_dir
    subs = _labelled_subjects(cfg, subjects)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)  # once the inputs are known
    split_path = out / "split.tsv"
    split = _split(cfg, subs, split_path)
    train_subs = [s for s in subs if split.get(s.subject) == "train"]
    val_subs = [s for s in subs if split.get(s.subject) == "val"]
    if not train_subs:
        raise RuntimeError("no training subjects left after the split")
    pre = PreprocessConfig(method=cfg.normalization)
    LOGGER.info("loading %d training and %d validation volumes", len(train_subs), len(val_subs))
    train_cases = load_cases(train_subs, pre, seed=cfg.seed)
    val_cases = load_cases(val_subs, pre, seed=cfg.seed)

    loss_fn = make_loss(cfg.loss)
    amp = resolve_precision(cfg.precision, device)
    last_path, best_path = out / "checkpoints" / "last.pt", out / "checkpoints" / "best.pt"
    log_path = out / "training_log.tsv"
    run = _start_or_resume(cfg, device, last_path)
    if not (cfg.resume and log_path.is_file()):
        log_path.write_text("\t".join(LOG_COLUMNS) + "\n")
    provenance = _provenance(cfg, train_cases, val_cases)
    inference_defaults = {"patch_size": [max(p, d) for p, d in zip(cfg.patch_size,
                                                                    DEFAULT_PATCH_SIZE,
                                                                    strict=True)],
                          "overlap": DEFAULT_OVERLAP}
    val_dice = float("nan")
    end_epoch = cfg.epochs
    if cfg.stop_after is not None:  # time-sliced runs: continue later with ``resume``
        end_epoch = min(cfg.epochs, run.start_epoch + int(cfg.stop_after))
    for epoch in range(run.start_epoch, end_epoch):
        t0 = time.perf_counter()
        train_loss = _train_epoch(cfg, run, train_cases, epoch, device, amp, loss_fn)
        do_val = bool(val_cases) and ((epoch + 1) % cfg.val_every == 0
                                      or epoch + 1 == cfg.epochs)
        if do_val:
            val_dice = _validate(run.net, pre, device, inference_defaults, val_cases,
                                 cfg.val_precision)
        elif not val_cases:
            val_dice = float("nan")
        improved = do_val and val_dice > run.best
        if improved:
            run.best = val_dice
        result = _Epoch(epoch + 1, train_loss, val_dice, do_val, run.best,
                        float(run.opt.param_groups[0]["lr"]), time.perf_counter() - t0)
        training = {**provenance, "epoch": result.epoch, "val_dice": val_dice,
                    "best_val_dice": run.best, "train_loss": train_loss}
        best = best_path if improved or (not val_cases and epoch + 1 == cfg.epochs) else None
        _save_epoch(run, pre, training, inference_defaults, epoch, last_path, best)
        _log_epoch(cfg, log_path, result)
    if not best_path.is_file() and end_epoch == cfg.epochs:
        save_checkpoint(best_path, run.net, pre, {**provenance, "val_dice": val_dice},
                        inference=inference_defaults)
    return {
        "best": best_path,
        "last": last_path,
        "best_val_dice": run.best if run.best >= 0 else math.nan,
        "last_val_dice": val_dice,
        "split": split_path,
        "log": log_path,
        "n_train": len(train_cases),
        "n_val": len(val_cases),
    }


def _set_up_torch(cfg: TrainConfig) -> torch.device:
    """Threads and deterministic algorithms for this process; the device to train on."""
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    torch.use_deterministic_algorithms(True, warn_only=True)
    if hasattr(torch.backends, "cudnn"):
        torch.backends.cudnn.benchmark = False
    return select_device(cfg.device)


def _labelled_subjects(cfg: TrainConfig, subjects: Sequence[Any] | None) -> list[Any]:
    """``subjects`` (default: those discovered in ``cfg.bids_dir``) that have a lesion mask."""
    subs = list(subjects) if subjects is not None else _discover(cfg)
    subs = [s for s in subs if s.mask is not None]
    if not subs:
        raise RuntimeError(f"no subjects with a lesion mask found in {cfg.bids_dir}")
    return subs


def _split(cfg: TrainConfig, subs: Sequence[Any], split_path: Path) -> dict[str, str]:
    """Subject -> ``train``/``val``/``test``: the split of ``split_path`` when resuming, else a
    new seeded one (``cfg.test_list`` held out), written there."""
    test = _read_label_list(cfg.test_list) if cfg.test_list else set()
    if cfg.resume and split_path.is_file():
        return _read_split(split_path)
    split = make_split([s.subject for s in subs], cfg.val_fraction, cfg.seed, test)
    _write_split(split_path, split)
    return split


@dataclass
class _Run:
    """The network being trained, its optimizer and learning-rate schedule, the first epoch
    to run and the best validation Dice so far (-1: none)."""

    net: UNet3D
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    start_epoch: int = 0
    best: float = -1.0


def _optimizer(cfg: TrainConfig, net: UNet3D
               ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """Adam with a polynomial (power 0.9) learning-rate decay over every step of the run."""
    total_steps = cfg.epochs * cfg.steps_per_epoch
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: (1.0 - min(step, total_steps - 1) / total_steps) ** 0.9
    )
    return opt, sched


def _start_or_resume(cfg: TrainConfig, device: torch.device, last_path: Path) -> _Run:
    """A new network initialised under ``cfg.seed``, or, with ``cfg.resume``, the network,
    optimizer and schedule of ``last_path`` where there is one."""
    _seed_everything(cfg.seed)
    net = UNet3D(UNetConfig(base_channels=cfg.base_channels, depth=cfg.depth, norm=cfg.norm)).to(
        device
    )
    opt, sched = _optimizer(cfg, net)
    if not (cfg.resume and last_path.is_file()):
        return _Run(net, opt, sched)
    ck = load_checkpoint(last_path, map_location=device)
    net = build_unet(ck, last_path).to(device)
    opt, sched = _optimizer(cfg, net)
    # the scheduler constructor resets the lr: restore the optimizer state afterwards
    opt.load_state_dict(ck["optimizer"])
    sched.load_state_dict(ck["scheduler"])
    run = _Run(net, opt, sched, int(ck["epoch"]) + 1,
               float(ck["training"].get("best_val_dice", -1.0)))
    LOGGER.info("resuming from %s at epoch %d", last_path, run.start_epoch)
    return run


def _provenance(cfg: TrainConfig, train_cases: Sequence[TrainingCase],
                val_cases: Sequence[TrainingCase]) -> dict[str, Any]:
    """What every checkpoint records about how it was trained."""
    return {
        "command": cfg.command,
        "seed": cfg.seed,
        "epochs": cfg.epochs,
        "data": {
            "bids_dir": str(cfg.bids_dir),
            "train_subjects": sorted({c.subject for c in train_cases}),
            "val_subjects": sorted({c.subject for c in val_cases}),
        },
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
    }


def _train_epoch(cfg: TrainConfig, run: _Run, cases: Sequence[TrainingCase], epoch: int,
                 device: torch.device, amp: torch.dtype | None,
                 loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> float:
    """``cfg.steps_per_epoch`` optimizer steps, seeded by ``(cfg.seed, epoch)``; returns the
    mean training loss."""
    from tqdm import tqdm

    _seed_everything(cfg.seed * 100003 + epoch)
    rng = np.random.default_rng([cfg.seed, epoch])
    run.net.train()
    losses = []
    bar = tqdm(
        range(cfg.steps_per_epoch),
        desc=f"epoch {epoch + 1}/{cfg.epochs}",
        disable=not cfg.progress,
        leave=False,
        file=sys.stderr,
    )
    for _ in bar:
        x, y = _batch(cfg, cases, rng, device)
        run.opt.zero_grad(set_to_none=True)
        ctx = torch.autocast(device.type, dtype=amp) if amp is not None else nullcontext()
        with ctx:
            logits = run.net(x)
        loss = loss_fn(logits.float(), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(run.net.parameters(), 12.0)
        run.opt.step()
        run.sched.step()
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{np.mean(losses):.4f}")
    return float(np.mean(losses))


def _batch(cfg: TrainConfig, cases: Sequence[TrainingCase], rng: np.random.Generator,
           device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``cfg.batch_size`` augmented patches of random cases, as ``(image, mask)`` tensors
    ``(B, 1, *patch)``."""
    imgs, msks = [], []
    for b in range(cfg.batch_size):
        # guarantee >= 1 foreground patch per batch when fg_fraction > 0 (nnU-Net)
        fg = (b == cfg.batch_size - 1 and cfg.fg_fraction > 0) or (
            rng.random() < cfg.fg_fraction
        )
        case = cases[int(rng.integers(len(cases)))]
        i, m = sample_patch(
            case,
            cfg.patch_size,
            rng,
            foreground=bool(fg),
            augment=cfg.augment,
            augment_resolution=cfg.augment_resolution,
            resolution_probability=cfg.resolution_probability,
        )
        imgs.append(i)
        msks.append(m)
    x = torch.from_numpy(np.stack(imgs)[:, None]).to(device)
    y = torch.from_numpy(np.stack(msks)[:, None]).to(device)
    return x, y


def _validate(net: UNet3D, pre: PreprocessConfig, device: torch.device,
              inference: dict[str, Any], cases: Sequence[TrainingCase], precision: str) -> float:
    """Mean Dice of ``cases``; ``net`` is left in training mode."""
    # the training network keeps its layout (the model wraps it, it does not copy it)
    sm = SegmentationModel(
        net, pre, divisor=net.config.divisor, device=device, inference=inference,
        memory_format=torch.contiguous_format,
    )
    dice = float(np.mean(evaluate(sm, cases, precision)))
    net.train()
    return dice


def _save_epoch(run: _Run, pre: PreprocessConfig, training: dict[str, Any],
                inference: dict[str, Any], epoch: int, last_path: Path,
                best_path: Path | None) -> None:
    """The checkpoints of an epoch: ``best_path`` (when it is the best so far) and
    ``last_path`` (with the optimizer and schedule, to resume from)."""
    run.net.eval()
    if best_path is not None:
        save_checkpoint(best_path, run.net, pre, training, inference=inference)
    save_checkpoint(
        last_path, run.net, pre, training, inference=inference,
        extra={"optimizer": run.opt.state_dict(), "scheduler": run.sched.state_dict(),
               "epoch": epoch},
    )


@dataclass(frozen=True)
class _Epoch:
    """One epoch's row of the training log (``validated``: whether ``val_dice`` is its own)."""

    epoch: int
    train_loss: float
    val_dice: float
    validated: bool
    best: float
    lr: float
    seconds: float


def _log_epoch(cfg: TrainConfig, log_path: Path, e: _Epoch) -> None:
    """Append ``e`` to the training log (n/a for an epoch without validation), log it, and
    show it on stderr with ``cfg.progress``."""
    epoch_dice = f"{e.val_dice:.6f}" if e.validated else "n/a"
    best_txt = f"{e.best:.6f}" if e.best >= 0 else "n/a"
    with open(log_path, "a") as fh:
        fh.write(
            f"{e.epoch}\t{e.train_loss:.6f}\t{epoch_dice}\t{best_txt}\t{e.lr:.6g}"
            f"\t{e.seconds:.1f}\n"
        )
    LOGGER.info(
        "epoch %d loss %.4f val_dice %.4f best %.4f (%.0fs)",
        e.epoch,
        e.train_loss,
        e.val_dice,
        e.best,
        e.seconds,
    )
    if cfg.progress:
        print(
            f"epoch {e.epoch}/{cfg.epochs} loss {e.train_loss:.4f} val_dice {e.val_dice:.4f} "
            f"best {e.best:.4f} ({e.seconds:.0f}s)",
            file=sys.stderr,
            flush=True,
        )
