"""ACN (AdaCAN-CNN-BiLSTM-CRF, Zhang et al. 2018) as the CMNER paper trains it.

CharCNN + word embeddings -> BiLSTM -> word-guided visual attention ->
image-guided textual attention -> gated multimodal fusion -> filtration gate
-> CRF (docs/models.md, ACN). The text-only variant (``use_image: false``) runs the
same code minus the visual branch and has exactly the text weights of the
multimodal model, so checkpoints move between the two.

Decisions (see docs/models.md, section ACN, for the reasons):

* the CRF runs over the model's real labels only (the nine canonical ones,
  plus the pairs of any other type the run's data has); ``[pad]`` is label id
  0 in the saved label map but is never a CRF state, so decoding can only
  return real labels. The labels come from the run's samples, so there is no
  ``[unk]`` label;
* ``mask_padding`` (default on) keeps padding out of both BiLSTM directions and masks padding keys in the
  textual attention, so a post's predictions do not depend on its batch;
  ``mask_padding: false`` reproduces the reference (fixed padding to
  ``max_length``, unpacked BiLSTM, unmasked attention);
* a post without a usable image contributes no visual signal (its filtration
  gate output is zeroed) instead of attending over zero features.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from xlingual.data.labels import CANONICAL_LABELS, label_inventory
from xlingual.data.sample import Sample
from xlingual.errors import ConfigError
from xlingual.models.acn_layers import BiLstm, CharCnn, FiltrationGate, GatedMultimodalFusion, SplitTanhAttention
from xlingual.models.acn_text import PAD, build_vocabularies, normalise_token, token_vocab
from xlingual.models.acn_config import AcnConfig
from xlingual.models.base import MnerModel, gate_by_image, sample_label_ids
from xlingual.models.crf import MaskedCrf
from xlingual.models.vocab import Vocabulary

logger = logging.getLogger(__name__)

ACN_LABELS: tuple[str, ...] = (PAD, *CANONICAL_LABELS)
"""Saved label map of a model of the canonical labels: ``[pad]`` at 0, then the nine labels (the CRF's states are ids 1..9)."""

DEFAULT_MAX_LENGTH = {"zh": 250, "en": 35}


@dataclass
class AcnOutputs:
    """Everything one pass computes; the gates and attentions are kept for inspection and tests.

    Shapes: ``emissions`` (B, L, labels: 9 for the canonical ones); ``visual_attention`` (B, L, R);
    ``textual_attention`` (B, L, L); ``fusion_gate`` and ``filtration_gate``
    (B, L, 1). The visual fields are ``None`` for the text-only variant.
    """

    emissions: torch.Tensor
    visual_attention: torch.Tensor | None = None
    textual_attention: torch.Tensor | None = None
    fusion_gate: torch.Tensor | None = None
    filtration_gate: torch.Tensor | None = None


class AcnModel(MnerModel):
    """ACN behind the :class:`~xlingual.models.base.MnerModel` interface."""

    model_type = "acn"
    config_class = AcnConfig
    visual_modules = ("visual_projection", "visual_attention", "textual_attention", "fusion", "filtration")
    region_hint = "extract VGG16 features for ACN"

    def __init__(self, config: AcnConfig, words: Vocabulary, chars: Vocabulary, word_matrix: torch.Tensor | None = None,
                 embedding_coverage: float | None = None, label_names: Sequence[str] = CANONICAL_LABELS) -> None:
        super().__init__()
        if config.max_length is None:
            raise ConfigError("model.max_length: must be set (build() resolves it from the samples)")
        self.config = config
        self.words = words
        self.chars = chars
        self.label_names = tuple(label_names)
        self.labels = Vocabulary(self.label_maps()["labels"], pad=PAD)
        self.embedding_coverage = embedding_coverage
        # Initialisation draws from its own seeded stream, leaving the caller's RNG untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self._create_modules(word_matrix)

    def _create_modules(self, word_matrix: torch.Tensor | None) -> None:
        config, k = self.config, self.config.hidden
        # Text modules first, visual ones after: the same seed gives the text-only and the
        # multimodal variant identical text weights.
        self.word_embedding = nn.Embedding(len(self.words), config.word_dim)
        if word_matrix is None:
            nn.init.uniform_(self.word_embedding.weight, -0.25, 0.25)
        else:
            if tuple(word_matrix.shape) != (len(self.words), config.word_dim):
                raise ConfigError(f"model.word_vectors: matrix shape {tuple(word_matrix.shape)} does not match vocabulary ({len(self.words)}, {config.word_dim})")
            self.word_embedding.weight.data.copy_(torch.as_tensor(word_matrix, dtype=torch.float32))
        # Frozen only over pre-trained vectors: random rows with nothing to learn from would stay noise.
        self.word_embedding.weight.requires_grad_(not (config.freeze_embeddings and config.word_vectors is not None))
        self.char_cnn = CharCnn(len(self.chars), config.char_dim, config.char_filters, list(config.char_kernels), config.char_out, config.dropout)
        self.lstm = BiLstm(config.word_dim + config.char_out, k // 2)
        self.output = nn.Linear(2 * k, len(self.label_names))
        self.crf = MaskedCrf(len(self.label_names))
        if config.use_image:
            self.visual_projection = nn.Linear(config.visual_dim, k)
            self.visual_attention = SplitTanhAttention(k)
            self.textual_attention = SplitTanhAttention(k)
            self.fusion = GatedMultimodalFusion(k)
            self.filtration = FiltrationGate(k)

    # ------------------------------------------------------------------ building

    @classmethod
    def build(cls, config: dict[str, Any], vocab_samples: Sequence[Sample]) -> "AcnModel":
        """A new model whose vocabularies and labels cover ``vocab_samples`` (all stages and splits of a run)."""
        acn = AcnConfig.from_dict(dict(config))
        if not vocab_samples:
            raise ConfigError("ACN needs the run's samples to build its vocabularies; none were given")
        words, chars = build_vocabularies((s.tokens for s in vocab_samples), acn.max_words, acn.max_chars)
        if acn.max_length is None:
            acn.max_length = DEFAULT_MAX_LENGTH["zh"] if any(s.lang == "zh" for s in vocab_samples) else DEFAULT_MAX_LENGTH["en"]
        matrix, coverage = None, None
        if acn.word_vectors is not None:
            matrix, coverage, acn.word_dim = _pretrained_matrix(acn.word_vectors, words, acn.seed)
        logger.info("ACN vocabularies: %d words, %d characters; max length %d%s", len(words), len(chars), acn.max_length, "" if coverage is None else f"; {coverage:.1%} of words have pre-trained vectors")
        return cls(acn, words, chars, matrix, coverage, label_inventory(vocab_samples))

    # ------------------------------------------------------------------ data

    def _encode_text(self, samples: Sequence[Sample]) -> list[dict[str, Any]]:
        """Vocabulary ids, character ids and label ids per sample."""
        return [self._encode_one(sample) for sample in samples]

    def _encode_one(self, sample: Sample) -> dict[str, Any]:
        tokens = sample.tokens[: self.config.max_length]
        normalised = [normalise_token(t) for t in tokens]
        width = self.config.max_word_len
        char_ids = np.zeros((len(tokens), width), dtype=np.int64)
        for i, word in enumerate(normalised):
            ids = [self.chars.id(c) for c in word[:width]]
            char_ids[i, : len(ids)] = ids
        return {
            "word_ids": np.array([self.words.id(w) for w in normalised], dtype=np.int64),
            "char_ids": char_ids,
            "label_ids": sample_label_ids(sample, self.labels, self.config.max_length, self.label_names),
            "num_tokens": len(sample.tokens),
        }

    def _collate_text(self, items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Pad to the longest post (or to ``max_length`` when reproducing the reference, which always pads)."""
        lengths = [len(item["word_ids"]) for item in items]
        width = self.config.max_length if not self.config.mask_padding else max([1, *lengths])
        batch = len(items)
        word_ids = np.zeros((batch, width), dtype=np.int64)
        char_ids = np.zeros((batch, width, self.config.max_word_len), dtype=np.int64)
        label_ids = np.zeros((batch, width), dtype=np.int64)
        for row, (item, n) in enumerate(zip(items, lengths)):
            word_ids[row, :n] = item["word_ids"]
            char_ids[row, :n] = item["char_ids"]
            label_ids[row, :n] = item["label_ids"]
        out = {
            "word_ids": torch.from_numpy(word_ids),
            "char_ids": torch.from_numpy(char_ids),
            "labels": torch.from_numpy(label_ids),
            # At least one position stays on: the CRF needs it, and an empty post decodes to [].
            "lengths": torch.tensor([max(1, n) for n in lengths]),
            "num_tokens": torch.tensor([item["num_tokens"] for item in items]),
        }
        return out

    # ------------------------------------------------------------------ network

    def compute(self, batch: dict[str, torch.Tensor]) -> AcnOutputs:
        """Emissions (and gates/attentions) for a collated batch."""
        mask = self._mask(batch)
        text = torch.cat([self.word_embedding(batch["word_ids"]), self.char_cnn(batch["char_ids"])], dim=-1)
        states = self.lstm(text, batch["lengths"], respect_lengths=self.config.mask_padding)
        if not self.config.use_image:
            return AcnOutputs(self.output(torch.cat([states, torch.zeros_like(states)], dim=-1)))
        regions = torch.tanh(self.visual_projection(batch["regions"]))
        visual_weights, attended_visual = self.visual_attention(states, regions, regions)
        key_mask = mask if self.config.mask_padding else None
        textual_weights, attended_text = self.textual_attention(attended_visual, states, states, key_mask)
        fused, fusion_gate = self.fusion(attended_visual, attended_text)
        filtered, filtration_gate = self.filtration(states, fused)
        filtered = gate_by_image(filtered, batch["has_image"])
        emissions = self.output(torch.cat([states, filtered], dim=-1))
        return AcnOutputs(emissions, visual_weights, textual_weights, fusion_gate, filtration_gate)

    def _mask(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        width = batch["word_ids"].shape[1]
        return torch.arange(width, device=batch["word_ids"].device)[None, :] < batch["lengths"][:, None]

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``loss`` = batch mean of the CRF negative log-likelihood, plus the emissions."""
        outputs = self.compute(batch)
        result = {"emissions": outputs.emissions}
        if "labels" in batch:
            mask = self._mask(batch)
            tags = (batch["labels"] - 1).clamp(min=0)  # CRF states are label ids 1..n; padding is masked
            result["loss"] = self.crf.nll(outputs.emissions, tags, mask, reduction="mean")
        return result

    def _viterbi(self, batch: dict[str, torch.Tensor]) -> tuple[list[list[int]], Vocabulary]:
        """CRF states are label ids 1..n (``[pad]`` is never a state), so decoding can only return real labels."""
        paths = self.crf.viterbi(self.compute(batch).emissions, self._mask(batch))
        return [[tag + 1 for tag in path] for path in paths], self.labels

    def _token_positions(self, batch: dict[str, torch.Tensor]) -> list[list[int]]:
        """Token i sits at position i; tokens beyond ``max_length`` were cut (-1)."""
        out = []
        for length, total in zip(batch["lengths"].tolist(), batch["num_tokens"].tolist()):
            kept = min(length, total)
            out.append(list(range(kept)) + [-1] * (total - kept))
        return out

    # ------------------------------------------------------------------ persistence

    @classmethod
    def label_maps_for(cls, label_names: Sequence[str]) -> dict[str, list[str]]:
        return {"labels": [PAD, *label_names]}

    def _extras(self) -> dict[str, Any]:
        """The vocabularies and coverage; with the embedding matrix in the weights, reloading needs no vectors file."""
        return {"words": self.words.to_list(), "chars": self.chars.to_list(), "embedding_coverage": self.embedding_coverage}

    @classmethod
    def _from_saved(cls, config: AcnConfig, extras: dict[str, Any], directory: Path, label_names: Sequence[str]) -> "AcnModel":
        # Parameters are created from the config (requires_grad included); loading copies values only.
        return cls(config, token_vocab(extras["words"]), token_vocab(extras["chars"]), embedding_coverage=extras.get("embedding_coverage"),
                   label_names=label_names)


def _pretrained_matrix(paths: str | list[str], words: Vocabulary, seed: int) -> tuple[torch.Tensor, float, int]:
    """The word-embedding matrix for ``words`` from one or more ``.vec`` files, its coverage and dimension.

    Several files are the cross-lingual case: MUSE-aligned source and target
    vectors live in one space but in two files; they are merged with the one
    precedence of :func:`xlingual.embeddings.vectors.merge_vectors` (the last
    file listed wins on shared words).
    """
    from xlingual.embeddings.matrix import build_embedding_matrix
    from xlingual.embeddings.vectors import load_vectors, merge_vectors

    files = [paths] if isinstance(paths, str) else list(paths)
    merged = merge_vectors([(path, load_vectors(path)) for path in files])
    built = build_embedding_matrix(words.to_list(), merged, seed=seed, init_range=0.25)
    logger.info("word vectors %s: %s", ", ".join(map(str, files)), built.summary())
    matrix = torch.as_tensor(np.asarray(built.matrix), dtype=torch.float32)
    return matrix, float(built.coverage), int(matrix.shape[1])


__all__ = ["ACN_LABELS", "AcnConfig", "AcnModel", "AcnOutputs"]
