"""Text from data in Markdown, LaTeX and matplotlib: escaped so it reads back as written and never acts."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from xlingual.text_escape import _LATEX, latex_text, markdown_cell, plain_label

HOSTILE = st.text(alphabet=st.sampled_from(list("<>&|\\{}$#%_~^±−\n\r aZ1;/=\"'`*")) | st.characters(), max_size=40)


def read_markdown_cell(cell: str) -> str:
    """What a CommonMark renderer shows for an escaped cell (backslash escapes and the three entities; a bare ``&`` is text)."""
    return re.sub(r"\\(.)|&(amp|lt|gt);", lambda m: m.group(1) or {"amp": "&", "lt": "<", "gt": ">"}[m.group(2)], cell)


@given(text=HOSTILE)
def test_a_markdown_cell_stays_one_cell_holds_no_html_and_reads_back_as_written(text: str) -> None:
    cell = markdown_cell(text)
    assert not set("<>\n\r") & set(cell)
    assert len(re.findall(r"(?<!\\)(?:\\\\)*\|", cell)) == 0, "an unescaped pipe would split the cell"
    # CommonMark reads an entity only with its semicolon: a bare & (SRC&TGT) is text, one that would start an entity is escaped
    assert not re.search(r"&(?!amp;|lt;|gt;)#?\w+;", cell), "an & would start an entity"
    assert read_markdown_cell(cell) == text.replace("\n", " ").replace("\r", " ")


_LATEX_BACK = sorted(((v, k) for k, v in _LATEX.items() if k not in "\n\r"), key=lambda item: -len(item[0]))
_LATEX_TOKEN = re.compile("|".join(re.escape(v) for v, _ in _LATEX_BACK))


@given(text=HOSTILE)
def test_latex_text_escapes_every_special_and_reads_back_as_written(text: str) -> None:
    out = latex_text(text)
    assert not set("\\{}$#%&_~^") & set(_LATEX_TOKEN.sub("", out)), out
    back = _LATEX_TOKEN.sub(lambda m: dict(_LATEX_BACK)[m.group()], out)
    assert back == text.replace("\n", " ").replace("\r", " ")


@settings(max_examples=40, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("$\\^_{}ab x")), min_size=1, max_size=20))
def test_a_plain_label_is_drawn_as_text_never_parsed_as_math(text: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    try:
        ax.set_title(plain_label(text))
        bars = ax.bar([0], [1])
        ax.legend([bars], [plain_label(text)])
        fig.canvas.draw()  # a malformed $...$ raises here when parsed as math text
        shown, is_math = ax.title._preprocess_math(ax.title.get_text())
        assert is_math is False and shown == text, "the label would be drawn as math text, or not as written"
    finally:
        plt.close(fig)
