"""ACN's text side: token normalisation and the word/character vocabularies.

ACN looks words up in a fixed vocabulary built once per run from every sample
the run will see (all stages, all splits, both languages), so a model trained
on the source language fine-tunes on the target language with no vocabulary
change and no re-initialised rows. Normalisation follows the reference
pipeline (models.md §3.2): numbers and URLs collapse to placeholders, leading
``#``/``@`` are stripped, everything is lower-cased. Chinese tokens are single
characters already, so the same rules apply unchanged (a lone ``#`` stays).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

PAD = "[pad]"
UNK = "[unk]"
NUMBER = "<number>"
URL = "<url>"

_NUMBER_START = re.compile(r"[+-]?[\d.]*\d")
_URL_START = re.compile(r"(?:https?://|www\.)", re.IGNORECASE)
_HASHTAG = re.compile(r"#(\S+)")
_MENTION = re.compile(r"@(\w+)")


def normalise_token(token: str) -> str:
    """The vocabulary key of ``token``: placeholders for numbers/URLs, no leading #/@, lower case.

    "Starts with a number" is deliberate (``2nd`` -> ``<number>``): it is what
    the published vectors and vocabulary sizes were built with.
    """
    if _NUMBER_START.match(token):
        return NUMBER
    if _URL_START.match(token):
        return URL
    hashtag = _HASHTAG.match(token)
    if hashtag:
        token = token[1:]
    elif _MENTION.match(token):
        token = token[1:]
    return token.lower()


class TokenVocab:
    """Strings <-> ids with ``[pad]`` at 0 and ``[unk]`` at 1, then types by descending frequency."""

    def __init__(self, tokens: Sequence[str]) -> None:
        if list(tokens[:2]) != [PAD, UNK]:
            raise ValueError(f"a vocabulary must start with {PAD}, {UNK}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("duplicate entries in vocabulary")
        self.tokens = list(tokens)
        self.index = {token: i for i, token in enumerate(self.tokens)}

    @classmethod
    def from_counts(cls, counts: Counter[str], max_size: int | None = None) -> "TokenVocab":
        """Most frequent first; ties keep first-seen order (Counter is insertion-ordered), so builds are reproducible."""
        ranked = [token for token, _ in counts.most_common() if token not in (PAD, UNK)]
        if max_size is not None:
            ranked = ranked[: max(0, max_size - 2)]
        return cls([PAD, UNK, *ranked])

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self.index

    def id(self, token: str) -> int:
        return self.index.get(token, 1)

    def to_list(self) -> list[str]:
        return list(self.tokens)


def count_words_and_chars(token_lists: Iterable[Sequence[str]]) -> tuple[Counter[str], Counter[str]]:
    """Frequencies of normalised words and of the characters of normalised words."""
    words: Counter[str] = Counter()
    chars: Counter[str] = Counter()
    for tokens in token_lists:
        for token in tokens:
            word = normalise_token(token)
            words[word] += 1
            chars.update(word)
    return words, chars


def build_vocabularies(token_lists: Iterable[Sequence[str]], max_words: int | None = None, max_chars: int | None = None) -> tuple[TokenVocab, TokenVocab]:
    """Word and character vocabularies over all given posts (see the module docstring for why all)."""
    words, chars = count_words_and_chars(token_lists)
    return TokenVocab.from_counts(words, max_words), TokenVocab.from_counts(chars, max_chars)
