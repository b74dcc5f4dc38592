"""2M-NER (Wang et al. 2024, arXiv 2404.17122): contrastive text-image alignment + multimodal collaboration.

Data flow of one batch (B posts, T word pieces, W words, H hidden; docs/models.md, section 2M-NER)::

    S, p   = encoder(ids)                  last hidden states (B, T, H), pooled [CLS] (B, H)
    X      = S[first piece of each word]   (B, W, H)   the CRF runs over words, not pieces
    F_vit  = TokenCrossAttention(X -> V)   V: CLIP ViT-B/32 tokens (B, 50, 768)
    F_res  = VectorCrossAttention(X -> r)  r = Linear(2048, H)(ResNet-152 pooled vector)
    E      = classifier(dropout(Linear(2H, H)([F_vit; F_res])))           emissions (B, W, 9)
    CL_vit = NT-Xent(head_t(p), head_v(flatten(V)))    CL_res = NT-Xent(head_t(p), head_r(r_raw))
    loss   = 2 * (alpha * CRF_NLL(E) + (1 - alpha) * (CL_vit + CL_res)),  alpha = 0.8

Ablations (each removes computation and parameters, not only a flag):
``contrastive: false`` (no CL terms, no projection heads, no pooler),
``use_resnet: false`` (ViT only), ``use_vit: false`` (ResNet only), and
``use_image: false`` (text only: X -> dropout -> classifier, as the
reference's text-only run).

Visual input: one lookup per post returning ``({"vit": (50, 768), "resnet":
(2048,) or its (49, 2048) grid}, has_image)``; :func:`paired_lookup` builds
it from the two standard feature-cache lookups. A post without an image is
masked out of both cross-attentions (zero context) and out of the
contrastive loss.

Departures from the reference code are switches or documented fixes; see
:class:`Mner2Config` and docs/models.md.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from xlingual.data.labels import CANONICAL_LABELS
from xlingual.data.sample import Sample
from xlingual.errors import ConfigError, DataFormatError, ModelNotFoundError
from xlingual.models.base import MnerModel, config_from_dict
from xlingual.models.contrastive import ProjectionHead, nt_xent
from xlingual.models.crf import MaskedCrf
from xlingual.models.mner2_layers import TokenCrossAttention, VectorCrossAttention
from xlingual.models.serialization import load_model_weights, read_model_config, save_model_folder
from xlingual.models.umt_encoder import ENCODER_SUBDIR, load_encoder, resolve_encoder, save_encoder_files
from xlingual.models.umt_text import pieces_per_token

logger = logging.getLogger(__name__)

BRANCHES = ("vit", "resnet")
PairedVisual = Callable[[Sample], tuple[Mapping[str, np.ndarray], bool]]
"""What 2M-NER reads per post: ``({"vit": tokens, "resnet": vector or grid}, has_image)``."""

OPTIONAL_MODULES = ("encoder.pooler.", "vit_attention.", "resnet_proj.", "resnet_attention.", "fuse.", "text_head.", "vit_head.", "resnet_head.")
"""Modules an ablation switch adds or removes; a checkpoint may lack them or carry extra ones."""


@dataclass
class Mner2Config:
    """2M-NER's settings (the ``model`` section of a training config); defaults follow the reference code."""

    encoder: str = "bert-base-multilingual-cased"
    max_length: int = 512
    """Word pieces per post incl. [CLS]/[SEP]. The reference never truncates, i.e. mBERT's 512; batches pad to their longest post."""
    use_image: bool = True
    """False: the text-only model (the training layer sets this from ``images: none``)."""
    use_vit: bool = True
    """The CLIP ViT-B/32 branch (cross-attention + its contrastive term); off with use_resnet on is "ResNet only"."""
    use_resnet: bool = True
    """The ResNet-152 branch; off with use_vit on is "ViT only"."""
    contrastive: bool = True
    """The NT-Xent alignment terms; off trains on the CRF loss alone (same 2*alpha scale)."""
    alpha: float = 0.8
    """Weight of the CRF loss against the sum of the contrastive terms."""
    temperature: float = 0.5
    vit_tokens: int = 50
    vit_dim: int = 768
    resnet_dim: int = 2048
    cross_heads: int | None = None
    """Heads of the ViT cross-attention; None: the encoder's (12 for mBERT, as the reference)."""
    dropout: float = 0.1
    faithful_query_bug: bool = False
    """Reproduce the reference's queries projected with the key weights (needs vit_dim == hidden)."""
    faithful_word_offset: bool = False
    """Reproduce the reference's word gather, one piece too early: [CLS] for the first word, the
    previous word's last piece for the others."""

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "Mner2Config":
        return config_from_dict(cls, values, "2M-NER")

    def validate(self) -> None:
        if self.max_length < 3:
            raise ConfigError(f"model.max_length must be at least 3, not {self.max_length}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"model.alpha must be in [0, 1], not {self.alpha}")
        if self.temperature <= 0:
            raise ConfigError(f"model.temperature must be positive, not {self.temperature}")
        for name in ("vit_tokens", "vit_dim", "resnet_dim"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"model.{name} must be positive, not {getattr(self, name)}")
        if self.use_image and not (self.use_vit or self.use_resnet):
            raise ConfigError("model.use_vit and model.use_resnet are both off: set model.use_image=false for the text-only model")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), not {self.dropout}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def branches(self) -> tuple[str, ...]:
        """The active visual branches, in the reference's concatenation order (ViT, then ResNet)."""
        if not self.use_image:
            return ()
        return tuple(name for name, on in zip(BRANCHES, (self.use_vit, self.use_resnet)) if on)

    @property
    def uses_contrastive(self) -> bool:
        return self.contrastive and bool(self.branches)


@dataclass
class Mner2Outputs:
    """One pass: word emissions (B, W, 9); projected views for the contrastive terms; ViT attention (B, heads, W, 50)."""

    emissions: torch.Tensor
    text_view: torch.Tensor | None = None
    vit_view: torch.Tensor | None = None
    resnet_view: torch.Tensor | None = None
    vit_attention: torch.Tensor | None = None


# ---------------------------------------------------------------------- encoder loading


def _encoder_error(name: str, err: Exception) -> ModelNotFoundError:
    return ModelNotFoundError(f"encoder '{name}' cannot be loaded ({type(err).__name__}); pass a local copy with --set model.encoder=PATH")


def pretrained_encoder(name: str, keep_pooler: bool) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Pre-trained encoder and tokenizer; with ``keep_pooler`` the pre-trained pooler stays (the contrastive text view)."""
    if not keep_pooler:
        return load_encoder(name)
    source, local_only = resolve_encoder(name)
    try:
        return AutoModel.from_pretrained(source, local_files_only=local_only), AutoTokenizer.from_pretrained(source, local_files_only=local_only)
    except (OSError, ValueError) as err:
        raise _encoder_error(name, err) from err


def encoder_architecture(folder: Path, keep_pooler: bool) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """An encoder of the architecture saved in ``folder`` (random weights, loaded afterwards), pooler as asked."""
    if not (folder / "config.json").is_file():
        raise ModelNotFoundError(f"{folder}: the model folder has no {ENCODER_SUBDIR}/config.json; re-save the model")
    encoder = AutoModel.from_config(AutoConfig.from_pretrained(folder, local_files_only=True))
    if not keep_pooler and getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None
    return encoder, AutoTokenizer.from_pretrained(folder, local_files_only=True)


# ---------------------------------------------------------------------- visual input


def paired_lookup(vit: Callable[[Sample], tuple[np.ndarray, bool]], resnet: Callable[[Sample], tuple[np.ndarray, bool]]) -> PairedVisual:
    """One 2M-NER lookup from two feature-cache lookups (CLIP tokens; ResNet-152 grid or vector).

    A post counts as having an image only when both caches have it: a post
    seen through one branch only would be aligned in one space and masked in
    the other, which the reference never does.
    """

    def lookup(sample: Sample) -> tuple[Mapping[str, np.ndarray], bool]:
        tokens, has_tokens = vit(sample)
        grid, has_grid = resnet(sample)
        return {"vit": tokens, "resnet": grid}, bool(has_tokens and has_grid)

    return lookup


def _resnet_vector(array: np.ndarray, dim: int) -> np.ndarray:
    """The pooled vector from what the ResNet cache holds: the (7x7=49, C) grid's mean equals torchvision's average pool."""
    array = np.asarray(array, dtype=np.float32)
    return array.mean(axis=0) if array.ndim == 2 else array


# ---------------------------------------------------------------------- the model


class Mner2Model(MnerModel):
    """2M-NER behind the :class:`~xlingual.models.base.MnerModel` interface."""

    model_type = "2mner"

    def __init__(self, config: Mner2Config, encoder: nn.Module, tokenizer: Any) -> None:
        super().__init__()
        self.config = config
        self.encoder = encoder
        self.tokenizer = tokenizer
        text = encoder.config
        hidden = text.hidden_size
        eps = getattr(text, "layer_norm_eps", 1e-12)
        heads = config.cross_heads or text.num_attention_heads
        if config.uses_contrastive and getattr(encoder, "pooler", None) is None:
            raise ConfigError(f"encoder '{config.encoder}' has no pooler: the contrastive terms need its pooled [CLS] (set model.contrastive=false)")
        branches = config.branches
        # New layers keep PyTorch's default initialisation, as in the reference (plain nn.Modules there).
        if "vit" in branches:
            if hidden % heads:
                raise ConfigError(f"model.cross_heads={heads} does not divide the encoder's hidden size {hidden}")
            if config.faithful_query_bug and config.vit_dim != hidden:
                raise ConfigError(f"model.faithful_query_bug projects words with the key weights: needs model.vit_dim == the encoder's hidden size ({config.vit_dim} != {hidden})")
            self.vit_attention = TokenCrossAttention(hidden, config.vit_dim, heads, config.dropout, eps, query_from_key=config.faithful_query_bug)
        if "resnet" in branches:
            self.resnet_proj = nn.Linear(config.resnet_dim, hidden)
            self.resnet_attention = VectorCrossAttention(hidden, hidden, config.dropout, eps)
        if branches:
            self.fuse = nn.Linear(len(branches) * hidden, hidden)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(hidden, len(CANONICAL_LABELS))
        self.crf = MaskedCrf(len(CANONICAL_LABELS))
        if config.uses_contrastive:
            self.text_head = ProjectionHead(hidden, hidden, hidden)
            if "vit" in branches:
                self.vit_head = ProjectionHead(config.vit_tokens * config.vit_dim, hidden, hidden)
            if "resnet" in branches:
                self.resnet_head = ProjectionHead(config.resnet_dim, hidden, hidden)

    # ------------------------------------------------------------------ building and saving

    @classmethod
    def build(cls, config: dict[str, Any], vocab_samples: Sequence[Sample] = ()) -> "Mner2Model":
        """A new model on pre-trained encoder weights; the label space is fixed, so samples are not needed."""
        mner2 = Mner2Config.from_dict(config)
        encoder, tokenizer = pretrained_encoder(mner2.encoder, keep_pooler=mner2.uses_contrastive)
        return cls(mner2, encoder, tokenizer)

    def save_pretrained(self, directory: str | Path) -> None:
        """Config, weights, label map and the encoder's config + tokenizer (``encoder/``): reloading needs no network."""
        directory = Path(directory)
        save_encoder_files(self.encoder, self.tokenizer, directory / ENCODER_SUBDIR)
        save_model_folder(directory, self.model_type, self.config.to_dict(), self.state_dict(), extras={"labels": list(CANONICAL_LABELS)})

    @classmethod
    def from_pretrained(cls, directory: str | Path, **overrides: Any) -> "Mner2Model":
        """Rebuild a saved model; ``overrides`` change config fields (an ablation switch may add or drop branches)."""
        directory = Path(directory)
        saved = read_model_config(directory)
        if saved.get("model_type") != cls.model_type:
            raise ModelNotFoundError(f"{directory}: holds a '{saved.get('model_type')}' model, not 2M-NER")
        if saved.get("extras", {}).get("labels") != list(CANONICAL_LABELS):
            raise ModelNotFoundError(f"{directory}: saved labels differ from this version's {list(CANONICAL_LABELS)}")
        config = Mner2Config.from_dict({**saved["config"], **overrides})
        encoder, tokenizer = encoder_architecture(directory / ENCODER_SUBDIR, keep_pooler=config.uses_contrastive)
        model = cls(config, encoder, tokenizer)
        model._load_weights(load_model_weights(directory), directory)
        return model.eval()

    def _load_weights(self, state: dict[str, torch.Tensor], directory: Path) -> None:
        own = self.state_dict()
        # A branch switched on or off changes the fusion layer's width: such a layer starts fresh.
        reshaped = [k for k, v in state.items() if k in own and own[k].shape != v.shape and k.startswith(OPTIONAL_MODULES)]
        state = {k: v for k, v in state.items() if k not in reshaped}
        missing, unexpected = self.load_state_dict(state, strict=False)
        bad = [k for k in [*missing, *unexpected] if not k.startswith(OPTIONAL_MODULES)]
        if bad:
            raise ModelNotFoundError(f"{directory}: weights do not fit the config (e.g. {bad[0]})")
        fresh = sorted({k.split(".")[0] for k in [*missing, *reshaped]})
        if fresh:
            logger.warning("%s: %s not in the checkpoint; they start from random initialisation", directory, ", ".join(fresh))
        if unexpected:
            logger.info("%s: weights of switched-off parts ignored (%s)", directory, ", ".join(sorted({k.split(".")[0] for k in unexpected})))

    # ------------------------------------------------------------------ data

    def encode(self, samples: Sequence[Sample], visual: PairedVisual | None = None) -> list[dict[str, Any]]:  # type: ignore[override]
        """Word pieces, each kept word's first-piece position and label, and (multimodal) the two visual inputs.

        A word with no pieces (e.g. U+00A0) is given the tokenizer's unknown
        piece, so every word has a representation; words whose first piece
        does not fit in ``max_length`` are cut and predicted ``O``.
        """
        if self.config.branches and visual is None and samples:
            logger.warning("2M-NER is multimodal but no image features were given: %d posts are treated as image-less", len(samples))
        cls_id, sep_id, unk_id = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id, self.tokenizer.unk_token_id
        if cls_id is None or sep_id is None:
            raise ConfigError(f"encoder '{self.config.encoder}': its tokenizer has no [CLS]/[SEP] tokens")
        budget = self.config.max_length - 2
        items = []
        for sample, pieces in zip(samples, pieces_per_token(self.tokenizer, [s.tokens for s in samples])):
            input_ids, positions = [cls_id], []
            for token_pieces in pieces:
                if len(input_ids) - 1 >= budget:
                    break
                positions.append(len(input_ids))
                input_ids.extend(list(token_pieces or [unk_id])[: budget - (len(input_ids) - 1)])
            input_ids.append(sep_id)
            item: dict[str, Any] = {
                "input_ids": np.array(input_ids, dtype=np.int64),
                "word_positions": np.array(positions, dtype=np.int64),
                "label_ids": self._label_ids(sample, len(positions)),
                "num_tokens": len(sample.tokens),
            }
            if self.config.branches:
                item["visual"], item["has_image"] = self._visual(sample, visual)
            items.append(item)
        return items

    def _label_ids(self, sample: Sample, count: int) -> np.ndarray:
        ids = []
        for position, label in enumerate(sample.labels[:count]):
            if label not in CANONICAL_LABELS:
                raise DataFormatError(None, None, f"sample {sample.id}, token {position + 1}: label '{label}' is not canonical BIO ({', '.join(CANONICAL_LABELS)})")
            ids.append(CANONICAL_LABELS.index(label))
        return np.array(ids, dtype=np.int64)

    def _visual(self, sample: Sample, visual: PairedVisual | None) -> tuple[dict[str, np.ndarray] | None, bool]:
        if visual is None:
            return None, False
        features, has_image = visual(sample)
        if not isinstance(features, Mapping):
            raise ConfigError(f"sample {sample.id}: 2M-NER needs CLIP tokens and a ResNet vector per post (a lookup from paired_lookup), got one array")
        out: dict[str, np.ndarray] = {}
        if self.config.use_vit:
            out["vit"] = np.asarray(features["vit"], dtype=np.float32)
            if out["vit"].shape != (self.config.vit_tokens, self.config.vit_dim):
                raise ConfigError(f"sample {sample.id}: ViT features of shape {out['vit'].shape}, 2M-NER expects ({self.config.vit_tokens}, {self.config.vit_dim}) (clip-vit-b32 tokens; check model.vit_tokens/vit_dim)")
        if self.config.use_resnet:
            out["resnet"] = _resnet_vector(features["resnet"], self.config.resnet_dim)
            if out["resnet"].shape != (self.config.resnet_dim,):
                raise ConfigError(f"sample {sample.id}: ResNet features of shape {np.shape(features['resnet'])}, 2M-NER expects ({self.config.resnet_dim},) or a (regions, {self.config.resnet_dim}) grid (check model.resnet_dim)")
        return out, bool(has_image)

    def collate(self, items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Pad pieces and words to the batch's longest post; at least one word position stays on for the CRF."""
        batch_size = len(items)
        pieces = np.array([len(item["input_ids"]) for item in items], dtype=np.int64)
        words = np.array([len(item["word_positions"]) for item in items], dtype=np.int64)
        length, width = int(pieces.max()), max(1, int(words.max()))
        input_ids = np.zeros((batch_size, length), dtype=np.int64)
        positions = np.zeros((batch_size, width), dtype=np.int64)
        labels = np.zeros((batch_size, width), dtype=np.int64)
        for row, item in enumerate(items):
            input_ids[row, : pieces[row]] = item["input_ids"]
            positions[row, : words[row]] = item["word_positions"]
            labels[row, : words[row]] = item["label_ids"]
        batch = {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(np.arange(length)[None, :] < pieces[:, None]),
            "word_positions": torch.from_numpy(positions),
            # An empty post keeps position 0 ([CLS]) on, labelled O: the CRF needs step 0; decoding returns [].
            "word_mask": torch.from_numpy(np.arange(width)[None, :] < np.maximum(words, 1)[:, None]),
            "labels": torch.from_numpy(labels),
            "num_tokens": torch.tensor([item["num_tokens"] for item in items], dtype=torch.int64),
        }
        if self.config.branches:
            batch.update(self._collate_visual(items))
        return batch

    def _collate_visual(self, items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        config, out = self.config, {}
        shapes = {"vit": (config.vit_tokens, config.vit_dim), "resnet": (config.resnet_dim,)}
        for name in self.config.branches:
            array = np.zeros((len(items), *shapes[name]), dtype=np.float32)
            for row, item in enumerate(items):
                if item["visual"] is not None:
                    array[row] = item["visual"][name]
            out[name] = torch.from_numpy(array)
        out["has_image"] = torch.tensor([bool(item["has_image"]) for item in items], dtype=torch.bool)
        return out

    # ------------------------------------------------------------------ network

    def compute(self, batch: dict[str, torch.Tensor]) -> Mner2Outputs:
        """Emissions and, when the contrastive terms are on, the projected text and image views."""
        encoded = self.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"].long())
        states = encoded.last_hidden_state
        positions = batch["word_positions"]
        if self.config.faithful_word_offset:
            positions = (positions - 1).clamp(min=0)
        words = states.gather(1, positions[:, :, None].expand(-1, -1, states.shape[-1]))
        branches = self.config.branches
        vit_attention = None
        if branches:
            present = batch["has_image"]
            parts = []
            if "vit" in branches:
                fused_vit, vit_attention = self.vit_attention(words, batch["vit"].to(words.dtype), present)
                parts.append(fused_vit)
            if "resnet" in branches:
                parts.append(self.resnet_attention(words, self.resnet_proj(batch["resnet"].to(words.dtype)), present))
            words = self.fuse(torch.cat(parts, dim=-1))
        out = Mner2Outputs(emissions=self.classifier(self.dropout(words)), vit_attention=vit_attention)
        if self.config.uses_contrastive:
            out.text_view = self.text_head(encoded.pooler_output)
            if "vit" in branches:
                out.vit_view = self.vit_head(batch["vit"].to(words.dtype).flatten(1))
            if "resnet" in branches:
                out.resnet_view = self.resnet_head(batch["resnet"].to(words.dtype))
        return out

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Emissions, and with labels ``loss`` plus its parts ``crf_loss``, ``cl_vit``, ``cl_resnet``."""
        out = self.compute(batch)
        result = {"emissions": out.emissions}
        if "labels" not in batch:
            return result
        crf_loss = self.crf.nll(out.emissions, batch["labels"], batch["word_mask"], reduction="mean")
        result["crf_loss"] = crf_loss
        contrastive = crf_loss.new_zeros(())
        for name, view in (("vit", out.vit_view), ("resnet", out.resnet_view)):
            if view is not None:
                result[f"cl_{name}"] = nt_xent(out.text_view, view, batch["has_image"], self.config.temperature)
                contrastive = contrastive + result[f"cl_{name}"]
        alpha = self.config.alpha
        result["loss"] = 2.0 * (alpha * crf_loss + (1.0 - alpha) * contrastive)
        return result

    @torch.no_grad()
    def decode(self, batch: dict[str, torch.Tensor]) -> list[list[str]]:
        """Viterbi labels per original token; tokens cut by ``max_length`` are ``O``. Tags are kept as decoded."""
        paths = self.crf.viterbi(self.compute(batch).emissions, batch["word_mask"])
        out = []
        for path, total in zip(paths, batch["num_tokens"].tolist()):
            labels = [CANONICAL_LABELS[tag] for tag in path[:total]]
            out.append(labels + ["O"] * (total - len(labels)))
        return out


__all__ = ["BRANCHES", "Mner2Config", "Mner2Model", "Mner2Outputs", "PairedVisual", "paired_lookup"]
