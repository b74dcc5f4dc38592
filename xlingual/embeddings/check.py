"""Does an alignment look failed? Dictionary-free checks against a random-rotation baseline.

Why: MUSE's criterion alone does not say whether an alignment worked. Failed
unsupervised runs end well above the identity mapping (refinement alone lifts
any start), with word-translation P@1 near zero; en-zh users of MUSE report
exactly that. What refinement reaches from *nowhere* is the honest baseline:
the check refines a random rotation the same way (same rounds, same CSLS) and
compares, among the most frequent words,

* the mean cosine of CSLS translations (MUSE's criterion at the check's rank);
* the mutual-nearest-neighbour rate: the share of source words whose CSLS
  translation translates back to them. A real alignment makes most frequent
  words mutual neighbours; a refined random rotation, like a failed run,
  leaves a small share (measured on clustered 16-d data: 1.00 for a
  recovered rotation, 0.19-0.20 for failed adversarial runs, 0.16-0.22 for
  refined random rotations).

When the random start reaches the same dictionary as the alignment (most
words translated alike), the baseline is no baseline (the problem has one
attractor) and only the identity check applies.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from xlingual.embeddings.dictionary import csls_best, mutual_pairs
from xlingual.embeddings.refine import Ranks, refine
from xlingual.embeddings.similarity import unit_rows

CHECK_RANK = 5000
"""The check looks at this many most frequent words (fewer if the dictionaries use fewer): a 5k x 5k
block keeps the baseline's refinement at about a ninth of the alignment's own."""
MIN_GAIN = 0.05
"""A criterion gain below this, over the identity or over the random-rotation baseline, is no gain."""
MUTUAL_FACTOR = 2.0
"""A real alignment's mutual-neighbour rate is several times a refined random rotation's, or (in few
dimensions, where even a random rotation leaves many mutual neighbours) at least halfway from it to 100%;
below both it is suspect."""
SAME_ATTRACTOR = 0.5
"""When the baseline translates more than this share of words like the alignment does, it found the same mapping."""


@dataclass(frozen=True)
class MappingStats:
    """Mean cosine of CSLS translations, mutual-neighbour rate, and the CSLS translation of every checked word."""

    criterion: float
    mutual_rate: float
    translations: torch.Tensor = field(repr=False)


def mapping_stats(src: torch.Tensor, tgt: torch.Tensor, mapping: torch.Tensor, rank: int, knn: int) -> MappingStats:
    mapped, target = unit_rows(src[:rank] @ mapping.T), unit_rows(tgt[:rank])
    forward, backward = csls_best(mapped, target, knn)
    assert backward is not None
    criterion = float((mapped * target[forward]).sum(dim=1).mean())
    return MappingStats(criterion, len(mutual_pairs(forward, backward)) / max(1, forward.shape[0]), forward)


@dataclass
class FailureCheck:
    """The figures behind the verdict and the reasons it is suspect (none: it passed)."""

    criterion_gain: float
    """MUSE's criterion of the chosen mapping minus the identity mapping's."""
    check_rank: int
    criterion: float
    mutual_rate: float
    baseline_criterion: float
    baseline_mutual_rate: float
    agreement_with_baseline: float
    reasons: list[str] = field(default_factory=list)

    @property
    def suspect(self) -> int:
        """How many checks failed; 0 when the alignment passed all of them."""
        return len(self.reasons)

    def to_dict(self) -> dict:
        return {key: round(value, 5) if isinstance(value, float) else value for key, value in asdict(self).items()}


def random_rotation(dim: int, seed: int, device: torch.device) -> torch.Tensor:
    """A Haar-random orthogonal matrix (QR of a Gaussian with the signs of R's diagonal fixed)."""
    generator = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
    return (q * torch.sign(torch.diagonal(r))[None, :]).to(device=device, dtype=torch.float32)


def check_alignment(
    src: torch.Tensor, tgt: torch.Tensor, mapping: torch.Tensor, criterion: float, identity_criterion: float,
    rounds: int, dico_rank: int, knn: int = 10, seed: int = 0,
) -> FailureCheck:
    """Compare ``mapping`` with a random rotation refined ``rounds`` times the same way; list what looks failed."""
    rank = min(CHECK_RANK, dico_rank, src.shape[0], tgt.shape[0])
    ranks = Ranks(dico=rank, criterion=rank, words=rank, knn=knn)
    start = random_rotation(src.shape[1], seed, src.device)
    baseline_mapping, _ = refine(src, tgt, start, rounds, ranks)
    ours = mapping_stats(src, tgt, mapping, rank, knn)
    baseline = mapping_stats(src, tgt, baseline_mapping, rank, knn)
    agreement = float((ours.translations == baseline.translations).float().mean())
    check = FailureCheck(criterion - identity_criterion, rank, ours.criterion, ours.mutual_rate,
                         baseline.criterion, baseline.mutual_rate, agreement)
    if check.criterion_gain < MIN_GAIN:
        check.reasons.append(f"MUSE's criterion gained only {check.criterion_gain:.3f} over the identity mapping")
    if agreement <= SAME_ATTRACTOR:
        if ours.criterion < baseline.criterion + MIN_GAIN:
            check.reasons.append(
                f"criterion {ours.criterion:.3f} is no better than a refined random rotation's {baseline.criterion:.3f}")
        needed = min(MUTUAL_FACTOR * baseline.mutual_rate, (1 + baseline.mutual_rate) / 2)
        if ours.mutual_rate < needed:
            check.reasons.append(
                f"{100 * ours.mutual_rate:.1f}% of frequent words are mutual nearest neighbours, against "
                f"{100 * baseline.mutual_rate:.1f}% for a refined random rotation (needed: {100 * needed:.1f}%)")
    return check
