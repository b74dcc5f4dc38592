"""The options of ``xl embeddings train`` and ``xl embeddings align``, with their defaults, in one place.

The CLI reads its defaults from these classes and the library runs with
them; this module imports nothing heavy, so ``xl --help`` can show them
without loading fastText or torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_NORMALIZE = "renorm,center,renorm"

DEFAULT_MAX_VOCAB = 200_000
"""Vectors read from each .vec file when aligning or evaluating: MUSE's default (the most frequent words first)."""

DEFAULT_RESTARTS = 5
"""About half of the adversarial runs fail on hard data; five restarts leave about a 3% chance that all do."""


@dataclass(frozen=True)
class TrainOptions:
    """fastText skipgram settings; defaults follow the CMNER paper's 300-d vectors."""

    dim: int = 300
    epoch: int = 5
    min_count: int = 2
    window: int = 5
    neg: int = 5
    lr: float = 0.05
    minn: int = 3
    maxn: int = 6
    bucket: int = 100_000
    threads: int = 2
    sampling: float = 1e-4
    """fastText's sub-sampling threshold ``t``; raised on tiny corpora (see :func:`effective_sampling`)."""


@dataclass(frozen=True)
class AdversarialOptions:
    """MUSE's defaults (``unsupervised.py``)."""

    epochs: int = 5
    epoch_size: int = 1_000_000
    batch_size: int = 32
    most_frequent: int = 75_000
    dis_layers: int = 2
    dis_hidden: int = 2048
    dis_dropout: float = 0.0
    dis_input_dropout: float = 0.1
    dis_steps: int = 5
    dis_lr: float = 0.1
    map_lr: float = 0.1
    lr_decay: float = 0.98
    lr_shrink: float = 0.5
    min_lr: float = 1e-6
    smooth: float = 0.1
    map_beta: float = 0.001
    dis_clip: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class AlignOptions:
    """How MUSE aligns (``supervised.py`` / ``unsupervised.py``): normalisation, Procrustes refinement rounds, dictionary ranks."""

    normalize: str = DEFAULT_NORMALIZE
    refinement: int = 5
    dico_max_rank: int = 15000
    csls_knn: int = 10
    adversarial: AdversarialOptions = field(default_factory=AdversarialOptions)
    restarts: int = DEFAULT_RESTARTS
    """Unsupervised only: adversarial runs with seeds ``seed``, ``seed + 1``, …; the criterion picks one.

    MUSE runs once (``restarts=1``). Adversarial training fails on some seeds
    (the criterion then stays clearly below a successful run's); restarts
    trade time for reliability without looking at any dictionary.
    """


__all__ = ["DEFAULT_MAX_VOCAB", "DEFAULT_NORMALIZE", "DEFAULT_RESTARTS", "AdversarialOptions", "AlignOptions", "TrainOptions"]
