"""Small, dependency-free HTML helpers shared by the subject and group reports.

Every piece of text that reaches the page goes through :func:`escape`; images are embedded as
base64 ``data:`` URIs so that reports are single self-contained files.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bids_stroke.core.atomic import atomic_write_bytes, atomic_write_text

__all__ = [
    "BASE_CSS",
    "OKABE_ITO",
    "atomic_write_bytes",
    "atomic_write_text",
    "escape",
    "fig_to_png",
    "format_cell",
    "img_tag",
    "kv_table",
    "link",
    "links",
    "new_figure",
    "page",
    "section",
    "table_html",
    "warnings_box",
]

#: Okabe & Ito (2008) colour-blind safe palette (black last).
OKABE_ITO: tuple[str, ...] = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2",
                              "#D55E00", "#CC79A7", "#000000")

BASE_CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:0 auto;
max-width:1200px;padding:1em 2em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #0072B2;padding-bottom:.2em}
h2{margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.85em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right}
th{background:#eef3f8}
td.t,th.t{text-align:left}
caption{caption-side:top;text-align:left;font-weight:bold;padding:.3em 0}
figure{margin:1em 0}
figure img{max-width:100%;height:auto;border:1px solid #ddd}
figcaption{font-size:.85em;color:#555}
.note{color:#555;font-size:.9em}
.warnings{border-left:4px solid #D55E00;background:#fdf0e8;padding:.4em .8em;margin:1em 0}
.warnings li{margin:.2em 0}
.scroll{overflow-x:auto}
nav a{margin-right:1em}
code{background:#f4f4f4;padding:0 .2em}
@media print{body{max-width:none;padding:0;font-size:10pt}.scroll{overflow:visible}
table{font-size:.75em}td,th{overflow-wrap:anywhere}
figure,tr{break-inside:avoid}nav{display:none}}
"""


def escape(text: Any) -> str:
    """HTML-escape any value (quotes included)."""
    return html.escape(str(text), quote=True)


def format_cell(value: Any, float_fmt: str = "{:.4g}") -> str:
    """Human (HTML) formatting of a cell: NaN/None -> ``n/a``, floats with ``float_fmt``."""
    if value is None:
        return "n/a"
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return "n/a"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return float_fmt.format(float(value))
    if isinstance(value, np.integer):
        return str(int(value))
    if value is pd.NA or value is pd.NaT:
        return "n/a"
    return str(value)


def table_html(
    df: pd.DataFrame,
    *,
    caption: str | None = None,
    float_fmt: str = "{:.4g}",
    max_rows: int | None = None,
    table_id: str | None = None,
    html_columns: Sequence[str] = (),
) -> str:
    """Render a data frame as an escaped HTML table (index not shown).

    Tables flow with the page (every row is on the page, its screenshot and its print); one
    wider than the page scrolls sideways in its own box, never up and down.

    Text columns are left-aligned (class ``t``), numbers right-aligned. When ``max_rows`` is
    given and exceeded, the table is truncated and a note says how many rows were omitted.
    Cells of ``html_columns`` are trusted HTML (e.g. links built with :func:`escape`).
    """
    n_total = len(df)
    shown = df if max_rows is None or n_total <= max_rows else df.iloc[:max_rows]
    text_cols = {c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])}
    raw = set(html_columns)
    parts = [f'<div class="scroll"><table{f" id={escape(table_id)!r}" if table_id else ""}>']
    if caption:
        parts.append(f"<caption>{escape(caption)}</caption>")
    parts.append("<thead><tr>")
    parts += [f'<th class="{"t" if c in text_cols else "n"}">{escape(c)}</th>'
              for c in df.columns]
    parts.append("</tr></thead><tbody>")
    cols = list(df.columns)
    for row in shown.itertuples(index=False, name=None):
        cells = [f'<td class="{"t" if c in text_cols else "n"}">'
                 f"{v if c in raw else escape(format_cell(v, float_fmt))}</td>"
                 for c, v in zip(cols, row, strict=True)]
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table></div>")
    if len(shown) < n_total:
        parts.append(f'<p class="note">Showing {len(shown)} of {n_total} rows; the complete '
                     "table is in the TSV file.</p>")
    return "".join(parts)


def link(text: str, path: str) -> str:
    """A link to a file relative to the page (``href`` URL-quoted, text escaped)."""
    from urllib.parse import quote

    return f'<a href="{escape(quote(path))}">{escape(text)}</a>'


def links(paths: Sequence[str]) -> str:
    """Links to files relative to the page, each named by its path, or ``n/a``."""
    return " ".join(link(p, p) for p in paths) if paths else "n/a"


def kv_table(mapping: Mapping[str, Any], *, caption: str | None = None) -> str:
    """Two-column (key, value) table; nested values are shown as their ``str``."""
    df = pd.DataFrame({"item": [str(k) for k in mapping],
                       "value": [format_cell(v) for v in mapping.values()]})
    return table_html(df, caption=caption)


def new_figure(figsize: tuple[float, float] = (6.4, 4.8), *,
               layout: Literal["constrained", "compressed", "tight"] | None = "constrained"
               ) -> Figure:
    """A matplotlib ``Figure`` bound to the Agg canvas (no pyplot, no global state)."""
    fig = Figure(figsize=figsize, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def fig_to_png(fig: Figure, *, dpi: int = 100, tight: bool = False) -> bytes:
    """Render a matplotlib figure to PNG bytes (Agg canvas, pyplot is never used)."""
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    return buf.getvalue()


def img_tag(png: bytes, *, alt: str, caption: str | None = None) -> str:
    """``<figure>`` with an embedded base64 PNG and an escaped caption."""
    b64 = base64.b64encode(png).decode("ascii")
    cap = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="data:image/png;base64,{b64}" alt="{escape(alt)}">{cap}</figure>'


def warnings_box(warnings: Sequence[str], *, title: str = "Warnings") -> str:
    """A highlighted list of warnings ('' when there are none)."""
    if not warnings:
        return ""
    items = "".join(f"<li>{escape(w)}</li>" for w in warnings)
    return (f'<div class="warnings" role="alert"><strong>{escape(title)}</strong>'
            f"<ul>{items}</ul></div>")


def section(title: str, body: str, *, anchor: str | None = None) -> str:
    """``<section>`` with an escaped ``<h2>`` title; ``body`` is trusted HTML."""
    aid = f' id="{escape(anchor)}"' if anchor else ""
    return f"<section{aid}><h2>{escape(title)}</h2>{body}</section>"


def paragraph(text: str, *, cls: str | None = None) -> str:
    """Escaped ``<p>``."""
    c = f' class="{escape(cls)}"' if cls else ""
    return f"<p{c}>{escape(text)}</p>"


def nav(items: Iterable[tuple[str, str]]) -> str:
    """Navigation bar from (anchor, title) pairs."""
    links = "".join(f'<a href="#{escape(a)}">{escape(t)}</a>' for a, t in items)
    return f"<nav>{links}</nav>"


def page(title: str, body: str, *, extra_css: str = "") -> str:
    """Complete standalone HTML document; ``body`` is trusted HTML."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<title>{escape(title)}</title><style>{BASE_CSS}{extra_css}</style></head>"
            f"<body><h1>{escape(title)}</h1>{body}</body></html>\n")


def bullet_list(items: Sequence[str]) -> str:
    """Escaped ``<ul>``."""
    return "<ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>"
