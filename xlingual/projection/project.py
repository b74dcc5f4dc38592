"""Projecting annotated samples into another language with the SPAN-placeholder method.

The method of the CMNER paper (§5.2, after Zhou et al. 2022): each entity is
replaced by a placeholder, the sentence is translated with the placeholders
kept, each entity is translated on its own, every placeholder is replaced by
its entity's translation, and the labels follow (B-/I- of the entity's type on
the translated entity, O elsewhere).

Safety comes first: every translation is verified (each placeholder exactly
once, no unknown placeholder, the entity types unchanged, no empty entity) and
a sample that fails is retried with the next *strategy*; one that fails them
all is returned as a failure with its reason, never emitted with labels that
may be wrong. Strategies, in default order:

1. ``numbered``: placeholders ``X1``, ``X2`` …
2. ``bracketed``: placeholders ``[1]``, ``[2]`` …
3. ``markers``: the entities stay in the sentence between ``[`` and ``]``
   (EasyProject style); each marked part of the translation must be exactly
   (after normalisation) the stand-alone translation of one entity, whose type
   it takes; a moved, widened or narrowed mark, or a tie between entities or
   occurrences, rejects the translation (:mod:`xlingual.projection.verify`).

A translator may also say which texts it would have to cut
(``too_long(texts) -> list[bool]``, see :func:`xlingual.translate.base.too_long`):
those are never sent, and their samples fail with ``too_long``.

Work is done in chunks, and each chunk sends all its texts to the translator
in one call per pass, so a batching backend sees large batches and a cache
commits progress chunk by chunk.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from xlingual.data.labels import Span, labels_from_spans, spans
from xlingual.errors import ConfigError
from xlingual.data.sample import Sample
from xlingual.projection.artifacts import find_artifacts, is_artifact
from xlingual.projection.placeholders import FORMS, NUMBERED, PlaceholderForm, find_marked, normalise
from xlingual.projection.tokenization import TargetTokenizer, join_tokens, target_tokenizer, tidy_spacing
from xlingual.projection.verify import Rejected as _Failure
from xlingual.projection.verify import MARKER_REASONS, agrees, match_marked
from xlingual.translate.base import PendingTranslations, submit, too_long

if TYPE_CHECKING:
    from xlingual.translate.base import Translator

logger = logging.getLogger(__name__)

STRATEGIES: tuple[str, ...] = ("numbered", "bracketed", "markers")


def parse_strategies(text: str) -> list[str]:
    """``--strategies numbered,markers`` -> the strategies to try, in order; a one-line error for an unknown name."""
    names = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in names if s not in STRATEGIES]
    if bad or not names:
        raise ConfigError(f"--strategies {text}: choose a comma-separated list from {', '.join(STRATEGIES)}")
    return names

#: every reason a strategy's attempt can be rejected with (the report's ``failures_by_reason`` keys)
FAILURE_REASONS: tuple[str, ...] = (
    "placeholder_missing", "placeholder_duplicated", "placeholder_invented", "placeholder_overlap", "placeholder_in_source",
    "entity_translation_empty", "entity_types_changed", "empty_translation", "markers_mismatch", "markers_unbalanced",
    *MARKER_REASONS, "too_long",
)


@dataclass(frozen=True)
class Slot:
    """A part of the source sentence replaced before MT: an entity (with its type) or a protected artefact."""

    number: int
    text: str
    type: str | None  # None for artefacts

    @property
    def is_entity(self) -> bool:
        return self.type is not None


@dataclass
class PreparedSample:
    """A source sample cut into plain text pieces and slots, ready to be rendered for MT."""

    sample: Sample
    pieces: list[str | Slot]
    slots: list[Slot]

    @property
    def entity_slots(self) -> list[Slot]:
        return [s for s in self.slots if s.is_entity]


@dataclass
class Attempt:
    strategy: str
    reason: str | None
    detail: str = ""
    mt_input: str | None = None
    translation: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "reason": self.reason, "detail": self.detail, "mt_input": self.mt_input, "translation": self.translation}

    @classmethod
    def from_dict(cls, obj: Any) -> "Attempt":
        """The inverse of :meth:`to_dict`, for results read back from a file: every field is checked (ValueError)."""
        if not isinstance(obj, dict) or not isinstance(obj.get("strategy"), str) or not isinstance(obj.get("detail", ""), str):
            raise ValueError("an attempt is not a record with a strategy")
        for key in ("reason", "mt_input", "translation"):
            if obj.get(key) is not None and not isinstance(obj[key], str):
                raise ValueError(f"an attempt's {key} is not a string")
        return cls(obj["strategy"], obj.get("reason"), obj.get("detail", ""), obj.get("mt_input"), obj.get("translation"))


@dataclass
class ProjectionResult:
    """The outcome for one input sample: the projected sample, or the reason it was left out.

    ``attempts`` lists every strategy tried, in order, with the MT input and
    raw output, so a failure can be inspected and a success traced.
    """

    source: Sample
    sample: Sample | None = None
    strategy: str | None = None
    failure: str | None = None
    detail: str = ""
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.sample is not None

    def to_dict(self) -> dict[str, Any]:
        """Everything about the outcome, as JSON types (a ``--ray`` shard file holds a list of these)."""
        return {"source": self.source.to_dict(), "sample": self.sample.to_dict() if self.sample is not None else None,
                "strategy": self.strategy, "failure": self.failure, "detail": self.detail, "attempts": [a.to_dict() for a in self.attempts]}

    @classmethod
    def from_dict(cls, obj: Any) -> "ProjectionResult":
        """The inverse of :meth:`to_dict`, for results read back from a file: every field is checked (ValueError)."""
        if not isinstance(obj, dict) or not isinstance(obj.get("attempts"), list) or not isinstance(obj.get("detail"), str):
            raise ValueError("a result is not a projection record")
        for key in ("strategy", "failure"):
            if obj.get(key) is not None and not isinstance(obj[key], str):
                raise ValueError(f"a result's {key} is not a string")
        sample = _checked_sample(obj["sample"]) if obj.get("sample") is not None else None
        if (sample is None) == (obj.get("failure") is None):
            raise ValueError("a result must hold either a sample or a failure")
        return cls(_checked_sample(obj.get("source")), sample, obj.get("strategy"), obj.get("failure"), obj["detail"],
                   [Attempt.from_dict(a) for a in obj["attempts"]])

    def failure_record(self) -> dict[str, Any]:
        return {
            "id": self.source.id, "reason": self.failure, "detail": self.detail,
            "source_text": self.source.text, "entities": [[s.type, " ".join(self.source.tokens[s.start:s.end])] for s in self.source.entities()],
            "attempts": [a.to_dict() for a in self.attempts],
        }


def _checked_sample(obj: Any) -> Sample:
    """A :class:`Sample` from a record read back from a file, refusing anything but strings where strings belong."""
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or not isinstance(obj.get("lang", "en"), str):
        raise ValueError("a sample is not a record with an id")
    for key in ("tokens", "labels", "images"):
        values = obj.get(key, [])
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ValueError(f"sample {obj['id']}: {key} is not a list of strings")
    if not isinstance(obj.get("meta", {}), dict):
        raise ValueError(f"sample {obj['id']}: meta is not a mapping")
    return Sample.from_dict(obj)


@dataclass
class ProjectionStats:
    """MT work per pass, for the report (``--entity-context`` costs one call per entity occurrence)."""

    sentence_texts: int = 0
    entity_texts: int = 0
    context_texts: int = 0
    context_used: int = 0
    context_fallbacks: int = 0
    context_rejected: int = 0  # read back, but not the entity's stand-alone translation: the latter is used
    too_long: int = 0  # texts not sent because the model would have had to cut them

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def prepare_sample(sample: Sample, src_lang: str) -> PreparedSample:
    """Cut ``sample`` into text pieces, entity slots and artefact slots (numbered in sentence order)."""
    pieces: list[str | Slot] = []
    slots: list[Slot] = []

    def add_slot(text: str, etype: str | None) -> None:
        slot = Slot(len(slots) + 1, text, etype)
        slots.append(slot)
        pieces.append(slot)

    def add_plain(tokens: list[str]) -> None:
        text = join_tokens(tokens, src_lang)
        position = 0
        for start, end in find_artifacts(text, src_lang):
            if text[position:start].strip():
                pieces.append(text[position:start])
            add_slot(text[start:end], None)
            position = end
        if text[position:].strip():
            pieces.append(text[position:])

    position = 0
    for span in spans(sample.labels):
        if span.start > position:
            add_plain(sample.tokens[position:span.start])
        add_slot(join_tokens(sample.tokens[span.start:span.end], src_lang), span.type)
        position = span.end
    if position < len(sample.tokens):
        add_plain(sample.tokens[position:])
    return PreparedSample(sample, pieces, slots)


def _render(prepared: PreparedSample, src_lang: str, render_slot: Callable[[Slot], str]) -> str:
    parts = [p.strip() if isinstance(p, str) else render_slot(p) for p in prepared.pieces]
    return tidy_spacing(" ".join(p for p in parts if p), src_lang)


def render_placeholders(prepared: PreparedSample, form: PlaceholderForm, src_lang: str) -> str:
    return _render(prepared, src_lang, lambda s: form.render(s.number, len(prepared.slots)))


def render_markers(prepared: PreparedSample, src_lang: str, only: Slot | None = None) -> str:
    """Entities between ``[ ]`` (only ``only`` when given, the others as plain text); artefacts as ``X`` placeholders."""
    def slot_text(slot: Slot) -> str:
        if slot.is_entity:
            return f"[{slot.text}]" if only is None or slot is only else slot.text
        return slot.text if only is not None else NUMBERED.render(slot.number, len(prepared.slots))

    return _render(prepared, src_lang, slot_text)


def _segments_to_sample(source: Sample, segments: list[tuple[str, str | None]], tokenize: TargetTokenizer) -> tuple[list[str], list[str]]:
    tokens: list[str] = []
    entity_spans: list[Span] = []
    for text, etype in segments:
        pieces = tokenize(text)
        if etype is not None:
            if not pieces:
                raise _Failure("entity_translation_empty", f"entity rendered as {text!r}")
            entity_spans.append(Span(len(tokens), len(tokens) + len(pieces), etype))
        tokens.extend(pieces)
    if not tokens:
        raise _Failure("empty_translation")
    labels = labels_from_spans(len(tokens), entity_spans)
    before = Counter(s.type for s in spans(source.labels))
    after = Counter(s.type for s in spans(labels))
    if before != after:
        raise _Failure("entity_types_changed", f"{dict(before)} became {dict(after)}")
    return tokens, labels


def _check_numbers(found: list[tuple[int, int, int]], expected: set[int]) -> None:
    counts = Counter(number for _, _, number in found)
    invented = sorted(set(counts) - expected)
    if invented:
        raise _Failure("placeholder_invented", f"unknown placeholder number(s) {invented}")
    missing = sorted(expected - set(counts))
    if missing:
        raise _Failure("placeholder_missing", f"placeholder number(s) {missing} not in the translation")
    repeated = sorted(n for n, c in counts.items() if c > 1)
    if repeated:
        raise _Failure("placeholder_duplicated", f"placeholder number(s) {repeated} appear more than once")


def _fill(translation: str, items: list[tuple[int, int, str, str | None]]) -> list[tuple[str, str | None]]:
    """Segments of ``translation`` with each ``(start, end)`` replaced by ``(text, type)``."""
    segments: list[tuple[str, str | None]] = []
    position = 0
    for start, end, text, etype in sorted(items):
        if start < position:
            raise _Failure("placeholder_overlap")
        segments.append((translation[position:start], None))
        segments.append((text, etype))
        position = end
    segments.append((translation[position:], None))
    return segments


def assemble_placeholders(prepared: PreparedSample, translation: str, form: PlaceholderForm, entity_text: dict[int, str]) -> list[tuple[str, str | None]]:
    """Verify a placeholder translation and put entity translations and artefacts back in."""
    found = form.find(translation)
    by_number = {s.number: s for s in prepared.slots}
    _check_numbers(found, set(by_number))
    items = []
    for start, end, number in found:
        slot = by_number[number]
        items.append((start, end, entity_text[number] if slot.is_entity else slot.text, slot.type))
    return _fill(translation, items)


def assemble_markers(prepared: PreparedSample, translation: str, entity_text: dict[int, str], tokenize: TargetTokenizer) -> list[tuple[str, str | None]]:
    """Verify a marker translation; the marked parts, each verified against its entity, become the entities."""
    artefacts = {s.number: s for s in prepared.slots if not s.is_entity}
    found = NUMBERED.find(translation) if artefacts else []
    _check_numbers(found, set(artefacts))
    marked = find_marked(translation)
    entity_slots = prepared.entity_slots
    if len(marked) != len(entity_slots):
        raise _Failure("markers_mismatch", f"{len(marked)} marked part(s) for {len(entity_slots)} entities")
    if any(not content.strip() for _, _, content in marked):
        raise _Failure("entity_translation_empty", "an empty marked part")
    leftover = normalise(translation).text
    if leftover.count("[") != len(marked) or leftover.count("]") != len(marked):
        raise _Failure("markers_unbalanced", "unpaired [ or ] in the translation")
    holes = sorted([(start, end) for start, end, _ in marked] + [(start, end) for start, end, _ in found])
    edges = [0] + [i for hole in holes for i in hole] + [len(translation)]
    unmarked = [translation[edges[i]:edges[i + 1]] for i in range(0, len(edges), 2)]
    entities = [(slot.type or "", entity_text[slot.number]) for slot in entity_slots]
    assigned = match_marked([c for _, _, c in marked], entities, unmarked, tokenize)
    items = [(start, end, artefacts[n].text, None) for start, end, n in found]
    items += [(start, end, content.strip(), entity_slots[j].type) for (start, end, content), j in zip(marked, assigned)]
    return _fill(translation, items)


def _read_context(translation: str) -> str | None:
    marked = find_marked(translation)
    if len(marked) == 1 and marked[0][2].strip():
        return marked[0][2].strip()
    return None


@dataclass(frozen=True)
class _PlaceholderStrategy:
    """``numbered`` or ``bracketed``: each slot becomes a placeholder of ``form``, put back after MT."""

    name: str
    form: PlaceholderForm

    def render(self, prepared: PreparedSample, src_lang: str) -> str:
        text = render_placeholders(prepared, self.form, src_lang)
        if len(self.form.find(text)) != len(prepared.slots):
            raise _Failure("placeholder_in_source", f"the source already contains text that reads as a {self.name} placeholder")
        return text

    def assemble(self, prepared: PreparedSample, translation: str, entity_text: dict[int, str],
                 tokenize: TargetTokenizer) -> list[tuple[str, str | None]]:
        return assemble_placeholders(prepared, translation, self.form, entity_text)


@dataclass(frozen=True)
class _MarkerStrategy:
    """``markers``: the entities stay in the sentence between ``[ ]``; the marked parts of the translation are read back."""

    name: str = "markers"

    def render(self, prepared: PreparedSample, src_lang: str) -> str:
        text = render_markers(prepared, src_lang)
        if len(find_marked(text)) != len(prepared.entity_slots) or (
                len(NUMBERED.find(text)) != len(prepared.slots) - len(prepared.entity_slots)):
            raise _Failure("placeholder_in_source", f"the source already contains text that reads as a {self.name} placeholder")
        return text

    def assemble(self, prepared: PreparedSample, translation: str, entity_text: dict[int, str],
                 tokenize: TargetTokenizer) -> list[tuple[str, str | None]]:
        return assemble_markers(prepared, translation, entity_text, tokenize)


_STRATEGY_BODIES: dict[str, _PlaceholderStrategy | _MarkerStrategy] = {
    "numbered": _PlaceholderStrategy("numbered", FORMS["numbered"]),
    "bracketed": _PlaceholderStrategy("bracketed", FORMS["bracketed"]),
    "markers": _MarkerStrategy(),
}
"""What each name of :data:`STRATEGIES` does: how it renders a sample for MT and how it reads the translation back."""


class Projector:
    """Projects samples from ``src_lang`` to ``tgt_lang`` with one translator, remembering entity translations.

    One instance per corpus: each distinct entity string is translated once and
    rendered the same way everywhere. ``tokenizer`` turns translated text into
    target tokens (default: the built-in one of ``tgt_lang``, see
    :func:`~xlingual.projection.tokenization.target_tokenizer`).
    """

    def __init__(self, translator: "Translator", src_lang: str, tgt_lang: str, strategies: Sequence[str] = STRATEGIES,
                 entity_context: bool = False, model_name: str | None = None, tokenizer: TargetTokenizer | None = None) -> None:
        unknown = [s for s in strategies if s not in STRATEGIES]
        if unknown or not strategies:
            raise ConfigError(f"--strategies: unknown strategy {unknown[0] if unknown else '(none)'} (choose from {', '.join(STRATEGIES)})")
        self.translator = translator
        self.src_lang = src_lang
        self.tgt_lang = tgt_lang
        self.strategies = tuple(strategies)
        self.entity_context = entity_context
        self.model_name = model_name
        self.tokenize = tokenizer or target_tokenizer(tgt_lang)
        self.entity_translations: dict[str, str] = {}
        self.too_long_entities: set[str] = set()
        self.stats = ProjectionStats()

    def _translate(self, texts: list[str], kind: str) -> list[str]:
        return self._submit(texts, kind)()

    def _submit(self, texts: list[str], kind: str) -> PendingTranslations:
        """Start translating ``texts`` (counted under ``kind``)."""
        if not texts:
            return lambda: []
        setattr(self.stats, kind, getattr(self.stats, kind) + len(texts))
        return submit(self.translator, list(texts))  # checked there: one string per text, or one line naming the translator

    def _fitting(self, texts: list[str]) -> list[bool]:
        """Which texts the translator can take whole (the others are counted and never sent)."""
        cut = too_long(self.translator, texts)
        self.stats.too_long += sum(cut)
        return [not c for c in cut]

    def _new_entities(self, texts: list[str]) -> list[str]:
        """The entity strings not seen before that need MT; artefact-like ones (``@Nike``) are copied, too-long ones set aside.

        An entity too long for the model gets no translation (it is in
        ``too_long_entities`` once this returns); its samples fail with ``too_long``.
        """
        new = [t for t in dict.fromkeys(texts) if t not in self.entity_translations and t not in self.too_long_entities]
        for text in [t for t in new if is_artifact(t, self.src_lang)]:
            self.entity_translations[text] = text
        todo = [t for t in new if t not in self.entity_translations]
        fits = self._fitting(todo)
        self.too_long_entities.update(t for t, ok in zip(todo, fits) if not ok)
        return [t for t, ok in zip(todo, fits) if ok]

    def _translate_entities(self, todo: list[str]) -> Callable[[], None]:
        """Start translating the entity strings ``todo``; the returned function waits for them and records them."""
        pending = self._submit(todo, "entity_texts")

        def finish() -> None:
            for text, out in zip(todo, pending()):
                self.entity_translations[text] = out.strip()

        return finish

    def _entity_texts(self, prepared: list[PreparedSample]) -> list[dict[int, str]]:
        """For each sample, slot number -> the entity's verified translation (``{}`` when an entity is too long).

        Every entity string must have been through :meth:`_new_entities` (and its translation collected).

        The stand-alone translation is the reference. With ``entity_context`` the
        in-context read-back replaces it only when the two agree after
        normalisation (then the sentence's own surface form is kept); a missing
        or disagreeing read-back falls back to the stand-alone translation.
        """
        chosen: list[dict[int, str]] = [
            {s.number: self.entity_translations[s.text] for s in p.entity_slots}
            if all(s.text in self.entity_translations for s in p.entity_slots) else {}
            for p in prepared
        ]
        if self.entity_context:
            jobs = [(i, slot) for i, p in enumerate(prepared) if chosen[i] for slot in p.entity_slots if not is_artifact(slot.text, self.src_lang)]
            texts = [render_markers(prepared[i], self.src_lang, only=slot) for i, slot in jobs]
            # a source with its own brackets (CMNER's 【headline】) cannot show which part is the entity
            fits = [ok and len(find_marked(t)) == 1 for t, ok in zip(texts, self._fitting(texts))]
            self.stats.context_fallbacks += fits.count(False)
            jobs = [job for job, ok in zip(jobs, fits) if ok]
            outputs = self._translate([t for t, ok in zip(texts, fits) if ok], "context_texts")
            for (i, slot), out in zip(jobs, outputs):
                read = _read_context(out)
                if read is not None and agrees(read, chosen[i][slot.number]):
                    chosen[i][slot.number] = read
                    self.stats.context_used += 1
                else:
                    self.stats.context_fallbacks += 1
                    self.stats.context_rejected += read is not None
        return chosen

    def _emit(self, result: ProjectionResult, prepared: PreparedSample, attempt: Attempt,
              segments: list[tuple[str, str | None]], entity_text: dict[int, str]) -> None:
        source = prepared.sample
        tokens, labels = _segments_to_sample(source, segments, self.tokenize)
        meta = {
            "source_id": source.id, "source_lang": self.src_lang, "source_text": source.text,
            "mt_input": attempt.mt_input, "translation": attempt.translation, "strategy": attempt.strategy,
            "entities": [{"type": s.type, "source": s.text, "target": entity_text[s.number]} for s in prepared.entity_slots],
        }
        if self.model_name:
            meta["model"] = self.model_name
        result.sample = Sample(source.id, tokens, labels, images=list(source.images), lang=self.tgt_lang, meta=meta)
        result.strategy = attempt.strategy

    def project(self, samples: Sequence[Sample]) -> list[ProjectionResult]:
        """Project one chunk of samples; see :func:`project_samples`.

        The entity strings and the first strategy's sentences do not depend on
        each other, so both are submitted before either is awaited: a translator
        that runs batches side by side keeps every thread busy across the two.
        The sentences go first: their batches are the long ones, and the short
        entity batches then fill the threads at the end (longest first).
        """
        prepared = [prepare_sample(s, self.src_lang) for s in samples]
        results = [ProjectionResult(source=s) for s in samples]
        entities_todo = self._new_entities([s.text for p in prepared for s in p.entity_slots])
        pending = self._without_long_entities(prepared, results)
        entity_texts: list[dict[int, str]] | None = None
        for name in self.strategies:
            strategy = _STRATEGY_BODIES[name]
            rendered = self._rendered(strategy, prepared, pending, results)
            translations = self._submit([text for _, text in rendered], "sentence_texts")
            if entity_texts is None:
                self._translate_entities(entities_todo)()
                entity_texts = self._entity_texts(prepared)
            self._read_back(strategy, rendered, translations(), prepared, entity_texts, results)
            pending = [i for i in pending if not results[i].ok]
            if not pending:
                break
        for result in results:
            if not result.ok:
                last = result.attempts[-1]
                result.failure, result.detail = last.reason, last.detail
        return results

    def _without_long_entities(self, prepared: list[PreparedSample], results: list[ProjectionResult]) -> list[int]:
        """Indices of the samples to try; one with an entity too long for the model fails here with ``too_long``."""
        pending = []
        for i, p in enumerate(prepared):
            cut = [s.text for s in p.entity_slots if s.text in self.too_long_entities]
            if cut:
                results[i].attempts.append(Attempt("entities", "too_long", f"entity {cut[0]!r} is longer than the model takes"))
            else:
                pending.append(i)
        return pending

    def _rendered(self, strategy: _PlaceholderStrategy | _MarkerStrategy, prepared: list[PreparedSample], pending: list[int],
                  results: list[ProjectionResult]) -> list[tuple[int, str]]:
        """(index, MT input) of each pending sample ``strategy`` can render and the translator can take whole.

        The others get the failed attempt recorded.
        """
        rendered: list[tuple[int, str]] = []
        for i in pending:
            try:
                rendered.append((i, strategy.render(prepared[i], self.src_lang)))
            except _Failure as failure:
                results[i].attempts.append(Attempt(strategy.name, failure.reason, failure.detail))
        fits = self._fitting([text for _, text in rendered])
        for (i, text), ok in zip(rendered, fits):
            if not ok:
                results[i].attempts.append(Attempt(strategy.name, "too_long", "the sentence is longer than the model takes", mt_input=text))
        return [job for job, ok in zip(rendered, fits) if ok]

    def _read_back(self, strategy: _PlaceholderStrategy | _MarkerStrategy, rendered: list[tuple[int, str]], translations: list[str],
                   prepared: list[PreparedSample], entity_texts: list[dict[int, str]], results: list[ProjectionResult]) -> None:
        """Verify each translation and emit its sample, or record why ``strategy``'s attempt was rejected."""
        for (i, text), translation in zip(rendered, translations):
            attempt = Attempt(strategy.name, None, mt_input=text, translation=translation)
            results[i].attempts.append(attempt)
            try:
                segments = strategy.assemble(prepared[i], translation, entity_texts[i], self.tokenize)
                self._emit(results[i], prepared[i], attempt, segments, entity_texts[i])
            except _Failure as failure:
                attempt.reason, attempt.detail = failure.reason, failure.detail


def project_samples(samples: Sequence[Sample], translator: "Translator", src_lang: str, tgt_lang: str, *,
                    strategies: Sequence[str] = STRATEGIES, entity_context: bool = False, chunk_size: int = 256,
                    on_progress: Callable[[int], None] | None = None, projector: Projector | None = None) -> list[ProjectionResult]:
    """Project ``samples`` into ``tgt_lang``: one :class:`ProjectionResult` per input sample, in input order.

    Each result holds either ``sample`` (the projected sample: same id and
    images, ``lang=tgt_lang``, provenance in ``meta`` including
    ``meta["source_id"]``) or ``failure``, a reason code such as
    ``placeholder_missing``, with every attempt recorded. ``translator`` is
    anything with ``translate(texts) -> texts``. ``on_progress`` is called with
    the number of samples finished after each chunk.
    """
    projector = projector or Projector(translator, src_lang, tgt_lang, strategies, entity_context)
    results: list[ProjectionResult] = []
    for start in range(0, len(samples), chunk_size):
        chunk = samples[start:start + chunk_size]
        results.extend(projector.project(chunk))
        if on_progress is not None:
            on_progress(len(chunk))
    return results
