"""The glossary translator: a plug-in that keeps placeholders, so projection succeeds on the sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from xlingual.data.labels import count_entities
from xlingual.errors import DataFormatError
from xlingual.projection import project_samples
from xlingual.projection.corpus import read_source_dataset
from xlingual.translate import load_translator
from xlingual.translate.glossary import GlossaryTranslator


def test_longest_phrase_wins_and_unknown_words_are_copied() -> None:
    translator = GlossaryTranslator({"new york": "纽约", "new": "新的", "in": "在"}, "zh")
    assert translator.translate(["Snow in New York X1", "new X2 @user"]) == ["Snow在纽约X1", "新的X2 @user"]
    assert GlossaryTranslator({"in": "at"}, "en").translate(["X1 in X2"]) == ["X1 at X2"]


def test_bad_glossary_line_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "g.tsv"
    path.write_text("# comment\nparis\t巴黎\nno tab here\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"g.tsv:3: expected 'source<TAB>target'"):
        GlossaryTranslator.from_file(path, "zh")


def test_sample_glossary_projects_every_sample_post_with_its_entities(sample_data_dir: Path) -> None:
    translator = load_translator("en", "zh", plugin="xlingual.translate.glossary:sample_en_zh")
    samples = [s for item in read_source_dataset(sample_data_dir, "twitter2015") for s in item.samples]
    results = project_samples(samples, translator, "en", "zh")
    assert all(r.ok for r in results)
    projected = [r.sample for r in results]
    assert count_entities([s.labels for s in projected]) == count_entities([s.labels for s in samples])
    assert all(len(tok) == 1 for s in projected for tok in s.tokens)
