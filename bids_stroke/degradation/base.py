"""What every condition kind is: the :class:`Condition` base class and the spec-text helpers.

A kind is one frozen dataclass subclass of :class:`Condition` (its parameters as typed
fields) that parses its spec, names itself (canonical ``spec``, BIDS ``label``, one-sentence
``description``, a phrase for sentences), states the resolution it simulates
(:meth:`Condition.effective_zooms`), refuses volumes it cannot apply to
(:meth:`Condition.check_fits`) and applies itself (:meth:`Condition.apply`), with the
mathematics in the same module. :mod:`bids_stroke.degradation` registers the kinds in one
table; adding a kind is one module and one line there.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np

from bids_stroke.degradation.volume import check_length, check_zooms

__all__ = ["VALID_FORMS", "Condition", "ConditionError", "FactorCondition"]

VALID_FORMS = (
    "native, crude:N, linear:N, thick:T[:gap=G][:profile=gaussian|boxcar]"
    "[:interp=linear|nearest][:axis=x|y|z], kspace:N[:window=tukey|hamming] "
    "(N may be AxBxC per axis)"
)


class ConditionError(ValueError):
    """Invalid condition spec (message is a single line naming the spec and valid forms)."""


def fail(spec: str, reason: str) -> ConditionError:
    """The one-line error for a bad ``spec``."""
    return ConditionError(f"invalid condition {spec!r}: {reason}; valid forms: {VALID_FORMS}")


def fmt(value: float) -> str:
    """Canonical text of a number: integers without decimals, else up to 6 decimals."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")


def tag(value: float) -> str:
    """Alphanumeric label token for a number (``2.5`` -> ``2p5``)."""
    return fmt(value).replace(".", "p")


def num(value: float) -> int | float:
    """A number as JSON shows it: ``2`` rather than ``2.0``."""
    return int(value) if float(value).is_integer() else float(value)


def parse_number(spec: str, text: str, what: str) -> float:
    """A finite number from spec text, rounded to 6 decimals."""
    try:
        value = float(text)
    except ValueError:
        raise fail(spec, f"{what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise fail(spec, f"{what} {text!r} is not finite")
    return round(value, 6)


def parse_factors(spec: str, text: str, *, integer: bool) -> tuple[float, float, float]:
    """``N`` or ``AxBxC`` (each >= 1; integers for ``integer``) as three factors."""
    parts = text.split("x")
    if len(parts) not in (1, 3) or any(p == "" for p in parts):
        raise fail(spec, f"factor {text!r} must be N or AxBxC")
    values = [parse_number(spec, p, "factor") for p in parts]
    for v in values:
        if v < 1:
            raise fail(spec, f"factor {fmt(v)} must be >= 1")
        if integer and not v.is_integer():
            raise fail(spec, f"factor {fmt(v)} must be an integer for crude")
    if len(values) == 1:
        values = values * 3
    return (values[0], values[1], values[2])


def factors_text(factors: Sequence[float], sep: str = "x",
                 form: Callable[[float], str] = fmt) -> str:
    """``2`` when all three factors are equal, else ``2x2x4``."""
    if factors[0] == factors[1] == factors[2]:
        return form(factors[0])
    return sep.join(form(f) for f in factors)


def parse_options(spec: str, parts: Sequence[str], allowed: Sequence[str]) -> dict[str, str]:
    """``key=value`` options of a spec, each at most once and each allowed for the kind."""
    options: dict[str, str] = {}
    for part in parts:
        key, eq, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not key or not value:
            raise fail(spec, f"option {part!r} must be key=value")
        if key not in allowed:
            allowed_text = ", ".join(allowed) if allowed else "none"
            raise fail(spec, f"unknown option {key!r} (allowed: {allowed_text})")
        if key in options:
            raise fail(spec, f"option {key!r} given twice")
        options[key] = value
    return options


def choice(spec: str, key: str, value: str, choices: Sequence[str]) -> str:
    """``value`` when it is one of ``choices``, else the one-line error."""
    if value not in choices:
        raise fail(spec, f"{key}={value!r} must be one of {'|'.join(choices)}")
    return value


def axes_phrase(factors: Sequence[float]) -> str:
    """``a factor of 2 along x, y and z`` or ``factors 1x1x3 along (x, y, z)``."""
    if factors[0] == factors[1] == factors[2]:
        return f"a factor of {fmt(factors[0])} along x, y and z"
    return f"factors {factors_text(factors)} along (x, y, z)"


@dataclass(frozen=True)
class Condition(ABC):
    """A parsed resolution condition: one subclass per kind, parameters as fields.

    Attributes (properties of every kind)
    -------------------------------------
    kind : str
        One of the registered kinds (``native, crude, linear, thick, kspace``).
    spec : str
        Canonical spec (round-trips through :func:`bids_stroke.degradation.parse_condition`).
    label : str
        Alphanumeric BIDS ``desc`` label, unique per canonical spec.
    description : str
        One human-readable sentence.
    params : dict
        JSON-serialisable parameters (``factors``; ``thickness_mm``, ``gap_mm``,
        ``profile``, ``interp``, ``axis``; ``window``).
    """

    #: the kind's name, the first word of its spec
    kind: ClassVar[str]
    #: the spec forms of this kind, as shown in error messages and help
    form: ClassVar[str]
    #: whether the condition changes the in-plane/through-plane sampling of the image (an
    #: exported image's sidecar then drops the acquisition's sampling fields)
    changes_sampling: ClassVar[bool] = True
    #: whether the condition changes the slice profile (drops the slice-timing fields too)
    changes_slice_profile: ClassVar[bool] = False

    # -- parsing and naming --------------------------------------------------------------
    @classmethod
    @abstractmethod
    def parse(cls, spec: str, args: list[str]) -> Condition:
        """The condition of spec text ``spec`` whose ``:``-separated arguments are ``args``."""

    @classmethod
    @abstractmethod
    def from_strength(cls, value: float) -> Condition:
        """The condition of this kind at one number: its factor, or its thickness in mm."""

    @property
    @abstractmethod
    def spec(self) -> str:
        """Canonical spec (defaults omitted, equal per-axis factors collapsed)."""

    @property
    @abstractmethod
    def label(self) -> str:
        """Alphanumeric BIDS ``desc`` label."""

    @property
    @abstractmethod
    def description(self) -> str:
        """One sentence saying what is simulated."""

    @property
    @abstractmethod
    def params(self) -> dict[str, Any]:
        """JSON-serialisable parameters."""

    @abstractmethod
    def phrase(self, size: str | None) -> str:
        """Words for the condition in a sentence (``linear 2 mm``, ``5 mm slices``); ``size``
        is the simulated voxel size as text when known."""

    def __str__(self) -> str:
        return self.spec

    # -- geometry ------------------------------------------------------------------------
    @property
    def factors(self) -> tuple[float, float, float]:
        """Per-axis factors (``(1, 1, 1)`` for kinds without factors)."""
        return (1.0, 1.0, 1.0)

    def slice_axis(self, zooms: Sequence[float]) -> int:
        """Slice axis index of a slice-simulating condition for an image with these zooms."""
        raise ValueError(f"condition {self.spec!r} has no slice axis")

    def effective_zooms(self, zooms: Sequence[float]) -> tuple[float, float, float]:
        """Voxel spacing (mm) of the simulated acquisition: ``zoom_i * factor_i``."""
        z = [v * f for v, f in zip(check_zooms(zooms), self.factors, strict=True)]
        return (z[0], z[1], z[2])

    def effective_resolution_mm(self, zooms: Sequence[float]) -> float:
        """Cube root of the effective voxel volume (mm)."""
        ez = self.effective_zooms(zooms)
        return float((ez[0] * ez[1] * ez[2]) ** (1.0 / 3.0))

    def coarsest_axis(self, zooms: Sequence[float]) -> int:
        """The slice axis, or else the coarsest effective axis (ties go to the last, z)."""
        ez = tuple(round(z, 4) for z in self.effective_zooms(zooms))
        return max(range(3), key=lambda i: (ez[i], i))

    # -- application ---------------------------------------------------------------------
    def check_fits(self, shape: Sequence[int], zooms: Sequence[float]) -> None:
        """Raise ``ValueError`` (the reason) when the condition cannot apply to a volume of
        this shape and voxel size — the rules :meth:`apply` enforces, without data."""
        check_zooms(zooms)
        check_length(tuple(int(n) for n in shape[:3]), self.factors, self.spec)

    @abstractmethod
    def apply(self, data: np.ndarray, zooms: Sequence[float]) -> np.ndarray:
        """The degraded volume: ``float32``, the shape of ``data``."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (kind, spec, label, description, params)."""
        return {
            "kind": self.kind,
            "spec": self.spec,
            "label": self.label,
            "description": self.description,
            "params": dict(self.params),
        }


@dataclass(frozen=True)
class FactorCondition(Condition):
    """A kind written ``kind:N`` or ``kind:AxBxC`` (per-axis factors >= 1): its spec, label
    and phrase are the kind's name and the factors (a kind with options adds them)."""

    factor_values: tuple[float, float, float] = (1.0, 1.0, 1.0)

    #: options after the factor, e.g. ``window`` for k-space
    options: ClassVar[tuple[str, ...]] = ()
    integer: ClassVar[bool] = False

    @property
    def factors(self) -> tuple[float, float, float]:
        return self.factor_values

    @classmethod
    def parse_factor_args(cls, spec: str, args: list[str]) -> tuple[
            tuple[float, float, float], dict[str, str]]:
        """The factors and options of ``kind:N[:key=value...]``."""
        if len(args) < 1 or args[0].strip() == "":
            raise fail(spec, f"{cls.kind} needs a factor, e.g. {cls.kind}:2 or {cls.kind}:1x1x3")
        factors = parse_factors(spec, args[0].strip(), integer=cls.integer)
        return factors, parse_options(spec, args[1:], cls.options)

    @classmethod
    def parse(cls, spec: str, args: list[str]) -> Self:
        factors, _ = cls.parse_factor_args(spec, args)
        return cls(factors)

    @classmethod
    def from_strength(cls, value: float) -> Self:
        return cls((float(value),) * 3)

    @property
    def spec(self) -> str:
        return f"{self.kind}:{self.factor_text}"

    @property
    def label(self) -> str:
        return f"{self.kind}{self.factor_tag}"

    def phrase(self, size: str | None) -> str:
        return self.sized_phrase(self.kind, size)

    @property
    def factor_text(self) -> str:
        """``2`` or ``2x2x4``."""
        return factors_text(self.factors)

    @property
    def factor_tag(self) -> str:
        """``2``, ``2p5`` or ``2x2x4`` for labels."""
        return factors_text(self.factors, form=tag)

    @property
    def params(self) -> dict[str, Any]:
        return {"factors": [num(f) for f in self.factors]}

    def sized_phrase(self, words: str, size: str | None) -> str:
        """``<words> <size>``, the size being the factor text when not known."""
        return f"{words} {size if size is not None else self.factor_text}"

