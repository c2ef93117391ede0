"""BIDS TSV text of the tables bids_stroke writes, two kinds.

* Computed values (:func:`tsv_text`: the metric tables of the participant level and
  ``bids_stroke score``, score's log) are written deterministically: integers as integers,
  floats with Python's shortest round-trip representation (``repr``, so re-reading gives the
  identical float64), booleans as ``true``/``false`` and missing or undefined values (None,
  NaN) as ``n/a``.
* Cells that are text already (:func:`text_tsv`: rows read back from TSV files and merged or
  rewritten, ``participants.tsv``, ``descriptions.tsv``, the HPC status table) are written
  with Python's csv quoting.

The group level's tables are pandas' (:mod:`bids_stroke.group.writers`), and the training log
and the demo dataset's ``participants.tsv`` round their numbers for reading. Pure functions:
writing the text to disk is :mod:`bids_stroke.atomic`'s job.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

__all__ = ["format_tsv_cell", "text_tsv", "tsv_text"]


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


def text_tsv(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A TSV (header line + one line per row, ``\\n`` line ends) of cells that are text
    already; a cell holding a tab, a quote or a line break is quoted (csv's rules)."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buf.getvalue()
