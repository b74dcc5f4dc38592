"""Projection never emits a wrong label: marked and read-back parts are verified, misplaced marks are named.

The property test lets hypothesis play an adversarial MT: it draws the
stand-alone entity translations and damages each sentence translation
(moved, widened, narrowed, duplicated or dropped markers and placeholders,
digits glued before placeholders, entities that translate alike), and checks
the promise of the docs on whatever comes out.
"""

from __future__ import annotations

import re
from pathlib import Path
from collections import Counter
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xlingual.data.labels import ENTITY_TYPES, spans, table_types
from xlingual.data.sample import Sample
from xlingual.projection import ProjectionReport, project_samples
from xlingual.projection.placeholders import NUMBERED
from xlingual.projection.project import FAILURE_REASONS, STRATEGIES, Projector
from xlingual.projection.verify import canonical

NAMES = ["Paris", "London", "Obama", "Apple"]
FILLERS = {"buys": "收购", "is": "是", "and": "和", "visited": "访问了", "the": "这", "0x1F": "0x1F"}
RENDERINGS = ["巴黎", "伦敦", "巴", "伦敦的桥", "收购", "是", "奥巴马", "X1", "Ｘ２", "苹果公司"]
_PIECE = re.compile(r"\[|\]|X\d+|[^\s\[\]]+")


@dataclass(frozen=True)
class Direction:
    """A language pair for the adversarial MT: source fillers and their translations, and the renderings it may draw.

    The renderings include prefixes and extensions of the entities' own
    translations, filler translations (so an entity can also appear unmarked)
    and placeholder look-alikes, in the target's script.
    """

    src: str
    tgt: str
    fillers: dict[str, str]
    renderings: list[str]

    @property
    def joiner(self) -> str:
        return "" if self.tgt == "zh" else " "


DIRECTIONS = [
    Direction("en", "zh", FILLERS, RENDERINGS),
    Direction("en", "de", {"buys": "kauft", "is": "ist", "and": "und", "visited": "besuchte", "the": "die", "0x1F": "0x1F"},
              ["Paris", "London", "Lond", "Londoner Brücke", "kauft", "ist", "Obama", "X1", "Ｘ２", "Apple-Konzern", "d'Apple"]),
    Direction("de", "en", {"kauft": "buys", "ist": "is", "und": "and", "besuchte": "visited", "die": "the", "0x1F": "0x1F"},
              ["Paris", "London", "Lon", "London Bridge", "buys", "is", "Obama", "X1", "Ｘ２", "Apple Inc.", "Apple's"]),
]


def entity_pairs(sample: Sample) -> Counter:
    return Counter((s.type, canonical("".join(sample.tokens[s.start:s.end]))) for s in spans(sample.labels))


class AdversarialMT:
    """Entity names translate as drawn; sentences translate piece by piece, then hypothesis damages them."""

    def __init__(self, data: st.DataObject, standalone: dict[str, str], direction: Direction = DIRECTIONS[0]) -> None:
        self.data = data
        self.standalone = standalone
        self.direction = direction
        self.calls: list[tuple[list[str], list[str]]] = []

    def translate(self, texts: list[str]) -> list[str]:
        out = [self.standalone[t] if t in self.standalone else self._sentence(t) for t in texts]
        self.calls.append((list(texts), out))
        return out

    def _sentence(self, text: str) -> str:
        draw = self.data.draw
        renderings, fillers = self.direction.renderings, self.direction.fillers
        in_context = {n: draw(st.sampled_from([t] * 8 + renderings), label=f"in-context {n}") for n, t in self.standalone.items()}
        pieces = [in_context.get(p, fillers.get(p, p)) for p in _PIECE.findall(text)]
        for _ in range(draw(st.integers(0, 3), label="edits")):
            if not pieces:
                break
            i = draw(st.integers(0, len(pieces) - 1))
            edit = draw(st.sampled_from(["swap", "drop", "duplicate", "insert", "narrow", "glue_digit", "fullwidth"]))
            if edit == "swap":
                j = draw(st.integers(0, len(pieces) - 1))
                pieces[i], pieces[j] = pieces[j], pieces[i]
            elif edit == "drop":
                del pieces[i]
            elif edit == "duplicate":
                pieces.insert(i, pieces[i])
            elif edit == "insert":
                pieces.insert(i, draw(st.sampled_from(["[", "]", "X1", "x 2", "【1】", "0x1F", "的", *renderings])))
            elif edit == "narrow":
                pieces[i] = pieces[i][: max(1, len(pieces[i]) - 1)]
            elif edit == "glue_digit":
                pieces[i] = "0" + pieces[i]
            else:
                pieces[i] = pieces[i].replace("[", "【").replace("]", "】")
        return self.direction.joiner.join(pieces)


TYPE_NAMES = st.one_of(st.sampled_from(ENTITY_TYPES), st.sampled_from(["PRODUCT", "creative-work"]),
                       st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=6))
"""Canonical and open entity types, names of any characters: projection must treat them all alike."""


@st.composite
def source_samples(draw, direction: Direction = DIRECTIONS[0]) -> Sample:
    types = draw(st.lists(TYPE_NAMES, min_size=1, max_size=3, unique=True))  # few per post, so types repeat and tie
    tokens: list[str] = []
    labels: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        for word in draw(st.lists(st.sampled_from(sorted(direction.fillers)), max_size=2)):
            tokens.append(word)
            labels.append("O")
        tokens.append(draw(st.sampled_from(NAMES)))
        labels.append("B-" + draw(st.sampled_from(types)))
    return Sample("s", tokens, labels, lang=direction.src)


class Replay:
    """The same MT outputs, call by call, for the same inputs; an input that differs fails the test."""

    def __init__(self, calls: list[tuple[list[str], list[str]]]) -> None:
        self.calls = list(calls)

    def translate(self, texts: list[str]) -> list[str]:
        assert self.calls, f"an MT call the first projection did not make: {texts}"
        expected, out = self.calls.pop(0)
        assert texts == expected, "entity types changed what MT was asked"
        return out


def retyped(labels: list[str], names: dict[str, str]) -> list[str]:
    return [label if label == "O" else f"{label[:2]}{names[label[2:]]}" for label in labels]


@pytest.mark.parametrize("direction", DIRECTIONS, ids=lambda d: f"{d.src}-{d.tgt}")
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), entity_context=st.booleans(), strategies=st.sampled_from([STRATEGIES, ("markers",), ("bracketed", "markers")]))
def test_emitted_entities_are_exactly_the_verified_translations_whatever_mt_does(direction, data, entity_context, strategies) -> None:
    """Also: projection treats every type alike; renaming the types (canonical or not) renames them in the result and changes nothing else."""
    sample = data.draw(source_samples(direction), label="source")
    standalone = {n: data.draw(st.sampled_from(direction.renderings), label=f"stand-alone {n}") for n in NAMES}
    mt = AdversarialMT(data, standalone, direction)
    projector = Projector(mt, direction.src, direction.tgt, strategies, entity_context=entity_context)
    result = project_samples([sample], mt, direction.src, direction.tgt, projector=projector)[0]
    types = sorted({s.type for s in spans(sample.labels)})
    names = dict(zip(types, data.draw(st.lists(TYPE_NAMES, min_size=len(types), max_size=len(types), unique=True), label="renamed types")))
    replay = Replay(mt.calls)
    renamed = project_samples([Sample(sample.id, sample.tokens, retyped(sample.labels, names), lang=direction.src)], replay,
                              direction.src, direction.tgt,
                              projector=Projector(replay, direction.src, direction.tgt, strategies, entity_context=entity_context))[0]
    assert not replay.calls, "the renamed sample made fewer MT calls"
    assert (renamed.ok, renamed.strategy, renamed.failure) == (result.ok, result.strategy, result.failure)
    if result.ok:
        assert (renamed.sample.tokens, renamed.sample.labels) == (result.sample.tokens, retyped(result.sample.labels, names))
        entities = result.sample.meta.get("entities", [])
        assert renamed.sample.meta.get("entities", []) == [{**e, "type": names[e["type"]]} for e in entities]
    report = ProjectionReport.from_results([result]).to_dict()
    source_types = {s.type for s in spans(sample.labels)}
    assert list(report["entities"]) == table_types(source_types)
    assert {t: v["before"] for t, v in report["entities"].items() if v["before"]} == dict(Counter(s.type for s in spans(sample.labels)))
    if result.ok:
        expected = Counter((s.type, canonical(standalone[sample.tokens[s.start]])) for s in spans(sample.labels))
        assert entity_pairs(result.sample) == expected, result.attempts[-1].translation
        assert len(spans(result.sample.labels)) == len(spans(sample.labels))
    else:
        assert result.failure in FAILURE_REASONS and result.attempts
        assert report["failures_by_reason"] == {result.failure: 1}
    rejected = [a.reason for a in result.attempts if a.reason]
    assert set(rejected) <= set(FAILURE_REASONS)
    assert sum(report["rejections_by_reason"].values()) == len(rejected)


def _markers_only(translation: str, standalone: dict[str, str]):
    """A translator that breaks every placeholder form, so the markers strategy decides."""
    class MT:
        def translate(self, texts: list[str]) -> list[str]:
            return [standalone.get(t, "坏" if "[" not in t or re.search(r"\[\d+\]", t) else translation) for t in texts]

    return MT()


@pytest.mark.parametrize("tokens, labels, translation, reason", [
    ("Apple buys Nike".split(), ["B-ORG", "O", "B-ORG"], "[收购]苹果[耐克]", "markers_moved"),
    ("Apple buys Nike".split(), ["B-ORG", "O", "B-ORG"], "[苹果收购][耐克]", "markers_widened"),
    ("Apple buys Nike".split(), ["B-ORG", "O", "B-ORG"], "[苹]果收购[耐克]", "markers_narrowed"),
    ("visit London bridge".split(), ["O", "B-LOC", "O"], "访问[伦敦的桥]", "markers_widened"),
    ("Apple buys Nike".split(), ["B-ORG", "O", "B-ORG"], "[苹果]收购[苹果]", "markers_unmatched"),
    ("Paris met Paris".split(), ["B-PER", "O", "B-LOC"], "[巴黎]见[巴黎]", "markers_tied"),
    ("Paris visited Paris".split(), ["B-PER", "O", "O"], "巴黎访问了[巴黎]", "markers_tied"),
])
def test_misplaced_markers_leave_the_sample_out_with_a_named_reason(tokens, labels, translation, reason) -> None:
    """Single-type sets are checked as well: a moved mark on "buys" once came out as an entity."""
    standalone = {"Apple": "苹果", "Nike": "耐克", "London": "伦敦", "Paris": "巴黎"}
    result = project_samples([Sample("1", tokens, labels, lang="en")], _markers_only(translation, standalone), "en", "zh")[0]
    assert not result.ok
    assert result.failure == reason, result.detail
    assert ProjectionReport.from_results([result]).to_dict()["failures_by_reason"] == {reason: 1}


def test_correct_markers_still_project_even_when_reordered_and_reformatted() -> None:
    standalone = {"Obama": "奥巴马", "Paris": "巴黎"}
    sample = Sample("1", "Obama visits Paris".split(), ["B-PER", "O", "B-LOC"], lang="en")
    result = project_samples([sample], _markers_only("【巴黎】欢迎[ 奥巴马 ]", standalone), "en", "zh")[0]
    assert result.strategy == "markers"
    assert [(s.type, "".join(result.sample.tokens[s.start:s.end])) for s in spans(result.sample.labels)] == [("LOC", "巴黎"), ("PER", "奥巴马")]


def test_entity_context_read_back_is_verified_against_the_standalone_translation() -> None:
    """"[Paris] visited Paris" read back from the wrong occurrence, or widened, falls back to the stand-alone form."""
    class MT:
        def translate(self, texts: list[str]) -> list[str]:
            out = {"Paris": "巴黎", "London": "伦敦"}
            return [out.get(t) or ("[巴黎访问了]伦敦" if "[" in t else "X1访问了X2") for t in texts]

    sample = Sample("1", "Paris visited London".split(), ["B-PER", "O", "B-LOC"], lang="en")
    projector = Projector(MT(), "en", "zh", entity_context=True)
    result = project_samples([sample], projector.translator, "en", "zh", projector=projector)[0]
    assert result.ok
    assert entity_pairs(result.sample) == Counter({("PER", "巴黎"): 1, ("LOC", "伦敦"): 1})
    assert projector.stats.context_rejected == 2 and projector.stats.context_used == 0


def test_a_digit_before_x_is_not_a_placeholder() -> None:
    assert [n for _, _, n in NUMBERED.find("价格0x1F和X1")] == [1]
    assert NUMBERED.find("0x1F") == [] and NUMBERED.find("10X2") == []
    assert [n for _, _, n in NUMBERED.find("X1X2")] == [1, 2]

    class MT:
        def translate(self, texts: list[str]) -> list[str]:
            return ["巴黎" if t == "Paris" else "代码0x1F" for t in texts]

    result = project_samples([Sample("1", "Paris code".split(), ["B-LOC", "O"], lang="en")], MT(), "en", "zh", strategies=["numbered"])[0]
    assert not result.ok and result.failure == "placeholder_missing"


# -- translators that break the contract: never a label, never a cache entry ------------------------------------------

BREAKAGES = ("returns_none", "none_item", "int_item", "bytes_item", "one_short", "one_extra", "raises")


class ContractBreakingMT:
    """Wraps :class:`AdversarialMT`; hypothesis decides per call whether it answers or breaks the contract, and how."""

    def __init__(self, inner: AdversarialMT, data: st.DataObject) -> None:
        self.inner, self.data = inner, data
        self.answered: dict[str, str] = {}  # text -> translation, from the calls that kept the contract
        self.broke: str | None = None

    @property
    def cache_key(self) -> str:
        return "contract-breaking"

    def translate(self, texts: list[str]) -> object:
        outputs = self.inner.translate(texts)
        breakage = self.data.draw(st.sampled_from([None, None, *BREAKAGES]), label="breakage")
        if breakage is None:
            self.answered.update(zip(texts, outputs))
            return outputs
        self.broke = breakage
        where = self.data.draw(st.integers(0, len(outputs) - 1), label="where")
        if breakage == "returns_none":
            return None
        if breakage == "raises":
            raise RuntimeError("the MT service\nis down")
        if breakage == "one_short":
            return outputs[:-1]
        if breakage == "one_extra":
            return [*outputs, outputs[where]]
        outputs[where] = {"none_item": None, "int_item": 7, "bytes_item": outputs[where].encode()}[breakage]
        return outputs


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sample=source_samples(), data=st.data(), entity_context=st.booleans(),
       strategies=st.sampled_from([STRATEGIES, ("markers",), ("bracketed", "markers")]))
def test_a_translator_that_breaks_its_contract_is_one_line_and_leaves_nothing_cached(sample, data, entity_context, strategies) -> None:
    """None, non-strings, a wrong count or an exception: one line naming the translator, never a "None" entity, no cache entry of that call."""
    import sqlite3
    import tempfile

    from xlingual.errors import TranslatorError
    from xlingual.translate import CachedTranslator, TranslationCache

    standalone = {n: data.draw(st.sampled_from(RENDERINGS), label=f"stand-alone {n}") for n in NAMES}
    mt = ContractBreakingMT(AdversarialMT(data, standalone), data)
    with tempfile.TemporaryDirectory() as folder:
        cache = TranslationCache(Path(folder) / "t.sqlite")
        cached = CachedTranslator(mt, cache, commit_every=data.draw(st.sampled_from([1, 2, 256]), label="commit_every"))
        try:
            result = project_samples([sample], cached, "en", "zh", projector=Projector(cached, "en", "zh", strategies, entity_context=entity_context))[0]
        except TranslatorError as err:
            message = str(err)
            assert mt.broke is not None
            assert message.startswith("translator ") and "ContractBreakingMT" in message and "\n" not in message, message
            result = None
        finally:
            cache.close()
        with sqlite3.connect(Path(folder) / "t.sqlite") as db:
            stored = db.execute("SELECT source, target FROM translations").fetchall()
    assert all(mt.answered.get(source) == target for source, target in stored), "an entry from a call that broke the contract was cached"
    if result is None:
        return
    assert mt.broke is None  # every breakage is an error, none is projected
    if result.ok:
        assert "None" not in "".join(result.sample.tokens)
        expected = Counter((s.type, canonical(standalone[sample.tokens[s.start]])) for s in spans(sample.labels))
        assert entity_pairs(result.sample) == expected
