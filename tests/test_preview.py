"""preview.html: valid, self-contained, faithful to the projected posts, and safe with hostile text."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from html.parser import HTMLParser

from hypothesis import given, settings
from hypothesis import strategies as st
from projection_fakes import FAULTS, FakeTranslator

from xlingual.data.datasets import load_split
from xlingual.data.formats import read_samples
from xlingual.data.labels import spans
from xlingual.data.sample import Sample
from xlingual.projection import project_samples
from xlingual.projection.corpus import CorpusInput, ProjectionSettings, translate_corpus
from xlingual.projection.preview import PREVIEW_NAME, choose_posts, render_preview, render_tokens, target_entity_sources
from xlingual.projection.report import ProjectionReport
from xlingual.projection.tokenization import tokenize_target

HARSH = ("drop", "invent", "reorder", "drop_marker")
VOID = {"meta", "br", "hr", "img", "input", "link", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list["Node | str"] = field(default_factory=list)

    def text(self, skip: tuple[str, ...] = ()) -> str:
        return "".join(c if isinstance(c, str) else ("" if c.tag in skip or c.attrs.get("class") in skip else c.text(skip)) for c in self.children)

    def find_all(self, tag: str, **attrs: str) -> list["Node"]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if child.tag == tag and all(child.attrs.get(k.rstrip("_")) == v for k, v in attrs.items()):
                    found.append(child)
                found += child.find_all(tag, **attrs)
        return found


class TreeBuilder(HTMLParser):
    """A strict tree builder: every element closed, in order (the test of well-formedness)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.stack = [self.root]
        self.doctype = None

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag, attrs) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag, attrs) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag) -> None:
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data) -> None:
        self.stack[-1].children.append(data)


def parse(page: str) -> Node:
    builder = TreeBuilder()
    builder.feed(page)
    builder.close()
    assert builder.stack == [builder.root], f"unclosed: {[n.tag for n in builder.stack]}"
    assert builder.doctype and builder.doctype.lower() == "doctype html"
    return builder.root


def shown_entities(cell: Node) -> list[tuple[str, str, str]]:
    """(type, text, number) of every entity mark in a cell; the text without the number and type badges."""
    return [(m.attrs["data-type"], m.text(skip=("sup", "ty")), m.text() and "".join(s.text() for s in m.find_all("sup")))
            for m in cell.find_all("mark") if "ent" in m.attrs.get("class", "").split()]


def _project_file(samples, translator, src="en", tgt="zh", posts=50):
    results = {"train": project_samples(samples, translator, src, tgt)}
    report = {**ProjectionReport.from_results(results["train"]).to_dict(), "src": src, "tgt": tgt, "model": "fake"}
    return results, render_preview(report, results, src, tgt, posts)


def test_preview_is_written_by_translate_corpus_and_shows_each_post_faithfully(sample_data_dir, tmp_path) -> None:
    samples = load_split(sample_data_dir, "twitter2015", "train", with_images=False)
    translator = FakeTranslator("zh", HARSH, rate=1.0, seed="preview")  # three strategies succeed, two posts fail
    result = translate_corpus([CorpusInput("train", samples)], tmp_path, translator, ProjectionSettings("en", "zh", preview_posts=5))
    page = (tmp_path / PREVIEW_NAME).read_text(encoding="utf-8")
    root = parse(page)
    assert not root.find_all("script") and not root.find_all("link") and not root.find_all("img")
    assert not [n for tag in ("a", "mark", "span", "td", "svg", "rect", "image", "use") for n in root.find_all(tag) if {"src", "href", "xlink:href"} & set(n.attrs)]
    assert "url(" not in root.find_all("style")[0].text() and "@import" not in page, "nothing fetched over the network"
    head_meta = [m.attrs for m in root.find_all("meta")]
    assert {"charset": "utf-8"} in head_meta and any("default-src 'none'" in m.get("content", "") for m in head_meta)
    report = result.report
    rows = root.find_all("section", id="posts")[0].find_all("tbody")[0].find_all("tr")
    assert len(rows) == min(5, report["samples_out"])
    by_row = {f"train-{i}": s for i, s in enumerate(samples)}
    projected = {s.id: s for s in read_samples(tmp_path / "train.jsonl", "jsonl")}
    shown_strategies = set()
    for row in rows:
        source = by_row[row.attrs["id"]]
        cells = row.find_all("td")
        assert cells[0].text().endswith(cells[0].find_all("span")[0].text()) and source.id in cells[0].text()
        shown_strategies.add(cells[0].find_all("span")[0].text())
        assert [(t, x) for t, x, _ in shown_entities(cells[1])] == [(s.type, " ".join(source.tokens[s.start:s.end])) for s in spans(source.labels)]
        assert cells[1].text(skip=("sup", "ty")) == " ".join(source.tokens)
        target = projected[source.id]
        assert cells[2].text(skip=("sup", "ty", "ol")) == "".join(target.tokens), "Chinese is joined without spaces"
        assert [(t, x) for t, x, _ in shown_entities(cells[2])] == [(s.type, "".join(target.tokens[s.start:s.end])) for s in spans(target.labels)]
    assert shown_strategies == set(report["success_by_strategy"]), "every successful strategy is shown"
    failures = root.find_all("section", id="failures")[0].find_all("div", class_="failure")
    assert len(failures) == min(5, report["samples_failed"])
    reasons = {d.find_all("span", class_="reason")[0].text() for d in failures}
    assert reasons == set(report["failures_by_reason"]) or len(failures) == 5
    assert failures and any(m.attrs.get("class") == "ph" for d in failures for m in d.find_all("mark")), "placeholders highlighted"
    for etype, numbers in report["entities"].items():
        assert any([c.text() for c in r.find_all("td")[:3]] == [etype, str(numbers["before"]), str(numbers["after"])]
                   for r in root.find_all("section", id="summary")[0].find_all("tr")), f"{etype} row of the summary"
    assert root.find_all("svg"), "bar chart"


def test_links_name_the_source_entity_each_target_span_came_from(sample_data_dir) -> None:
    samples = load_split(sample_data_dir, "twitter2015", "train", with_images=False) + load_split(sample_data_dir, "twitter2015", "test", with_images=False)
    results, page = _project_file(samples, FakeTranslator("zh", ("reorder",), rate=1.0), posts=100)
    reordered = 0
    for result in (r for r in results["train"] if r.ok):
        order = target_entity_sources(result, "en")
        assert order is not None and sorted(order) == list(range(1, len(result.source.entities()) + 1))
        entities = result.sample.meta["entities"]
        for number, span in zip(order, result.sample.entities()):
            assert span.type == entities[number - 1]["type"]
            if result.strategy != "markers":
                assert result.sample.tokens[span.start:span.end] == tokenize_target(entities[number - 1]["target"], "zh")
        reordered += order != sorted(order)
    assert reordered > 0, "the fake MT reordered some placeholders"
    root = parse(page)
    for row in root.find_all("section", id="posts")[0].find_all("tbody")[0].find_all("tr"):
        result = results["train"][int(row.attrs["id"].rsplit("-", 1)[1])]
        numbers = [n for _, _, n in shown_entities(row.find_all("td")[2])]
        assert numbers == [str(k) for k in target_entity_sources(result, "en")]


def test_hostile_tokens_are_shown_never_run() -> None:
    hostile = Sample("<b>1</b>", ["<script>alert(1)</script>", "&", "AT&T", "\"q\"", "'x'", "<img src=x onerror=alert(2)>"],
                     ["O", "O", "B-ORG", "O", "O", "B-MISC"])

    class Broken:
        def translate(self, texts: list[str]) -> list[str]:
            return [t + " <script>evil()</script> & X99" for t in texts]

    ok_results, ok_page = _project_file([hostile], FakeTranslator("zh"))
    failed_results, failed_page = _project_file([hostile], Broken())
    assert ok_results["train"][0].ok and not failed_results["train"][0].ok
    for page in (ok_page, failed_page):
        root = parse(page)
        assert not root.find_all("script") and not root.find_all("img") and not root.find_all("b")
        assert "<script>alert(1)</script>" in root.text() and "AT&T" in root.text()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "AT&amp;T" in page
    assert "<script>evil()</script> & X99" in parse(failed_page).text()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=8), st.sampled_from(["O", "B-PER", "I-PER", "B-LOC", "B-X<y>&"])), min_size=1, max_size=12),
       st.sampled_from(["en", "zh"]))
def test_any_tokens_render_as_text_with_their_entities(pairs, lang) -> None:
    tokens = [t for t, _ in pairs]
    labels = [lab for _, lab in pairs]
    root = parse("<!DOCTYPE html><p>" + render_tokens(tokens, labels, lang) + "</p>")
    paragraph = root.find_all("p")[0]
    sep = "" if lang == "zh" else " "
    assert paragraph.text(skip=("sup", "ty")) == sep.join(tokens)
    assert {n.tag for n in [paragraph, *[x for tag in ("mark", "sup", "span", "script", "img", "a") for x in paragraph.find_all(tag)]]} <= {"p", "mark", "sup", "span"}
    assert [(t, x) for t, x, _ in shown_entities(paragraph)] == [(s.type, sep.join(tokens[s.start:s.end])) for s in spans(labels)]


def test_choice_is_reproducible_covers_every_strategy_and_respects_n(sample_data_dir) -> None:
    samples = load_split(sample_data_dir, "twitter2015", "train", with_images=False)
    results = {"a": project_samples(samples, FakeTranslator("zh", FAULTS, rate=0.6, seed="c"), "en", "zh")}
    first = choose_posts(results, 4, ok=True)
    again = choose_posts({"a": project_samples(samples, FakeTranslator("zh", FAULTS, rate=0.6, seed="c"), "en", "zh")}, 4, ok=True)
    assert [(s.file, s.index) for s in first] == [(s.file, s.index) for s in again]
    ok = [r for r in results["a"] if r.ok]
    assert len(first) == min(4, len(ok)) and all(s.result.ok for s in first)
    assert {s.result.strategy for s in first} == {r.strategy for r in ok} or len(first) == 4
    assert [s.index for s in first] == sorted(s.index for s in first)
    assert choose_posts(results, 0, ok=True) == []
    everything = choose_posts(results, 1000, ok=False)
    assert len(everything) == sum(not r.ok for r in results["a"])


def test_report_links_a_run_to_the_preview_of_the_corpus_it_trained_on(sample_data_dir, tmp_path) -> None:
    from xlingual.train.config import load_config, save_config
    from xlingual.evaluation.report import RunRecord, translation_previews

    data_dir = tmp_path / "data"
    folder = data_dir / "translated" / "twitter2015.en-zh.glossary-en-zh"
    translate_corpus([CorpusInput("train", load_split(sample_data_dir, "twitter2015", "train", with_images=False))], folder,
                     FakeTranslator("zh"), ProjectionSettings("en", "zh"))

    def run(setting: str, recorded: str) -> RunRecord:
        run_dir = tmp_path / "runs" / f"{setting}-{len(recorded)}"
        run_dir.mkdir(parents=True)
        save_config(load_config(setting, "acn", "en-zh", [f"data.data_dir={data_dir}", "data.translation_model=glossary-en-zh"]), run_dir / "config.yaml")
        return RunRecord(run_dir, {"setting": setting, "stages": {"pretrain": {"data": recorded}}})

    assert translation_previews(run("src_tgt", f"twitter2015 (en) + {folder.name} (zh)")) == [folder / PREVIEW_NAME]
    assert translation_previews(run("tgt", "twitter2015.en-zh.other-model (zh)")) == [], "not the corpus the run recorded"
    assert translation_previews(run("tgt_only", "")) == []


def test_page_is_the_same_bytes_whatever_the_hash_seed(sample_data_dir, tmp_path) -> None:
    """Set iteration order changes with PYTHONHASHSEED; a page built from sets must not (runs are compared byte for byte)."""
    import os
    import subprocess
    import sys

    script = (
        "import sys; sys.path.insert(0, 'tests')\n"
        "from pathlib import Path\n"
        "from projection_fakes import FakeTranslator\n"
        "from xlingual.data.datasets import load_split\n"
        "from test_preview import _project_file\n"
        f"samples = load_split(Path({str(sample_data_dir)!r}), 'twitter2015', 'train', with_images=False)\n"
        "sys.stdout.write(_project_file(samples, FakeTranslator('zh', ('drop',), rate=1.0, seed='h'))[1])\n"
    )
    pages = {
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed}, cwd=Path(__file__).resolve().parents[1]).stdout
        for seed in ("1", "2", "3")
    }
    assert len(pages) == 1 and "t-LOC" in next(iter(pages))


def _legend_and_colours(page: str) -> tuple[list[str], dict[str, str]]:
    """The legend's types in order, and the background each type's CSS class gets."""
    import re

    root = parse(page)
    legend = [m.text() for m in root.find_all("p")[0].find_all("mark")]
    classes = {m.text(): next(c for c in m.attrs["class"].split() if c.startswith("t-")) for m in root.find_all("p")[0].find_all("mark")}
    css = dict(re.findall(r"\.(t-[A-Za-z0-9_-]+)\{background:([^}]+)\}", page))
    return legend, {t: css[c] for t, c in classes.items()}


def test_open_types_are_shown_like_canonical_ones_with_no_phantom_types() -> None:
    """A corpus of a dataset's own types lists exactly those, each with a colour of its own; canonical data keeps its four."""
    own = [Sample("1", "Obama buys the iPhone at Apple".split(), ["B-person", "O", "O", "B-product", "O", "B-creative work"]),
           Sample("2", "Paris loves Android".split(), ["B-location", "O", "B-product"])]
    results, page = _project_file(own, FakeTranslator("zh"))
    assert all(r.ok for r in results["train"])
    legend, colours = _legend_and_colours(page)
    assert legend == ["creative work", "location", "person", "product"]
    assert len(set(colours.values())) == len(colours) and "creative work" in colours
    shown = [t for row in parse(page).find_all("tr") for cell in row.find_all("td") for t, _, _ in shown_entities(cell)]
    assert set(shown) == set(legend) and "PER" not in page.split("<h1>", 1)[1].split("</p>", 1)[0]
    canonical = [Sample("3", "Obama visits Paris".split(), ["B-PER", "O", "B-LOC"])]
    legend, colours = _legend_and_colours(_project_file(canonical, FakeTranslator("zh"))[1])
    assert legend == ["LOC", "MISC", "ORG", "PER"] and len(set(colours.values())) == 4
