"""``report.html``: a report's tables and chart as one page that opens anywhere, offline.

``xl report --html`` writes it beside ``report.md``. Like ``preview.html``
(:mod:`xlingual.projection.preview`) the page is self-contained: the chart
is the report's PNG embedded as a ``data:`` URI, the style is inline, there
is no script and no external font, image or style sheet, and a
Content-Security-Policy forbids all of those, so even a mistake in escaping
could neither run code nor fetch anything. Every text, which holds model,
dataset and setting names read from run folders, goes through
:func:`html.escape` (a table's cells through its own ``html()``).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Protocol
from urllib.parse import quote

REPORT_HTML_NAME = "report.html"

CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
"""Inline styles and ``data:`` images only: no script runs and nothing is fetched."""


class HtmlTable(Protocol):
    """What the page needs of a report table (:class:`xlingual.evaluation.report.Table`)."""

    rows: list[list[str]]

    def html(self) -> str: ...


@dataclass(frozen=True)
class Chart:
    """A PNG chart and its caption."""

    caption: str
    png: bytes


@dataclass(frozen=True)
class Link:
    """A file the report points to (a translated corpus's ``preview.html``), by a path relative to the page."""

    name: str
    path: str


_CSS = """
body{font-family:"Noto Sans",sans-serif;margin:1.5em;color:#222;max-width:100em}
.note{color:#a00;font-weight:bold}
table{border-collapse:collapse;margin:0.5em 0;font-size:13px}
caption{text-align:left;font-weight:bold;padding:4px 0}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
td+td{text-align:right}td:nth-child(2){text-align:left}
p.legend{font-size:12px;color:#555;margin:0 0 1.5em 0;max-width:80em}
figure{margin:1em 0}figcaption{font-size:12px;color:#555}
img{max-width:100%;height:auto}
"""


def _href(path: str) -> str:
    """A relative file path as a link target that is always a path (``./`` first: never read as a scheme such as ``javascript:``)."""
    path = path.replace("\\", "/")
    return escape(quote(path if path.startswith("../") else f"./{path}"), quote=True)


def render_report_html(title: str, tables: Sequence[HtmlTable], charts: Sequence[Chart] = (), note: str | None = None,
                       links: Sequence[Link] = (), lists: Sequence[tuple[str, Sequence[str]]] = ()) -> str:
    """The whole page as a string: the tables that have rows, the charts, the links and the lists (a heading and its lines,
    such as the missing runs); pure, so it can be tested without files."""
    parts = [
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f'<meta http-equiv="Content-Security-Policy" content="{escape(CONTENT_SECURITY_POLICY, quote=True)}">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body><h1>{escape(title)}</h1>",
    ]
    if note:
        parts.append(f'<p class="note">{escape(note)}</p>')
    parts += [table.html() for table in tables if table.rows]
    for chart in charts:
        data = base64.b64encode(chart.png).decode("ascii")
        parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="{escape(chart.caption, quote=True)}">'
                     f"<figcaption>{escape(chart.caption)}</figcaption></figure>")
    if links:
        items = "".join(f'<li>{escape(link.name)}: <a href="{_href(link.path)}">{escape(link.path)}</a></li>' for link in links)
        parts.append(f'<section id="previews"><h2>Translated corpora the runs trained on</h2><ul>{items}</ul></section>')
    for heading, lines in lists:
        parts.append(f"<section><h2>{escape(heading)}</h2><ul>{''.join(f'<li>{escape(line)}</li>' for line in lines)}</ul></section>")
    parts.append("</body></html>\n")
    return "".join(parts)


__all__ = ["CONTENT_SECURITY_POLICY", "REPORT_HTML_NAME", "Chart", "HtmlTable", "Link", "render_report_html"]
