"""report.html (``xl report --html``): every table and the chart in one page that renders in headless Chromium
without a console message, a request beyond the page itself, or a script run by a hostile name from a run folder."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from headless_chromium import require_chromium, visit
from test_preview import parse
from test_report import make_run, make_test_set
from xlingual.cli import app
from xlingual.evaluation.report import Table, write_report
from xlingual.evaluation.report_html import REPORT_HTML_NAME, Chart, Link, render_report_html

HOSTILE = "<img src=x onerror=alert(1)>"

SHOWN = """JSON.stringify({
  tables: [...document.querySelectorAll("section.table")].map(s => ({
    name: s.id,
    caption: s.querySelector("caption").textContent,
    header: [...s.querySelectorAll("thead th")].map(c => c.textContent),
    rows: [...s.querySelectorAll("tbody tr")].map(r => [...r.children].map(c => c.textContent)),
    legend: s.querySelector("p.legend") ? s.querySelector("p.legend").textContent : ""})),
  images: [...document.images].map(i => ({width: i.naturalWidth, data: i.src.startsWith("data:image/png;base64,")})),
  elements: [...new Set([...document.querySelectorAll("*")].map(e => e.localName))].sort(),
  links: [...document.links].map(a => a.href),
  note: document.querySelector("p.note") ? document.querySelector("p.note").textContent : null,
  title: document.title})"""


def fetched(seen) -> list[str]:
    """The URLs a page load requested, less its own data: images (decoded in place, never fetched)."""
    return [url for url in seen.requests if not url.startswith("data:image/png;base64,")]


def png_width(data: bytes) -> int:
    return struct.unpack(">I", data[16:20])[0]  # the IHDR chunk's width


def shown(page) -> tuple:
    import json

    seen = visit(page, SHOWN)
    return seen, json.loads(seen.value)


def test_report_html_renders_every_table_and_the_chart_and_shows_a_hostile_model_name_as_text(tmp_path):
    require_chromium()
    test = make_test_set(60, seed=5)
    root = tmp_path / "runs"
    for seed in (1, 2):
        make_run(root, "acn", "en-zh", "tgt_only", "all", seed, test, 0.4)
        make_run(root, "acn", "en-zh", "src_tgt", "all", seed, test, 0.1)
    make_run(root, HOSTILE, "zh-en", "tgt", "all", 1, test, 0.3)
    make_run(root, HOSTILE, "zh-en", "tgt_only", "all", 1, test, 0.5)
    out = tmp_path / "out"
    report = write_report([root], out, bootstrap=50, html=True)
    page = out / REPORT_HTML_NAME
    assert page in report.files

    seen, dom = shown(page)
    assert seen.console == [] and seen.dialogs == []
    assert fetched(seen) == [page.resolve().as_uri()], "nothing but the page itself is loaded"
    with_rows = [t for t in report.tables if t.rows]
    assert len(with_rows) >= 3 and len(with_rows) < len(report.tables), "empty tables are left out"
    assert dom["tables"] == [{"name": t.name, "caption": t.title, "header": t.header, "rows": t.rows,
                              "legend": f"Legend: {t.legend}" if t.legend else ""} for t in with_rows]
    assert any(row[0] == HOSTILE.upper() for t in dom["tables"] for row in t["rows"]), "the hostile name is shown as text"
    chart = (out / "f1_by_config.png").read_bytes()
    assert dom["images"] == [{"width": png_width(chart), "data": True}], "the chart, embedded and decoded, is the only image"
    assert "script" not in dom["elements"] and "iframe" not in dom["elements"]
    assert dom["title"] == f"Results ({report.runs} runs)" and dom["note"] is None


def test_hostile_text_anywhere_on_the_page_is_shown_never_run(tmp_path):
    require_chromium()
    table = Table("t<1>", f"title {HOSTILE}", ["model", f"h{HOSTILE}"], [[HOSTILE, "<script>alert(2)</script>"]], f"legend {HOSTILE}&amp;")
    links = [Link(f"run {HOSTILE}", "javascript:alert(3)"), Link("up", "../data/translated/x y/preview.html")]
    page = tmp_path / "deeper" / "report.html"
    page.parent.mkdir()
    page.write_text(render_report_html(f"T {HOSTILE}", [table], [Chart(HOSTILE, tiny_png())], f"note {HOSTILE}", links), encoding="utf-8")
    seen, dom = shown(page)
    assert seen.console == [] and seen.dialogs == [] and fetched(seen) == [page.resolve().as_uri()]
    assert dom["tables"] == [{"name": "t<1>", "caption": table.title, "header": table.header, "rows": table.rows, "legend": f"Legend: {table.legend}"}]
    assert dom["note"] == f"note {HOSTILE}" and dom["title"] == f"T {HOSTILE}"
    assert dom["images"] == [{"width": 1, "data": True}] and "script" not in dom["elements"]
    assert dom["links"] == [(page.parent / "javascript:alert(3)").as_uri(), (tmp_path / "data/translated/x y/preview.html").as_uri()]


def tiny_png() -> bytes:
    """A 1x1 PNG, made by matplotlib (already a dependency)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    plt.imsave(buffer, [[0.5]], format="png")
    return buffer.getvalue()


def test_the_page_has_no_external_resources_and_a_strict_policy(tmp_path):
    table = Table("t", "T", ["a", "b"], [["1", "2"]], "l")
    root = parse(render_report_html("R", [table], [Chart("c", tiny_png())], "n", [Link("x", "p/preview.html")]))
    policy = [m.attrs["content"] for m in root.find_all("meta") if m.attrs.get("http-equiv") == "Content-Security-Policy"]
    assert len(policy) == 1 and "default-src 'none'" in policy[0] and "script" not in policy[0]
    assert not root.find_all("script") and not root.find_all("link") and not root.find_all("iframe")
    assert [img.attrs["src"].split(",")[0] for img in root.find_all("img")] == ["data:image/png;base64"]
    assert "url(" not in root.find_all("style")[0].text() and "@import" not in root.find_all("style")[0].text()


cells = st.lists(st.sampled_from(["<", ">", "&", "amp;", "lt;", "#60;", '"', "'", "=", "/", "b", "td", "script", "!--", " "])
                 | st.text(max_size=3), max_size=8).map("".join)
"""Text that tends to form tags, entities and comments, and any other characters."""


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(cells, min_size=2, max_size=2), min_size=1, max_size=4), cells, cells)
def test_any_cell_text_round_trips_as_text_and_adds_no_element(rows, title, legend):
    table = Table("t", title, ["a", "b"], rows, legend)
    root = parse(render_report_html("R", [table]))
    section = root.find_all("section")[0]
    assert [[td.text() for td in tr.find_all("td")] for tr in section.find_all("tbody")[0].find_all("tr")] == rows
    assert section.find_all("caption")[0].text() == title
    assert [p.text() for p in section.find_all("p")] == ([f"Legend: {legend}"] if legend else [])
    tags = {n.tag for tag in ("html", "head", "body") for n in root.find_all(tag)}
    everything = {n.tag for n in _walk(root)}
    assert everything <= {"html", "head", "meta", "title", "style", "body", "h1", "section", "table", "caption", "thead", "tbody", "tr",
                          "th", "td", "p"} and tags == {"html", "head", "body"}


def _walk(node):
    for child in node.children:
        if not isinstance(child, str):
            yield child
            yield from _walk(child)


def test_xl_report_html_writes_the_page_and_only_when_asked(tmp_path):
    test = make_test_set(40, seed=6)
    root = tmp_path / "runs"
    make_run(root, "acn", "en-zh", "tgt_only", "all", 1, test, 0.4)
    plain = CliRunner().invoke(app, ["report", str(root), "--output", str(tmp_path / "plain"), "--bootstrap", "0"])
    assert plain.exit_code == 0, plain.output
    assert not (tmp_path / "plain" / REPORT_HTML_NAME).exists() and (tmp_path / "plain" / "report.md").is_file()
    result = CliRunner().invoke(app, ["report", str(root), "--output", str(tmp_path / "html"), "--bootstrap", "0", "--html"])
    assert result.exit_code == 0, result.output
    page = parse((tmp_path / "html" / REPORT_HTML_NAME).read_text(encoding="utf-8"))
    table2 = [s for s in page.find_all("section") if s.attrs.get("id") == "table2"]
    assert len(table2) == 1 and len(table2[0].find_all("tbody")[0].find_all("tr")) == 1
    for name in ("report.md", "table2.md", "table2.tex", "table2.csv"):  # --html adds a page and changes no other file
        assert (tmp_path / "html" / name).read_bytes() == (tmp_path / "plain" / name).read_bytes()
