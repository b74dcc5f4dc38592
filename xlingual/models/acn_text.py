"""ACN's text side: token normalisation and the word/character vocabularies.

ACN looks words up in a fixed vocabulary built once per run from every sample
the run will see (all stages, all splits, both languages), so a model trained
on the source language fine-tunes on the target language with no vocabulary
change and no re-initialised rows. Normalisation follows the reference
pipeline (docs/models.md, ACN): numbers and URLs collapse to placeholders, leading
``#``/``@`` are stripped, everything is lower-cased. Chinese tokens are single
characters already, so the same rules apply unchanged (a lone ``#`` stays).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

from xlingual.models.vocab import Vocabulary

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


def token_vocab(tokens: Sequence[str]) -> Vocabulary:
    """A word or character vocabulary: ``[pad]`` at 0, ``[unk]`` at 1 (unseen strings), then the types."""
    return Vocabulary(tokens, pad=PAD, unk=UNK)


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


def build_vocabularies(token_lists: Iterable[Sequence[str]], max_words: int | None = None, max_chars: int | None = None) -> tuple[Vocabulary, Vocabulary]:
    """Word and character vocabularies over all given posts (see the module docstring for why all).

    Most frequent first after the two specials; ties keep first-seen order.
    """
    words, chars = count_words_and_chars(token_lists)
    return (Vocabulary.from_counts(words, max_words, pad=PAD, unk=UNK),
            Vocabulary.from_counts(chars, max_chars, pad=PAD, unk=UNK))
