"""Procrustes refinement on induced dictionaries, scored by MUSE's unsupervised criterion.

Shared by the alignment itself and by the failure check, which runs the same
refinement from a random rotation to learn what refinement reaches from nowhere.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from xlingual.embeddings.dictionary import csls_best, induce_dictionary, mutual_pairs
from xlingual.embeddings.evaluate import mean_cosine_criterion
from xlingual.embeddings.procrustes import procrustes
from xlingual.embeddings.similarity import unit_rows

logger = logging.getLogger(__name__)

CRITERION_RANK = 15000
"""MUSE's criterion looks for translations among this many most frequent target words (``mean_cosine_criterion``)."""
CRITERION_WORDS = 10000
"""... and averages over this many most frequent source words."""


@dataclass(frozen=True)
class Ranks:
    """How many frequent words the induced dictionaries and the criterion use."""

    dico: int = 15000
    criterion: int = CRITERION_RANK
    words: int = CRITERION_WORDS
    knn: int = 10


def score_and_induce(src: torch.Tensor, tgt: torch.Tensor, mapping: torch.Tensor, ranks: Ranks, induce: bool = True) -> tuple[float, torch.Tensor | None]:
    """The unsupervised criterion of ``mapping`` and, when ``induce``, the next refinement dictionary.

    Why one function: when the criterion and the dictionary use the same words
    (the default: 15,000) they share the hubness terms and the forward CSLS
    neighbours, so each round costs four passes over a rank x rank block instead
    of seven. Only the frequent rows are mapped, never the whole vocabulary.
    """
    rank = ranks.dico
    if rank != ranks.criterion:
        score = mean_cosine_criterion(src[:ranks.criterion] @ mapping.T, tgt[:ranks.criterion], n_words=ranks.words,
                                      max_rank=ranks.criterion, knn=ranks.knn)
        pairs = induce_dictionary(unit_rows(src[:rank] @ mapping.T), unit_rows(tgt[:rank]), rank, ranks.knn) if induce else None
        return score, pairs
    mapped, target = unit_rows(src[:rank] @ mapping.T), unit_rows(tgt[:rank])
    forward, backward = csls_best(mapped, target, ranks.knn, backward=induce)
    words = min(ranks.words, forward.shape[0])
    score = float((mapped[:words] * target[forward[:words]]).sum(dim=1).mean())
    return score, mutual_pairs(forward, backward) if backward is not None else None


def refine(
    src: torch.Tensor, tgt: torch.Tensor, mapping: torch.Tensor, rounds: int, ranks: Ranks,
    history: list | None = None, start: dict[str, float | int | str] | None = None,
) -> tuple[torch.Tensor, float]:
    """Procrustes on mutual-CSLS dictionaries; returns the best mapping by the criterion (the start included).

    ``start`` is the history entry of the starting mapping; its criterion is filled in here, where it is
    computed anyway, rather than scored a second time by the caller.
    """
    history = history if history is not None else []
    best_weight = mapping
    best, pairs = score_and_induce(src, tgt, mapping, ranks, induce=rounds > 0)
    if start is not None:
        history.append({**start, "criterion": round(best, 5)})
    for round_ in range(1, rounds + 1):
        assert pairs is not None
        if len(pairs) == 0:
            logger.warning("refinement round %d: the induced dictionary is empty; stopping", round_)
            break
        mapping = procrustes(src, tgt, pairs)
        n_pairs = len(pairs)
        score, pairs = score_and_induce(src, tgt, mapping, ranks, induce=round_ < rounds)
        history.append({"step": f"refinement {round_}", "pairs": int(n_pairs), "criterion": round(score, 5)})
        logger.info("refinement %d: %d pairs, criterion %.4f", round_, n_pairs, score)
        if score > best:
            best, best_weight = score, mapping
    return best_weight, best
