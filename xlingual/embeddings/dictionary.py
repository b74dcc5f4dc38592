"""Bilingual dictionaries: MUSE's ``src tgt`` files, identical strings, and induced ones for refinement."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from xlingual.embeddings.similarity import mean_topk_similarity, topk_scores
from xlingual.embeddings.vectors import Vectors
from xlingual.errors import DataFormatError

logger = logging.getLogger(__name__)

IDENTICAL = "identical"


@dataclass
class Dictionary:
    """Pairs of row indices (source row, target row) plus how many file pairs had no vector."""

    pairs: torch.Tensor  # (n, 2) long
    skipped: int = 0
    source: str = ""

    def __len__(self) -> int:
        return int(self.pairs.shape[0])


def read_dictionary(path: str | Path, src: Vectors, tgt: Vectors) -> Dictionary:
    """Read a MUSE dictionary (one ``src tgt`` pair per line, whitespace-separated).

    Pairs whose words have no vector are skipped and counted; a file with no
    usable pair is an error, since every later number would be meaningless.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, None, "dictionary file not found")
    src_index, tgt_index = src.index(), tgt.index()
    pairs: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    skipped = 0
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2:
                raise DataFormatError(path, number, f"expected 'source target' (2 fields), found {len(parts)}")
            i, j = src_index.get(parts[0]), tgt_index.get(parts[1])
            if i is None or j is None:
                skipped += 1
                continue
            if (i, j) not in seen:
                seen.add((i, j))
                pairs.append((i, j))
    if not pairs:
        raise DataFormatError(path, None, f"no pair has vectors on both sides ({skipped} pairs skipped): wrong languages or file order?")
    logger.info("%s: %d pairs with vectors, %d skipped", path, len(pairs), skipped)
    return Dictionary(torch.tensor(pairs, dtype=torch.long), skipped, str(path))


def identical_dictionary(src: Vectors, tgt: Vectors) -> Dictionary:
    """Words spelled the same on both sides (digits, Latin names, punctuation): MUSE's ``identical_char`` seed."""
    tgt_index = tgt.index()
    pairs = [(i, tgt_index[w]) for i, w in enumerate(src.words) if w in tgt_index]
    if not pairs:
        raise DataFormatError(None, None, "no word is spelled the same in both vocabularies; give a seed dictionary file")
    return Dictionary(torch.tensor(pairs, dtype=torch.long), 0, IDENTICAL)


def csls_best(src: torch.Tensor, tgt: torch.Tensor, knn: int = 10, backward: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Best CSLS target of every source row and (when ``backward``) best CSLS source of every target row.

    ``src`` and ``tgt`` are unit rows, already cut to the words that count. One
    set of hubness terms serves both directions, so callers that need the
    criterion and a mutual dictionary of the same mapping pay for them once.
    """
    r_src = mean_topk_similarity(src, tgt, knn)
    r_tgt = mean_topk_similarity(tgt, src, knn)
    _, forward = topk_scores(src, tgt, 1, key_penalty=r_tgt, query_penalty=r_src)
    if not backward:
        return forward[:, 0], None
    _, back = topk_scores(tgt, src, 1, key_penalty=r_src, query_penalty=r_tgt)
    return forward[:, 0], back[:, 0]


def mutual_pairs(forward: torch.Tensor, backward: torch.Tensor) -> torch.Tensor:
    """Pairs (i, forward[i]) whose target's best source is i again."""
    keep = backward[forward] == torch.arange(forward.shape[0], device=forward.device)
    return torch.stack([torch.arange(forward.shape[0], device=forward.device)[keep], forward[keep]], dim=1)


def induce_dictionary(src: torch.Tensor, tgt: torch.Tensor, max_rank: int = 15000, knn: int = 10, mode: str = "S2T&T2S") -> torch.Tensor:
    """Translation pairs among the ``max_rank`` most frequent words by CSLS: ``S2T``, ``T2S`` or mutual (``S2T&T2S``).

    ``src`` and ``tgt`` are unit rows in the shared space. The hubness terms are
    estimated within the same frequent words (MUSE uses the whole vocabulary),
    which keeps every refinement round at max_rank x max_rank.
    """
    if mode not in ("S2T", "T2S", "S2T&T2S"):
        raise ValueError(f"unknown mode {mode}")
    src, tgt = src[:max_rank], tgt[:max_rank]
    if mode == "T2S":
        best, _ = csls_best(tgt, src, knn, backward=False)
        return torch.stack([best, torch.arange(tgt.shape[0], device=tgt.device)], dim=1)
    forward, backward = csls_best(src, tgt, knn, backward=mode != "S2T")
    if backward is None:
        return torch.stack([torch.arange(src.shape[0], device=src.device), forward], dim=1)
    return mutual_pairs(forward, backward)
