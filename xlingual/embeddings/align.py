"""Map source vectors into the target space, as MUSE does (Conneau et al. 2018).

* supervised: Procrustes on a seed dictionary (a MUSE ``src tgt`` file, or
  ``identical`` for words spelled the same on both sides);
* unsupervised: adversarial training, no dictionary, restarted with several
  seeds by default (``restarts``); MUSE's criterion keeps the best run;

then ``refinement`` rounds of Procrustes on a dictionary induced from mutual
CSLS nearest neighbours among frequent words. Every candidate mapping is
scored with MUSE's unsupervised criterion and the best one is kept, so no test
dictionary leaks into model selection. The chosen mapping then goes through
the failure check (:mod:`xlingual.embeddings.check`); a failed check is a
loud warning and a non-zero ``suspect`` count in the summary, because
unsupervised en-zh is known to fail silently.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from xlingual.embeddings.adversarial import adversarial_mapping
from xlingual.embeddings.options import DEFAULT_MAX_VOCAB, AlignOptions
from xlingual.embeddings.check import FailureCheck, check_alignment
from xlingual.embeddings.dictionary import IDENTICAL, Dictionary, identical_dictionary, read_dictionary
from xlingual.embeddings.evaluate import mean_cosine_criterion
from xlingual.embeddings.paths import ALIGNMENT_SUSPECT
from xlingual.embeddings.normalize import normalize_embeddings, parse_steps
from xlingual.workspace import AlignedPaths
from xlingual.embeddings.procrustes import procrustes
from xlingual.embeddings.refine import CRITERION_RANK, CRITERION_WORDS, Ranks, refine
from xlingual.embeddings.similarity import as_tensor, default_device
from xlingual.embeddings.vectors import Vectors, load_vectors, save_vectors
from xlingual.errors import ConfigError
from xlingual.io import atomic_open, atomic_write_json
from xlingual.lock import locks_output
from xlingual.output_set import MANIFEST_KEY, StagedSet, describe_files

logger = logging.getLogger(__name__)


def _ranks(options: AlignOptions) -> Ranks:
    """The word ranks refinement and the criterion read, from the options."""
    return Ranks(dico=options.dico_max_rank, criterion=CRITERION_RANK, words=CRITERION_WORDS, knn=options.csls_knn)




@dataclass
class Candidate:
    """One adversarial restart after refinement: its seed, mapping and criterion."""

    seed: int
    mapping: torch.Tensor
    criterion: float


@dataclass
class AlignResult:
    """The mapping and the figures ``alignment.json`` records."""

    mapping: torch.Tensor
    method: str
    criterion: float
    initial_criterion: float
    history: list[dict[str, float | int | str]]
    seed_pairs: int = 0
    check: FailureCheck | None = None
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def suspect(self) -> int:
        """How many failure checks fired (0: none; the alignment looks sound)."""
        return self.check.suspect if self.check is not None else 0

    def summary(self) -> dict:
        """The verdict as ``alignment.json`` and ``--json`` print it."""
        return {
            "method": self.method, "criterion": round(self.criterion, 5), "initial_criterion": round(self.initial_criterion, 5),
            "suspect": self.suspect, "suspect_reasons": list(self.check.reasons) if self.check else [],
            "check": self.check.to_dict() if self.check else None,
            "restarts": [{"seed": c.seed, "criterion": round(c.criterion, 5)} for c in self.candidates],
        }


def _adversarial_candidates(src: torch.Tensor, tgt: torch.Tensor, options: AlignOptions, history: list) -> list[Candidate]:
    """Adversarial training + refinement ``options.restarts`` times, one candidate per seed."""
    candidates = []
    for restart in range(options.restarts):
        seed = options.adversarial.seed + restart
        adv = adversarial_mapping(src, tgt, replace(options.adversarial, seed=seed))
        tag = f"seed {seed}: " if options.restarts > 1 else ""
        history += [{"step": f"{tag}adversarial {i + 1}", "criterion": round(s, 5)} for i, s in enumerate(adv.history)]
        mapping, score = refine(src, tgt, adv.mapping, options.refinement, _ranks(options), history)
        logger.info("restart with seed %d: criterion %.4f", seed, score)
        candidates.append(Candidate(seed, mapping, score))
    return candidates


def align_embeddings(
    src: torch.Tensor, tgt: torch.Tensor, dictionary: Dictionary | None = None, options: AlignOptions | None = None,
) -> AlignResult:
    """Learn W for already-normalised tensors; supervised when ``dictionary`` is given."""
    options = options or AlignOptions()
    if src.shape[1] != tgt.shape[1]:
        raise ConfigError(f"source vectors have dimension {src.shape[1]} but target vectors {tgt.shape[1]}")
    if dictionary is None and options.restarts < 1:
        raise ConfigError(f"--restarts must be at least 1, got {options.restarts}")
    initial = mean_cosine_criterion(src[:CRITERION_RANK], tgt[:CRITERION_RANK], knn=options.csls_knn)
    history: list[dict[str, float | int | str]] = [{"step": "identity", "criterion": round(initial, 5)}]
    candidates: list[Candidate] = []
    if dictionary is not None:
        start = procrustes(src, tgt, dictionary.pairs.to(src.device))
        mapping, best = refine(src, tgt, start, options.refinement, _ranks(options), history, {"step": "procrustes", "pairs": len(dictionary)})
        method = "supervised"
    else:
        candidates = _adversarial_candidates(src, tgt, options, history)
        chosen = max(candidates, key=lambda c: c.criterion)  # the first of equals: the lowest seed
        mapping, best = chosen.mapping, chosen.criterion
        method = "unsupervised"
    check = check_alignment(src, tgt, mapping, best, initial, options.refinement, options.dico_max_rank,
                            options.csls_knn, seed=options.adversarial.seed)
    result = AlignResult(mapping, method, best, initial, history, len(dictionary) if dictionary is not None else 0, check, candidates)
    if result.suspect:
        logger.warning(
            "ALIGNMENT LOOKS FAILED (%d check(s)): %s. Do not use these vectors as they are: try a seed dictionary "
            "(--dico FILE or --dico identical), more --restarts, --normalize renorm,center,renorm, or more data.",
            result.suspect, "; ".join(check.reasons), extra={ALIGNMENT_SUSPECT: True},
        )
    return result


@locks_output("out_dir")
def align(
    src_path: str | Path, tgt_path: str | Path, out_dir: str | Path, dico: str | None = None,
    options: AlignOptions | None = None, max_vocab: int | None = DEFAULT_MAX_VOCAB,
) -> AlignResult:
    """Align two ``.vec``/``.bin`` files and write ``vectors-src.vec``, ``vectors-tgt.vec``, ``mapping.npy``, ``alignment.json``.

    The four files are one output set (:mod:`xlingual.output_set`): staged,
    then moved in with ``alignment.json`` (their sizes and digests) first, so
    a reader never pairs one alignment's source vectors with another's target
    vectors, and a failed write leaves the earlier alignment as it was.

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
    summary = {
        "src_emb": str(src_path), "tgt_emb": str(tgt_path),
        "dictionary": dictionary.source if dictionary is not None else None,
        "seed_pairs": result.seed_pairs, "seed_pairs_skipped": dictionary.skipped if dictionary is not None else 0,
        "src_words": len(src_vectors), "tgt_words": len(tgt_vectors), "dim": src_vectors.dim,
        **result.summary(), "history": result.history, "options": asdict(options), "device": str(device),
    }
    mapped = (src @ result.mapping.T).cpu().numpy()
    with StagedSet(paths.root) as staged:  # the vectors of two alignments never meet in one folder
        assert staged.folder is not None
        written = AlignedPaths(staged.folder)
        save_vectors(written.src_vectors, Vectors(src_vectors.words, mapped))
        save_vectors(written.tgt_vectors, Vectors(tgt_vectors.words, tgt.cpu().numpy()))
        with atomic_open(written.mapping, "wb") as handle:
            np.save(handle, result.mapping.cpu().numpy())
        files = describe_files(written.root, (p.name for p in (written.src_vectors, written.tgt_vectors, written.mapping)))
        atomic_write_json(written.summary, {**summary, "seconds": round(time.perf_counter() - started, 2), MANIFEST_KEY: files})
        staged.commit(AlignedPaths.SUMMARY)
    logger.info("aligned vectors written to %s", paths.root)
    return result
