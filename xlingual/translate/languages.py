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
from importlib import resources

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


LANGUAGE_TABLE = "languages.tsv"
"""The table itself, packaged beside this module: one row a language, ``-`` where a model family lacks it.

NLLB names the standard variety where ISO 639-1 names a macrolanguage
(ar: arb_Arab, fa: pes_Arab, ms: zsm_Latn, sw: swh_Latn).
"""

_COLUMNS = ("code", "name", "iso3", "nllb", "m2m100")


def _read_table(text: str, where: str) -> dict[str, Language]:
    """Parse the tab-separated table; a malformed row is an error naming its line (the file ships with the package)."""
    lines = text.splitlines()
    if not lines or tuple(lines[0].split("\t")) != _COLUMNS:
        raise ConfigError(f"{where}:1: expected the header {' '.join(_COLUMNS)}")
    languages: dict[str, Language] = {}
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != len(_COLUMNS) or not all(fields) or fields[0] in languages:
            raise ConfigError(f"{where}:{number}: expected {len(_COLUMNS)} non-empty tab-separated fields and a new code, got {line!r}")
        code, name, iso3, nllb, m2m100 = fields
        languages[code] = Language(code, name, iso3, None if nllb == "-" else nllb, None if m2m100 == "-" else m2m100)
    return languages


def _packaged_table() -> dict[str, Language]:
    table = resources.files("xlingual.translate") / LANGUAGE_TABLE
    return _read_table(table.read_text(encoding="utf-8"), f"xlingual/translate/{LANGUAGE_TABLE}")


LANGUAGES: dict[str, Language] = _packaged_table()

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
