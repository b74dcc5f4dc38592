"""Contrastive text-image alignment: projection heads, a masked NT-Xent loss, retrieval accuracy.

2M-NER (Wang et al. 2024) pulls a post's text embedding towards the
embedding of its own image and away from the other images of the batch
(SimCLR's NT-Xent, in-batch negatives, temperature 0.5). Each post gives two
views, ``a[i]`` (text) and ``b[i]`` (image); every one of the ``2n`` views is
an anchor whose positive is the other view of the same post and whose
negatives are the ``2n - 2`` views of the other posts (text-text and
image-image pairs included, as in SimCLR and the reference code).

A post without an image has no second view. The reference gave such a post
a stand-in picture; here it is *masked*: it is neither an anchor nor a
negative, so no text is pulled towards a fake zero image and the loss of
the others does not depend on what its image slot holds. Masking is done
with weights, not by indexing rows out, so the loss keeps static shapes
(no host synchronisation per step on an accelerator).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

DEFAULT_TEMPERATURE = 0.5


class ProjectionHead(nn.Module):
    """Linear -> ReLU -> Linear: the two-layer head that maps one view into the shared space."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int) -> None:
        super().__init__()
        self.dense = nn.Linear(in_dim, hidden_dim)
        self.output = nn.Linear(hidden_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in_dim) -> (..., out_dim); a (B, N, D) input is flattened to (B, N*D) by the caller."""
        return self.output(F.relu(self.dense(x)))


def nt_xent(a: torch.Tensor, b: torch.Tensor, valid: torch.Tensor | None = None, temperature: float = DEFAULT_TEMPERATURE) -> torch.Tensor:
    """NT-Xent over the paired views ``a`` (B, D) and ``b`` (B, D); pairs where ``valid`` is False are left out.

    Returns the mean over the ``2n`` anchors of the ``n`` valid pairs of
    ``-log(exp(s+/t) / sum_{k != anchor} exp(s_k/t))`` with cosine
    similarities ``s``; the positive is in the denominator, as in SimCLR.
    Zero when no pair is valid; with one valid pair there are no negatives
    and the loss is exactly zero.
    """
    if a.shape != b.shape or a.dim() != 2:
        raise ValueError(f"nt_xent needs two (B, D) tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    batch = a.shape[0]
    z = F.normalize(torch.cat([a, b], dim=0).float(), dim=-1)
    logits = z @ z.T / temperature  # (2B, 2B)
    keep = torch.ones(batch, dtype=torch.bool, device=a.device) if valid is None else valid.to(device=a.device, dtype=torch.bool)
    keep2 = torch.cat([keep, keep])
    self_pair = torch.eye(2 * batch, dtype=torch.bool, device=a.device)
    partner = torch.cat([torch.arange(batch, 2 * batch), torch.arange(0, batch)]).to(a.device)
    positive = logits.gather(1, partner[:, None]).squeeze(1)
    # A valid anchor's candidates: every other view of a valid post. An invalid anchor keeps only its
    # partner, so its term is exactly 0 with a finite gradient (an all -inf row would give NaN gradients).
    is_partner = torch.zeros_like(self_pair).scatter_(1, partner[:, None], True)
    candidates = torch.where(keep2[:, None], keep2[None, :] & ~self_pair, is_partner)
    log_denominator = torch.logsumexp(logits.masked_fill(~candidates, float("-inf")), dim=-1)
    per_anchor = (log_denominator - positive) * keep2
    return per_anchor.sum() / (2 * keep.sum()).clamp(min=1)


@torch.no_grad()
def retrieval_accuracy(text: torch.Tensor, image: torch.Tensor, valid: torch.Tensor | None = None) -> float:
    """Share of valid posts whose own image is the most cosine-similar of the valid images (text -> image).

    Chance level is ``1 / n`` for ``n`` valid posts; a value well above it says
    the two projections have learnt to align the matching pairs.
    """
    keep = torch.ones(text.shape[0], dtype=torch.bool) if valid is None else valid.cpu().bool()
    t = F.normalize(text.detach().float().cpu()[keep], dim=-1)
    i = F.normalize(image.detach().float().cpu()[keep], dim=-1)
    if t.shape[0] == 0:
        return 0.0
    best = (t @ i.T).argmax(dim=1)
    return float((best == torch.arange(t.shape[0])).float().mean())


__all__ = ["DEFAULT_TEMPERATURE", "ProjectionHead", "nt_xent", "retrieval_accuracy"]
