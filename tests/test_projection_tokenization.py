"""Target tokenisation by language: characters for Chinese, Moses per language, a plug-in where none is built in."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from xlingual.data.labels import spans
from xlingual.data.sample import Sample
from xlingual.errors import ConfigError, XlingualError
from xlingual.projection import ProjectionSettings, project_samples
from xlingual.projection.project import Projector
from xlingual.projection.tokenization import join_tokens, target_tokenizer, tokenize_target

TWEET = "Er kam am 3. Mai nach Berlin @Nike #tag http://t.co/x"


def test_each_space_delimited_language_is_tokenised_by_its_own_moses_rules() -> None:
    english, german = tokenize_target(TWEET, "en"), tokenize_target(TWEET, "de")
    assert "3." in german and "3." not in english  # a German ordinal, an English full stop
    assert tokenize_target("C'est l'été", "fr")[:2] == ["C'", "est"]
    assert tokenize_target("C'est l'été", "en")[:2] == ["C", "'est"]
    for lang in ("en", "de", "fr", "es", "ru"):
        assert {"@Nike", "#tag", "http://t.co/x"} <= set(tokenize_target(TWEET, lang)), lang
    assert tokenize_target("巴黎 is 好", "zh") == ["巴", "黎", "i", "s", "好"]


def test_source_tokens_are_joined_as_the_language_is_written() -> None:
    assert join_tokens(["東京", "へ", "行く"], "ja") == "東京へ行く"
    assert join_tokens(["Berlin", "ist", "schön"], "de") == "Berlin ist schön"


@pytest.mark.parametrize("lang", ["ja", "th", "ko", "lo", "my", "km"])
def test_a_target_without_a_tokeniser_is_refused_naming_tgt(lang: str) -> None:
    with pytest.raises(ConfigError, match=rf"^--tgt {lang}: .*--tokenizer MODULE:NAME") as caught:
        ProjectionSettings("en", lang)
    assert "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match=f"--tgt {lang}"):
        Projector(object(), "en", lang)


@pytest.fixture()
def segmenters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "segmenters.py").write_text(textwrap.dedent('''
        def chars(text):
            return [c for c in text if not c.isspace()]

        def broken(text):
            return text
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "segmenters", raising=False)
    return "segmenters"


def test_a_plugged_in_tokeniser_writes_any_language(segmenters: str) -> None:
    class MT:
        def translate(self, texts: list[str]) -> list[str]:
            return [{"Tokyo": "東京", "Obama": "オバマ"}.get(t) or t.replace("visits", "を訪問") for t in texts]

    settings = ProjectionSettings("en", "ja", tokenizer=f"{segmenters}:chars")
    projector = Projector(MT(), "en", "ja", tokenizer=target_tokenizer("ja", settings.tokenizer))
    sample = Sample("1", ["Obama", "visits", "Tokyo"], ["B-PER", "O", "B-LOC"], lang="en")
    result = project_samples([sample], projector.translator, "en", "ja", projector=projector)[0]
    assert result.ok and all(len(t) == 1 for t in result.sample.tokens)
    assert [("".join(result.sample.tokens[s.start:s.end]), s.type) for s in spans(result.sample.labels)] == [("オバマ", "PER"), ("東京", "LOC")]


def test_a_plugged_in_tokeniser_that_misbehaves_is_one_line(segmenters: str) -> None:
    with pytest.raises(XlingualError, match=f"--tokenizer {segmenters}:broken: returned 'x y'"):
        target_tokenizer("ja", f"{segmenters}:broken")("x y")
    with pytest.raises(ConfigError, match="--tokenizer segmenters:nothing: module 'segmenters' has no attribute"):
        target_tokenizer("ja", f"{segmenters}:nothing")
    with pytest.raises(ConfigError, match="expected MODULE:NAME"):
        target_tokenizer("ja", "segmenters")
