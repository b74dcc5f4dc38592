"""``preview.html``: a translated corpus made visible before anyone trains on it.

Reading JSONL is how projection errors usually get found, too late. The page
written beside ``report.json`` shows the report's numbers (table and an
inline SVG bar chart), a reproducible sample of projected posts with source
and target side by side (entities coloured by type, any type alike, each target entity
numbered after the source entity it came from), and the left-out posts with
their reason and the MT output that failed verification, placeholders
highlighted.

The page is self-contained: no network, no script, no external font; a
Content-Security-Policy forbids both, so even a mistake in escaping could not
run code. Every text from the corpus goes through :func:`html.escape`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from xlingual.data.labels import spans, table_types
from xlingual.io import atomic_write_text
from xlingual.projection.placeholders import FORMS, NUMBERED, find_marked
from xlingual.projection.project import ProjectionResult, prepare_sample
from xlingual.projection.verify import Rejected, match_marked
from xlingual.translate.languages import written_without_spaces
from xlingual.workspace import PREVIEW_NAME, REPORT_NAME, TranslationFolder

DEFAULT_PREVIEW_POSTS = 50

_COLOURS = {"PER": "#f4a6a6", "LOC": "#9fd3a8", "ORG": "#9fc3f0", "MISC": "#f2d48a"}


def _colour(etype: str) -> str:
    """The canonical types' fixed colours; any other type a pale hue from a hash of its name, the same on every page."""
    if etype in _COLOURS:
        return _COLOURS[etype]
    hue = int.from_bytes(hashlib.sha1(etype.encode("utf-8")).digest()[:2], "big") % 360
    return f"hsl({hue},60%,80%)"


@dataclass(frozen=True)
class Shown:
    """One post chosen for the page: the file it came from, its position there, and its result."""

    file: str
    index: int
    result: ProjectionResult


def _rank(file: str, index: int, sample_id: str) -> str:
    """A stable pseudo-random rank: the same corpus gives the same sample on every machine and run."""
    return hashlib.sha1(f"{file}\0{index}\0{sample_id}".encode("utf-8")).hexdigest()


def choose_posts(results: Mapping[str, Sequence[ProjectionResult]], n: int, ok: bool) -> list[Shown]:
    """Up to ``n`` projected (``ok``) or left-out posts, reproducibly, one of every strategy (or reason) first.

    Covering every group first means a strategy that rescued only a handful of
    posts (or a rare failure reason) is still shown; the rest are filled in by
    a hash of (file, position, id), and the chosen posts are shown in corpus order.
    """
    if n <= 0:
        return []
    pool = [Shown(f, i, r) for f, rs in results.items() for i, r in enumerate(rs) if r.ok == ok]
    pool.sort(key=lambda s: _rank(s.file, s.index, s.result.source.id))
    group = (lambda s: s.result.strategy or "") if ok else (lambda s: s.result.failure or "")
    firsts: dict[str, Shown] = {}
    for shown in pool:
        firsts.setdefault(group(shown), shown)
    chosen = [firsts[g] for g in sorted(firsts)][:n]
    taken = {id(s) for s in chosen}
    chosen += [s for s in pool if id(s) not in taken][: n - len(chosen)]
    files = list(results)
    return sorted(chosen, key=lambda s: (files.index(s.file), s.index))


def target_entity_sources(result: ProjectionResult, src_lang: str) -> list[int] | None:
    """For each entity of the projected post, in order, the 1-based number of the source entity it came from.

    Re-reads the recorded MT output the way projection did (placeholder
    numbers, or the marker assignment), and checks the result against the
    projected labels; None when that check fails, so the page never shows a
    link it cannot vouch for.
    """
    if result.sample is None:
        return None
    meta = result.sample.meta
    translation = meta.get("translation") or ""
    slots = prepare_sample(result.source, src_lang).entity_slots
    number_of = {slot.number: k + 1 for k, slot in enumerate(slots)}
    strategy = meta.get("strategy")
    if strategy in FORMS:
        order = [number_of[n] for _, _, n in sorted(FORMS[strategy].find(translation)) if n in number_of]
    elif strategy == "markers":
        entity_text = {slot.number: e.get("target", "") for slot, e in zip(slots, meta.get("entities", []))}
        if len(entity_text) != len(slots):
            return None
        entities = [(slot.type or "", entity_text[slot.number]) for slot in slots]
        try:  # the sample was verified when it was emitted: only the pairing is read back here
            assigned = match_marked([c for _, _, c in find_marked(translation)], entities, [], str.split)  # no unmarked text: never tokenised
        except Rejected:
            return None
        order = [number_of[slots[j].number] for j in assigned]
    else:
        return None
    target = result.sample.entities()
    if len(order) != len(target) or sorted(order) != list(range(1, len(slots) + 1)):
        return None
    if any(slots[k - 1].type != span.type for k, span in zip(order, target)):
        return None
    return order


# -- rendering -----------------------------------------------------------------

def _type_class(etype: str) -> str:
    """A CSS class per type; a name with other characters gets a digest too, so two such types never share a class."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", etype)
    return "t-" + safe if safe == etype else f"t-{safe}-{hashlib.sha1(etype.encode('utf-8')).hexdigest()[:8]}"


def render_tokens(tokens: Sequence[str], labels: Sequence[str], lang: str, numbers: Sequence[int | None] | None = None) -> str:
    """The post as HTML: tokens joined as the language writes them, each entity a coloured, numbered ``<mark>``."""
    sep = "" if written_without_spaces(lang) else " "
    parts: list[str] = []
    position = 0
    for k, span in enumerate(spans(list(labels))):
        parts.extend(escape(t) for t in tokens[position:span.start])
        number = numbers[k] if numbers is not None else k + 1
        badge = f"<sup>{number}</sup>" if number is not None else ""
        inner = sep.join(escape(t) for t in tokens[span.start:span.end])
        title = escape(f"{span.type} #{number}" if number is not None else span.type)
        parts.append(f'<mark class="ent {_type_class(span.type)}" data-type="{escape(span.type)}" title="{title}">'
                     f'{badge}{inner}<span class="ty">{escape(span.type)}</span></mark>')
        position = span.end
    parts.extend(escape(t) for t in tokens[position:])
    return sep.join(parts)


def highlight_placeholders(text: str | None, strategy: str) -> str:
    """MT input or output with the strategy's placeholders (or ``[ ]`` markers) highlighted."""
    if text is None:
        return '<em class="none">not sent to MT</em>'
    if strategy in FORMS:
        found = [(s, e) for s, e, _ in FORMS[strategy].find(text)]
    else:
        found = [(s, e) for s, e, _ in find_marked(text)] + [(s, e) for s, e, _ in NUMBERED.find(text)]
    parts: list[str] = []
    position = 0
    for start, end in sorted(found):
        if start < position:
            continue
        parts.append(escape(text[position:start]))
        parts.append(f'<mark class="ph">{escape(text[start:end])}</mark>')
        position = end
    parts.append(escape(text[position:]))
    return "".join(parts)


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape('' if c is None else str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def bar_chart_svg(report: Mapping[str, Any]) -> str:
    """Entities per type before and after projection as an inline SVG (no library, no image file)."""
    types = list(report.get("entities", {}))
    values = [(t, report["entities"][t]["before"], report["entities"][t]["after"]) for t in types]
    top = max([b for _, b, _ in values] + [a for _, _, a in values] + [1])
    bar_w, gap, height, left, base = 22, 26, 160, 48, 190
    width = left + len(values) * (2 * bar_w + gap) + 150
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="230" role="img" '
           f'aria-label="entities per type before and after projection">']
    out.append(f'<line x1="{left - 4}" y1="{base}" x2="{width - 150}" y2="{base}" stroke="#444"/>')
    for k, (etype, before, after) in enumerate(values):
        x = left + k * (2 * bar_w + gap)
        for offset, value, fill in ((0, before, "#bbbbbb"), (bar_w, after, _colour(etype))):
            h = round(height * value / top, 1)
            out.append(f'<rect x="{x + offset}" y="{base - h}" width="{bar_w - 2}" height="{h}" fill="{fill}" stroke="#555">'
                       f'<title>{escape(etype)}: {value}</title></rect>')
            out.append(f'<text x="{x + offset + bar_w / 2 - 1}" y="{base - h - 3}" font-size="10" text-anchor="middle">{value}</text>')
        out.append(f'<text x="{x + bar_w}" y="{base + 16}" font-size="12" text-anchor="middle">{escape(etype)}</text>')
    legend_x = width - 140
    out.append(f'<rect x="{legend_x}" y="20" width="12" height="12" fill="#bbbbbb" stroke="#555"/>'
               f'<text x="{legend_x + 18}" y="30" font-size="12">before (source)</text>')
    out.append(f'<rect x="{legend_x}" y="40" width="12" height="12" fill="#9fc3f0" stroke="#555"/>'
               f'<text x="{legend_x + 18}" y="50" font-size="12">after (projected)</text>')
    out.append("</svg>")
    return "".join(out)


def _summary(report: Mapping[str, Any]) -> str:
    entities = report.get("entities", {})
    rows = [(t, e["before"], e["after"], _percent(e["projection_rate"]), _percent(e["share_before"]), _percent(e["share_after"]),
             e.get("untranslated", "–"))
            for t, e in entities.items()]
    total = report.get("entities_total", {})
    untranslated = total.get("untranslated")
    rows.append(("all", total.get("before", 0), total.get("after", 0), _percent(total.get("projection_rate")), "", "",
                 "–" if untranslated is None else f"{untranslated} ({_percent(total.get('untranslated_rate'))})"))
    files = report.get("files", {})
    per_file = [(name, f["samples_in"], f["samples_out"], f["samples_failed"], _percent(f["projection_rate"])) for name, f in files.items()]
    per_file.append(("all", report.get("samples_in", 0), report.get("samples_out", 0), report.get("samples_failed", 0),
                     _percent(report.get("projection_rate"))))
    strategies = list(report.get("success_by_strategy", {}).items()) or [("(none)", 0)]
    reasons = list(report.get("failures_by_reason", {}).items()) or [("(none)", 0)]
    return (
        f'<section id="summary"><h2>Summary ({REPORT_NAME})</h2><div class="row">'
        + _table(["file", "posts in", "projected", "left out", "projection rate"], per_file, "num")
        + _table(["type", "entities before", "after", "projection rate", "share before", "share after", "untranslated"], rows, "num")
        + "</div><div class=\"row\">"
        + _table(["strategy", "posts projected"], strategies, "num")
        + _table(["reason", "posts left out"], reasons, "num")
        + f'<figure>{bar_chart_svg(report)}<figcaption>Entities per type, before and after projection</figcaption></figure>'
        + "</div></section>"
    )


def _entity_list(result: ProjectionResult, order: list[int] | None) -> str:
    items = []
    for k, entity in enumerate(result.sample.meta.get("entities", []) if result.sample else [], start=1):
        items.append(f'<li><span class="ent {_type_class(entity.get("type", ""))}">{k} {escape(str(entity.get("type", "")))}</span> '
                     f'{escape(str(entity.get("source", "")))} → {escape(str(entity.get("target", "")))}</li>')
    note = "" if order is not None else '<li class="warn">target entities could not be matched to source entities from the recorded MT output; numbers omitted</li>'
    return f'<ol class="ents">{"".join(items)}{note}</ol>'


def _post_rows(shown: Sequence[Shown], src: str, tgt: str) -> str:
    rows = []
    for item in shown:
        result = item.result
        order = target_entity_sources(result, src)
        target = result.sample
        numbers: Sequence[int | None] = order if order is not None else [None] * len(target.entities())
        rows.append(
            f'<tr id="{escape(item.file)}-{item.index}"><td class="id">{escape(item.file)}<br>{escape(result.source.id)}'
            f'<br><span class="strategy">{escape(result.strategy or "")}</span></td>'
            f'<td class="text" lang="{escape(src)}">{render_tokens(result.source.tokens, result.source.labels, src)}</td>'
            f'<td class="text" lang="{escape(tgt)}">{render_tokens(target.tokens, target.labels, tgt, numbers)}'
            f'{_entity_list(result, order)}</td></tr>'
        )
    return "".join(rows)


def _failure_rows(shown: Sequence[Shown], src: str) -> str:
    rows = []
    for item in shown:
        result = item.result
        attempts = "".join(
            f'<tr><td>{escape(a.strategy)}</td><td>{escape(a.reason or "")}<br><small>{escape(a.detail)}</small></td>'
            f'<td class="mt">{highlight_placeholders(a.mt_input, a.strategy)}</td><td class="mt">{highlight_placeholders(a.translation, a.strategy)}</td></tr>'
            for a in result.attempts
        )
        rows.append(
            f'<div class="failure" id="{escape(item.file)}-{item.index}"><p><strong>{escape(item.file)} {escape(result.source.id)}</strong>: '
            f'<span class="reason">{escape(result.failure or "")}</span> <small>{escape(result.detail)}</small></p>'
            f'<p class="text" lang="{escape(src)}">{render_tokens(result.source.tokens, result.source.labels, src)}</p>'
            f'<table class="attempts"><thead><tr><th>strategy</th><th>why it failed</th><th>MT input</th><th>MT output</th></tr></thead>'
            f'<tbody>{attempts}</tbody></table></div>'
        )
    return "".join(rows)


_CSS = """
body{font-family:"Noto Sans","Noto Sans CJK SC","Source Han Sans SC","PingFang SC","Microsoft YaHei",sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:0 1.5em 1em 0;font-size:13px;vertical-align:top}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
table.num td+td{text-align:right}
.row{display:flex;flex-wrap:wrap;align-items:flex-start}
figure{margin:0}figcaption{font-size:12px;color:#555}
.posts td.text{width:44%;line-height:1.9}
.posts td.id{font-size:12px;color:#555;white-space:nowrap}
mark.ent{border-radius:3px;padding:1px 2px}
mark.ent sup{font-weight:bold;margin-right:1px}
mark .ty{font-size:9px;margin-left:2px;color:#333}
span.ent{border-radius:3px;padding:0 3px;font-size:12px}
mark.ph{background:#ffe14d;outline:1px solid #c9a800}
ol.ents{font-size:12px;color:#444;margin:4px 0 0 0;padding-left:1.2em;list-style:none}
.warn{color:#a00}.reason{color:#a00;font-weight:bold}
.failure{border-top:1px solid #ddd;padding-top:4px}
td.mt{font-family:monospace;font-size:12px;max-width:30em;word-break:break-word}
"""


_NOTHING = '<tr><td colspan="3">no post to show</td></tr>'


def _type_css(types: Iterable[str]) -> str:
    return "".join(f".{_type_class(t)}{{background:{_colour(t)}}}" for t in types)


def render_preview(report: Mapping[str, Any], results: Mapping[str, Sequence[ProjectionResult]], src: str, tgt: str,
                   posts: int = DEFAULT_PREVIEW_POSTS) -> str:
    """The whole page as a string: pure, so it can be tested without writing files."""
    ok = choose_posts(results, posts, ok=True)
    failed = choose_posts(results, posts, ok=False)
    n_ok = sum(r.ok for rs in results.values() for r in rs)
    n_failed = sum(not r.ok for rs in results.values() for r in rs)
    seen = set(report.get("entities", {}))
    for rs in results.values():
        for r in rs:
            seen.update(s.type for s in r.source.entities())
    types = set(table_types(seen))
    title = f"Projection preview {src} → {tgt}" + (f" ({report['model']})" if report.get("model") else "")
    legend = " ".join(f'<mark class="ent {_type_class(t)}">{escape(t)}</mark>' for t in sorted(types))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
        f"<title>{escape(title)}</title><style>{_CSS}{_type_css(sorted(types))}</style></head><body>"
        f"<h1>{escape(title)}</h1><p>Entity types: {legend}. A number on a projected entity is the number of the source "
        "entity it came from (read back from the recorded MT output).</p>"
        + _summary(report)
        + f'<section id="posts"><h2>Projected posts ({len(ok)} of {n_ok}, chosen reproducibly, every successful strategy included)</h2>'
        f'<table class="posts"><thead><tr><th>file / id / strategy</th><th>source ({escape(src)})</th><th>projected ({escape(tgt)})</th></tr></thead>'
        f"<tbody>{_post_rows(ok, src, tgt) or _NOTHING}</tbody></table></section>"
        + f'<section id="failures"><h2>Left-out posts ({len(failed)} of {n_failed}, every reason included)</h2>'
        f"{_failure_rows(failed, src)}</section>"
        "</body></html>\n"
    )


def write_preview(output_dir: str | Path, report: Mapping[str, Any], results: Mapping[str, Sequence[ProjectionResult]],
                  posts: int = DEFAULT_PREVIEW_POSTS) -> Path:
    """Write ``preview.html`` beside ``report.json`` (atomically) and return its path."""
    path = TranslationFolder(output_dir).preview
    atomic_write_text(path, render_preview(report, results, report["src"], report["tgt"], posts))
    return path


__all__ = ["DEFAULT_PREVIEW_POSTS", "PREVIEW_NAME", "choose_posts", "render_preview", "render_tokens", "target_entity_sources", "write_preview"]
