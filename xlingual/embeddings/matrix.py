"""A model's embedding matrix for its own vocabulary, filled from pre-trained vectors.

Follows the CMNER paper / ACN setting: rows of known words are copied, every
other row (including ``[pad]`` and ``[unk]``) is drawn from U[-0.25, 0.25].
Lookup tries the word as written, then lower-cased, since ACN lower-cases its
tokens while some vector files keep case.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xlingual.embeddings.vectors import Vectors

logger = logging.getLogger(__name__)


@dataclass
class EmbeddingMatrix:
    """``matrix`` has one row per vocabulary entry; ``found`` rows came from the vectors."""

    matrix: np.ndarray
    found: int
    missing: int

    @property
    def coverage(self) -> float:
        total = self.found + self.missing
        return self.found / total if total else 0.0

    def summary(self) -> str:
        return f"{self.found}/{self.found + self.missing} vocabulary entries found in the vectors ({100 * self.coverage:.1f}%)"


def build_embedding_matrix(vocab: Sequence[str], vectors: Vectors, seed: int = 0, init_range: float = 0.25) -> EmbeddingMatrix:
    """Rows for ``vocab`` in order: known words copied, unknown ones U[-init_range, init_range] (seeded)."""
    rng = np.random.default_rng(seed)
    matrix = rng.uniform(-init_range, init_range, size=(len(vocab), vectors.dim)).astype(np.float32)
    index = vectors.index()
    found = 0
    for row, word in enumerate(vocab):
        source = index.get(word)
        if source is None:
            source = index.get(word.lower())
        if source is not None:
            matrix[row] = vectors.matrix[source]
            found += 1
    result = EmbeddingMatrix(matrix=matrix, found=found, missing=len(vocab) - found)
    logger.info("embedding matrix: %s", result.summary())
    return result
