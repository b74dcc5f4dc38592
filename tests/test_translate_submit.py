"""Submitting several lists before awaiting any: the same translations, each text sent once, commits in order."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from projection_fakes import FAULTS, FakeTranslator

from xlingual.projection import project_samples
from xlingual.projection.project import Projector
from xlingual.testing.synthetic import generated_tweets, generated_weibo_posts
from xlingual.translate import CachedTranslator, TranslationCache
from xlingual.translate.base import submit


def reverse(text: str) -> str:
    return text[::-1] + "!"


class Deferred:
    """An inner translator with ``submit``: nothing is translated until its result is asked for; every event is logged."""

    cache_key = "deferred-v1"

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []  # ("submit" | "collect", slice number)
        self.sent: list[str] = []

    def translate(self, texts: list[str]) -> list[str]:
        raise AssertionError("a translator with submit is only ever submitted to")

    def submit(self, texts: list[str]):
        number = sum(kind == "submit" for kind, _ in self.events)
        self.events.append(("submit", number))
        self.sent.extend(texts)

        def result() -> list[str]:
            self.events.append(("collect", number))
            return [reverse(t) for t in texts]

        return result


class Plain:
    """An inner translator with ``translate`` only (user plug-ins, the transformers backend)."""

    cache_key = "plain-v1"

    def __init__(self) -> None:
        self.sent: list[str] = []

    def translate(self, texts: list[str]) -> list[str]:
        self.sent.extend(texts)
        return [reverse(t) for t in texts]


class RecordingCache(TranslationCache):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.commits: list[list[str]] = []

    def put_many(self, translator_key: str, pairs: dict[str, str]) -> None:
        self.commits.append(list(pairs))
        super().put_many(translator_key, pairs)


lists_of_texts = st.lists(st.lists(st.sampled_from([f"t{n}" for n in range(12)]), max_size=9), min_size=1, max_size=5)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lists=lists_of_texts, data=st.data(), commit_every=st.integers(1, 4), deferred=st.booleans())
def test_lists_awaited_in_any_order_get_their_translations_and_each_text_reaches_mt_once(tmp_path_factory, lists, data,
                                                                                        commit_every, deferred) -> None:
    inner = Deferred() if deferred else Plain()
    cache = RecordingCache(tmp_path_factory.mktemp("cache") / "c.sqlite")
    cached = CachedTranslator(inner, cache, commit_every=commit_every)
    pending = [cached.submit(texts) for texts in lists]
    order = data.draw(st.permutations(range(len(lists))), label="order awaited")
    results = {number: pending[number]() for number in order}
    assert [results[n] for n in range(len(lists))] == [[reverse(t) for t in texts] for texts in lists]
    distinct = list(dict.fromkeys(t for texts in lists for t in texts))
    assert inner.sent == distinct, "each text reaches MT once, in the order first submitted"
    assert [t for commit in cache.commits for t in commit] == distinct, "slices are committed in the order they were submitted"
    assert cached.stats.requested == sum(map(len, lists)) and cached.stats.mt_calls == len(distinct)
    if deferred:  # every slice was submitted before any was awaited
        kinds = [kind for kind, _ in inner.events]
        assert kinds == sorted(kinds, key=lambda k: k == "collect")
        assert [n for kind, n in inner.events if kind == "collect"] == sorted(n for kind, n in inner.events if kind == "collect")
    # the same lists one call after another: the same translations and the same texts sent
    sequential = Plain()
    one_by_one = CachedTranslator(sequential, None, commit_every=commit_every)
    assert [one_by_one.translate(texts) for texts in lists] == [results[n] for n in range(len(lists))]
    assert sequential.sent == distinct
    cache.close()


def test_submit_falls_back_to_translate_when_it_is_asked_for() -> None:
    plain = Plain()
    pending = submit(plain, ["ab"])
    assert plain.sent == [], "a translator without submit translates only when the result is asked for"
    assert pending() == ["b" + "a!"] and plain.sent == ["ab"]


class SubmittingFake(FakeTranslator):
    """The projection tests' fake MT, with ``submit``: lists are logged when submitted and translated when awaited."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.log: list[str] = []
        self.submitted: list[list[str]] = []

    def submit(self, texts: list[str]):
        self.log.append("submit")
        self.submitted.append(list(texts))

        def result() -> list[str]:
            self.log.append("collect")
            return self.translate(texts)

        return result


@pytest.mark.parametrize("entity_context", [False, True])
@pytest.mark.parametrize("src, tgt, posts", [("en", "zh", generated_tweets), ("zh", "en", generated_weibo_posts)])
def test_projection_with_a_submitting_translator_equals_one_call_at_a_time(src, tgt, posts, entity_context) -> None:
    samples = posts(200, seed=5)
    plain, submitting = FakeTranslator(tgt, FAULTS, rate=0.5), SubmittingFake(tgt, FAULTS, rate=0.5)
    expected = project_samples(samples, plain, src, tgt, entity_context=entity_context, chunk_size=64)
    got = project_samples(samples, submitting, src, tgt, entity_context=entity_context, chunk_size=64)
    assert [(r.failure, r.strategy, r.sample) for r in got] == [(r.failure, r.strategy, r.sample) for r in expected]
    assert [[(a.strategy, a.reason, a.mt_input, a.translation) for a in r.attempts] for r in got] == \
        [[(a.strategy, a.reason, a.mt_input, a.translation) for a in r.attempts] for r in expected]
    assert sorted(map(tuple, submitting.calls)) == sorted(map(tuple, plain.calls)), "the same lists reach MT"


def test_first_sentences_then_entities_are_submitted_before_either_is_awaited() -> None:
    mt = SubmittingFake("zh")
    projector = Projector(mt, "en", "zh", ("numbered",))
    results = projector.project(generated_tweets(40, seed=3))
    assert mt.log[:2] == ["submit", "submit"], mt.log
    sentences = {a.mt_input for r in results for a in r.attempts if a.mt_input}
    assert set(mt.submitted[0]) <= sentences, "the long sentence batches go first, the short entity batches fill in after"
    assert not set(mt.submitted[1]) & sentences and len(mt.submitted[1]) == projector.stats.entity_texts > 0


@pytest.mark.parametrize("damage", ["garbled_pages", "not_a_string"])
def test_a_damaged_cache_is_one_line_naming_the_file(tmp_path: Path, damage: str) -> None:
    import sqlite3

    from xlingual.errors import XlingualError

    path = tmp_path / "t.sqlite"
    cache = TranslationCache(path)
    texts = [f"text number {i} " * 8 for i in range(2000)]
    cache.put_many("k", {t: reverse(t) for t in texts})
    cache.close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=DELETE")  # everything in the main file, so garbling it is garbling the cache
        if damage == "not_a_string":
            db.execute("UPDATE translations SET target = NULL")
    if damage == "garbled_pages":
        data = bytearray(path.read_bytes())
        page = 4096
        for start in range(3 * page, len(data), page):  # leave the header and schema pages; garble every table and index page
            data[start + 8:start + page] = bytes(range(256)) * ((page - 8) // 256) + bytes((page - 8) % 256)
        path.write_bytes(bytes(data))
    cache = TranslationCache(path)
    try:
        with pytest.raises(XlingualError) as caught:
            cache.get_many("k", texts)
    finally:
        cache.close()
    message = str(caught.value)
    assert message.startswith(f"{path}: translation cache is unusable") and "\n" not in message, message
