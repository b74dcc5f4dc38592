"""A linear-chain CRF for padded, batch-first sequences, vectorised over time where it can be.

Both models score tag sequences with :class:`MaskedCrf`. It computes what
pytorch-crf (:class:`torchcrf.CRF`, batch-first) computes, with the same
parameters (``start_transitions``, ``end_transitions``, ``transitions``, same
shapes, same initialisation order and range, uniform in [-0.1, 0.1]), so
checkpoints written with either load into the other; it differs in how many
tensor operations it takes, which is what a training step on a GPU pays for:

* the gold-path score is a handful of gathers over the whole batch, no loop
  over time (pytorch-crf: ~6 operations per time step);
* the log-partition multiplies the per-step transition matrices in the
  log-semiring as a balanced tree: ``ceil(log2 T)`` levels of a few
  operations each (batched matrix products in float64, see
  :func:`log_matmul`), instead of ~8 operations for each of the ``T`` steps. A
  masked (padding) step is the semiring's identity (0 on the diagonal, a
  very negative finite number elsewhere, so no ``-inf - -inf`` NaN reaches a
  gradient), which is exactly pytorch-crf's "keep the previous score";
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

import numpy as np
import torch
from torch import nn
from torchcrf import CRF

REDUCTIONS = ("mean", "sum", "token_mean", "none")

_NEG = -1e30
"""Log-semiring "zero" off the identity's diagonal: exp() of it is 0, and sums of a few stay finite in float32."""


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


def log_matmul(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """Matrix product in the log-semiring over the last two dimensions: ``log sum_k exp(left[i, k] + right[k, j])``.

    Computed as an ordinary matrix product of exponentials shifted by each
    row's (left) and each column's (right) maximum, which is 6x faster than a
    broadcast log-sum-exp over a (..., K, K, K) tensor and one kernel on a
    GPU. Use float64 operands: a sum then underflows only for terms more
    than ~700 nats below the shifts, far below float32's resolution of the
    result; the clamp keeps ``log`` (and its gradient) finite even then.
    """
    left_max = left.amax(dim=-1, keepdim=True)
    right_max = right.amax(dim=-2, keepdim=True)
    product = torch.exp(left - left_max) @ torch.exp(right - right_max)
    return torch.log(product.clamp_min(torch.finfo(product.dtype).tiny)) + left_max + right_max


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
        log_likelihood = self.gold_score(emissions, tags, mask) - self.log_partition(emissions, mask)
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
        """log Z per sequence, (B,), by a balanced tree of log-semiring matrix products over time."""
        alpha = self.start_transitions + emissions[:, 0]  # (B, K)
        if emissions.shape[1] > 1:
            # steps[b, t][i, j]: score of moving from tag i to tag j into time step t + 1.
            transitions = self.transitions.double()
            steps = transitions + emissions[:, 1:].double().unsqueeze(2)  # (B, T-1, K, K)
            identity = torch.full_like(transitions, _NEG).fill_diagonal_(0.0)
            steps = torch.where(mask[:, 1:, None, None], steps, identity)
            while steps.shape[1] > 1:
                odd = steps[:, -1:] if steps.shape[1] % 2 else None
                even = steps.shape[1] - steps.shape[1] % 2
                steps = log_matmul(steps[:, 0:even:2], steps[:, 1:even:2])
                if odd is not None:
                    steps = torch.cat([steps, odd], dim=1)
            alpha = log_matmul(alpha.double().unsqueeze(1), steps[:, 0]).squeeze(1).to(emissions.dtype)
        return torch.logsumexp(alpha + self.end_transitions, dim=1)

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


__all__ = ["REDUCTIONS", "MaskedCrf", "ReferenceCrf", "backtrace", "log_matmul"]
