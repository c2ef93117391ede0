"""3D U-Net for binary stroke lesion segmentation.

The architecture follows the original study: an encoder-decoder with ``depth`` resolution
levels, two ``3x3x3`` convolutions (+ normalisation + activation) per level, max-pooling on the
way down, transposed convolutions on the way up and skip connections by channel
concatenation.  :meth:`UNet3D.forward` returns *logits*; the sigmoid is applied at inference
(:func:`bids_stroke.model.inference.predict_probabilities`).  The whole architecture is
described by :class:`UNetConfig`, a plain dataclass that is stored inside checkpoints so that a
model can be rebuilt without executing pickled code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from bids_stroke.model.records import refuse_unknown_keys

__all__ = ["ACTIVATIONS", "NORMS", "ConvBlock", "UNet3D", "UNetConfig"]

NORMS = ("instance", "batch", "group")
ACTIVATIONS = ("leakyrelu", "relu", "prelu", "gelu", "elu")


@dataclass(frozen=True)
class UNetConfig:
    """Architecture hyper-parameters of :class:`UNet3D`.

    Attributes:
        in_channels: number of input image channels.
        out_channels: number of output channels (1 for binary lesion segmentation).
        base_channels: feature maps at the first level; doubled at every level down.
        depth: number of resolution levels (``depth - 1`` poolings).  Inputs must have a
            spatial size divisible by ``2 ** (depth - 1)``.
        norm: ``'instance'``, ``'batch'`` or ``'group'`` normalisation.
        activation: one of :data:`ACTIVATIONS`.
        max_channels: cap on the number of feature maps at deep levels.
        groups: number of groups for ``norm='group'``.
    """

    in_channels: int = 1
    out_channels: int = 1
    base_channels: int = 16
    depth: int = 4
    norm: str = "instance"
    activation: str = "leakyrelu"
    max_channels: int = 320
    groups: int = 8

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        for name in ("in_channels", "out_channels", "base_channels", "depth", "max_channels"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1")

    @property
    def divisor(self) -> int:
        """Spatial sizes must be a multiple of this (``2 ** (depth - 1)``)."""
        return 1 << (self.depth - 1)

    def channels(self) -> list[int]:
        """Feature maps per level, top to bottom."""
        return [min(self.base_channels * 2**i, self.max_channels) for i in range(self.depth)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable representation (stored in checkpoints)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UNetConfig:
        """Rebuild from :meth:`to_dict`; unknown keys are rejected."""
        refuse_unknown_keys(cls, d)
        return cls(**d)


def _norm(kind: str, channels: int, groups: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm3d(channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm3d(channels)
    g = max(1, min(groups, channels))
    while channels % g:
        g -= 1
    return nn.GroupNorm(g, channels)


def _act(kind: str) -> nn.Module:
    makers: dict[str, Callable[[], nn.Module]] = {
        "leakyrelu": lambda: nn.LeakyReLU(0.01, inplace=True),
        "relu": lambda: nn.ReLU(inplace=True),
        "prelu": nn.PReLU,
        "gelu": nn.GELU,
        "elu": lambda: nn.ELU(inplace=True),
    }
    return makers[kind]()


class ConvBlock(nn.Sequential):
    """Two ``(conv3x3x3 -> norm -> activation)`` units."""

    def __init__(self, in_ch: int, out_ch: int, norm: str, activation: str, groups: int = 8):
        layers: list[nn.Module] = []
        for c_in in (in_ch, out_ch):
            layers += [
                nn.Conv3d(c_in, out_ch, kernel_size=3, padding=1, bias=False),
                _norm(norm, out_ch, groups),
                _act(activation),
            ]
        super().__init__(*layers)


class UNet3D(nn.Module):
    """Classic 3D U-Net (Ronneberger/Çiçek style) returning logits.

    Args:
        config: a :class:`UNetConfig`; keyword arguments override/replace its fields, so
            ``UNet3D(base_channels=8, depth=3)`` also works.

    Shapes: input ``(N, in_channels, D, H, W)`` with ``D, H, W`` divisible by
    ``config.divisor``; output ``(N, out_channels, D, H, W)`` logits.
    """

    def __init__(self, config: UNetConfig | None = None, **overrides: Any):
        super().__init__()
        base = (config or UNetConfig()).to_dict()
        base.update(overrides)
        self.config = UNetConfig.from_dict(base)
        cfg = self.config
        chs = cfg.channels()
        self.encoders = nn.ModuleList()
        c_prev = cfg.in_channels
        for c in chs:
            self.encoders.append(ConvBlock(c_prev, c, cfg.norm, cfg.activation, cfg.groups))
            c_prev = c
        self.pool = nn.MaxPool3d(2)
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for level in range(cfg.depth - 2, -1, -1):
            self.ups.append(nn.ConvTranspose3d(chs[level + 1], chs[level], 2, stride=2))
            self.decoders.append(
                ConvBlock(2 * chs[level], chs[level], cfg.norm, cfg.activation, cfg.groups)
            )
        self.head = nn.Conv3d(chs[0], cfg.out_channels, kernel_size=1)
        self.divisor: int = cfg.divisor
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv3d | nn.ConvTranspose3d):
                nn.init.kaiming_normal_(m.weight, a=0.01, nonlinearity="leaky_relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits of shape ``(N, out_channels, D, H, W)``."""
        for size in x.shape[2:]:
            if size % self.divisor != 0:
                raise ValueError(
                    "spatial shape "
                    + str(list(x.shape[2:]))
                    + " must be divisible by "
                    + str(self.divisor)
                    + " (use bids_stroke.model.preprocess.pad_to_multiple)"
                )
        skips: list[torch.Tensor] = []
        n_levels = len(self.encoders)
        for i, enc in enumerate(self.encoders):
            x = enc(x)
            if i < n_levels - 1:
                skips.append(x)
                x = self.pool(x)
        for i, (up, dec) in enumerate(zip(self.ups, self.decoders)):  # noqa: B905 (TorchScript)
            x = up(x)
            x = dec(torch.cat([x, skips[n_levels - 2 - i]], dim=1))
        logits: torch.Tensor = self.head(x)
        return logits

    def n_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
