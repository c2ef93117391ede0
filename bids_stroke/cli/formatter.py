"""One ``--help`` style for every bids_stroke command.

argparse's ``ArgumentDefaultsHelpFormatter`` appends ``(default: ...)`` to every option, also
when the help already says what the default means (``(default: all) (default: None)``) and
prints floats as Python reprs (``0.3333333333333333``). This formatter appends the default only
when the help text does not mention one and the default is a value a user could type (not
None, False, a flag's or a counter's) or an empty list), formats floats with 4 significant
digits and sequences as space-separated values. Descriptions and epilogs are wrapped
paragraph by paragraph; a paragraph written on several lines (examples, tables) is kept as is.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

__all__ = ["HelpFormatter", "format_default"]


def format_default(value: Any) -> str:
    """A default as a user would type it: ``0.3333``, ``0.003``, ``96 96 96``, ``auto``,
    ``dice=0.05``."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return " ".join(format_default(v) for v in value)
    if isinstance(value, Mapping):
        return " ".join(f"{k}={format_default(v)}" for k, v in value.items())
    return str(value)


class HelpFormatter(argparse.HelpFormatter):
    """``(default: X)`` once, only where it informs; floats short; paragraphs kept."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = text.split("\n\n")
        out = []
        for para in paragraphs:
            if "\n" in para.strip("\n"):
                out.append("\n".join(indent + line for line in para.splitlines()))
            else:
                out.append(super()._fill_text(para, width, indent))
        return "\n\n".join(out)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "default" in text.lower() or default is argparse.SUPPRESS or action.nargs == 0:
            return text
        if default is None or default is False or (isinstance(default, list | tuple)
                                                   and not default):
            return text
        if not action.option_strings and action.nargs not in (argparse.OPTIONAL,
                                                               argparse.ZERO_OR_MORE):
            return text
        shown = format_default(default).replace("%", "%%")
        return f"{text} (default: {shown})" if text else f"default: {shown}"
