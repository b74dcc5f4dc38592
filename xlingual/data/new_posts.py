"""New posts to label: raw text (one post per line) and token files (one token per line, no labels).

``xl predict`` labels these besides dataset files. Raw text is tokenised as
the model's language's dataset is (:func:`xlingual.projection.tokenization.target_tokenizer`:
one character per token for Chinese, as CMNER; Moses with URLs, @mentions and
#hashtags kept whole for English and other space-delimited languages, as
Twitter2015). Posts get ids a user can name image files after: ``line-N`` for
the raw post on line N, ``post-N`` for the N-th post of a token file.

Which kind a file is, when ``--input-format`` does not say (:func:`detect_input_format`):

1. a first line that is an ``IMGID:``/``WID:`` header or a JSON object: that dataset format;
2. a TAB on every non-blank line: CoNLL token/label lines (labels ignored); on some lines only: refused;
3. a space inside some line: raw text;
4. for a language written one character per token (Chinese), a line longer than one character: raw text;
5. blank lines splitting the file into several posts, one of them longer than a line: tokens;
6. every post a single line: raw text (each line a post; blank lines are skipped);
7. anything else (one block of one-word lines: one-word posts, or one post's tokens?): refused,
   with the option that settles it.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from pathlib import Path

from xlingual.data.formats import FORMAT_NAMES, _read_lines, format_of_first_line
from xlingual.data.sample import Sample
from xlingual.errors import DataFormatError

RAW = "raw"
TOKENS = "tokens"
INPUT_FORMATS: tuple[str, ...] = (RAW, TOKENS, *FORMAT_NAMES)
"""What ``xl predict --input-format`` accepts: new posts (raw text, tokens) or a dataset format."""

InputFormat = Enum("InputFormat", {name.upper(): name for name in INPUT_FORMATS}, type=str)  # type: ignore[misc]
""":data:`INPUT_FORMATS` as the choices of a command-line option."""

UNLABELLED_OUTPUT = {TOKENS: "conll"}
"""The format predictions on token input are written in (raw input takes its language's dataset format)."""


def _blank(line: str) -> bool:
    return not line.strip()


def _posts_of_lines(lines: list[str]) -> list[list[tuple[int, str]]]:
    """Runs of non-blank lines (1-based line numbers with them), split at blank lines."""
    posts: list[list[tuple[int, str]]] = [[]]
    for number, line in enumerate(lines, start=1):
        if _blank(line):
            if posts[-1]:
                posts.append([])
        else:
            posts[-1].append((number, line))
    return [post for post in posts if post]


def _ambiguous(path: Path, why: str) -> DataFormatError:
    return DataFormatError(path, None, f"cannot tell the input format: {why}; pass --input-format ({', '.join(INPUT_FORMATS)})")


def detect_input_format(path: str | Path, one_char_tokens: bool = False) -> str:
    """The kind of ``path`` by the rule of the module docstring; ``one_char_tokens``: the model's language is tokenised by character."""
    path = Path(path)
    posts = _posts_of_lines(_read_lines(path))
    lines = [(number, line) for post in posts for number, line in post]
    if not lines:
        raise DataFormatError(path, None, "file is empty")
    dataset_format = format_of_first_line(lines[0][1])
    if dataset_format is not None:
        return dataset_format
    tabbed = [number for number, line in lines if "\t" in line]
    if len(tabbed) == len(lines):
        return "conll"
    if tabbed:
        untabbed = next(number for number, line in lines if "\t" not in line)
        raise _ambiguous(path, f"line {tabbed[0]} has a TAB (a token and its label?) but line {untabbed} has none")
    words = [line.strip() for _, line in lines]
    if any(len(word.split()) > 1 for word in words):
        return RAW
    if one_char_tokens and any(len(word) > 1 for word in words):
        return RAW
    longest = max(len(post) for post in posts)
    if len(posts) > 1 and longest > 1:
        return TOKENS
    if longest == 1:
        return RAW
    raise _ambiguous(path, "every line is one word and no blank line separates posts (one-word posts, or one post's tokens?)")


def read_raw_posts(path: str | Path, tokenize: Callable[[str], list[str]], lang: str) -> list[Sample]:
    """One post per non-blank line, id ``line-N``, tokenised by ``tokenize``; the line is kept in ``meta['text']``."""
    path = Path(path)
    samples = []
    for number, line in enumerate(_read_lines(path), start=1):
        if _blank(line):
            continue
        tokens = tokenize(line.strip())
        if not tokens:
            raise DataFormatError(path, number, "the tokeniser found no token on this line")
        samples.append(Sample(f"line-{number}", tokens, ["O"] * len(tokens), lang=lang, meta={"text": line.strip()}))
    if not samples:
        raise DataFormatError(path, None, "file is empty")
    return samples


def read_token_posts(path: str | Path, lang: str) -> list[Sample]:
    """One token per line, a blank line between posts, no labels; the N-th post has id ``post-N``."""
    path = Path(path)
    samples = []
    for index, post in enumerate(_posts_of_lines(_read_lines(path)), start=1):
        for number, line in post:
            if "\t" in line:
                raise DataFormatError(path, number, "a TAB in a token file (token and label?): pass --input-format conll for labelled lines")
            if len(line.split()) > 1:
                raise DataFormatError(path, number, "more than one token on a line of a token file (raw text? pass --input-format raw)")
        tokens = [line.strip() for _, line in post]
        samples.append(Sample(f"post-{index}", tokens, ["O"] * len(tokens), lang=lang))
    if not samples:
        raise DataFormatError(path, None, "file is empty")
    return samples


__all__ = ["INPUT_FORMATS", "InputFormat", "RAW", "TOKENS", "UNLABELLED_OUTPUT", "detect_input_format", "read_raw_posts", "read_token_posts"]
