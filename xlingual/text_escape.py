"""Text from data placed into Markdown, LaTeX and matplotlib: escaped here, once, for every writer.

Dataset names, entity types, model names from a run's ``metrics.json`` and
user notes end up in ``compare.md``, report tables and chart labels. Written
raw, ``<img onerror=...>`` becomes live HTML wherever the Markdown is rendered,
a ``|`` splits a table cell, a ``_`` or ``#`` stops LaTeX, and ``$x$`` is
parsed as matplotlib math text (a malformed one raises while drawing). Every
writer of those formats passes such text through the matching function here.
"""

from __future__ import annotations

import re

_MARKDOWN_CELL = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\\": "\\\\", "|": "\\|", "\n": " ", "\r": " "}
_MARKDOWN_CELL_RE = re.compile(r"&(?=#?\w+;)|[<>\\|\n\r]")
"""A bare ``&`` (``SRC&TGT``) is inert and kept; one that would start an entity (``&lt;``) is escaped, so it shows as typed."""

_LATEX = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "#": r"\#", "%": r"\%", "&": r"\&", "_": r"\_",
    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    # characters the default LaTeX fonts lack, as the tables use them
    "±": r"$\pm$", "−": "$-$", "\n": " ", "\r": " ",
}
_LATEX_RE = re.compile("|".join(map(re.escape, _LATEX)))


def markdown_cell(text: object) -> str:
    """``text`` as one Markdown table cell: ``< >`` (and an ``&`` that starts an entity) as entities, ``|`` and ``\\`` escaped, line breaks as spaces."""
    return _MARKDOWN_CELL_RE.sub(lambda m: _MARKDOWN_CELL[m.group()], str(text))


def latex_text(text: object) -> str:
    """``text`` as LaTeX prints it literally: every special (``\\ { } $ # % & _ ~ ^``) escaped, in one pass."""
    return _LATEX_RE.sub(lambda m: _LATEX[m.group()], str(text))


def plain_label(text: object) -> str:
    """``text`` for a matplotlib label or title: each ``$`` escaped, so nothing is parsed as math text."""
    return str(text).replace("$", r"\$")


__all__ = ["latex_text", "markdown_cell", "plain_label"]
