"""BIDS TSV text: the one formatting of a table cell written by bids_stroke.

Values are written deterministically: integers as integers, floats with Python's shortest
round-trip representation (``repr``, so re-reading gives the identical float64), booleans as
``true``/``false`` and missing or undefined values (None, NaN) as ``n/a``. Pure functions:
writing the text to disk is :func:`bids_stroke.core.atomic.atomic_write_text`'s job.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

__all__ = ["format_tsv_cell", "tsv_text"]


def format_tsv_cell(value: object) -> str:
    """Format one TSV cell: NaN/None -> ``n/a``, bool -> ``true``/``false``,
    integers as integers, floats as their shortest round-trip ``repr``.

    Raises
    ------
    ValueError
        If a text value contains a tab or a line break (it would corrupt the table).
    """
    if value is None:
        return "n/a"
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        f = float(value)
        return "n/a" if math.isnan(f) else repr(f)
    text = str(value)
    if any(c in text for c in "\t\n\r"):
        raise ValueError(f"TSV cell contains a tab or newline: {text!r}")
    return text


def tsv_text(rows: Iterable[Mapping[str, object]], columns: Sequence[str]) -> str:
    """A BIDS TSV (header line + one line per row, ``\\n`` line ends) of ``rows``.

    Every row must hold every column (a missing key raises ``KeyError``: a table with a
    silently empty cell is worse than no table).
    """
    lines = ["\t".join(columns)]
    lines += ["\t".join(format_tsv_cell(row[c]) for c in columns) for row in rows]
    return "\n".join(lines) + "\n"
