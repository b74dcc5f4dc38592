"""Source text for MT and target tokens in each dataset's own style.

Chinese output is one character per token, exactly as CMNER (Latin words are
split into characters too; whitespace is dropped). English output follows
Twitter2015: Moses tokenisation, with URLs, @mentions and #hashtags kept whole.
"""

from __future__ import annotations

import re
from functools import lru_cache

from xlingual.projection.artifacts import PROTECTED_PATTERNS

_SPACE_BEFORE = re.compile(r" +([.,!?;:%)\]}…。，！？；：、）])")
_SPACE_AFTER = re.compile(r"([(\[{]) +")


def join_tokens(tokens: list[str], lang: str) -> str:
    """Source tokens as MT input: Chinese characters joined directly, English words with light detokenisation."""
    if lang == "zh":
        return "".join(tokens)
    return " ".join(t for t in tokens if t.strip())


def tidy_spacing(text: str, lang: str) -> str:
    """Remove the spaces a token join leaves before punctuation (``shot .`` -> ``shot.``)."""
    text = re.sub(r"\s+", " ", text).strip()
    if lang == "zh":
        return text
    return _SPACE_AFTER.sub(r"\1", _SPACE_BEFORE.sub(r"\1", text))


@lru_cache(maxsize=1)
def _moses():
    from sacremoses import MosesTokenizer

    return MosesTokenizer(lang="en")


def tokenize_target(text: str, lang: str) -> list[str]:
    """Tokens of translated ``text`` in the style of ``lang``'s dataset."""
    if lang == "zh":
        return [c for c in text if not c.isspace()]
    text = text.strip()
    if not text:
        return []
    return _moses().tokenize(text, escape=False, protected_patterns=PROTECTED_PATTERNS)
