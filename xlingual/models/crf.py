"""A linear-chain CRF for padded, batch-first sequences (pytorch-crf underneath).

Both models score tag sequences with :class:`torchcrf.CRF`; this wrapper fixes
the conventions they share so no caller gets them subtly wrong:

* batch-first tensors, masks converted to ``bool`` (pytorch-crf rejects
  byte masks in recent PyTorch and silently misbehaves with float ones);
* the mask must be on at time step 0 for every sequence (pytorch-crf raises
  otherwise): UMT keeps ``[CLS]`` there, ACN never has empty sequences;
* the loss is the *negative* log-likelihood with an explicit reduction
  (``"mean"`` over the batch as in the original UMT, ``"sum"`` as in the
  CMNER copy, ``"token_mean"`` or ``"none"``);
* decoding returns one list of tag ids per sequence, as long as its mask.

Parameters keep pytorch-crf's initialisation, uniform in [-0.1, 0.1].
"""

from __future__ import annotations

import torch
from torchcrf import CRF

REDUCTIONS = ("mean", "sum", "token_mean", "none")


class MaskedCrf(CRF):
    """:class:`torchcrf.CRF` (batch-first) with a negative log-likelihood loss and bool masks."""

    def __init__(self, num_tags: int) -> None:
        super().__init__(num_tags, batch_first=True)

    def nll(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """Negative log-likelihood of ``tags`` (B, T) under ``emissions`` (B, T, num_tags)."""
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, not {reduction!r}")
        # The log-partition is a log-sum-exp over many paths: float32 keeps it stable under autocast.
        log_likelihood = self(emissions.float(), tags.long(), mask=mask.bool(), reduction=reduction)
        return -log_likelihood

    @torch.no_grad()
    def viterbi(self, emissions: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        """The best tag-id sequence of each sequence; each list is as long as its mask's true prefix."""
        return self.decode(emissions.float(), mask=mask.bool())


__all__ = ["REDUCTIONS", "MaskedCrf"]
