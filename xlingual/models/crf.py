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
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchcrf import CRF

REDUCTIONS = ("mean", "sum", "token_mean", "none")

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
        return joint_nll([self], [emissions], [tags], mask, reduction)[0]

    def gold_score(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Score of the given tag paths, (B,): start + emissions + transitions (inside the mask) + end."""
        return _StackedCrf.stack([self], [emissions], [tags], mask).gold_score()[0]

    def log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """log Z per sequence, (B,) (see :meth:`_StackedCrf.log_partition`)."""
        return _StackedCrf.stack([self], [emissions], [emissions.new_zeros(mask.shape, dtype=torch.long)], mask).log_partition()[0]

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


_NEG = -1e30
"""Emission of a tag a CRF does not have, when CRFs with fewer tags are stacked with larger ones: exp() of it is 0."""


@dataclass
class _StackedCrf:
    """One or more CRFs over the same mask as one computation, each with its own parameters.

    Tensors carry a leading CRF dimension ``n``. UMT's two CRFs (13 and 7
    tags) run as one: the smaller CRF's emissions get extra tags scoring
    ``_NEG`` (no path can use them), so each result is exactly its own CRF's,
    and every operation below runs once for both.
    """

    start: torch.Tensor  # (n, K)
    end: torch.Tensor  # (n, K)
    transitions: torch.Tensor  # (n, K, K)
    emissions: torch.Tensor  # (n, B, T, K), float32
    tags: torch.Tensor  # (n, B, T), long
    mask: torch.Tensor  # (B, T), bool

    @classmethod
    def stack(cls, crfs: Sequence[MaskedCrf], emissions: Sequence[torch.Tensor], tags: Sequence[torch.Tensor], mask: torch.Tensor) -> "_StackedCrf":
        # A conversion that changes nothing is still an operator call: skip it.
        mask = mask if mask.dtype == torch.bool else mask.bool()
        emissions = [e if e.dtype == torch.float32 else e.float() for e in emissions]
        tags = [t if t.dtype == torch.long else t.long() for t in tags]
        if len(crfs) == 1:
            crf = crfs[0]
            return cls(crf.start_transitions.unsqueeze(0), crf.end_transitions.unsqueeze(0), crf.transitions.unsqueeze(0),
                       emissions[0].unsqueeze(0), tags[0].unsqueeze(0), mask)
        size = max(crf.num_tags for crf in crfs)

        def padded(tensor: torch.Tensor, dims: int, value: float = 0.0) -> torch.Tensor:
            missing = size - tensor.shape[-1]
            return F.pad(tensor, (0, missing) * dims, value=value) if missing else tensor

        return cls(
            torch.stack([padded(crf.start_transitions, 1) for crf in crfs]),
            torch.stack([padded(crf.end_transitions, 1) for crf in crfs]),
            torch.stack([padded(crf.transitions, 2) for crf in crfs]),
            torch.stack([padded(e, 1, _NEG) for e in emissions]),
            torch.stack(tags),
            mask,
        )

    def gold_score(self) -> torch.Tensor:
        """(n, B): start + emissions + transitions (inside the mask) + end of each tag path."""
        count, batch, length, num_tags = self.emissions.shape
        tags, maskf = self.tags, self.mask.to(self.emissions.dtype)
        emitted = self.emissions.gather(3, tags.unsqueeze(3)).squeeze(3)  # (n, B, T)
        pairs = (tags[:, :, :-1] * num_tags + tags[:, :, 1:]).reshape(count, -1)
        moved = self.transitions.reshape(count, -1).gather(1, pairs).view(count, batch, length - 1)
        last = tags.gather(2, (self.mask.sum(1) - 1).expand(count, batch).unsqueeze(2)).squeeze(2)  # (n, B)
        return (self.start.gather(1, tags[:, :, 0]) + (emitted * maskf).sum(2)
                + (moved * maskf[:, 1:]).sum(2) + self.end.gather(1, last))

    def log_partition(self) -> torch.Tensor:
        """log Z, (n, B): the product of the per-step transition matrices, as a balanced tree.

        Each step's matrix ``exp(transitions + emissions[t] - shift)`` is kept
        in float64 with its log-scale ``shift`` on the side; a level of the
        tree multiplies neighbouring matrices (one batched matrix product);
        every second level (but the last) divides each product by its largest
        entry and adds that entry's log to the scale. Scales are constants to autograd
        (the result does not depend on them). An entry underflows only when
        it is ~700 nats below its matrix's largest one, beyond float32's
        resolution of log Z.
        """
        count, batch, length, num_tags = self.emissions.shape
        alpha = self.start.unsqueeze(1) + self.emissions[:, :, 0]  # (n, B, K)
        if length == 1:
            return torch.logsumexp(alpha + self.end.unsqueeze(1), dim=2)
        # Padding to a power of two with identity steps lets every level pair all its matrices.
        size = 1 << (length - 2).bit_length()
        transitions = self.transitions.double().view(count, 1, 1, num_tags, num_tags)
        steps = self.emissions[:, :, 1:].double().unsqueeze(3) + transitions  # (n, B, T-1, K, K)
        steps = F.pad(steps, (0, 0, 0, 0, 0, size - length + 1))
        on = F.pad(self.mask[:, 1:], (0, size - length + 1)).view(1, batch, size, 1, 1)  # masked and padding steps: identities
        with torch.no_grad():
            scale = torch.where(on, steps.amax(dim=(3, 4), keepdim=True), 0.0)
        identity = torch.eye(num_tags, dtype=steps.dtype, device=steps.device)
        matrices = torch.where(on, torch.exp(steps - scale), identity).flatten(0, 2)
        scale = scale.flatten()
        rows = count * batch
        while matrices.shape[0] > rows:
            # Two levels per normalisation (one when the count is not a multiple of four).
            group = 4 if (matrices.shape[0] // rows) % 4 == 0 else 2
            for _ in range(group // 2):
                matrices = torch.bmm(*matrices.unflatten(0, (-1, 2)).unbind(1))
            with torch.no_grad():
                scale = scale.view(-1, group).sum(1)
                if matrices.shape[0] == rows:
                    break  # the last product's entries are already within range of the final sum
                largest = matrices.amax(dim=(1, 2), keepdim=True).clamp_min(torch.finfo(matrices.dtype).tiny)
                scale = scale + largest.view(-1).log()
            matrices = matrices / largest
        with torch.no_grad():
            alpha_scale, end_scale = alpha.amax(dim=2, keepdim=True), self.end.amax(dim=1, keepdim=True)
        first = torch.exp(alpha.double() - alpha_scale).view(rows, 1, num_tags)
        last = torch.exp(self.end.double() - end_scale).unsqueeze(1)  # (n, 1, K)
        total = (torch.bmm(first, matrices).view(count, batch, num_tags) * last).sum(2)
        return (total.log() + scale.view(count, batch) + alpha_scale.squeeze(2) + end_scale).to(self.emissions.dtype)


def joint_nll(crfs: Sequence[nn.Module], emissions: Sequence[torch.Tensor], tags: Sequence[torch.Tensor], mask: torch.Tensor,
              reduction: str = "mean") -> list[torch.Tensor]:
    """Each CRF's negative log-likelihood of its ``tags`` over the same ``mask``, computed as one (:class:`_StackedCrf`)."""
    if not all(isinstance(crf, MaskedCrf) for crf in crfs):  # e.g. ReferenceCrf
        return [crf.nll(e, t, mask, reduction) for crf, e, t in zip(crfs, emissions, tags)]
    _check_reduction(reduction)
    stacked = _StackedCrf.stack(crfs, emissions, tags, mask)
    negative = stacked.log_partition() - stacked.gold_score()  # (n, B)
    if reduction == "none":
        return list(negative.unbind(0))
    if reduction == "mean":
        return list(negative.mean(1).unbind(0))
    total = negative.sum(1)
    if reduction == "token_mean":
        total = total / mask.sum()
    return list(total.unbind(0))


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


__all__ = ["REDUCTIONS", "MaskedCrf", "ReferenceCrf", "backtrace", "joint_nll"]
