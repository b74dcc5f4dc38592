"""Two corpora side by side: did the entity mix, the entity lengths or the label patterns shift?

Made for a translated corpus against its source (filtering can skew the
type mix; translation changes entity lengths), but any two datasets compare
the same way: train vs test, Twitter2015 vs Twitter2017, CMNER vs its
translation. Entities are counted conlleval-style, exactly as
:mod:`xlingual.data.stats` counts them (``xl data stats``), so the numbers of
both commands agree.

An entity's length is given in tokens and in characters of its text as the
language writes it (tokens joined by a space, directly for Chinese), the one
measure that compares across a word-tokenised and a character-tokenised corpus.
Label transitions are the adjacent label pairs inside each post (``O→B-PER``,
``B-PER→I-PER`` …), the statistics a CRF layer learns.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xlingual.data.labels import count_entities, table_types
from xlingual.data.files import dataset_files
from xlingual.data.sample import Sample
from xlingual.errors import ConfigError
from xlingual.io import atomic_write_text, save_png
from xlingual.text_escape import markdown_cell, plain_label


@dataclass
class Lengths:
    """A length distribution: the histogram and the summary figures people quote."""

    histogram: Counter = field(default_factory=Counter)

    @property
    def values(self) -> list[int]:
        return sorted(self.histogram.elements())

    def summary(self) -> dict[str, float | int | None]:
        values = self.values
        if not values:
            return {"count": 0, "mean": None, "median": None, "p90": None, "max": None}
        return {"count": len(values), "mean": round(statistics.fmean(values), 3), "median": statistics.median(values),
                "p90": values[min(len(values) - 1, int(0.9 * len(values)))], "max": values[-1]}

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "histogram": {str(k): v for k, v in sorted(self.histogram.items())}}


@dataclass
class CorpusProfile:
    """What :func:`compare` measures of one corpus (one or several files taken together)."""

    name: str
    files: list[str]
    posts: int = 0
    tokens: int = 0
    posts_without_entities: int = 0
    entities: Counter = field(default_factory=Counter)
    entity_tokens: Lengths = field(default_factory=Lengths)
    entity_chars: Lengths = field(default_factory=Lengths)
    type_tokens: dict[str, Lengths] = field(default_factory=dict)
    type_chars: dict[str, Lengths] = field(default_factory=dict)
    transitions: Counter = field(default_factory=Counter)

    @property
    def total_entities(self) -> int:
        return sum(self.entities.values())

    def share(self, etype: str) -> float | None:
        return self.entities.get(etype, 0) / self.total_entities if self.total_entities else None

    def transition_share(self, pair: str) -> float | None:
        total = sum(self.transitions.values())
        return self.transitions.get(pair, 0) / total if total else None

    def to_dict(self, types: Sequence[str]) -> dict[str, Any]:
        return {
            "name": self.name, "files": self.files, "posts": self.posts, "tokens": self.tokens,
            "posts_without_entities": self.posts_without_entities, "total_entities": self.total_entities,
            "entities": {t: self.entities.get(t, 0) for t in types},
            "type_shares": {t: _round(self.share(t)) for t in types},
            "entity_length_tokens": self.entity_tokens.to_dict(), "entity_length_chars": self.entity_chars.to_dict(),
            "type_length_tokens": {t: self.type_tokens.get(t, Lengths()).summary() for t in types},
            "type_length_chars": {t: self.type_chars.get(t, Lengths()).summary() for t in types},
            "transitions": dict(sorted(self.transitions.items())),
        }


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def profile(name: str, files: Sequence[str], samples: Sequence[Sample]) -> CorpusProfile:
    """Measure one corpus."""
    out = CorpusProfile(name, list(files), posts=len(samples), tokens=sum(len(s) for s in samples))
    out.entities = count_entities([s.labels for s in samples])
    for sample in samples:
        entities = sample.entities()
        if not entities:
            out.posts_without_entities += 1
        sep = "" if sample.lang == "zh" else " "
        for span in entities:
            n_tokens, n_chars = span.end - span.start, len(sep.join(sample.tokens[span.start:span.end]))
            out.entity_tokens.histogram[n_tokens] += 1
            out.entity_chars.histogram[n_chars] += 1
            out.type_tokens.setdefault(span.type, Lengths()).histogram[n_tokens] += 1
            out.type_chars.setdefault(span.type, Lengths()).histogram[n_chars] += 1
        out.transitions.update(f"{a}→{b}" for a, b in zip(sample.labels, sample.labels[1:]))
    return out


@dataclass
class Comparison:
    """Two profiles and the entity types they use (:func:`~xlingual.data.labels.table_types`: the canonical four first)."""

    a: CorpusProfile
    b: CorpusProfile

    @property
    def types(self) -> list[str]:
        return table_types(set(self.a.entities) | set(self.b.entities))

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a.to_dict(self.types), "b": self.b.to_dict(self.types)}

    def markdown(self) -> str:
        return markdown_tables(self)


def compare(a: CorpusProfile, b: CorpusProfile) -> Comparison:
    return Comparison(a, b)


# -- Markdown ------------------------------------------------------------------

def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def _pp(a: float | None, b: float | None) -> str:
    return "–" if a is None or b is None else f"{100 * (b - a):+.1f} pp"


def _length_cell(summary: dict[str, Any]) -> str:
    if not summary["count"]:
        return "–"
    return f"{summary['mean']:.2f} / {summary['median']:g} / {summary['p90']} / {summary['max']}"


def _rows_to_md(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(map(markdown_cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(markdown_cell, row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def markdown_tables(c: Comparison) -> str:
    """The comparison as Markdown: corpus figures, entity types, lengths, label transitions."""
    a, b = c.a, c.b
    header = ["", a.name, b.name, "difference"]

    def without(p: CorpusProfile) -> float | None:
        return p.posts_without_entities / p.posts if p.posts else None

    rows = [
        ["posts", f"{a.posts:,}", f"{b.posts:,}", f"{b.posts - a.posts:+,}"],
        ["tokens", f"{a.tokens:,}", f"{b.tokens:,}", f"{b.tokens - a.tokens:+,}"],
        ["entities", f"{a.total_entities:,}", f"{b.total_entities:,}", f"{b.total_entities - a.total_entities:+,}"],
        ["entities per post", *(f"{p.total_entities / p.posts:.2f}" if p.posts else "–" for p in (a, b)), ""],
        ["posts without entities", *(f"{p.posts_without_entities:,} ({_pct(without(p))})" for p in (a, b)), _pp(without(a), without(b))],
    ]
    for etype in c.types:
        rows.append([f"{etype} entities (share)", *(f"{p.entities.get(etype, 0):,} ({_pct(p.share(etype))})" for p in (a, b)),
                     _pp(a.share(etype), b.share(etype))])
    lengths = [["all types, tokens", _length_cell(a.entity_tokens.summary()), _length_cell(b.entity_tokens.summary())],
               ["all types, characters", _length_cell(a.entity_chars.summary()), _length_cell(b.entity_chars.summary())]]
    for etype in c.types:
        for unit, attr in (("tokens", "type_tokens"), ("characters", "type_chars")):
            lengths.append([f"{etype}, {unit}", *(_length_cell(getattr(p, attr).get(etype, Lengths()).summary()) for p in (a, b))])
    pairs = sorted(set(a.transitions) | set(b.transitions), key=lambda k: (-(a.transitions[k] + b.transitions[k]), k))
    transitions = [[pair, *(f"{p.transitions.get(pair, 0):,} ({_pct(p.transition_share(pair))})" for p in (a, b)),
                    _pp(a.transition_share(pair), b.transition_share(pair))] for pair in pairs]
    return (
        f"### Corpora: {markdown_cell(a.name)} vs {markdown_cell(b.name)}\n\n" + _rows_to_md(header, rows)
        + "\n### Entity length (mean / median / 90th percentile / max)\n\n" + _rows_to_md(["", a.name, b.name], lengths)
        + "\n### Label transitions (adjacent labels inside a post; share of all pairs)\n\n" + _rows_to_md(header, transitions)
    )


# -- charts --------------------------------------------------------------------

def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    save_png(fig, path, dpi=100)
    plt.close(fig)
    return path


MAX_LENGTH_BARS = 40
"""Bars per length chart: one per length up to this, else single lengths up to half of it and log-spaced ranges above."""


def length_bins(longest: int, bars: int = MAX_LENGTH_BARS) -> list[tuple[int, int]]:
    """Inclusive length ranges covering 1..``longest`` in at most ``bars`` bars.

    One bar per integer length would make a 200,000-character entity cost
    200,000 bars (minutes of drawing); above ``bars // 2`` the ranges grow
    geometrically, so the cost depends on ``bars`` only.
    """
    if longest <= bars:
        return [(k, k) for k in range(1, longest + 1)]
    first = bars // 2 + 1  # the first length given a range
    steps = bars - first + 1
    edges = sorted({first, longest + 1, *(round(first * ((longest + 1) / first) ** (i / steps)) for i in range(1, steps))})
    return [(k, k) for k in range(1, first)] + [(low, high - 1) for low, high in zip(edges, edges[1:])]


def _binned(histogram: Counter, ranges: list[tuple[int, int]]) -> list[int]:
    """How many entities fall into each range (one pass over the histogram's distinct lengths)."""
    import bisect

    starts = [low for low, _ in ranges]
    counts = [0] * len(ranges)
    for length, count in histogram.items():
        index = bisect.bisect_right(starts, length) - 1
        if index >= 0 and length <= ranges[index][1]:
            counts[index] += count
    return counts


def write_charts(c: Comparison, out_dir: str | Path) -> list[Path]:
    """PNG charts: type shares, and entity length distributions in tokens and characters (lengths binned, :func:`length_bins`).

    Names and types come from the data, so every label goes through
    :func:`~xlingual.text_escape.plain_label` and TeX is off: a ``$`` in a
    name is drawn as a dollar sign, never parsed as math.
    """
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["text.usetex"] = False
    import matplotlib.pyplot as plt
    import numpy as np

    out = Path(out_dir)
    written = []
    types = c.types
    fig, ax = plt.subplots(figsize=(6, 3.6))
    x = np.arange(len(types))
    for offset, p in ((-0.2, c.a), (0.2, c.b)):
        shares = [100 * (p.share(t) or 0.0) for t in types]
        ax.bar(x + offset, shares, 0.4, label=plain_label(f"{p.name} ({p.total_entities:,} entities)"))
    ax.set_xticks(x)
    ax.set_xticklabels([plain_label(t) for t in types])
    ax.set_ylabel("share of entities (%)")
    ax.legend(fontsize=8)
    written.append(_save(fig, out / "type_shares.png"))
    for unit, attr in (("tokens", "entity_tokens"), ("characters", "entity_chars")):
        fig, ax = plt.subplots(figsize=(6, 3.6))
        top = max([1, *getattr(c.a, attr).histogram, *getattr(c.b, attr).histogram])
        ranges = length_bins(top)
        x = np.arange(len(ranges))
        for offset, p in ((-0.2, c.a), (0.2, c.b)):
            hist = getattr(p, attr).histogram
            total = sum(hist.values()) or 1
            ax.bar(x + offset, [100 * n / total for n in _binned(hist, ranges)], 0.4, label=plain_label(p.name))
        step = max(1, len(ranges) // 10)
        ax.set_xticks(x[::step])
        ax.set_xticklabels([str(low) if low == high else f"{low}–{high}" for low, high in ranges[::step]], fontsize=7)
        ax.set_xlabel(f"entity length ({unit})")
        ax.set_ylabel("share of entities (%)")
        ax.legend(fontsize=8)
        written.append(_save(fig, out / f"entity_length_{unit}.png"))
    return written


def write_comparison(c: Comparison, out_dir: str | Path) -> list[Path]:
    """``compare.md``, ``compare.json`` and the charts under ``out_dir``."""
    import json

    out = Path(out_dir)
    atomic_write_text(out / "compare.md", c.markdown())
    atomic_write_text(out / "compare.json", json.dumps(c.to_dict(), indent=2, ensure_ascii=False) + "\n")
    return [out / "compare.md", out / "compare.json", *write_charts(c, out)]


def profile_inputs(spec: str, name: str, format: str | None = None) -> CorpusProfile:
    """The profile of one side of ``xl data compare`` (see :func:`expand_inputs`), files read as ``xl data stats`` reads them."""
    from xlingual.data.formats import parse_valid_file

    paths = expand_inputs(spec)
    samples = [s for path in paths for s in parse_valid_file(path, format).samples]
    return profile(name, [str(p) for p in paths], samples)


def compare_inputs(first: str, second: str, names: str | None = None, format: str | None = None) -> Comparison:
    """``xl data compare``: two corpora, each a file, a folder or a comma-separated list; ``names`` "a,b" labels the columns."""
    labels = [n.strip() for n in names.split(",")] if names else [first, second]
    if len(labels) != 2 or not all(labels):
        raise ConfigError("--names: give two names separated by a comma")
    return compare(profile_inputs(first, labels[0], format), profile_inputs(second, labels[1], format))


def expand_inputs(spec: str) -> list[Path]:
    """One side of ``xl data compare``: a file, a folder (its ``*.txt`` dataset files) or a comma-separated list."""
    paths: list[Path] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        path = Path(part)
        if path.is_dir():
            paths.extend(dataset_files(path))
        elif path.is_file():
            paths.append(path)
        else:
            raise ConfigError(f"{path}: no such file or folder")
    if not paths:
        raise ConfigError(f"'{spec}': no input files")
    return paths


__all__ = ["Comparison", "CorpusProfile", "Lengths", "compare", "compare_inputs", "expand_inputs", "length_bins", "markdown_tables", "profile", "profile_inputs", "write_charts", "write_comparison"]
