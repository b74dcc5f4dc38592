"""Word vectors in memory and on disk (fastText ``.vec`` text and ``.bin`` models).

Why our own reader: ``.vec`` files in the wild come with and without the
``n dim`` header line, with words that are odd Unicode (U+00A0, U+3000) and,
when cut short by a failed download, with a broken last line. The reader
streams line by line, stops at ``max_vocab`` (files are sorted by frequency,
so the first rows are the useful ones), keeps the first copy of a duplicated
word, and reports the first malformed line as ``path:line: message``.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from xlingual.errors import ConfigError, DataFormatError
from xlingual.io import atomic_open

logger = logging.getLogger(__name__)


@dataclass
class Vectors:
    """Words and their vectors; row ``i`` of ``matrix`` belongs to ``words[i]`` (most frequent first)."""

    words: list[str]
    matrix: np.ndarray
    _index: dict[str, int] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.matrix = np.ascontiguousarray(self.matrix, dtype=np.float32)
        if self.matrix.ndim != 2 or self.matrix.shape[0] != len(self.words):
            raise ValueError(f"{len(self.words)} words but a matrix of shape {self.matrix.shape}")

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.index()

    def index(self) -> dict[str, int]:
        """word -> row, built once on first use."""
        if self._index is None:
            self._index = {word: row for row, word in enumerate(self.words)}
        return self._index

    def get(self, word: str) -> np.ndarray | None:
        """The vector of ``word``, or None when it is not in the vocabulary."""
        row = self.index().get(word)
        return None if row is None else self.matrix[row]

    def head(self, n: int) -> "Vectors":
        """The ``n`` first (most frequent) words."""
        return Vectors(self.words[:n], self.matrix[:n])


def _open_text(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with _open_text(path) as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataFormatError(path, number, f"not valid UTF-8 (byte 0x{raw[err.start]:02x})") from None
            if number == 1 and line.startswith("\ufeff"):
                line = line[1:]
            yield number, line.rstrip("\r\n")


def _split_vector_line(line: str) -> list[str]:
    # Split on plain spaces only: str.split() would also split on U+00A0 / U+3000, which are real words.
    return [part for part in line.rstrip(" ").split(" ") if part != ""] if line.strip(" ") else []


def _parse_header(path: Path, parts: list[str]) -> tuple[int, int] | None:
    """``(n, dim)`` when the first line is a header, None when it is already a vector line."""
    if len(parts) == 2 and parts[0].lstrip("-").isdigit():
        try:
            n, dim = int(parts[0]), int(parts[1])
        except ValueError:
            raise DataFormatError(path, 1, f"bad header {' '.join(parts)!r}: expected '<words> <dimension>'") from None
        if n < 0 or dim <= 0:
            raise DataFormatError(path, 1, f"bad header {' '.join(parts)!r}: word count and dimension must be positive")
        return n, dim
    if len(parts) < 2:
        raise DataFormatError(path, 1, f"bad header {' '.join(parts)!r}: expected '<words> <dimension>' or a word and its values")
    return None


def _read_vec(path: Path, max_vocab: int | None) -> Vectors:
    words: list[str] = []
    rows: list[np.ndarray] = []
    seen: set[str] = set()
    dim: int | None = None
    declared: int | None = None
    duplicates = 0
    for number, line in _lines(path):
        parts = _split_vector_line(line)
        if number == 1:
            header = _parse_header(path, parts)
            if header is not None:
                declared, dim = header
                continue
        if not parts:
            if line.strip() == "":
                continue
            raise DataFormatError(path, number, "line has no values")
        if max_vocab is not None and len(words) >= max_vocab:
            break
        values = parts[1:]
        if dim is None:
            dim = len(values)
        if len(values) != dim:
            raise DataFormatError(path, number, f"expected {dim} values after the word, found {len(values)}")
        try:
            vector = np.asarray(values, dtype=np.float32)
        except ValueError:
            bad = next(v for v in values if not _is_float(v))
            raise DataFormatError(path, number, f"non-numeric value {bad!r}") from None
        word = parts[0]
        if word in seen:
            duplicates += 1
            continue
        seen.add(word)
        words.append(word)
        rows.append(vector)
    if dim is None:
        raise DataFormatError(path, None, "file is empty: no header and no vectors")
    if duplicates:
        logger.warning("%s: %d duplicated words skipped (first occurrence kept)", path, duplicates)
    if declared is not None and max_vocab is None and len(words) + duplicates != declared:
        logger.warning("%s: header declares %d words but the file holds %d", path, declared, len(words) + duplicates)
    matrix = np.vstack(rows) if rows else np.zeros((0, dim), dtype=np.float32)
    return Vectors(words, matrix)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_bin(path: Path, max_vocab: int | None) -> Vectors:
    import fasttext

    try:
        model = fasttext.load_model(str(path))
    except ValueError as err:
        raise DataFormatError(path, None, f"not a fastText .bin model ({err})") from None
    words = list(model.get_words())
    if max_vocab is not None:
        words = words[:max_vocab]
    matrix = np.vstack([model.get_word_vector(w) for w in words]) if words else np.zeros((0, model.get_dimension()), np.float32)
    return Vectors(words, matrix)


def load_vectors(path: str | Path, max_vocab: int | None = None) -> Vectors:
    """Read fastText vectors: text ``.vec`` (optionally ``.gz``, header optional) or a ``.bin`` model.

    ``max_vocab`` keeps the first (most frequent) words only. Malformed input
    raises :class:`DataFormatError` naming the line.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, None, "vectors file not found")
    if max_vocab is not None and max_vocab <= 0:
        raise DataFormatError(path, None, f"max_vocab must be positive, got {max_vocab}")
    vectors = _read_bin(path, max_vocab) if path.suffix == ".bin" else _read_vec(path, max_vocab)
    logger.info("%s: %d vectors of dimension %d", path, len(vectors), vectors.dim)
    return vectors


def merge_vectors(sources: Sequence[tuple[str | Path, Vectors]]) -> Vectors:
    """One vocabulary from several files of one space (e.g. MUSE-aligned source and target vectors).

    Precedence, the one convention for every caller: a word present in
    several files takes its vector from the LAST file listed, at the position
    where it first appeared. Runs list the target language last, so a word
    shared by both languages (``@``, numbers, names) keeps its target-language
    vector: the language the model is scored on. ``sources`` pairs each
    file's name (for the error message) with its vectors; different
    dimensions are a :class:`ConfigError`.
    """
    dims = {vectors.dim for _, vectors in sources}
    if len(dims) > 1:
        raise ConfigError(f"model.word_vectors: files have different dimensions ({', '.join(f'{name}: {v.dim}' for name, v in sources)})")
    if not sources:
        raise ConfigError("model.word_vectors: no vector files to merge")
    row_of: dict[str, int] = {}
    words: list[str] = []
    rows: list[np.ndarray] = []
    for _, vectors in sources:
        for word, row in zip(vectors.words, vectors.matrix):
            if word in row_of:
                rows[row_of[word]] = row
            else:
                row_of[word] = len(words)
                words.append(word)
                rows.append(row)
    matrix = np.vstack(rows) if rows else np.zeros((0, dims.pop()), dtype=np.float32)
    return Vectors(words, matrix)


def merge_vector_files(paths: Sequence[str | Path], out: str | Path) -> Path:
    """:func:`merge_vectors` of ``paths`` written to ``out`` (a model that takes one vectors file gets all languages)."""
    return save_vectors(out, merge_vectors([(str(path), load_vectors(path)) for path in paths]))


def save_vectors(path: str | Path, vectors: Vectors, precision: int = 6) -> Path:
    """Write ``vectors`` as a fastText ``.vec`` file (with header), atomically."""
    path = Path(path)
    row_format = " ".join([f"%.{precision}g"] * vectors.dim)
    with atomic_open(path, "w", newline="\n") as handle:
        handle.write(f"{len(vectors)} {vectors.dim}\n")
        for word, row in zip(vectors.words, vectors.matrix):
            if not word or " " in word or "\n" in word:
                raise DataFormatError(path, None, f"word {word!r} cannot be written to a .vec file (empty or contains a space)")
            handle.write(f"{word} {row_format % tuple(row.tolist())}\n")
    return path
