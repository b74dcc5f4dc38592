"""The options of ``xl embeddings train`` and ``xl embeddings align``, with their defaults, in one place.

The CLI builds its options from these classes (a field declared with
:func:`~xlingual.option_fields.option` carries its flag and help) and the
library runs with them; this module imports nothing heavy, so ``xl --help``
can show them without loading fastText or torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xlingual.option_fields import option

DEFAULT_NORMALIZE = "renorm,center,renorm"

DEFAULT_MAX_VOCAB = 200_000
"""Vectors read from each .vec file when aligning or evaluating: MUSE's default (the most frequent words first)."""

DEFAULT_RESTARTS = 5
"""About half of the adversarial runs fail on hard data; five restarts leave about a 3% chance that all do."""


@dataclass(frozen=True)
class TrainOptions:
    """fastText skipgram settings; defaults follow the CMNER paper's 300-d vectors."""

    dim: int = option(300, "--dim", "Vector dimension.")
    epoch: int = option(5, "--epoch", "Training epochs.")
    min_count: int = option(2, "--min-count", "Ignore units seen fewer times.")
    window: int = 5
    neg: int = 5
    lr: float = option(0.05, "--lr", "Learning rate.")
    minn: int = 3
    maxn: int = 6
    bucket: int = option(100_000, "--bucket", "Hashed character n-gram rows (word units only).")
    threads: int = option(2, "--threads", "Training threads.")
    sampling: float = 1e-4
    """fastText's sub-sampling threshold ``t``; raised on tiny corpora (see :func:`effective_sampling`)."""


@dataclass(frozen=True)
class AdversarialOptions:
    """MUSE's defaults (``unsupervised.py``)."""

    epochs: int = option(5, "--adv-epochs", "Adversarial epochs (unsupervised).")
    epoch_size: int = option(1_000_000, "--adv-epoch-size", "Samples per adversarial epoch.")
    batch_size: int = 32
    most_frequent: int = option(75_000, "--adv-most-frequent", "Discriminator sees only these frequent words.")
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
    seed: int = option(0, "--seed", "Random seed of the adversarial training.")


@dataclass(frozen=True)
class AlignOptions:
    """How MUSE aligns (``supervised.py`` / ``unsupervised.py``): normalisation, Procrustes refinement rounds, dictionary ranks."""

    normalize: str = option(DEFAULT_NORMALIZE, "--normalize", "Comma-separated center/renorm steps ('' for none).")
    refinement: int = option(5, "--refinement", "Procrustes refinement rounds.")
    dico_max_rank: int = option(15000, "--dico-max-rank", "Induced dictionaries use only this many frequent words.")
    csls_knn: int = 10
    adversarial: AdversarialOptions = field(default_factory=AdversarialOptions)
    restarts: int = option(DEFAULT_RESTARTS, "--restarts", "Unsupervised: adversarial runs with seeds seed, seed+1, …; MUSE's criterion keeps the best (MUSE: 1).")
    """Unsupervised only: adversarial runs with seeds ``seed``, ``seed + 1``, …; the criterion picks one.

    MUSE runs once (``restarts=1``). Adversarial training fails on some seeds
    (the criterion then stays clearly below a successful run's); restarts
    trade time for reliability without looking at any dictionary.
    """


__all__ = ["DEFAULT_MAX_VOCAB", "DEFAULT_NORMALIZE", "DEFAULT_RESTARTS", "AdversarialOptions", "AlignOptions", "TrainOptions"]
