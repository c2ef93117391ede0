"""The command-line options that set a setting, made from the settings' fields.

A setting's type, choices, help text and default live once, on its field in
:mod:`bids_stroke.core.settings`; :data:`TABLE` adds only what the command line needs besides:
the flag names, the metavar and, for a few options, how their values are written
(``LABEL=DIR``, ``METRIC=VALUE``, a flag that turns a setting off). An option's help is the
field's help followed by ``(default: ...)``: the field's default (the default study's value)
or, where the value alone does not say it, the field's ``default_text``.

The parser (:mod:`bids_stroke.cli.parser`) places the options in its sections;
:func:`bids_stroke.cli.config.cli_overrides` reads them back into the settings through the
same table, each value checked by its field's own check.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import MISSING, Field, dataclass, fields
from pathlib import Path
from typing import Any

from bids_stroke.cli.formatter import format_default
from bids_stroke.core.settings import SECTIONS, boolean, path, thaw

__all__ = ["OPTIONS", "TABLE", "Option", "OptionError", "add_options"]


class OptionError(ValueError):
    """A value written against its option's syntax (the message is the whole line)."""


def _compare(values: Sequence[str]) -> dict[str, str]:
    """``LABEL=DIR`` items -> ``{label: absolute DIR}`` (``DIR:c1,c2`` kept as written)."""
    pairs = [str(v).split("=", 1) if "=" in str(v) else [str(v), ""] for v in values]
    labels = [p[0] for p in pairs]
    if len(set(labels)) != len(labels):
        raise OptionError(f"--compare: a dataset label is given twice ({', '.join(labels)})")
    return {k: str(Path(d).absolute()) if d else "" for k, d in pairs}


def _margins(values: Sequence[str]) -> dict[str, float]:
    """``METRIC=VALUE`` items -> ``{metric: value}``."""
    out = {}
    for item in values:
        name, sep, number = str(item).partition("=")
        if not sep or not name.strip() or not number.strip():
            raise OptionError(f"--margin must be METRIC=VALUE (e.g. dice=0.05), got {item!r}")
        try:
            out[name.strip()] = float(number)
        except ValueError:
            raise OptionError(f"--margin {name.strip()} must be a number, got "
                              f"{number!r}") from None
    return out


@dataclass(frozen=True)
class Option:
    """One option that sets one setting (``section.key``): what the field cannot know."""

    flags: tuple[str, ...]
    setting: str
    metavar: str | None = None
    #: a flag that turns a true-by-default setting off (``--no-degraded-images``)
    negate: bool = False
    #: the flag is repeated, one value each time (``--margin dice=0.05 --margin hd95=2``)
    repeat: bool = False
    #: several values after the flag for a setting that is not a list (``--compare A=.. B=..``)
    many: bool = False
    #: the option's own value syntax -> the setting's value (refusing with :class:`OptionError`)
    parse: Callable[[Sequence[str]], Any] | None = None

    @property
    def section(self) -> str:
        return self.setting.partition(".")[0]

    @property
    def key(self) -> str:
        return self.setting.partition(".")[2]

    @property
    def flag(self) -> str:
        """The first long flag: the name errors give."""
        return next(f for f in self.flags if f.startswith("--"))

    @property
    def dest(self) -> str:
        """Where argparse stores it (the export and score parsers use the same names)."""
        return self.key if self.negate else self.flag[2:].replace("-", "_")

    @property
    def field(self) -> Field:
        return {f.name: f for f in fields(SECTIONS[self.section])}[self.key]

    @property
    def _value_check(self) -> Any:
        check = self.field.metadata["check"]
        return getattr(check, "inner", check)  # an optional setting: the check of its value

    @property
    def _item_check(self) -> Any:
        check = self._value_check
        return getattr(check, "item", check)  # a list setting: the check of one entry

    @property
    def is_flag(self) -> bool:
        return self._value_check is boolean

    @property
    def is_path(self) -> bool:
        return self._item_check is path

    def help(self) -> str:
        """The field's help, then its default (said once; a flag has none to say)."""
        f = self.field
        text = str(f.metadata["help"])
        if self.negate:
            return f"do not {text}"
        if self.is_flag:
            return text
        shown = f.metadata["default_text"]
        if shown is None and f.default is not MISSING and f.default is not None and f.default != ():
            shown = format_default(thaw(f.default))
        return f"{text} (default: {shown})" if shown else text

    def add_to(self, group: Any) -> argparse.Action:
        """Declare the option on a parser or argument group (default ``None``: not given)."""
        kwargs: dict[str, Any] = {"dest": self.dest, "default": None, "help": self.help()}
        if self.is_flag:
            kwargs["action"] = "store_false" if self.negate else "store_true"
            return group.add_argument(*self.flags, **kwargs)
        if self.repeat:
            kwargs["action"] = "append"
        elif self.many or hasattr(self._value_check, "item"):
            kwargs["nargs"] = "+"
        choices = getattr(self._item_check, "choices", None)
        if choices is not None:
            kwargs["choices"] = choices
            if not all(isinstance(c, str) for c in choices):
                kwargs["type"] = type(choices[0])  # e.g. --template-resolution {1,2}
        if self.is_path:
            kwargs["type"] = Path  # also marks it as a path in the recorded command line
        if self.metavar:
            kwargs["metavar"] = self.metavar
        return group.add_argument(*self.flags, **kwargs)

    def value(self, given: Any) -> Any:
        """The setting's raw value from what argparse read: the option's own syntax parsed,
        paths made absolute (checked afterwards by the field's check)."""
        if self.parse is not None:
            return self.parse(given)
        if self.is_path:
            if isinstance(given, list | tuple):
                return [str(Path(v).absolute()) for v in given]
            return str(Path(given).absolute())
        return given


#: every option that sets a setting, in the order of the help
TABLE: tuple[Option, ...] = (
    Option(("--participant-label", "--participant_label"), "data.participant_label", "LABEL"),
    Option(("--session-label", "--session_label"), "data.session_label", "LABEL"),
    Option(("--modality",), "data.modality"),
    Option(("--derivatives",), "data.derivatives", "PATH"),
    Option(("--bids-database-dir",), "data.database_dir", "PATH"),
    Option(("--skip-bids-validation", "--skip_bids_validation"), "data.skip_bids_validation"),
    Option(("--conditions",), "study.conditions", "SPEC"),
    Option(("--reference",), "study.reference"),
    Option(("--reference-condition",), "study.reference_condition", "SPEC"),
    Option(("--registration",), "registration.kind"),
    Option(("--template-resolution",), "registration.template_resolution"),
    Option(("--no-degraded-images",), "outputs.save_degraded", negate=True),
    Option(("--save-probseg",), "outputs.save_probseg"),
    Option(("--compare",), "group.compare", "LABEL=DIR", many=True, parse=_compare),
    Option(("--primary",), "group.primary", "METRIC"),
    Option(("--margin",), "group.margins", "METRIC=VALUE", repeat=True, parse=_margins),
    Option(("--group-unit",), "group.unit"),
    Option(("--strict",), "group.strict"),
    Option(("--model",), "segmentation.model", "FILE"),
    Option(("--device",), "segmentation.device", "DEVICE"),
    Option(("--precision",), "segmentation.precision"),
    Option(("--engine",), "segmentation.engine"),
    Option(("--threshold",), "segmentation.threshold", "P"),
    Option(("--channels",), "segmentation.channels", "SUFFIX"),
    Option(("--trust-model-code",), "segmentation.trust_model_code"),
    Option(("--allow-modality-mismatch",), "segmentation.allow_modality_mismatch"),
    Option(("--folds",), "segmentation.folds", "FOLD"),
    Option(("--checkpoint",), "segmentation.checkpoint"),
    Option(("--seed",), "execution.seed"),
    Option(("-w", "--work-dir"), "execution.work_dir", "PATH"),
    Option(("--nprocs", "--nthreads"), "execution.nprocs"),
    Option(("--omp-nthreads",), "execution.omp_nthreads", "N"),
    Option(("--mem-gb", "--mem_gb"), "execution.mem_gb", "GB"),
    Option(("--max-image-gb",), "execution.max_image_gb", "GB"),
    Option(("--stop-on-first-crash",), "execution.stop_on_first_crash"),
    Option(("--clean",), "execution.clean"),
    Option(("--prepare",), "execution.prepare"),
    Option(("--lock-wait",), "execution.lock_wait_s", "SECONDS"),
)
#: argparse destination -> option
OPTIONS: dict[str, Option] = {option.dest: option for option in TABLE}
_BY_FLAG: dict[str, Option] = {option.flags[0]: option for option in TABLE}


def add_options(group: Any, *flags: str) -> None:
    """Declare the options named by their first flag, in this order."""
    for flag in flags:
        _BY_FLAG[flag].add_to(group)
