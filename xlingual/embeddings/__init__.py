"""Cross-lingual word embeddings: fastText vectors, MUSE-style alignment, evaluation, ACN matrices.

``Vectors``/``load_vectors``/``save_vectors`` read and write fastText files;
``train_vectors`` trains monolingual skipgram vectors on our corpora;
``build_embedding_matrix`` fills a model's embedding matrix for its vocabulary;
the alignment and evaluation functions live in :mod:`xlingual.embeddings.align`
and :mod:`xlingual.embeddings.evaluate`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xlingual.lazy import lazy_exports

#: public name -> defining sub-module, imported on first use (``xl`` starts without numpy-heavy modules)
_EXPORTS: dict[str, str] = {
    "EmbeddingMatrix": "matrix", "build_embedding_matrix": "matrix",
    "find_aligned_pair": "paths",
    "TrainOptions": "train", "train_vectors": "train",
    "Vectors": "vectors", "load_vectors": "vectors", "save_vectors": "vectors",
}

if TYPE_CHECKING:
    from xlingual.embeddings.matrix import EmbeddingMatrix, build_embedding_matrix
    from xlingual.embeddings.paths import find_aligned_pair
    from xlingual.embeddings.train import TrainOptions, train_vectors
    from xlingual.embeddings.vectors import Vectors, load_vectors, save_vectors

__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = sorted(_EXPORTS)
