"""Projection quality you can see: entities left untranslated are counted per type in report.json and preview.html."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xlingual.data.sample import Sample
from xlingual.projection import project_samples
from xlingual.projection.corpus import CorpusInput, ProjectionSettings, translate_corpus
from xlingual.projection.preview import PREVIEW_NAME
from xlingual.projection.report import ProjectionReport
from xlingual.projection.untranslated import language_script, untranslated
from xlingual.translate.glossary import GlossaryTranslator


@pytest.mark.parametrize("source,target,src,tgt,expected", [
    ("George Zimmerman", "George Zimmerman", "en", "zh", True),   # a glossary that passes the name through
    ("George Zimmerman", "GeorgeZimmerman", "en", "zh", True),    # joined as Chinese joins tokens: the same name
    ("George Zimmerman", "ＧＥＯＲＧＥ zimmerman", "en", "zh", True),  # width and case do not make a translation
    ("George Zimmerman", "Zimmerman", "en", "zh", True),          # not identical, but still Latin letters only in Chinese
    ("George Zimmerman", "乔治·齐默尔曼", "en", "zh", False),
    ("NBA Finals", "NBA总决赛", "en", "zh", False),                # partly translated: has Chinese characters
    ("Tokyo", "東京", "en", "ja", False),
    ("Tokyo", "トーキョー", "en", "ja", False),
    ("Bangkok", "Bangkok", "en", "th", True),
    ("Seoul", "서울", "en", "ko", False),
    ("Moscow", "Moskau", "en", "de", False),                       # same script: only identical text counts
    ("Berlin", "Berlin", "en", "de", True),
    ("Berlin", "Берлин", "en", "ru", False),
    ("Berlin", "Berlin", "en", "ru", True),
    ("北京", "Beijing", "zh", "en", False),
    ("北京", "北京", "zh", "en", True),
    ("北京市", "北京", "zh", "en", True),                            # still Chinese in an English post
])
def test_the_rule_on_names(source, target, src, tgt, expected):
    assert untranslated(source, target, src, tgt) is expected


def _plain(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


@given(source=st.text(min_size=1, max_size=12), target=st.text(min_size=1, max_size=12))
def test_for_one_script_only_identical_text_counts(source, target):
    assert language_script("en") == language_script("de") == "Latn"
    assert untranslated(source, target, "en", "de") == (_plain(source) == _plain(target))


LATIN = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .-'", min_size=1, max_size=16)
HAN = st.text(alphabet=[chr(c) for c in range(0x4E00, 0x4E00 + 400)], min_size=1, max_size=4)


@given(source=LATIN, latin=LATIN, han=HAN, at=st.integers(0, 16))
def test_into_chinese_latin_alone_is_untranslated_and_any_chinese_character_is_a_translation(source, latin, han, at):
    assert untranslated(source, latin, "en", "zh")
    mixed = latin[:at] + han + latin[at:]
    assert not untranslated(source, mixed, "en", "zh")


# -- counted in the report and shown in the preview ---------------------------------------

NAMES = [("George Zimmerman", "PER", "乔治·齐默尔曼"), ("Trayvon Martin", "PER", "特雷沃恩·马丁"), ("Florida", "LOC", "佛罗里达"),
         ("Sanford", "LOC", "桑福德"), ("CNN", "ORG", "美国有线电视新闻网"), ("Oscars", "MISC", "奥斯卡")]


def posts() -> list[Sample]:
    samples = []
    for i, (name, etype, _) in enumerate(NAMES):
        words = name.split()
        tokens = ["news", *words, "today"]
        labels = ["O", f"B-{etype}", *[f"I-{etype}"] * (len(words) - 1), "O"]
        samples.append(Sample(f"p{i}", tokens, labels, [], "en"))
    return samples


def glossary(passed: set[int]) -> GlossaryTranslator:
    """Every name translated, except those in ``passed``, which the glossary passes through unchanged (as real ones do)."""
    entries = {"news": "新闻", "today": "今天"}
    for i, (name, _, chinese) in enumerate(NAMES):
        entries[name.lower()] = name if i in passed else chinese
    return GlossaryTranslator(entries, "zh")


@settings(max_examples=20, deadline=None)
@given(passed=st.sets(st.integers(0, len(NAMES) - 1)))
def test_the_report_counts_each_passed_through_entity_once_under_its_type(passed):
    results = project_samples(posts(), glossary(passed), "en", "zh")
    assert all(r.ok for r in results)  # every entity projects: the projection rate alone says 100 %
    report = ProjectionReport.from_results(results).to_dict()
    for etype in ("PER", "LOC", "ORG", "MISC"):
        assert report["entities"][etype]["untranslated"] == sum(1 for i in passed if NAMES[i][1] == etype)
    total = report["entities_total"]
    assert total["untranslated"] == len(passed) and total["projection_rate"] == 1.0
    assert total["untranslated_rate"] == round(len(passed) / len(NAMES), 4)

    # summed over files as over results
    halves = ProjectionReport.from_results(results[:3])
    halves.add(ProjectionReport.from_results(results[3:]))
    assert halves.to_dict()["entities"] == report["entities"] and halves.to_dict()["entities_total"] == report["entities_total"]


def test_report_json_and_the_preview_summary_show_untranslated_entities(tmp_path: Path):
    result = translate_corpus([CorpusInput("train", posts())], tmp_path, glossary({0, 2}), ProjectionSettings("en", "zh", preview_posts=3))
    written = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert written["entities"]["PER"]["untranslated"] == 1 and written["entities"]["LOC"]["untranslated"] == 1
    assert written["entities_total"]["untranslated"] == 2 and written["entities_total"]["untranslated_rate"] == round(2 / 6, 4)
    assert written["files"]["train"]["entities_total"]["untranslated"] == 2 and result.report["entities_total"]["untranslated"] == 2
    page = (tmp_path / PREVIEW_NAME).read_text(encoding="utf-8")
    summary = page.split('<section id="summary">')[1].split("</section>")[0]
    assert "<th>untranslated</th>" in summary
    assert "<td>all</td><td>6</td><td>6</td><td>100.0 %</td><td></td><td></td><td>2 (33.3 %)</td>" in summary
    assert "<td>PER</td><td>2</td><td>2</td>" in summary and "</td><td>1</td></tr>" in summary
