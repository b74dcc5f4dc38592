"""The layers of ACN (Zhang et al. 2018) as the CMNER reference uses them (docs/models.md, ACN).

The two attentions score ``w . tanh([A x_t ; B y_j]) + b``. Because tanh acts
element-wise, that score splits exactly into ``w1 . tanh(A x_t) + w2 . tanh(B y_j)``:
the module computes the two projections once and broadcasts their sum, so no
(B, L, L, 2k) or (B, L, R, 2k) tensor is ever built (the reference builds the
former: 1.6 GB at the CMNER shape). The split also shows a property of the
reference formulation that users should know: the query term is constant
along the softmax axis, so every token receives the same attention weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CharCnn(nn.Module):
    """Per-word character CNN: kernels of several widths, max-pooled, then a 2-layer projection.

    Pooling is a global max over the convolution outputs (the reference uses a
    window that covers all but one or two positions; the specification allows
    this simplification). Words always arrive padded to the same width, so a
    word's vector never depends on the other words of the batch.
    """

    def __init__(self, num_chars: int, char_dim: int, filters: int, kernels: list[int], out_dim: int, dropout: float) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_chars, char_dim, padding_idx=0)
        # The reference overwrites every row (the padding row too) with U(-0.25, 0.25);
        # padding_idx still keeps the padding row's gradient at zero.
        nn.init.uniform_(self.embedding.weight, -0.25, 0.25)
        self.convs = nn.ModuleList(nn.Conv1d(char_dim, filters, width, padding=width // 2) for width in kernels)
        self.dropout = nn.Dropout(dropout)
        self.hidden = nn.Linear(filters * len(kernels), 100)
        self.out = nn.Linear(100, out_dim)

    def forward(self, char_ids: torch.Tensor) -> torch.Tensor:
        """(B, L, W) character ids -> (B, L, out_dim)."""
        batch, length, width = char_ids.shape
        x = self.embedding(char_ids.reshape(batch * length, width)).transpose(1, 2)
        pooled = [self.dropout(torch.tanh(conv(x)).amax(dim=2)) for conv in self.convs]
        h = self.dropout(F.relu(self.hidden(torch.cat(pooled, dim=1))))
        return self.out(h).reshape(batch, length, -1)


class SplitTanhAttention(nn.Module):
    """``score(t, j) = w . tanh([W_q q_t + b_q ; W_k k_j]) + b`` with a softmax over j, computed by broadcasting.

    Used twice: word-guided visual attention (queries = BiLSTM states, keys =
    image regions) and image-guided textual attention (queries = attended
    visual vectors, keys = BiLSTM states). Returns the weights (B, Lq, Lk) and
    the weighted sum of ``values``.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.query = nn.Linear(size, size)
        self.key = nn.Linear(size, size, bias=False)
        self.score = nn.Linear(2 * size, 1)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, key_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        size = self.query.out_features
        w_query, w_key = self.score.weight[0, :size], self.score.weight[0, size:]
        query_term = torch.tanh(self.query(queries)) @ w_query + self.score.bias  # (B, Lq)
        key_term = torch.tanh(self.key(keys)) @ w_key  # (B, Lk)
        scores = query_term.unsqueeze(2) + key_term.unsqueeze(1)  # (B, Lq, Lk)
        if key_mask is not None:
            scores = scores.masked_fill(~key_mask.unsqueeze(1), torch.finfo(scores.dtype).min)
        weights = scores.softmax(dim=2)
        return weights, weights @ values


class GatedMultimodalFusion(nn.Module):
    """``m_t = g_t p_v + (1 - g_t) p_h`` with a scalar gate per token (docs/models.md, ACN)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.visual = nn.Linear(size, size)
        self.textual = nn.Linear(size, size)
        self.gate = nn.Linear(2 * size, 1)

    def forward(self, visual: torch.Tensor, textual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p_v = torch.tanh(self.visual(visual))
        p_h = torch.tanh(self.textual(textual))
        gate = torch.sigmoid(self.gate(torch.cat([p_v, p_h], dim=-1)))  # (B, L, 1)
        return gate * p_v + (1 - gate) * p_h, gate


class FiltrationGate(nn.Module):
    """How much of the fused multimodal vector reaches the tagger, one scalar per token (docs/models.md, ACN)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.text = nn.Linear(size, size, bias=False)
        self.multimodal = nn.Linear(size, size)
        self.gate = nn.Linear(2 * size, 1)
        self.transform = nn.Linear(size, size)

    def forward(self, text: torch.Tensor, fused: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gate = torch.sigmoid(self.gate(torch.cat([self.text(text), self.multimodal(fused)], dim=-1)))  # (B, L, 1)
        return gate * torch.tanh(self.transform(fused)), gate


def reverse_within_lengths(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence's first ``lengths[b]`` steps, leaving its padding where it is (its own inverse)."""
    width = x.shape[1]
    steps = torch.arange(width, device=x.device)[None, :]
    last = (lengths.to(x.device) - 1)[:, None]
    index = torch.where(steps <= last, last - steps, steps)
    return x.gather(1, index[:, :, None].expand_as(x))


def _own_storage(module: nn.Module, state_dict: dict[str, torch.Tensor], prefix: str, local_metadata: dict) -> None:
    """State-dict hook: every entry under ``prefix`` that views a larger storage becomes a copy of its own."""
    for name in [key for key in state_dict if key.startswith(prefix)]:
        tensor = state_dict[name]
        if tensor.untyped_storage().nbytes() != tensor.numel() * tensor.element_size():
            state_dict[name] = tensor.clone()


class BiLstm(nn.Module):
    """A bidirectional LSTM as two one-directional LSTMs over padded batches (no packing).

    With ``respect_lengths`` the backward LSTM reads each post reversed within
    its own length, so padding comes after the real tokens in both directions
    and cannot reach their states: the result equals a packed BiLSTM. Packed
    sequences give the same numbers but run 5-7x slower on CPU (measured:
    batch 16 x 250 x 350, 11.6 s vs 2.1 s per forward+backward), because
    autograd unrolls them step by step. Without ``respect_lengths`` the
    backward LSTM reads the padding first, as the reference code does.

    Each parameter is registered once, but on a GPU cuDNN packs an LSTM's
    weights into one flat buffer and makes every parameter a view of it, so
    the state dict holds several tensors sharing one storage. accelerate's
    checkpointing then keeps one of them and *drops the rest* ("Removed
    shared tensor ... while saving"), so a resumed run would miss weights.
    The state dict therefore holds copies of such views (same keys, same
    values, one storage each); training keeps cuDNN's fast flat buffer.
    """

    def __init__(self, input_size: int, hidden_per_direction: int) -> None:
        super().__init__()
        self.forward_lstm = nn.LSTM(input_size, hidden_per_direction, batch_first=True)
        self.backward_lstm = nn.LSTM(input_size, hidden_per_direction, batch_first=True)
        # Public since torch 2.5; the private form (in-place edits work the same) for older versions.
        getattr(self, "register_state_dict_post_hook", self._register_state_dict_hook)(_own_storage)

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor, respect_lengths: bool = True) -> torch.Tensor:
        forward_states = self.forward_lstm(inputs)[0]
        if respect_lengths:
            backward_states = reverse_within_lengths(self.backward_lstm(reverse_within_lengths(inputs, lengths))[0], lengths)
        else:
            backward_states = self.backward_lstm(inputs.flip(1))[0].flip(1)
        return torch.cat([forward_states, backward_states], dim=-1)
