"""Word-translation retrieval (MUSE's evaluation) and MUSE's unsupervised model-selection criterion.

Precision@k counts a query as correct when any of its dictionary
translations is among its k best targets; values are percentages as MUSE
prints them. Queries are the dictionary's source words that have vectors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from xlingual.embeddings.options import DEFAULT_MAX_VOCAB
from xlingual.embeddings.dictionary import Dictionary, induce_dictionary, read_dictionary
from xlingual.embeddings.similarity import as_tensor, default_device, mean_topk_similarity, topk_scores, unit_rows
from xlingual.embeddings.vectors import Vectors, load_vectors
from xlingual.errors import ConfigError

logger = logging.getLogger(__name__)

TOP_K = (1, 5, 10)
CSLS_KNN = 10


@dataclass
class TranslationScores:
    """P@k for nearest neighbour and CSLS, plus how many queries and skipped pairs they rest on."""

    precision: dict[str, float]
    queries: int
    skipped_pairs: int

    def to_dict(self) -> dict[str, float | int]:
        return {**self.precision, "queries": self.queries, "skipped_pairs": self.skipped_pairs}


def _queries_and_gold(pairs: torch.Tensor) -> tuple[torch.Tensor, list[set[int]]]:
    gold: dict[int, set[int]] = {}
    for i, j in pairs.tolist():
        gold.setdefault(i, set()).add(j)
    queries = sorted(gold)
    return torch.tensor(queries, dtype=torch.long), [gold[q] for q in queries]


def _precision(top: torch.Tensor, gold: list[set[int]]) -> dict[int, float]:
    rows = top.tolist()
    result = {}
    for k in TOP_K:
        hits = sum(1 for row, answers in zip(rows, gold) if answers.intersection(row[:k]))
        result[k] = 100.0 * hits / max(1, len(rows))
    return result


def word_translation_scores(src: torch.Tensor, tgt: torch.Tensor, dictionary: Dictionary, knn: int = CSLS_KNN) -> TranslationScores:
    """P@1/5/10 by NN and CSLS for embeddings already in one space (rows need not be normalised)."""
    src, tgt = unit_rows(src), unit_rows(tgt)
    query_rows, gold = _queries_and_gold(dictionary.pairs)
    queries = src[query_rows.to(src.device)]
    k = max(TOP_K)
    _, nn_top = topk_scores(queries, tgt, k)
    _, csls_top = _csls_for_queries(queries, src, tgt, k, knn)
    precision: dict[str, float] = {}
    for name, top in (("nn", nn_top), ("csls", csls_top)):
        for kk, value in _precision(top.cpu(), gold).items():
            precision[f"{name}.p@{kk}"] = round(value, 2)
    return TranslationScores(precision, len(gold), dictionary.skipped)


def _csls_for_queries(queries: torch.Tensor, src: torch.Tensor, tgt: torch.Tensor, k: int, knn: int) -> tuple[torch.Tensor, torch.Tensor]:
    """CSLS where the targets' hubness is measured against the whole source vocabulary, as in MUSE."""
    r_tgt = mean_topk_similarity(tgt, src, knn)
    r_queries = mean_topk_similarity(queries, tgt, knn)
    return topk_scores(queries, tgt, k, key_penalty=r_tgt, query_penalty=r_queries)


def evaluate_files(src_path: str | Path, tgt_path: str | Path, dico_path: str | Path, max_vocab: int | None = DEFAULT_MAX_VOCAB) -> TranslationScores:
    """Evaluate two aligned ``.vec`` files on a MUSE dictionary (as ``xl embeddings evaluate`` does)."""
    src_vectors = load_vectors(src_path, max_vocab)
    tgt_vectors = load_vectors(tgt_path, max_vocab)
    return evaluate_vectors(src_vectors, tgt_vectors, read_dictionary(dico_path, src_vectors, tgt_vectors))


def evaluate_vectors(src: Vectors, tgt: Vectors, dictionary: Dictionary) -> TranslationScores:
    if src.dim != tgt.dim:
        raise ConfigError(f"source vectors have dimension {src.dim} but target vectors {tgt.dim}: align them first")
    device = default_device()
    return word_translation_scores(as_tensor(src.matrix, device), as_tensor(tgt.matrix, device), dictionary)


def mean_cosine_criterion(mapped_src: torch.Tensor, tgt: torch.Tensor, n_words: int = 10000, max_rank: int = 15000, knn: int = CSLS_KNN) -> float:
    """MUSE's unsupervised criterion: mean cosine between the ``n_words`` most frequent source words and their CSLS translations."""
    src, tgt = unit_rows(mapped_src), unit_rows(tgt)
    pairs = induce_dictionary(src, tgt, max_rank=max_rank, knn=knn, mode="S2T")[:n_words]
    return float((src[pairs[:, 0]] * tgt[pairs[:, 1]]).sum(dim=1).mean())
