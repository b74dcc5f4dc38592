"""Map source vectors into the target space, as MUSE does (Conneau et al. 2018).

* supervised: Procrustes on a seed dictionary (a MUSE ``src tgt`` file, or
  ``identical`` for words spelled the same on both sides);
* unsupervised: adversarial training, no dictionary;

then ``refinement`` rounds of Procrustes on a dictionary induced from mutual
CSLS nearest neighbours among frequent words. Every candidate mapping is
scored with MUSE's unsupervised criterion and the best one is kept, so no test
dictionary leaks into model selection. When the criterion ends near where the
identity mapping started, the alignment is reported as suspect (a log warning
and ``"suspect": true`` in the summary): unsupervised en-zh is known to fail
silently.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from xlingual.embeddings.adversarial import AdversarialOptions, adversarial_mapping
from xlingual.embeddings.dictionary import (
    IDENTICAL,
    Dictionary,
    csls_best,
    identical_dictionary,
    induce_dictionary,
    mutual_pairs,
    read_dictionary,
)
from xlingual.embeddings.evaluate import mean_cosine_criterion
from xlingual.embeddings.normalize import (
    DEFAULT_NORMALIZE,
    normalize_embeddings,
    parse_steps,
)
from xlingual.embeddings.paths import AlignedPaths
from xlingual.embeddings.procrustes import procrustes
from xlingual.embeddings.similarity import as_tensor, default_device, unit_rows
from xlingual.embeddings.vectors import Vectors, load_vectors, save_vectors
from xlingual.errors import ConfigError
from xlingual.io import atomic_open, atomic_write_json

logger = logging.getLogger(__name__)

SUSPECT_GAIN = 0.05
"""A criterion gain over the identity mapping below this marks an alignment as suspect."""
CRITERION_RANK = 15000
"""MUSE's criterion looks for translations among this many most frequent target words (``mean_cosine_criterion``)."""
CRITERION_WORDS = 10000
"""... and averages over this many most frequent source words."""


@dataclass(frozen=True)
class AlignOptions:
    normalize: str = DEFAULT_NORMALIZE
    refinement: int = 5
    dico_max_rank: int = 15000
    csls_knn: int = 10
    adversarial: AdversarialOptions = field(default_factory=AdversarialOptions)
    restarts: int = 1
    """Unsupervised only: adversarial runs with seeds ``seed``, ``seed + 1``, …; the criterion picks one.

    Adversarial training fails on some seeds (the criterion then stays clearly
    below a successful run's); restarts trade time for reliability without
    looking at any dictionary.
    """


@dataclass
class AlignResult:
    """The mapping and the figures ``alignment.json`` records."""

    mapping: torch.Tensor
    method: str
    criterion: float
    initial_criterion: float
    history: list[dict[str, float | int | str]]
    seed_pairs: int = 0

    @property
    def suspect(self) -> bool:
        return self.criterion - self.initial_criterion < SUSPECT_GAIN


def _score_and_induce(src: torch.Tensor, tgt: torch.Tensor, mapping: torch.Tensor, options: AlignOptions, induce: bool = True) -> tuple[float, torch.Tensor | None]:
    """The unsupervised criterion of ``mapping`` and, when ``induce``, the next refinement dictionary.

    Why one function: with the default ranks (criterion and dictionary both over
    the 15,000 most frequent words) they share the hubness terms and the forward
    CSLS neighbours, so each round costs four passes over a rank x rank block
    instead of seven. Only the frequent rows are mapped, never the whole vocabulary.
    """
    rank = options.dico_max_rank
    if rank != CRITERION_RANK:
        score = mean_cosine_criterion(src[:CRITERION_RANK] @ mapping.T, tgt[:CRITERION_RANK], knn=options.csls_knn)
        pairs = induce_dictionary(unit_rows(src[:rank] @ mapping.T), unit_rows(tgt[:rank]), rank, options.csls_knn) if induce else None
        return score, pairs
    mapped, target = unit_rows(src[:rank] @ mapping.T), unit_rows(tgt[:rank])
    forward, backward = csls_best(mapped, target, options.csls_knn, backward=induce)
    words = min(CRITERION_WORDS, forward.shape[0])
    score = float((mapped[:words] * target[forward[:words]]).sum(dim=1).mean())
    return score, mutual_pairs(forward, backward) if backward is not None else None


def _refine(
    src: torch.Tensor, tgt: torch.Tensor, mapping: torch.Tensor, options: AlignOptions, history: list,
    start: dict[str, float | int | str] | None = None,
) -> tuple[torch.Tensor, float]:
    """Procrustes on mutual-CSLS dictionaries; returns the best mapping by the criterion (the start included).

    ``start`` is the history entry of the starting mapping; its criterion is filled in here, where it is
    computed anyway, rather than scored a second time by the caller.
    """
    best_weight = mapping
    best, pairs = _score_and_induce(src, tgt, mapping, options, induce=options.refinement > 0)
    if start is not None:
        history.append({**start, "criterion": round(best, 5)})
    for round_ in range(1, options.refinement + 1):
        assert pairs is not None
        if len(pairs) == 0:
            logger.warning("refinement round %d: the induced dictionary is empty; stopping", round_)
            break
        mapping = procrustes(src, tgt, pairs)
        n_pairs = len(pairs)
        score, pairs = _score_and_induce(src, tgt, mapping, options, induce=round_ < options.refinement)
        history.append({"step": f"refinement {round_}", "pairs": int(n_pairs), "criterion": round(score, 5)})
        logger.info("refinement %d: %d pairs, criterion %.4f", round_, n_pairs, score)
        if score > best:
            best, best_weight = score, mapping
    return best_weight, best


def _best_adversarial_restart(src: torch.Tensor, tgt: torch.Tensor, options: AlignOptions, history: list) -> tuple[torch.Tensor, float]:
    """Adversarial training + refinement ``options.restarts`` times; the mapping with the best criterion wins."""
    if options.restarts < 1:
        raise ConfigError(f"--restarts must be at least 1, got {options.restarts}")
    best_mapping: torch.Tensor | None = None
    best = float("-inf")
    for restart in range(options.restarts):
        seed = options.adversarial.seed + restart
        adv = adversarial_mapping(src, tgt, replace(options.adversarial, seed=seed))
        tag = f"seed {seed}: " if options.restarts > 1 else ""
        history += [{"step": f"{tag}adversarial {i + 1}", "criterion": round(s, 5)} for i, s in enumerate(adv.history)]
        mapping, score = _refine(src, tgt, adv.mapping, options, history, None)
        if options.restarts > 1:
            logger.info("restart with seed %d: criterion %.4f", seed, score)
        if score > best:
            best_mapping, best = mapping, score
    assert best_mapping is not None
    return best_mapping, best


def align_embeddings(
    src: torch.Tensor, tgt: torch.Tensor, dictionary: Dictionary | None = None, options: AlignOptions | None = None,
) -> AlignResult:
    """Learn W for already-normalised tensors; supervised when ``dictionary`` is given."""
    options = options or AlignOptions()
    if src.shape[1] != tgt.shape[1]:
        raise ConfigError(f"source vectors have dimension {src.shape[1]} but target vectors {tgt.shape[1]}")
    initial = mean_cosine_criterion(src[:CRITERION_RANK], tgt[:CRITERION_RANK], knn=options.csls_knn)
    history: list[dict[str, float | int | str]] = [{"step": "identity", "criterion": round(initial, 5)}]
    if dictionary is not None:
        start = procrustes(src, tgt, dictionary.pairs.to(src.device))
        mapping, best = _refine(src, tgt, start, options, history, {"step": "procrustes", "pairs": len(dictionary)})
        method = "supervised"
    else:
        mapping, best = _best_adversarial_restart(src, tgt, options, history)
        method = "unsupervised"
    result = AlignResult(mapping, method, best, initial, history, len(dictionary) if dictionary is not None else 0)
    if result.suspect:
        logger.warning(
            "ALIGNMENT LOOKS FAILED: the unsupervised criterion went from %.4f (identity) to only %.4f. "
            "Try --normalize renorm,center,renorm, --restarts 5, a seed dictionary (--dico FILE or --dico identical), or more data.",
            initial, best,
        )
    return result


def align(
    src_path: str | Path, tgt_path: str | Path, out_dir: str | Path, dico: str | None = None,
    options: AlignOptions | None = None, max_vocab: int | None = 200_000,
) -> AlignResult:
    """Align two ``.vec``/``.bin`` files and write ``vectors-src.vec``, ``vectors-tgt.vec``, ``mapping.npy``, ``alignment.json``.

    ``dico`` is a MUSE dictionary file, ``"identical"``, or None (unsupervised).
    The written vectors are normalised as ``options.normalize`` says, the source
    ones multiplied by the mapping, so both files live in one space.
    """
    options = options or AlignOptions()
    parse_steps(options.normalize)
    started = time.perf_counter()
    src_vectors = load_vectors(src_path, max_vocab)
    tgt_vectors = load_vectors(tgt_path, max_vocab)
    dictionary = None
    if dico is not None:
        dictionary = identical_dictionary(src_vectors, tgt_vectors) if dico == IDENTICAL else read_dictionary(dico, src_vectors, tgt_vectors)
    device = default_device()
    src = normalize_embeddings(as_tensor(src_vectors.matrix, device), options.normalize)
    tgt = normalize_embeddings(as_tensor(tgt_vectors.matrix, device), options.normalize)
    result = align_embeddings(src, tgt, dictionary, options)
    paths = AlignedPaths(Path(out_dir))
    paths.root.mkdir(parents=True, exist_ok=True)
    mapped = (src @ result.mapping.T).cpu().numpy()
    save_vectors(paths.src_vectors, Vectors(src_vectors.words, mapped))
    save_vectors(paths.tgt_vectors, Vectors(tgt_vectors.words, tgt.cpu().numpy()))
    with atomic_open(paths.mapping, "wb") as handle:
        np.save(handle, result.mapping.cpu().numpy())
    atomic_write_json(paths.summary, {
        "method": result.method, "src_emb": str(src_path), "tgt_emb": str(tgt_path),
        "dictionary": dictionary.source if dictionary is not None else None,
        "seed_pairs": result.seed_pairs, "seed_pairs_skipped": dictionary.skipped if dictionary is not None else 0,
        "src_words": len(src_vectors), "tgt_words": len(tgt_vectors), "dim": src_vectors.dim,
        "criterion": round(result.criterion, 5), "initial_criterion": round(result.initial_criterion, 5),
        "suspect": result.suspect, "history": result.history, "options": asdict(options), "device": str(device),
        "seconds": round(time.perf_counter() - started, 2),
    })
    logger.info("aligned vectors written to %s", paths.root)
    return result
