"""2M-NER's "multimodal collaboration" blocks: word tokens attending over an image (docs/models.md, 2M-NER).

Both blocks are BERT attention blocks without a feed-forward part, as in the
reference (``BertAttention`` = multi-head attention + dense, dropout,
residual LayerNorm): the words are the queries, the image gives keys and
values, and the output has the words' shape.

* :class:`TokenCrossAttention` attends over a sequence of image tokens
  (CLIP ViT-B/32's 50 outputs).
* :class:`VectorCrossAttention` is the same block over ONE key (the ResNet
  vector). The reference repeats the vector once per word and attends over
  the copies; a softmax over identical keys puts equal weight on identical
  values, so the context is the value projection of the vector for every
  word, whatever the query and key projections are. Their gradient is exactly
  zero in the reference; this block leaves them out.

A post without an image (``present`` False) gets a zero context: its words
leave the block as ``LayerNorm(words + dense(0))``, which does not depend on
the (zero) visual input it was given.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class _AttentionOutput(nn.Module):
    """BERT's ``SelfOutput``: dense, dropout, residual add, LayerNorm."""

    def __init__(self, hidden: int, dropout: float, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, context: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.norm(residual + self.dropout(self.dense(context)))


def _present(present: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) bool -> (B, 1, 1) in ``like``'s dtype, to zero the context of image-less posts."""
    return present.to(device=like.device, dtype=like.dtype).view(-1, 1, 1)


class TokenCrossAttention(nn.Module):
    """Multi-head attention from words (B, L, H) over image tokens (B, N, D), then add & norm.

    ``query_from_key`` reproduces the reference's flaw of projecting the
    queries with the *key* weights (its ``query`` layer is never used); it
    needs ``D == H``. Off (the default), the block has its own query layer.
    """

    def __init__(self, hidden: int, visual_dim: int, heads: int, dropout: float = 0.1, eps: float = 1e-12, query_from_key: bool = False) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden size {hidden} is not a multiple of {heads} heads")
        if query_from_key and visual_dim != hidden:
            raise ValueError(f"query_from_key projects words with the key weights: needs visual_dim == hidden ({visual_dim} != {hidden})")
        self.heads, self.head_size = heads, hidden // heads
        self.query = None if query_from_key else nn.Linear(hidden, hidden)
        self.key = nn.Linear(visual_dim, hidden)
        self.value = nn.Linear(visual_dim, hidden)
        self.attention_dropout = nn.Dropout(dropout)
        self.output = _AttentionOutput(hidden, dropout, eps)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.heads, self.head_size).transpose(1, 2)

    def forward(self, words: torch.Tensor, tokens: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Updated words (B, L, H) and attention probabilities (B, heads, L, N)."""
        project_query = self.key if self.query is None else self.query
        query = self._split(project_query(words))
        key, value = self._split(self.key(tokens)), self._split(self.value(tokens))
        probs = (query @ key.transpose(-1, -2) / math.sqrt(self.head_size)).softmax(dim=-1)
        context = self.attention_dropout(probs) @ value
        batch, _, length, _ = context.shape
        context = context.transpose(1, 2).reshape(batch, length, -1) * _present(present, words)
        return self.output(context, words), probs


class VectorCrossAttention(nn.Module):
    """Attention from words (B, L, H) over one vector per post (B, D): the value projection, then add & norm."""

    def __init__(self, hidden: int, visual_dim: int, dropout: float = 0.1, eps: float = 1e-12) -> None:
        super().__init__()
        self.value = nn.Linear(visual_dim, hidden)
        self.output = _AttentionOutput(hidden, dropout, eps)

    def forward(self, words: torch.Tensor, vector: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        context = self.value(vector)[:, None, :] * _present(present, words)
        return self.output(context.expand_as(words), words)


__all__ = ["TokenCrossAttention", "VectorCrossAttention"]
