"""Condition spec language: which resolution degradation to simulate.

A *condition* is the independent variable of every study run by ``bids_stroke``.
It is written as a short spec string, used by the CLI ``--conditions`` option and
by ``pipelines/*.yml``::

    native                      the image as provided
    crude:N | crude:AxBxC       keep every N-th voxel, repeat it N times (integer N >= 1)
    linear:N | linear:AxBxC     linear downsampling by N then linear upsampling (N >= 1)
    thick:T[:gap=G][:profile=gaussian|boxcar][:interp=linear|nearest][:axis=x|y|z]
                                T mm thick slices every T+G mm along the slice axis
    kspace:N[:window=tukey|hamming] | kspace:AxBxC[...]
                                keep the central 1/N of k-space along each axis

Each parsed :class:`Condition` has a canonical ``spec`` (defaults omitted, equal
per-axis factors collapsed, e.g. ``crude:2x2x2`` -> ``crude:2``), a unique
alphanumeric BIDS ``desc`` ``label`` (``crude2``, ``crude2x2x4``, ``thick2p5mm``,
``thick5mmgap1mmboxcar``, ``kspace2tukey``, ...), a one-sentence ``description``
and a JSON-serialisable ``params`` dict.

Effective resolution convention
-------------------------------
``effective_zooms(zooms)`` returns the voxel spacing (mm) of the simulated
*acquisition*:

* ``native``: the zooms themselves;
* ``crude``/``linear``/``kspace`` with factors ``(a, b, c)``: ``zoom_i * factor_i``
  (the spacing of the low-resolution grid, resp. the sampling interval whose
  Nyquist frequency equals the k-space cut-off);
* ``thick:T:gap=G``: along the slice axis ``max(zoom, T + G)`` -- the distance
  between the centres of consecutive simulated slices (the pitch), which is what
  the low-resolution stack actually samples; a gap therefore coarsens the
  resolution even though the slice profile keeps FWHM ``T``. Other axes keep
  their zoom. ``max`` with the native zoom reflects that a slice thinner than the
  native voxel cannot improve resolution.

``effective_resolution_mm(zooms)`` is the cube root of the effective voxel volume.

Slice axis of ``thick``
-----------------------
Unless ``axis=x|y|z`` is given, the slice axis is the axis of lowest resolution,
i.e. the largest zoom; ties (within 1e-6 relative) go to the last axis, so an
isotropic image is sliced along ``z`` (axial slices for RAS-like orientations).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "KINDS",
    "VALID_FORMS",
    "Condition",
    "ConditionError",
    "parse_condition",
    "parse_conditions",
    "resolve_slice_axis",
]

KINDS: tuple[str, ...] = ("native", "crude", "linear", "thick", "kspace")

VALID_FORMS = (
    "native, crude:N, linear:N, thick:T[:gap=G][:profile=gaussian|boxcar]"
    "[:interp=linear|nearest][:axis=x|y|z], kspace:N[:window=tukey|hamming] "
    "(N may be AxBxC per axis)"
)

_AXES = ("x", "y", "z")
_THICK_OPTIONS = ("gap", "profile", "interp", "axis")
_KSPACE_OPTIONS = ("window",)
_PROFILES = ("gaussian", "boxcar")
_INTERPS = ("linear", "nearest")
_WINDOWS = ("none", "tukey", "hamming")


class ConditionError(ValueError):
    """Invalid condition spec (message is a single line naming the spec and valid forms)."""


def _fail(spec: str, reason: str) -> ConditionError:
    return ConditionError(f"invalid condition {spec!r}: {reason}; valid forms: {VALID_FORMS}")


def _fmt(value: float) -> str:
    """Canonical text of a number: integers without decimals, else up to 6 decimals."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _tag(value: float) -> str:
    """Alphanumeric label token for a number (``2.5`` -> ``2p5``)."""
    return _fmt(value).replace(".", "p")


def _num(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def _parse_number(spec: str, text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _fail(spec, f"{what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise _fail(spec, f"{what} {text!r} is not finite")
    return round(value, 6)


def _parse_factors(spec: str, text: str, *, integer: bool) -> tuple[float, float, float]:
    parts = text.split("x")
    if len(parts) not in (1, 3) or any(p == "" for p in parts):
        raise _fail(spec, f"factor {text!r} must be N or AxBxC")
    values = [_parse_number(spec, p, "factor") for p in parts]
    for v in values:
        if v < 1:
            raise _fail(spec, f"factor {_fmt(v)} must be >= 1")
        if integer and not v.is_integer():
            raise _fail(spec, f"factor {_fmt(v)} must be an integer for crude")
    if len(values) == 1:
        values = values * 3
    return (values[0], values[1], values[2])


def _factors_text(factors: Sequence[float], sep: str = "x", fmt: Any = _fmt) -> str:
    if factors[0] == factors[1] == factors[2]:
        return fmt(factors[0])
    return sep.join(fmt(f) for f in factors)


def _parse_options(spec: str, parts: Sequence[str], allowed: Sequence[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for part in parts:
        key, eq, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not key or not value:
            raise _fail(spec, f"option {part!r} must be key=value")
        if key not in allowed:
            allowed_text = ", ".join(allowed) if allowed else "none"
            raise _fail(spec, f"unknown option {key!r} (allowed: {allowed_text})")
        if key in options:
            raise _fail(spec, f"option {key!r} given twice")
        options[key] = value
    return options


def _choice(spec: str, key: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise _fail(spec, f"{key}={value!r} must be one of {'|'.join(choices)}")
    return value


def _check_zooms(zooms: Sequence[float]) -> tuple[float, float, float]:
    z = tuple(float(v) for v in zooms)
    if len(z) != 3 or not all(math.isfinite(v) and v > 0 for v in z):
        raise ValueError(f"zooms must be three positive finite numbers (mm), got {tuple(zooms)!r}")
    return (z[0], z[1], z[2])


def resolve_slice_axis(zooms: Sequence[float], axis: int | str | None = None) -> int:
    """Return the slice axis index (0, 1 or 2).

    Parameters
    ----------
    zooms : sequence of float
        Voxel size in mm along (x, y, z).
    axis : {None, 0, 1, 2, 'x', 'y', 'z'}
        Explicit axis. ``None`` picks the axis of lowest resolution (largest
        zoom); ties within 1e-6 relative go to the last such axis (``z`` for
        isotropic voxels).
    """
    z = _check_zooms(zooms)
    if axis is None:
        top = max(z)
        return max(i for i, v in enumerate(z) if v >= top * (1 - 1e-6))
    if isinstance(axis, str):
        if axis not in _AXES:
            raise ValueError(f"axis must be one of x, y, z, got {axis!r}")
        return _AXES.index(axis)
    if int(axis) not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis!r}")
    return int(axis)


@dataclass(frozen=True)
class Condition:
    """A parsed resolution condition.

    Attributes
    ----------
    kind : str
        One of ``native, crude, linear, thick, kspace``.
    spec : str
        Canonical spec (round-trips through :func:`parse_condition`).
    label : str
        Alphanumeric BIDS ``desc`` label, unique per canonical spec.
    description : str
        One human-readable sentence.
    params : dict
        JSON-serialisable parameters (``factors``; ``thickness_mm``, ``gap_mm``,
        ``profile``, ``interp``, ``axis``; ``window``).
    """

    kind: str
    spec: str
    label: str
    description: str = field(compare=False)
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __str__(self) -> str:
        return self.spec

    @property
    def factors(self) -> tuple[float, float, float]:
        """Per-axis factors (``(1, 1, 1)`` for ``native`` and ``thick``)."""
        f = self.params.get("factors", (1, 1, 1))
        return (float(f[0]), float(f[1]), float(f[2]))

    def slice_axis(self, zooms: Sequence[float]) -> int:
        """Slice axis index of a ``thick`` condition for an image with these zooms."""
        if self.kind != "thick":
            raise ValueError(f"condition {self.spec!r} has no slice axis")
        return resolve_slice_axis(zooms, self.params["axis"])

    def effective_zooms(self, zooms: Sequence[float]) -> tuple[float, float, float]:
        """Voxel spacing (mm) of the simulated acquisition (see module docstring)."""
        z = list(_check_zooms(zooms))
        if self.kind == "thick":
            ax = self.slice_axis(z)
            pitch = float(self.params["thickness_mm"]) + float(self.params["gap_mm"])
            z[ax] = max(z[ax], pitch)
        else:
            z = [v * f for v, f in zip(z, self.factors, strict=True)]
        return (z[0], z[1], z[2])

    def effective_resolution_mm(self, zooms: Sequence[float]) -> float:
        """Cube root of the effective voxel volume (mm)."""
        ez = self.effective_zooms(zooms)
        return float((ez[0] * ez[1] * ez[2]) ** (1.0 / 3.0))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (kind, spec, label, description, params)."""
        return {
            "kind": self.kind,
            "spec": self.spec,
            "label": self.label,
            "description": self.description,
            "params": dict(self.params),
        }


def _axes_phrase(factors: Sequence[float]) -> str:
    if factors[0] == factors[1] == factors[2]:
        return f"a factor of {_fmt(factors[0])} along x, y and z"
    return f"factors {_factors_text(factors)} along (x, y, z)"


def _parse_native(spec: str, parts: list[str]) -> Condition:
    if len(parts) > 1:
        raise _fail(spec, "native takes no arguments")
    return Condition(
        "native", "native", "native", "Native resolution: the image is used as provided.", {}
    )


def _parse_factor_kind(spec: str, kind: str, parts: list[str]) -> Condition:
    if len(parts) < 2 or parts[1].strip() == "":
        raise _fail(spec, f"{kind} needs a factor, e.g. {kind}:2 or {kind}:1x1x3")
    factors = _parse_factors(spec, parts[1].strip(), integer=kind == "crude")
    allowed = _KSPACE_OPTIONS if kind == "kspace" else ()
    options = _parse_options(spec, parts[2:], allowed)
    ftext = _factors_text(factors)
    ftag = _factors_text(factors, fmt=_tag)
    params: dict[str, Any] = {"factors": [_num(f) for f in factors]}
    phrase = _axes_phrase(factors)
    if kind == "crude":
        return Condition(
            kind,
            f"crude:{ftext}",
            f"crude{ftag}",
            f"Crude reduction by {phrase}: every N-th voxel is kept and repeated "
            "(nearest neighbour) back to the original grid, without smoothing.",
            params,
        )
    if kind == "linear":
        return Condition(
            kind,
            f"linear:{ftext}",
            f"linear{ftag}",
            f"Linear downsampling by {phrase}, then linear interpolation back to the "
            "original grid.",
            params,
        )
    window = _choice(spec, "window", options.get("window", "none"), _WINDOWS)
    params["window"] = None if window == "none" else window
    suffix = "" if window == "none" else f":window={window}"
    wtext = "without window" if window == "none" else f"with a {window} window"
    return Condition(
        kind,
        f"kspace:{ftext}{suffix}",
        f"kspace{ftag}{'' if window == 'none' else window}",
        f"k-space truncation keeping the central 1/N of k-space for {phrase} {wtext}, "
        "as in a lower-resolution acquisition reconstructed on the original grid.",
        params,
    )


def _parse_thick(spec: str, parts: list[str]) -> Condition:
    if len(parts) < 2 or parts[1].strip() == "":
        raise _fail(spec, "thick needs a slice thickness in mm, e.g. thick:5")
    text = parts[1].strip()
    if text.endswith("mm"):
        text = text[:-2]
    thickness = _parse_number(spec, text, "thickness")
    if thickness <= 0:
        raise _fail(spec, f"thickness {text!r} must be > 0 mm")
    options = _parse_options(spec, parts[2:], _THICK_OPTIONS)
    gap_text = options.get("gap", "0")
    if gap_text.endswith("mm"):
        gap_text = gap_text[:-2]
    gap = _parse_number(spec, gap_text, "gap")
    if gap < 0:
        raise _fail(spec, f"gap {gap_text!r} must be >= 0 mm")
    profile = _choice(spec, "profile", options.get("profile", "gaussian"), _PROFILES)
    interp = _choice(spec, "interp", options.get("interp", "linear"), _INTERPS)
    axis = options.get("axis")
    if axis is not None:
        axis = _choice(spec, "axis", axis, _AXES)

    canon = f"thick:{_fmt(thickness)}"
    label = f"thick{_tag(thickness)}mm"
    if gap > 0:
        canon += f":gap={_fmt(gap)}"
        label += f"gap{_tag(gap)}mm"
    if profile != "gaussian":
        canon += f":profile={profile}"
        label += profile
    if interp != "linear":
        canon += f":interp={interp}"
        label += interp
    if axis is not None:
        canon += f":axis={axis}"
        label += f"axis{axis}"
    where = f"along {axis}" if axis else "along the lowest-resolution axis"
    gap_text = f" with a {_fmt(gap)} mm gap" if gap > 0 else ""
    description = (
        f"Simulated thick-slice acquisition: {_fmt(thickness)} mm slices ({profile} slice "
        f"profile, FWHM {_fmt(thickness)} mm){gap_text} {where}, resliced to the original "
        f"grid by {interp} interpolation."
    )
    params = {
        "thickness_mm": _num(thickness),
        "gap_mm": _num(gap),
        "profile": profile,
        "interp": interp,
        "axis": axis,
    }
    return Condition("thick", canon, label, description, params)


def parse_condition(spec: str | Condition) -> Condition:
    """Parse one condition spec (case-insensitive, surrounding spaces ignored).

    Parameters
    ----------
    spec : str or Condition
        E.g. ``"native"``, ``"crude:2"``, ``"linear:1x1x3"``, ``"thick:5:gap=1"``,
        ``"kspace:2:window=tukey"``. A :class:`Condition` is returned unchanged.

    Returns
    -------
    Condition

    Raises
    ------
    ConditionError
        With a one-line message naming the bad spec and the valid forms.
    """
    if isinstance(spec, Condition):
        return spec
    if not isinstance(spec, str):
        raise ConditionError(
            f"invalid condition {spec!r}: expected a string; valid forms: {VALID_FORMS}"
        )
    text = spec.strip().lower()
    if not text:
        raise _fail(spec, "empty spec")
    parts = [p.strip() for p in text.split(":")]
    kind = parts[0]
    if kind == "native":
        return _parse_native(spec, parts)
    if kind in ("crude", "linear", "kspace"):
        return _parse_factor_kind(spec, kind, parts)
    if kind == "thick":
        return _parse_thick(spec, parts)
    raise ConditionError(f"unknown condition {spec!r}; valid kinds: {VALID_FORMS}")


def parse_conditions(specs: Sequence[str | Condition] | str) -> list[Condition]:
    """Parse several specs, keeping order and rejecting duplicates.

    Parameters
    ----------
    specs : sequence of str, or str
        A single string may hold comma- or whitespace-separated specs.

    Raises
    ------
    ConditionError
        If a spec is invalid, the list is empty, or two specs share a label
        (e.g. ``crude:2`` and ``crude:2x2x2``).
    """
    if isinstance(specs, str):
        specs = [s for s in specs.replace(",", " ").split() if s]
    conditions: list[Condition] = []
    seen: dict[str, str] = {}
    for spec in specs:
        cond = parse_condition(spec)
        if cond.label in seen:
            raise ConditionError(
                f"duplicate condition {str(spec)!r}: same label {cond.label!r} as "
                f"{seen[cond.label]!r}; give each condition once"
            )
        seen[cond.label] = str(spec)
        conditions.append(cond)
    if not conditions:
        raise ConditionError(f"no conditions given; valid forms: {VALID_FORMS}")
    return conditions
