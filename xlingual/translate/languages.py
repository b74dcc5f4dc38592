"""Languages by ISO 639-1 code, and each one's code in the MT models that name languages themselves.

``--src``/``--tgt`` take ISO 639-1 codes (``en``, ``de``, ``zh`` …). A
Marian (opus-mt) model is one pair and needs no code, except multi-target
models, which want a ``>>deu<<`` style token in front of every input; NLLB-200
and M2M-100 are many-to-many models that must be told the source language (on
the tokenizer) and the target language (forced as the first generated token;
without it the model picks a language itself and the output mixes languages).
This module is the one table from ISO 639-1 to those codes. A language a
model family does not cover is a one-line error that names the model, never a
silent fallback.

It also knows which languages are written without spaces between words
(Chinese, Japanese, Thai …): their tokens are joined without spaces, and
their text needs a segmenter of its own (see
:mod:`xlingual.projection.tokenization`).
"""

from __future__ import annotations

from dataclasses import dataclass

from xlingual.data.languages import check_language as check_iso_code
from xlingual.errors import ConfigError


@dataclass(frozen=True)
class Language:
    """One language: its ISO 639-1 ``code``, English ``name``, ISO 639-3 code and its NLLB-200 / M2M-100 codes (None: not covered)."""

    code: str
    name: str
    iso3: str
    nllb: str | None
    m2m100: str | None


def _table(rows: str) -> dict[str, Language]:
    languages = {}
    for row in rows.strip().splitlines():
        code, name, iso3, nllb, m2m = (field.strip() for field in row.split("|"))
        languages[code] = Language(code, name, iso3, nllb if nllb != "-" else None, m2m if m2m != "-" else None)
    return languages


# code | name | ISO 639-3 | NLLB-200 | M2M-100
# NLLB names the standard variety where ISO 639-1 names a macrolanguage (ar: arb_Arab, fa: pes_Arab, ms: zsm_Latn, sw: swh_Latn).
LANGUAGES: dict[str, Language] = _table("""
af | Afrikaans | afr | afr_Latn | af
am | Amharic | amh | amh_Ethi | am
ar | Arabic | ara | arb_Arab | ar
az | Azerbaijani | aze | azj_Latn | az
be | Belarusian | bel | bel_Cyrl | be
bg | Bulgarian | bul | bul_Cyrl | bg
bn | Bengali | ben | ben_Beng | bn
bs | Bosnian | bos | bos_Latn | bs
ca | Catalan | cat | cat_Latn | ca
cs | Czech | ces | ces_Latn | cs
cy | Welsh | cym | cym_Latn | cy
da | Danish | dan | dan_Latn | da
de | German | deu | deu_Latn | de
el | Greek | ell | ell_Grek | el
en | English | eng | eng_Latn | en
es | Spanish | spa | spa_Latn | es
et | Estonian | est | est_Latn | et
eu | Basque | eus | eus_Latn | -
fa | Persian | fas | pes_Arab | fa
fi | Finnish | fin | fin_Latn | fi
fr | French | fra | fra_Latn | fr
ga | Irish | gle | gle_Latn | ga
gl | Galician | glg | glg_Latn | gl
gu | Gujarati | guj | guj_Gujr | gu
ha | Hausa | hau | hau_Latn | ha
he | Hebrew | heb | heb_Hebr | he
hi | Hindi | hin | hin_Deva | hi
hr | Croatian | hrv | hrv_Latn | hr
hu | Hungarian | hun | hun_Latn | hu
hy | Armenian | hye | hye_Armn | hy
id | Indonesian | ind | ind_Latn | id
is | Icelandic | isl | isl_Latn | is
it | Italian | ita | ita_Latn | it
ja | Japanese | jpn | jpn_Jpan | ja
ka | Georgian | kat | kat_Geor | ka
kk | Kazakh | kaz | kaz_Cyrl | kk
km | Khmer | khm | khm_Khmr | km
kn | Kannada | kan | kan_Knda | kn
ko | Korean | kor | kor_Hang | ko
lo | Lao | lao | lao_Laoo | lo
lt | Lithuanian | lit | lit_Latn | lt
lv | Latvian | lav | lvs_Latn | lv
mk | Macedonian | mkd | mkd_Cyrl | mk
ml | Malayalam | mal | mal_Mlym | ml
mn | Mongolian | mon | khk_Cyrl | mn
mr | Marathi | mar | mar_Deva | mr
ms | Malay | msa | zsm_Latn | ms
my | Burmese | mya | mya_Mymr | my
nb | Norwegian Bokmal | nob | nob_Latn | -
ne | Nepali | nep | npi_Deva | ne
nl | Dutch | nld | nld_Latn | nl
nn | Norwegian Nynorsk | nno | nno_Latn | -
no | Norwegian | nor | nob_Latn | no
pa | Punjabi | pan | pan_Guru | pa
pl | Polish | pol | pol_Latn | pl
ps | Pashto | pus | pbt_Arab | ps
pt | Portuguese | por | por_Latn | pt
ro | Romanian | ron | ron_Latn | ro
ru | Russian | rus | rus_Cyrl | ru
si | Sinhala | sin | sin_Sinh | si
sk | Slovak | slk | slk_Latn | sk
sl | Slovenian | slv | slv_Latn | sl
so | Somali | som | som_Latn | so
sq | Albanian | sqi | als_Latn | sq
sr | Serbian | srp | srp_Cyrl | sr
sv | Swedish | swe | swe_Latn | sv
sw | Swahili | swa | swh_Latn | sw
ta | Tamil | tam | tam_Taml | ta
te | Telugu | tel | tel_Telu | -
th | Thai | tha | tha_Thai | th
tl | Tagalog | tgl | tgl_Latn | tl
tr | Turkish | tur | tur_Latn | tr
uk | Ukrainian | ukr | ukr_Cyrl | uk
ur | Urdu | urd | urd_Arab | ur
uz | Uzbek | uzb | uzn_Latn | uz
vi | Vietnamese | vie | vie_Latn | vi
xh | Xhosa | xho | xho_Latn | xh
yo | Yoruba | yor | yor_Latn | yo
zh | Chinese | zho | zho_Hans | zh
zu | Zulu | zul | zul_Latn | zu
""")

UNSPACED: frozenset[str] = frozenset({"zh", "ja", "th", "lo", "my", "km", "bo", "dz"})
"""Languages written without spaces between words: tokens are joined directly, and words need a segmenter."""

MARIAN_TARGET_TOKENS: dict[str, tuple[str, ...]] = {"zh": (">>cmn_Hans<<", ">>zho_Hans<<", ">>cmn<<", ">>zho<<", ">>zh<<")}
"""Target tokens of multi-target Marian models where the ISO 639-3 rule (``>>deu<<``, then ``>>de<<``) is not enough."""

MODEL_FAMILIES: dict[str, str] = {"nllb": "NLLB-200", "m2m100": "M2M-100"}


def check_language(option: str, code: str) -> None:
    """``code`` must be an ISO 639-1 code (``--src de``); a one-line error naming ``option`` otherwise."""
    try:
        check_iso_code(code)
    except ValueError:
        hint = f" (ISO 639-1 for {LANGUAGES[code[:2]].name} is '{code[:2]}')" if len(code) > 2 and code[:2] in LANGUAGES else ""
        raise ConfigError(f"{option} {code}: not an ISO 639-1 language code such as en, de, fr, zh{hint}") from None


def language_name(code: str) -> str:
    """``de`` -> ``German`` (the code itself for a language outside the table)."""
    return LANGUAGES[code].name if code in LANGUAGES else code


def written_without_spaces(code: str) -> bool:
    return code in UNSPACED


def model_language_code(family: str, code: str, model: str, option: str) -> str:
    """The code ``family`` (``nllb`` or ``m2m100``) uses for ISO 639-1 ``code``; a one-line error naming ``model`` when it has none."""
    language = LANGUAGES.get(code)
    found = getattr(language, family) if language is not None else None
    if found is None:
        covered = sorted(c for c, lang in LANGUAGES.items() if getattr(lang, family))
        raise ConfigError(f"{option} {code}: {model} is {MODEL_FAMILIES[family]}, whose language codes xlingual maps for "
                          f"{', '.join(covered)}; '{code}' is not among them")
    return found


def marian_target_tokens(code: str) -> tuple[str, ...]:
    """The ``>>xxx<<`` tokens a multi-target Marian model may use for ``code``, most specific first."""
    if code in MARIAN_TARGET_TOKENS:
        return MARIAN_TARGET_TOKENS[code]
    iso3 = LANGUAGES[code].iso3 if code in LANGUAGES else None
    return tuple(f">>{c}<<" for c in (iso3, code) if c)
