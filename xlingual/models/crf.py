"""A linear-chain CRF for padded, batch-first sequences, vectorised over time where it can be.

Both models score tag sequences with :class:`MaskedCrf`. It computes what
pytorch-crf (:class:`torchcrf.CRF`, batch-first) computes, with the same
parameters (``start_transitions``, ``end_transitions``, ``transitions``, same
shapes, same initialisation order and range, uniform in [-0.1, 0.1]), so
checkpoints written with either load into the other; it differs in how many
tensor operations it takes, which is what a training step on a GPU pays for:

* the gold-path score is a handful of gathers over the whole batch, no loop
  over time (pytorch-crf: ~6 operations per time step);
* the log-partition multiplies the per-step transition matrices (scaled
  exponentials in float64) as a balanced tree: ``ceil(log2 T)`` levels of a
  batched matrix product and a division each, instead of ~8 operations for
  each of the ``T`` steps. A masked (padding) step is the identity matrix,
  which is exactly pytorch-crf's "keep the previous score";
* Viterbi keeps its loop over time (a max with its argmax is not
  associative with a cheap backtrace) but at three operations per step, and
  backtracks once on the host with NumPy instead of one ``.item()`` per tag
  and sequence (pytorch-crf: B x T device-to-host reads per batch).

Conventions the models share:

* batch-first tensors, masks converted to ``bool``;
* the mask must be on at time step 0 for every sequence (UMT keeps
  ``[CLS]`` there, ACN never has empty sequences). pytorch-crf checks this
  with a host-device synchronisation on every call; here it is the caller's
  precondition, checked by the models' tests rather than on every step;
* the loss is the *negative* log-likelihood with an explicit reduction
  (``"mean"`` over the batch as in the original UMT, ``"sum"`` as in the
  CMNER copy, ``"token_mean"`` or ``"none"``), computed in float32;
* decoding returns one list of tag ids per sequence, as long as its mask's
  ``True`` count (masks are prefixes in both models).

:class:`ReferenceCrf` is the pytorch-crf implementation behind the same
interface: the tests compare against it and ``benchmarks/bench_ops.py``
measures the difference.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchcrf import CRF

REDUCTIONS = ("mean", "sum", "token_mean", "none")

def _reduce(log_likelihood: torch.Tensor, mask: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return log_likelihood
    if reduction == "sum":
        return log_likelihood.sum()
    if reduction == "mean":
        return log_likelihood.mean()
    return log_likelihood.sum() / mask.float().sum()


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, not {reduction!r}")


class MaskedCrf(nn.Module):
    """Batch-first linear-chain CRF with pytorch-crf's parameters and results (see the module docstring)."""

    def __init__(self, num_tags: int) -> None:
        if num_tags <= 0:
            raise ValueError(f"invalid number of tags: {num_tags}")
        super().__init__()
        self.num_tags = num_tags
        self.start_transitions = nn.Parameter(torch.empty(num_tags))
        self.end_transitions = nn.Parameter(torch.empty(num_tags))
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """pytorch-crf's initialisation, in its order: a seeded model starts from the same weights as before."""
        nn.init.uniform_(self.start_transitions, -0.1, 0.1)
        nn.init.uniform_(self.end_transitions, -0.1, 0.1)
        nn.init.uniform_(self.transitions, -0.1, 0.1)

    def extra_repr(self) -> str:
        return f"num_tags={self.num_tags}"

    # ------------------------------------------------------------------ training

    def nll(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """Negative log-likelihood of ``tags`` (B, T) under ``emissions`` (B, T, num_tags)."""
        _check_reduction(reduction)
        # The log-partition is a log-sum-exp over many paths: float32 keeps it stable under autocast.
        emissions, tags, mask = emissions.float(), tags.long(), mask.bool()
        log_likelihood = self.gold_score(emissions, tags, mask) - log_partitions([self], [emissions], mask)[0]
        return -_reduce(log_likelihood, mask, reduction)

    def gold_score(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Score of the given tag paths, (B,): start + emissions + transitions (inside the mask) + end."""
        maskf = mask.to(emissions.dtype)
        emitted = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)  # (B, T)
        moved = self.transitions[tags[:, :-1], tags[:, 1:]]  # (B, T-1)
        last = tags.gather(1, (mask.sum(1) - 1).unsqueeze(1)).squeeze(1)
        return (self.start_transitions[tags[:, 0]] + (emitted * maskf).sum(1)
                + (moved * maskf[:, 1:]).sum(1) + self.end_transitions[last])

    def log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """log Z per sequence, (B,) (see :func:`log_partitions`)."""
        return log_partitions([self], [emissions], mask)[0]

    # ------------------------------------------------------------------ decoding

    @torch.no_grad()
    def viterbi(self, emissions: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        """The best tag-id sequence of each sequence; each list is as long as its mask's true count."""
        emissions, mask = emissions.float(), mask.bool()
        score = self.start_transitions + emissions[:, 0]
        history = []
        for emission, on in zip(emissions.unbind(1)[1:], mask.unbind(1)[1:]):
            best, index = (score.unsqueeze(2) + self.transitions + emission.unsqueeze(1)).max(dim=1)
            score = torch.where(on.unsqueeze(1), best, score)
            history.append(index)
        last = (score + self.end_transitions).argmax(dim=1)
        ends = mask.sum(1) - 1
        # One device-to-host copy, then the backtrace runs on the host over the whole batch at once.
        if history:
            pointers = torch.stack(history, dim=1).cpu().numpy()  # (B, T-1, K)
        else:
            pointers = np.zeros((emissions.shape[0], 0, self.num_tags), dtype=np.int64)
        return backtrace(pointers, last.cpu().numpy(), ends.cpu().numpy())


def log_partitions(crfs: Sequence[MaskedCrf], emissions: Sequence[torch.Tensor], mask: torch.Tensor) -> list[torch.Tensor]:
    """log Z per sequence for each CRF over the same mask, all computed in one tree of matrix products.

    Each step's matrix ``exp(transitions + emissions[t] - shift)`` is kept in
    float64 with its log-scale ``shift`` on the side; a level of the tree
    multiplies neighbouring matrices (one batched matrix product), divides
    each product by its largest entry and adds that entry's log to the
    scale. Scales are constants to autograd (the result does not depend on
    them). An entry underflows only when it is ~700 nats below its matrix's
    largest one, beyond float32's resolution of log Z. Several CRFs (UMT's
    two) share the tree: a CRF with fewer tags gets zero rows and columns,
    states no path can reach, so each result is exactly its own.
    """
    batch, length = mask.shape
    alphas = [crf.start_transitions + e[:, 0] for crf, e in zip(crfs, emissions)]
    if length == 1:
        return [torch.logsumexp(alpha + crf.end_transitions, dim=1) for crf, alpha in zip(crfs, alphas)]
    # Padding to a power of two with identity steps lets every level pair all its matrices.
    size = 1 << (length - 2).bit_length()
    on = F.pad(mask[:, 1:], (0, size - length + 1))  # (B, size): masked and padding steps are identities
    tags = max(crf.num_tags for crf in crfs)
    blocks, scales = [], []
    for crf, e in zip(crfs, emissions):
        steps = F.pad(e[:, 1:].double().unsqueeze(2) + crf.transitions.double(), (0, 0, 0, 0, 0, size - length + 1))
        with torch.no_grad():
            scale = torch.where(on, steps.amax(dim=(2, 3)), 0.0)
        identity = torch.eye(crf.num_tags, dtype=steps.dtype, device=steps.device)
        block = torch.where(on[:, :, None, None], torch.exp(steps - scale[:, :, None, None]), identity)
        blocks.append(F.pad(block, (0, tags - crf.num_tags, 0, tags - crf.num_tags)) if crf.num_tags < tags else block)
        scales.append(scale)
    matrices = torch.cat(blocks).flatten(0, 1) if len(blocks) > 1 else blocks[0].flatten(0, 1)
    scale = torch.cat(scales).flatten() if len(scales) > 1 else scales[0].flatten()
    while matrices.shape[0] > batch * len(crfs):
        # Two levels per normalisation: four neighbouring matrices into one (the first level alone when
        # the count is not a multiple of four). Between normalisations entries stay within [e^-700, 13^3].
        group = 4 if (matrices.shape[0] // (batch * len(crfs))) % 4 == 0 else 2
        first, second = matrices.unflatten(0, (-1, 2)).unbind(1)
        matrices = torch.bmm(first, second)
        if group == 4:
            first, second = matrices.unflatten(0, (-1, 2)).unbind(1)
            matrices = torch.bmm(first, second)
        with torch.no_grad():
            largest = matrices.amax(dim=(1, 2), keepdim=True).clamp_min(torch.finfo(matrices.dtype).tiny)
            scale = scale.view(-1, group).sum(1) + largest.view(-1).log()
        matrices = matrices / largest
    results = []
    for index, (crf, alpha) in enumerate(zip(crfs, alphas)):
        rows = slice(index * batch, (index + 1) * batch)
        with torch.no_grad():
            alpha_scale, end_scale = alpha.amax(dim=1), crf.end_transitions.amax()
        first = torch.exp(alpha.double() - alpha_scale[:, None])  # (B, K)
        last = torch.exp(crf.end_transitions.double() - end_scale)  # (K,)
        product = matrices[rows, : crf.num_tags, : crf.num_tags] if crf.num_tags < tags else matrices[rows]
        total = torch.bmm(first.unsqueeze(1), product).squeeze(1) @ last  # (B,)
        results.append((total.log() + scale[rows] + alpha_scale + end_scale).to(alpha.dtype))
    return results


def joint_nll(crfs: Sequence[nn.Module], emissions: Sequence[torch.Tensor], tags: Sequence[torch.Tensor], mask: torch.Tensor,
              reduction: str = "mean") -> list[torch.Tensor]:
    """Each CRF's negative log-likelihood over the same mask; :class:`MaskedCrf` s share one log-partition tree."""
    if not all(isinstance(crf, MaskedCrf) for crf in crfs):  # e.g. ReferenceCrf
        return [crf.nll(e, t, mask, reduction) for crf, e, t in zip(crfs, emissions, tags)]
    _check_reduction(reduction)
    emissions = [e.float() for e in emissions]
    mask = mask.bool()
    partitions = log_partitions(crfs, emissions, mask)
    return [-_reduce(crf.gold_score(e, t.long(), mask) - z, mask, reduction) for crf, e, t, z in zip(crfs, emissions, tags, partitions)]


def backtrace(pointers: np.ndarray, last: np.ndarray, ends: np.ndarray) -> list[list[int]]:
    """Tag paths from Viterbi back-pointers (B, T-1, K), each sequence's best last tag and its last index."""
    batch, width = pointers.shape[0], pointers.shape[1] + 1
    rows = np.arange(batch)
    paths = np.zeros((batch, width), dtype=np.int64)
    current = last.astype(np.int64)
    for t in range(width - 1, -1, -1):
        # Beyond its end a sequence just carries its best last tag down to its end.
        paths[:, t] = current
        if t:
            current = np.where(t <= ends, pointers[rows, t - 1, current], current)
    return [paths[b, : ends[b] + 1].tolist() for b in range(batch)]


class ReferenceCrf(CRF):
    """pytorch-crf (batch-first) behind :class:`MaskedCrf`'s interface; same parameter names, so state dicts move between them."""

    def __init__(self, num_tags: int) -> None:
        super().__init__(num_tags, batch_first=True)

    def nll(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        _check_reduction(reduction)
        return -self(emissions.float(), tags.long(), mask=mask.bool(), reduction=reduction)

    @torch.no_grad()
    def viterbi(self, emissions: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        return self.decode(emissions.float(), mask=mask.bool())


__all__ = ["REDUCTIONS", "MaskedCrf", "ReferenceCrf", "backtrace", "joint_nll", "log_partitions"]
