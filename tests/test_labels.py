"""Open label sets: the one label list models are built with, and the one order of per-type tables."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from xlingual.data.labels import CANONICAL_LABELS, ENTITY_TYPES, entity_type, label_inventory, ordered_types, table_types
from xlingual.data.sample import Sample

TYPE_NAMES = st.one_of(st.sampled_from(ENTITY_TYPES), st.sampled_from(["PRODUCT", "creative-work", "Z", "a"]),
                       st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8))
LABELS = st.one_of(st.just("O"), st.builds(lambda p, t: f"{p}-{t}", st.sampled_from(["B", "I", "E", "S"]), TYPE_NAMES),
                   st.sampled_from(["X", "B", "B-", "[CLS]"]))


def samples_of(label_lists: list[list[str]]) -> list[Sample]:
    return [Sample(str(i), [f"w{j}" for j in range(len(labels))], labels) for i, labels in enumerate(label_lists)]


@given(st.lists(st.lists(LABELS, max_size=8), max_size=6), st.randoms(use_true_random=False))
def test_inventory_is_canonical_nine_then_sorted_pairs_of_each_other_type(label_lists, rng: random.Random):
    samples = samples_of(label_lists)
    inventory = label_inventory(samples)
    assert inventory[: len(CANONICAL_LABELS)] == list(CANONICAL_LABELS)
    assert len(set(inventory)) == len(inventory)
    extra = inventory[len(CANONICAL_LABELS):]
    types = [label[2:] for label in extra[::2]]
    assert extra == [f"{p}-{t}" for t in types for p in "BI"] and types == sorted(types)
    well_formed = {label for labels in label_lists for label in labels if label[:2] in ("B-", "I-") and len(label) > 2}
    assert well_formed <= set(inventory)
    assert set(types) == {entity_type(label) for label in well_formed} - set(ENTITY_TYPES)
    assert not {"X", "B", "B-", "[CLS]"} & set(inventory) and not any(label[:2] in ("E-", "S-") for label in inventory)
    shuffled = list(samples)
    rng.shuffle(shuffled)
    assert label_inventory(shuffled) == inventory


@given(st.lists(st.lists(st.sampled_from(CANONICAL_LABELS), max_size=8), max_size=6))
def test_canonical_data_gives_exactly_the_canonical_labels_whichever_types_occur(label_lists):
    assert label_inventory(samples_of(label_lists)) == list(CANONICAL_LABELS)


def test_type_names_keep_their_hyphens():
    assert entity_type("B-creative-work") == "creative-work" and entity_type("I-PER") == "PER"
    assert [entity_type(label) for label in ("O", "B-", "E-PER", "B", "X")] == [None] * 5
    assert label_inventory(samples_of([["B-creative-work", "I-creative-work", "B-PRODUCT"]]))[9:] == [
        "B-PRODUCT", "I-PRODUCT", "B-creative-work", "I-creative-work"]


@given(st.sets(TYPE_NAMES, max_size=6))
def test_tables_list_the_canonical_four_only_for_data_that_uses_them(seen):
    columns = table_types(seen)
    assert len(set(columns)) == len(columns) and set(seen) <= set(columns)
    canonical = set(seen) & set(ENTITY_TYPES)
    if canonical or not seen:
        assert columns[:4] == list(ENTITY_TYPES), "built-in data keeps its four columns, zeros included"
        assert columns[4:] == sorted(set(seen) - set(ENTITY_TYPES))
    else:
        assert columns == sorted(seen), "no phantom canonical column for data without canonical types"
    assert ordered_types(seen) == [t for t in columns if t in seen]


def test_data_tables_count_every_type_the_data_has():
    from xlingual.data.compare import compare, profile
    from xlingual.data.stats import compute_stats, table_rows

    own = samples_of([["B-product", "I-product", "O", "B-person"], ["B-person"]])
    canonical = samples_of([["B-PER", "O"]])
    stats = compute_stats("own", own)
    assert stats.entities == {"person": 2, "product": 1} and stats.total_entities == 3
    assert [name for name, _ in table_rows([stats])][:2] == ["person", "product"]
    assert [name for name, _ in table_rows([compute_stats("c", canonical)])][:4] == list(ENTITY_TYPES)
    assert [name for name, _ in table_rows([stats, compute_stats("c", canonical)])][:6] == [*ENTITY_TYPES, "person", "product"]
    assert compare(profile("a", [], own), profile("b", [], own)).types == ["person", "product"]
