"""Source text for MT and target tokens in each language's dataset style.

Chinese output is one character per token, exactly as CMNER (Latin words are
split into characters too; whitespace is dropped). English output follows
Twitter2015: Moses tokenisation, with URLs, @mentions and #hashtags kept
whole. Every other space-delimited language gets the same treatment with
Moses's rules for that language (``MosesTokenizer(lang=...)``: its
non-breaking prefixes, its apostrophes). A language written without spaces
(Japanese, Thai, Lao, Burmese, Khmer …) or whose words Moses cannot find
(Korean, whose particles attach to the word) has no built-in tokeniser: asking
for it is a one-line error unless a tokeniser is plugged in
(``--tokenizer MODULE:NAME``, any callable ``str -> list[str]``), because
splitting such text at spaces would give tokens no dataset of that language uses.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from xlingual.errors import ConfigError, XlingualError
from xlingual.projection.artifacts import PROTECTED_PATTERNS
from xlingual.translate.languages import language_name, written_without_spaces
from xlingual.translate.plugin import load_plugin_tokenizer

TargetTokenizer = Callable[[str], list[str]]
"""Translated text -> tokens of the target dataset."""

CHARACTER_LANGUAGES: frozenset[str] = frozenset({"zh"})
"""Languages tokenised one character per token (CMNER's convention)."""

NEEDS_SEGMENTER: frozenset[str] = frozenset({"ja", "th", "lo", "my", "km", "bo", "dz", "ko"})
"""Languages without a built-in tokeniser: a user's ``--tokenizer`` is required to write them."""

_SPACE_BEFORE = re.compile(r" +([.,!?;:%)\]}…。，！？；：、）])")
_SPACE_AFTER = re.compile(r"([(\[{]) +")


def join_tokens(tokens: list[str], lang: str) -> str:
    """Source tokens as MT input: unspaced scripts (Chinese …) joined directly, other languages with light detokenisation."""
    if written_without_spaces(lang):
        return "".join(tokens)
    return " ".join(t for t in tokens if t.strip())


def tidy_spacing(text: str, lang: str) -> str:
    """Remove the spaces a token join leaves before punctuation (``shot .`` -> ``shot.``)."""
    text = re.sub(r"\s+", " ", text).strip()
    if written_without_spaces(lang):
        return text
    return _SPACE_AFTER.sub(r"\1", _SPACE_BEFORE.sub(r"\1", text))


@lru_cache(maxsize=None)
def _moses(lang: str):
    from sacremoses import MosesTokenizer

    return MosesTokenizer(lang=lang)


def has_builtin_tokenizer(lang: str) -> bool:
    return lang not in NEEDS_SEGMENTER


def check_target_language(lang: str, custom: str | None = None) -> None:
    """A target language needs a built-in tokeniser or ``--tokenizer``; the one-line error names ``--tgt``."""
    if custom is None and not has_builtin_tokenizer(lang):
        raise ConfigError(f"--tgt {lang}: xlingual has no tokeniser for {language_name(lang)} text; plug one in with "
                          "--tokenizer MODULE:NAME (a function str -> list[str], e.g. a wrapper around a segmenter for the language)")


def tokenize_target(text: str, lang: str) -> list[str]:
    """Tokens of translated ``text`` in the style of ``lang``'s dataset (built-in tokenisers only)."""
    if lang in CHARACTER_LANGUAGES:
        return [c for c in text if not c.isspace()]
    check_target_language(lang)
    text = text.strip()
    if not text:
        return []
    return _moses(lang).tokenize(text, escape=False, protected_patterns=PROTECTED_PATTERNS)


def _checked(tokenize: Callable[[str], object], spec: str) -> TargetTokenizer:
    """A plugged-in tokeniser whose every answer is checked to be a list of non-empty strings without whitespace."""
    def run(text: str) -> list[str]:
        tokens = tokenize(text)
        if not isinstance(tokens, list) or not all(isinstance(t, str) and t and not any(c.isspace() for c in t) for t in tokens):
            raise XlingualError(f"--tokenizer {spec}: returned {tokens!r:.80} for {text!r:.40}; expected a list of tokens "
                                "(non-empty strings without spaces)")
        return tokens

    return run


def target_tokenizer(lang: str, custom: str | None = None) -> TargetTokenizer:
    """The tokeniser of translated ``lang`` text: the plug-in ``custom`` (``MODULE:NAME``) when given, else the built-in one."""
    if custom is not None:
        return _checked(load_plugin_tokenizer(custom), custom)
    check_target_language(lang)
    return lambda text: tokenize_target(text, lang)
