"""Whether a projected entity was left untranslated: what a projection rate alone cannot show.

A glossary or an MT model that passes a name through (``George Zimmerman`` ->
``George Zimmerman`` in a Chinese post) projects every entity and still hands
the target model source-language text. An entity counts as untranslated when

- its target text is its source text (compared without case, width or
  spacing differences: ``GeorgeZimmerman`` in a Chinese post is the same
  name), for any pair of languages; or
- the target language is written in another script than the source
  language and the target text has no character of the target's script
  (Latin letters alone in a Chinese post, Han characters alone in an
  English one).

A language's script is the ISO 15924 code its NLLB-200 code carries
(``zho_Hans``: Han); a character's script is read from its Unicode name
(``CJK UNIFIED IDEOGRAPH-4E2D``), so no script table beyond the prefixes
below is needed. For a pair with the same script (en -> de), or a language
whose script is not known here, only the identical-text rule applies:
``Berlin`` -> ``Berlin`` counts, ``München`` -> ``Munich`` does not.
"""

from __future__ import annotations

import unicodedata

from xlingual.translate.languages import LANGUAGES

_HAN = ("CJK UNIFIED IDEOGRAPH", "CJK COMPATIBILITY IDEOGRAPH")
SCRIPT_CHARACTERS: dict[str, tuple[str, ...]] = {
    "Latn": ("LATIN",), "Hans": _HAN, "Hant": _HAN, "Jpan": (*_HAN, "HIRAGANA", "KATAKANA"), "Hang": ("HANGUL",),
    "Cyrl": ("CYRILLIC",), "Grek": ("GREEK",), "Arab": ("ARABIC",), "Hebr": ("HEBREW",), "Deva": ("DEVANAGARI",),
    "Beng": ("BENGALI",), "Guru": ("GURMUKHI",), "Gujr": ("GUJARATI",), "Taml": ("TAMIL",), "Telu": ("TELUGU",),
    "Knda": ("KANNADA",), "Mlym": ("MALAYALAM",), "Sinh": ("SINHALA",), "Thai": ("THAI",), "Laoo": ("LAO",),
    "Mymr": ("MYANMAR",), "Khmr": ("KHMER",), "Geor": ("GEORGIAN",), "Armn": ("ARMENIAN",), "Ethi": ("ETHIOPIC",),
}
"""ISO 15924 script -> the prefixes of the Unicode character names written in it."""


def language_script(code: str) -> str | None:
    """``zh`` -> ``Hans``, ``de`` -> ``Latn``: the script a language is written in, where this module can tell it."""
    language = LANGUAGES.get(code)
    script = language.nllb.partition("_")[2] if language is not None and language.nllb else None
    return script if script in SCRIPT_CHARACTERS else None


def _plain(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


def in_script(text: str, script: str) -> bool:
    """Whether ``text`` has a character of ``script``."""
    prefixes = SCRIPT_CHARACTERS[script]
    return any(unicodedata.name(ch, "").startswith(prefixes) for ch in text)


def untranslated(source: str, target: str, src_lang: str, tgt_lang: str) -> bool:
    """Whether a projected entity kept its source text (see the module docstring for the rule)."""
    if _plain(source) == _plain(target):
        return True
    src_script, tgt_script = language_script(src_lang), language_script(tgt_lang)
    return src_script is not None and tgt_script is not None and src_script != tgt_script and not in_script(target, tgt_script)


__all__ = ["SCRIPT_CHARACTERS", "in_script", "language_script", "untranslated"]
