"""The transformer blocks UMT adds on top of BERT (Yu et al. 2020, docs/models.md, UMT).

One block serves both uses: with ``s2 = s1`` it is a standard BERT encoder
layer (UMT's extra ESD and MNER layers); with a second sequence it is the
cross-modal transformer layer (CMT), whose queries come from ``s1`` and whose
keys/values come from ``s2``. The output always has the length of ``s1``.
Written as plain modules so the attention probabilities can be returned for
inspection (tests check their shapes; users can visualise them).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class CrossAttention(nn.Module):
    """Multi-head scaled dot-product attention from ``s1`` (queries) to ``s2`` (keys, values)."""

    def __init__(self, hidden_size: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"hidden size {hidden_size} is not a multiple of {num_heads} heads")
        self.num_heads = num_heads
        self.head_size = hidden_size // num_heads
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_size).transpose(1, 2)

    def forward(self, s1: torch.Tensor, s2: torch.Tensor, s2_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Context (B, L1, H) and attention probabilities (B, heads, L1, L2); masked keys get weight 0."""
        query = self._split_heads(self.query(s1))
        key = self._split_heads(self.key(s2))
        value = self._split_heads(self.value(s2))
        scores = query @ key.transpose(-1, -2) / math.sqrt(self.head_size)
        if s2_mask is not None:
            # A finite minimum (not -inf) keeps a row whose keys are all masked finite (uniform weights).
            # view + not: one operator each per call (indexing with None and a no-op .bool() were four).
            hidden = s2_mask if s2_mask.dtype == torch.bool else s2_mask.bool()
            scores = scores.masked_fill(~hidden.view(hidden.shape[0], 1, 1, -1), torch.finfo(scores.dtype).min)
        probs = scores.softmax(dim=-1)
        context = self.dropout(probs) @ value
        batch, _, length, _ = context.shape
        return context.transpose(1, 2).reshape(batch, length, -1), probs


class CrossModalLayer(nn.Module):
    """A BERT layer whose attention reads a second sequence: attention, add & norm, GELU FFN, add & norm."""

    def __init__(self, hidden_size: int, num_heads: int, intermediate_size: int, dropout: float = 0.1, layer_norm_eps: float = 1e-12) -> None:
        super().__init__()
        self.attention = CrossAttention(hidden_size, num_heads, dropout)
        self.attention_output = nn.Linear(hidden_size, hidden_size)
        self.attention_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.intermediate = nn.Linear(hidden_size, intermediate_size)
        self.output = nn.Linear(intermediate_size, hidden_size)
        self.output_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, s1: torch.Tensor, s2: torch.Tensor, s2_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Updated ``s1`` (B, L1, H) and the attention probabilities (B, heads, L1, L2)."""
        context, probs = self.attention(s1, s2, s2_mask)
        attended = self.attention_norm(s1 + self.dropout(self.attention_output(context)))
        ffn = self.output(F.gelu(self.intermediate(attended)))
        return self.output_norm(attended + self.dropout(ffn)), probs


def init_bert_style(module: nn.Module, std: float = 0.02) -> None:
    """BERT's initialisation for new layers: normal(0, std) weights, zero biases, LayerNorm 1/0."""
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            nn.init.normal_(sub.weight, mean=0.0, std=std)
            if sub.bias is not None:
                nn.init.zeros_(sub.bias)
        elif isinstance(sub, nn.LayerNorm):
            nn.init.ones_(sub.weight)
            nn.init.zeros_(sub.bias)


__all__ = ["CrossAttention", "CrossModalLayer", "init_bert_style"]
