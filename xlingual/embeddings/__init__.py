"""Cross-lingual word embeddings: fastText vectors, MUSE-style alignment, evaluation, ACN matrices.

``Vectors``/``load_vectors``/``save_vectors`` read and write fastText files;
``train_vectors`` trains monolingual skipgram vectors on our corpora;
``build_embedding_matrix`` fills a model's embedding matrix for its vocabulary;
the alignment and evaluation functions live in :mod:`xlingual.embeddings.align`
and :mod:`xlingual.embeddings.evaluate`.
"""

from xlingual.embeddings.matrix import EmbeddingMatrix, build_embedding_matrix
from xlingual.embeddings.paths import AlignedPaths, aligned_dir, aligned_paths, find_aligned_vectors, monolingual_vectors_path
from xlingual.embeddings.train import TrainOptions, train_vectors
from xlingual.embeddings.vectors import Vectors, load_vectors, save_vectors

__all__ = [
    "AlignedPaths",
    "EmbeddingMatrix",
    "TrainOptions",
    "Vectors",
    "aligned_dir",
    "aligned_paths",
    "build_embedding_matrix",
    "find_aligned_vectors",
    "load_vectors",
    "monolingual_vectors_path",
    "save_vectors",
    "train_vectors",
]
