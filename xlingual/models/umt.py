"""UMT-BERT-CRF (Yu et al. 2020), as adapted by the CMNER paper (Ji et al. 2024); docs/models.md, UMT.

Data flow of one batch (B posts, T word pieces, R = 49 image regions, H hidden)::

    T   = dropout(encoder(ids))                       (B, T, H)   [+ Linear(H,H) first: extra_linear]
    Ta  = layer_aux(T);   E_aux = Linear(H,7)(Ta)     span (ESD) emissions
    S   = layer_main(T)
    V1, V2 = Linear_1(V), Linear_2(V)                 (B, R, H), V = regions (B, R, 2048)
    Bv  = CMT_1(S  -> V1)    word-aware visual representation
    Q   = CMT_2(V2 -> S)     text-aware regions
    A   = CMT_3(S  -> Q)     image-aware word representation
    g   = sigmoid(Linear(2H,H)([A; Bv]))              visual gate (B, T, H)
    E_main  = Linear(2H,13)([A; g * Bv])             13 typed labels for the canonical types (2 more per other type)
    E_final = alpha * E_main + (1 - alpha) * E_aux @ W_tr
    loss = NLL_CRF13(E_final) + aux_weight * NLL_CRF7(E_aux)

The text-only variant (``use_image: false``) is the same path minus the visual
branch: ``A = S`` and the visual half of the fused vector is zero, so the main
head reads only its first H columns. Every text weight has the same name and
shape in both variants, and a text-only checkpoint loads into a multimodal
model (and back) with only the visual branch missing.

A post without a usable image (the lookup says so, or no lookup is given)
gets zero region features and a closed visual gate (``g = 0``), so the
word-aware visual representation contributes nothing for it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from xlingual.data.labels import CANONICAL_LABELS, label_inventory
from xlingual.data.sample import Sample
from xlingual.errors import ConfigError
from xlingual.models.base import checked_labels, gate_by_image
from xlingual.models.bert_tagger import BertEncoderTagger
from xlingual.models.crf import MaskedCrf, joint_nll
from xlingual.models.umt_config import UmtConfig
from xlingual.models.umt_layers import CrossModalLayer, init_bert_style
from xlingual.models.umt_text import SPAN_LABELS, align, span_to_typed_matrix, typed_vocabulary
from xlingual.models.vocab import Vocabulary
from xlingual.models.wordpieces import pieces_per_token

logger = logging.getLogger(__name__)

VISUAL_BRANCH = ("visual_proj_text", "visual_proj_image", "cmt_text_to_image", "cmt_image_to_text", "cmt_text_to_regions", "visual_gate")
"""Names of the modules the text-only variant leaves out."""


def _bool(mask: torch.Tensor) -> torch.Tensor:
    """``mask`` as bool; collated masks already are, and a no-op conversion is still an operator call per step."""
    return mask if mask.dtype == torch.bool else mask.bool()


class UmtModel(BertEncoderTagger):
    """UMT-BERT-CRF; build with :meth:`build`, reload with :meth:`from_pretrained`."""

    model_type = "umt"
    config_class = UmtConfig
    visual_modules = VISUAL_BRANCH
    region_hint = "ResNet-152 grid features; check --features / model.visual_dim"

    def __init__(self, config: UmtConfig, encoder: nn.Module, tokenizer: Any, label_names: Sequence[str] = CANONICAL_LABELS) -> None:
        super().__init__()
        self._attach_encoder(config, encoder, tokenizer, label_names)
        self.typed_labels = typed_vocabulary(self.label_names)
        encoder_config = encoder.config
        hidden = encoder_config.hidden_size
        if hidden % config.cross_heads:
            raise ConfigError(f"model.cross_heads={config.cross_heads} does not divide the encoder's hidden size {hidden}")
        ffn = getattr(encoder_config, "intermediate_size", 4 * hidden)
        eps = getattr(encoder_config, "layer_norm_eps", 1e-12)

        def block() -> CrossModalLayer:
            return CrossModalLayer(hidden, config.cross_heads, ffn, config.dropout, eps)

        self.extra_linear = nn.Linear(hidden, hidden) if config.extra_linear else None
        self.dropout = nn.Dropout(config.dropout)
        self.layer_aux = block()
        self.layer_main = block()
        self.span_head = nn.Linear(hidden, len(SPAN_LABELS))
        if config.use_image:
            self.visual_proj_text = nn.Linear(config.visual_dim, hidden)
            self.visual_proj_image = nn.Linear(config.visual_dim, hidden)
            self.cmt_text_to_image = block()
            self.cmt_image_to_text = block()
            self.cmt_text_to_regions = block()
            self.visual_gate = nn.Linear(2 * hidden, hidden)
        self.typed_head = nn.Linear(2 * hidden, len(self.typed_labels))
        for name, module in self.named_children():
            if name != "encoder":
                init_bert_style(module, getattr(encoder_config, "initializer_range", 0.02))
        self.crf = MaskedCrf(len(self.typed_labels))
        self.span_crf = MaskedCrf(len(SPAN_LABELS))
        self.register_buffer("span_to_typed", span_to_typed_matrix(self.typed_labels), persistent=False)
        self._freeze_bottom(config.freeze_bottom_layers)

    # ------------------------------------------------------------------ building and saving

    @classmethod
    def build(cls, config: dict[str, Any], vocab_samples: Sequence[Sample] = ()) -> "UmtModel":
        """A new model with pre-trained encoder weights, with the labels of ``vocab_samples`` (the canonical nine without samples)."""
        umt_config = UmtConfig.from_dict(config)
        return cls(umt_config, *cls.pretrained_encoder(umt_config), label_inventory(vocab_samples))

    @classmethod
    def label_maps_for(cls, label_names: Sequence[str]) -> dict[str, list[str]]:
        return {"typed_labels": typed_vocabulary(label_names).to_list(), "span_labels": SPAN_LABELS.to_list()}

    @classmethod
    def _from_saved(cls, config: UmtConfig, extras: dict[str, Any], directory: Path, label_names: Sequence[str]) -> "UmtModel":
        return cls(config, *cls.saved_encoder(config, directory), label_names)

    def _freeze_bottom(self, layers: int) -> None:
        if not layers:
            return
        stack = getattr(getattr(self.encoder, "encoder", None), "layer", None)
        embeddings = getattr(self.encoder, "embeddings", None)
        if stack is None or embeddings is None:
            raise ConfigError(f"model.freeze_bottom_layers: encoder {type(self.encoder).__name__} has no embeddings/encoder.layer to freeze")
        if layers > len(stack):
            raise ConfigError(f"model.freeze_bottom_layers={layers} but the encoder has only {len(stack)} layers")
        for module in [embeddings, *stack[:layers]]:
            for parameter in module.parameters():
                parameter.requires_grad_(False)

    # ------------------------------------------------------------------ data

    def _encode_text(self, samples: Sequence[Sample]) -> list[dict[str, Any]]:
        """Word pieces and aligned labels per sample (every label must be one of the model's)."""
        all_pieces = pieces_per_token(self.tokenizer, [s.tokens for s in samples])
        cls_id, sep_id = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        if cls_id is None or sep_id is None:
            raise ConfigError(f"encoder '{self.config.encoder}': its tokenizer has no [CLS]/[SEP] tokens")
        return [dataclasses.asdict(align(pieces, checked_labels(sample, self.label_names), self.config.max_length, cls_id, sep_id, self.typed_labels))
                for sample, pieces in zip(samples, all_pieces)]

    def _expected_regions(self) -> int | None:
        return self.config.num_visual_regions

    def _collate_text(self, items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Pad to the longest post of the batch (the CRF and attention masks make this equal to padding to max_length).

        Filled in NumPy and handed to torch once per field: building small
        tensors per post cost five tensor operations per post and batch.
        """
        batch_size = len(items)
        lengths = np.array([len(item["input_ids"]) for item in items], dtype=np.int64)
        counts = np.array([len(item["token_positions"]) for item in items], dtype=np.int64)
        length, n_tokens = int(lengths.max()), max(1, int(counts.max()))
        input_ids, typed, span = (np.zeros((batch_size, length), dtype=np.int64) for _ in range(3))
        positions = np.full((batch_size, n_tokens), -1, dtype=np.int64)
        for row, item in enumerate(items):
            size = lengths[row]
            input_ids[row, :size] = item["input_ids"]
            typed[row, :size] = item["typed_label_ids"]
            span[row, :size] = item["span_label_ids"]
            positions[row, : counts[row]] = item["token_positions"]
        batch = {
            "input_ids": torch.from_numpy(input_ids),
            "labels": torch.from_numpy(typed),
            "span_labels": torch.from_numpy(span),
            "token_positions": torch.from_numpy(positions),
            "token_counts": torch.from_numpy(counts),
            # From lengths, not from id 0: a real piece may have id 0 in some vocabularies.
            "attention_mask": torch.from_numpy(np.arange(length)[None, :] < lengths[:, None]),
        }
        return batch

    # ------------------------------------------------------------------ model

    def emissions(self, batch: dict[str, torch.Tensor], return_attention: bool = False) -> dict[str, torch.Tensor]:
        """Span emissions ``span_emissions`` (B, T, 7), final typed ``emissions`` (B, T, typed labels), and with
        ``return_attention`` the visual ``gate`` (B, T, H) and the three CMT attention maps."""
        mask = _bool(batch["attention_mask"])
        text = self.encoder(input_ids=batch["input_ids"], attention_mask=mask.long()).last_hidden_state
        if self.extra_linear is not None:
            text = self.extra_linear(text)
        text = self.dropout(text)
        span_emissions = self.span_head(self.layer_aux(text, text, mask)[0])
        words = self.layer_main(text, text, mask)[0]
        out: dict[str, torch.Tensor] = {"span_emissions": span_emissions}
        if self.config.use_image:
            fused, details = self._fuse_visual(words, mask, batch)
            main = self.typed_head(fused)
            if return_attention:
                out.update(details)
        else:
            hidden = words.shape[-1]
            main = F.linear(words, self.typed_head.weight[:, :hidden], self.typed_head.bias)
        converted = span_emissions @ self.span_to_typed
        out["emissions"] = self.config.alpha * main + (1.0 - self.config.alpha) * converted
        return out

    def _fuse_visual(self, words: torch.Tensor, mask: torch.Tensor, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        regions = batch["regions"].to(words.dtype)
        if self.config.scrambled_regions:
            # The CMNER copy viewed the channel-major (2048, 7, 7) buffer directly as (49, 2048).
            regions = regions.transpose(1, 2).reshape(regions.shape)
        visual_for_text = self.visual_proj_text(regions)
        visual_for_image = self.visual_proj_image(regions)
        # All regions are always attended (the original "added" mask is all ones over the image).
        word_aware_visual, attn_text_to_image = self.cmt_text_to_image(words, visual_for_text, None)
        text_aware_regions, attn_image_to_text = self.cmt_image_to_text(visual_for_image, words, mask)
        image_aware_words, attn_text_to_regions = self.cmt_text_to_regions(words, text_aware_regions, None)
        gate = torch.sigmoid(self.visual_gate(torch.cat([image_aware_words, word_aware_visual], dim=-1)))
        gate = gate_by_image(gate, batch["has_image"])
        fused = torch.cat([image_aware_words, gate * word_aware_visual], dim=-1)
        details = {
            "gate": gate,
            "attention_text_to_image": attn_text_to_image,
            "attention_image_to_text": attn_image_to_text,
            "attention_text_to_regions": attn_text_to_regions,
        }
        return fused, details

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Emissions, and ``loss`` (with ``typed_loss``/``span_loss``) when the batch has labels."""
        out = self.emissions(batch)
        if "labels" in batch:
            mask = _bool(batch["attention_mask"])
            reduction = self.config.loss_reduction
            # Both CRFs in one pass: their log-partitions share a tree of matrix products.
            typed_loss, span_loss = joint_nll([self.crf, self.span_crf], [out["emissions"], out["span_emissions"]],
                                              [batch["labels"], batch["span_labels"]], mask, reduction)
            out["typed_loss"], out["span_loss"] = typed_loss, span_loss
            out["loss"] = typed_loss + self.config.aux_weight * span_loss
        return out

    def _viterbi(self, batch: dict[str, torch.Tensor]) -> tuple[list[list[int]], Vocabulary]:
        """Viterbi on the typed CRF over word pieces."""
        return self.crf.viterbi(self.emissions(batch)["emissions"], batch["attention_mask"]), self.typed_labels

    def _token_positions(self, batch: dict[str, torch.Tensor]) -> list[list[int]]:
        """Each token's first piece (-1: no piece, or cut by the length limit)."""
        positions, counts = batch["token_positions"].tolist(), batch["token_counts"].tolist()
        return [pos[:count] for pos, count in zip(positions, counts)]


__all__ = ["UmtConfig", "UmtModel", "VISUAL_BRANCH"]
