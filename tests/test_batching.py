"""Batch orders of a training stage: every post once per epoch, reproducible from (seed, epoch), one language per batch."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from xlingual.train.batching import EpochShuffleSampler, LanguageBatchSampler, loader_arguments

LANGS = st.lists(st.sampled_from(["en", "zh"]), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None)
@given(langs=LANGS, batch_size=st.integers(1, 9), seed=st.integers(0, 10**6), epoch=st.integers(0, 50))
def test_language_batches_cover_every_post_once_and_never_mix(langs, batch_size, seed, epoch) -> None:
    sampler = LanguageBatchSampler(langs, batch_size, seed)
    sampler.set_epoch(epoch)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(len(langs)))
    assert all(1 <= len(b) <= batch_size and len({langs[i] for i in b}) == 1 for b in batches)
    short = [b for b in batches if len(b) < batch_size]
    assert len(short) <= len(set(langs)), "at most one short batch per language"
    assert len(sampler) == len(batches)
    again = LanguageBatchSampler(langs, batch_size, seed)
    again.set_epoch(epoch)
    assert list(again) == batches, "an epoch's order depends only on (seed, epoch): a resumed epoch replays it"


@settings(max_examples=40, deadline=None)
@given(n_en=st.integers(1, 40), n_zh=st.integers(1, 40), batch_size=st.integers(1, 6), seed=st.integers(0, 10**6))
def test_languages_take_turns_while_both_have_batches(n_en, n_zh, batch_size, seed) -> None:
    langs = ["en"] * n_en + ["zh"] * n_zh
    order = [langs[b[0]] for b in LanguageBatchSampler(langs, batch_size, seed)]
    both = 2 * min(-(-n_en // batch_size), -(-n_zh // batch_size))
    assert all(order[i] != order[i + 1] for i in range(both - 1))


def test_epochs_reshuffle_and_mixed_is_the_reference_order() -> None:
    langs = ["en", "zh"] * 20
    sampler = LanguageBatchSampler(langs, 4, seed=3)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first
    mixed = loader_arguments(langs, 4, 3, "mixed")
    assert isinstance(mixed["sampler"], EpochShuffleSampler) and mixed["batch_size"] == 4
    assert isinstance(loader_arguments(langs, 4, 3, "by_language")["batch_sampler"], LanguageBatchSampler)
