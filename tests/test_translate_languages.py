"""Any language pair: ISO 639-1 checks, the NLLB/M2M-100 code table, forced target tokens on tiny models, --tokenizer-from."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from xlingual.errors import ConfigError, ModelNotFoundError
from xlingual.testing.tiny_mt import build_tiny_m2m100, build_tiny_nllb
from xlingual.translate import DecodingOptions, default_model
from xlingual.translate.factory import check_direction
from xlingual.translate.hf import HFTranslator
from xlingual.translate.languages import LANGUAGES, marian_target_tokens

GREEDY = DecodingOptions(beam_size=1, max_length=6)
NLLB_LANGUAGES = tuple(code for code, lang in LANGUAGES.items() if lang.nllb)
M2M_LANGUAGES = tuple(code for code, lang in LANGUAGES.items() if lang.m2m100)


@pytest.fixture(scope="module")
def nllb_all(tmp_path_factory) -> Path:
    """A tiny NLLB whose tokenizer carries the code of every language the table maps for NLLB."""
    return build_tiny_nllb(tmp_path_factory.mktemp("nllb-all") / "nllb", "en", "de", languages=NLLB_LANGUAGES)


@pytest.fixture(scope="module")
def m2m(tmp_path_factory) -> Path:
    return build_tiny_m2m100(tmp_path_factory.mktemp("m2m") / "m2m", "en", "de")


def test_the_table_maps_the_common_languages_to_codes_the_models_really_have() -> None:
    from transformers.models.m2m_100.tokenization_m2m_100 import FAIRSEQ_LANGUAGE_CODES as M2M_CODES
    from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES as NLLB_CODES

    assert len(NLLB_LANGUAGES) >= 30 and len(M2M_LANGUAGES) >= 30
    assert {"en", "zh", "de", "fr", "es", "it", "pt", "ru", "ja", "ar"} <= set(NLLB_LANGUAGES) & set(M2M_LANGUAGES)
    assert [LANGUAGES[c].nllb for c in ("en", "zh", "de", "fr", "es")] == ["eng_Latn", "zho_Hans", "deu_Latn", "fra_Latn", "spa_Latn"]
    assert {LANGUAGES[c].nllb for c in NLLB_LANGUAGES} <= set(NLLB_CODES)
    assert {LANGUAGES[c].m2m100 for c in M2M_LANGUAGES} <= set(M2M_CODES["m2m100"])
    # every table language M2M-100 covers is marked so (a code missing from the table would refuse a pair the model has)
    assert [c for c in LANGUAGES if c in M2M_CODES["m2m100"] and LANGUAGES[c].m2m100 is None] == []



def test_the_packaged_table_is_whole_and_a_broken_row_names_its_line() -> None:
    from xlingual.translate.languages import LANGUAGE_TABLE, _read_table

    assert len(LANGUAGES) == 80 and all(len(code) == 2 and len(lang.iso3) == 3 for code, lang in LANGUAGES.items())
    assert LANGUAGES["eu"].m2m100 is None and LANGUAGES["ar"].nllb == "arb_Arab"  # '-' is "not covered"; macrolanguages map to the standard variety
    header = "code\tname\tiso3\tnllb\tm2m100\n"
    with pytest.raises(ConfigError, match=rf"^{LANGUAGE_TABLE}:3: expected 5 non-empty tab-separated fields"):
        _read_table(header + "de\tGerman\tdeu\tdeu_Latn\tde\nfr\tFrench\tfra\tfra_Latn\n", LANGUAGE_TABLE)
    with pytest.raises(ConfigError, match=rf"^{LANGUAGE_TABLE}:3: .*a new code"):
        _read_table(header + "de\tGerman\tdeu\tdeu_Latn\tde\nde\tGerman\tdeu\tdeu_Latn\tde\n", LANGUAGE_TABLE)
    with pytest.raises(ConfigError, match=rf"^{LANGUAGE_TABLE}:1: expected the header"):
        _read_table("de\tGerman\tdeu\tdeu_Latn\tde\n", LANGUAGE_TABLE)


def test_default_model_is_opus_mt_for_any_pair_and_the_papers_pairs_are_unchanged() -> None:
    assert default_model("en", "zh") == "Helsinki-NLP/opus-mt-en-zh"
    assert default_model("zh", "en") == "Helsinki-NLP/opus-mt-zh-en"
    assert default_model("de", "fr") == "Helsinki-NLP/opus-mt-de-fr"
    assert default_model("de", "fr", family="nllb") == "facebook/nllb-200-distilled-600M"


@pytest.mark.parametrize("src, tgt, message", [
    ("en", "xx", "--tgt xx: not an ISO 639-1"),
    ("eng", "de", "ISO 639-1 for English is 'en'"),
    ("de", "de", "both 'de'"),
])
def test_direction_errors_name_the_option(src, tgt, message) -> None:
    with pytest.raises(ConfigError, match=message):
        check_direction(src, tgt)
    check_direction("de", "fr")
    check_direction("en", "ja")


def test_marian_multi_target_tokens_follow_iso_639_3() -> None:
    assert marian_target_tokens("de") == (">>deu<<", ">>de<<")
    assert marian_target_tokens("en") == (">>eng<<", ">>en<<")
    assert marian_target_tokens("zh")[0] == ">>cmn_Hans<<"


def _first_generated_tokens(translator: HFTranslator, texts: list[str]) -> list[int]:
    """Translate ``texts`` and return the token each generation put right after the decoder start token."""
    seen = []
    generate = translator.model.generate

    def spy(*args, **kwargs):
        out = generate(*args, **kwargs)
        seen.extend(out[:, 1].tolist())
        return out

    translator.model.generate = spy
    try:
        translator.translate(texts)
    finally:
        translator.model.generate = generate
    return seen


@pytest.mark.parametrize("family, fixture, languages", [("nllb", "nllb_all", NLLB_LANGUAGES), ("m2m100", "m2m", M2M_LANGUAGES)])
def test_every_mapped_language_is_forced_as_the_first_generated_token(request, one_torch_thread, family, fixture, languages) -> None:
    """Without the forced token an NLLB/M2M model chooses the output language itself (mixed-language output)."""
    base = HFTranslator.from_pretrained(str(request.getfixturevalue(fixture)), "en", "de", GREEDY, device="cpu")
    tokenizer, model = base.tokenizer, base.model

    def token(code: str) -> str:
        found = getattr(LANGUAGES[code], family)
        return found if family == "nllb" else f"__{found}__"

    for tgt in languages:
        src = "fr" if tgt == "en" else "en"
        translator = HFTranslator(model, tokenizer, src, tgt, GREEDY, "cpu", "tiny")
        forced = tokenizer.convert_tokens_to_ids(token(tgt))
        assert forced != tokenizer.unk_token_id
        assert translator.generate_kwargs["forced_bos_token_id"] == forced, tgt
        assert tokenizer.src_lang == getattr(LANGUAGES[src], family)
        assert tokenizer("Paris").input_ids[0] == tokenizer.convert_tokens_to_ids(token(src))  # the source code leads the input
        assert _first_generated_tokens(translator, ["X1 loves X2 .", "Paris"]) == [forced, forced], tgt


def test_a_language_outside_the_table_or_the_tokenizer_is_one_line_naming_the_model(nllb_all: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--tgt eo: .*nllb.* is NLLB-200") as caught:
        HFTranslator.from_pretrained(str(nllb_all), "en", "eo", GREEDY, device="cpu")
    assert "\n" not in str(caught.value)
    two = build_tiny_nllb(tmp_path / "two", "en", "zh")  # its tokenizer knows eng_Latn and zho_Hans only
    with pytest.raises(ModelNotFoundError, match="--tgt: the tokenizer of .*two has no language token deu_Latn"):
        HFTranslator.from_pretrained(str(two), "en", "de", GREEDY, device="cpu")


def test_ctranslate2_nllb_uses_the_target_code_as_prefix(nllb_all: Path, tmp_path: Path) -> None:
    pytest.importorskip("ctranslate2")
    from xlingual.translate.ct2 import CTranslate2Translator

    translator = CTranslate2Translator.from_pretrained(str(nllb_all), "en", "de", GREEDY, "cpu", "float32", cache_dir=tmp_path)
    assert translator.target_prefix == ["deu_Latn"] and translator.tokenizer.src_lang == "eng_Latn"
    outputs = translator.translate(["X1 loves X2 .", "Paris"])
    assert len(outputs) == 2 and not any("deu_Latn" in o for o in outputs)
    french = CTranslate2Translator.from_pretrained(str(nllb_all), "de", "fr", GREEDY, "cpu", "float32", cache_dir=tmp_path)
    assert french.target_prefix == ["fra_Latn"] and french.tokenizer.src_lang == "deu_Latn"


def _with_broken_tokenizer(model: Path, folder: Path) -> Path:
    """A copy of ``model`` whose tokenizer file is cut short, as some fine-tuned checkpoints ship it."""
    shutil.copytree(model, folder)
    text = (folder / "tokenizer.json").read_text(encoding="utf-8")
    (folder / "tokenizer.json").write_text(text[: len(text) // 2], encoding="utf-8")
    return folder


def test_tokenizer_from_loads_another_tokenizer_and_keys_the_cache_only_when_it_differs(nllb_all: Path, tmp_path: Path) -> None:
    broken = _with_broken_tokenizer(nllb_all, tmp_path / "finetuned")
    with pytest.raises(ModelNotFoundError, match="--tokenizer-from"):
        HFTranslator.from_pretrained(str(broken), "en", "de", GREEDY, device="cpu")
    fixed = HFTranslator.from_pretrained(str(broken), "en", "de", GREEDY, device="cpu", tokenizer_from=str(nllb_all))
    own = HFTranslator.from_pretrained(str(nllb_all), "en", "de", GREEDY, device="cpu")
    assert fixed.generate_kwargs == own.generate_kwargs
    assert fixed.translate(["X1 loves X2 ."]) == own.translate(["X1 loves X2 ."])  # same weights, same tokenizer
    assert "tokenizer" in json.loads(fixed.cache_key) and str(nllb_all.resolve()) in json.loads(fixed.cache_key)["tokenizer"]
    same = HFTranslator.from_pretrained(str(nllb_all), "en", "de", GREEDY, device="cpu", tokenizer_from=str(nllb_all))
    assert same.cache_key == own.cache_key  # the model's own tokenizer: earlier caches still apply
