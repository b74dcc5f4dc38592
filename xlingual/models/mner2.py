"""2M-NER (Wang et al. 2024, arXiv 2404.17122): contrastive text-image alignment + multimodal collaboration.

Data flow of one batch (B posts, T word pieces, W words, H hidden; docs/models.md, section 2M-NER)::

    S, p   = encoder(ids)                  last hidden states (B, T, H), pooled [CLS] (B, H)
    X      = S[first piece of each word]   (B, W, H)   the CRF runs over words, not pieces
    F_vit  = TokenCrossAttention(X -> V)   V: CLIP ViT-B/32 tokens (B, 50, 768)
    F_res  = VectorCrossAttention(X -> r)  r = Linear(2048, H)(ResNet-152 pooled vector)
    E      = classifier(dropout(Linear(2H, H)([F_vit; F_res])))           emissions (B, W, labels)
    CL_vit = NT-Xent(head_t(p), head_v(flatten(V)))    CL_res = NT-Xent(head_t(p), head_r(r_raw))
    loss   = 2 * (alpha * CRF_NLL(E) + (1 - alpha) * (CL_vit + CL_res)),  alpha = 0.8

Ablations (each removes computation and parameters, not only a flag):
``contrastive: false`` (no CL terms, no projection heads, no pooler),
``use_resnet: false`` (ViT only), ``use_vit: false`` (ResNet only), and
``use_image: false`` (text only: X -> dropout -> classifier, as the
reference's text-only run).

Visual input: one lookup per post returning ``({"vit": (50, 768), "resnet":
(2048,)}, has_image)``; :func:`paired_lookup` builds it from the feature
side's two lookups (CLIP tokens; the ResNet-152 grid's pooled vector). A
post without an image is masked out of both cross-attentions (zero context)
and out of the contrastive loss.

``vit: finetune`` (the reference's training) makes CLIP's ViT a submodule,
``self.vit``: the lookup gives ``vit_pixels`` (the post's image, CLIP's
preprocessing, decoded when its batch is collated:
:mod:`xlingual.features.pixels`) instead of cached tokens, ``V`` above is
``self.vit(pixels)`` at every step, and the ViT's weights are optimised,
saved, resumed and used for prediction with the rest of the model (its
config and preprocessing are saved in ``vit/``).

``resnet: reference`` (the reference's ResNet input) makes torchvision's
ResNet-152 a frozen submodule, ``self.resnet``: the lookup gives
``resnet_pixels`` (a fresh random 224 crop + flip of the post's raw image,
:class:`~xlingual.features.pixels.DeferredCrop`) instead of the cached
vector, and ``r_raw`` above is ``mean(layer4(pixels))`` computed under
``no_grad`` at every step. The ResNet follows the model's mode: in training
its BatchNorm normalises with batch statistics and moves its running
statistics (buffers saved, resumed and loaded with the model), at evaluation
it uses them. Its parameters never train.

Departures from the reference code are switches or documented fixes; see
:class:`Mner2Config` and docs/models.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from xlingual.data.labels import CANONICAL_LABELS, label_inventory
from xlingual.data.sample import Sample
from xlingual.errors import ConfigError, ModelNotFoundError
from xlingual.models.base import MnerModel, VisualInput, sample_label_ids
from xlingual.models.bert_tagger import BertEncoderTagger
from xlingual.models.contrastive import ProjectionHead, nt_xent
from xlingual.models.crf import MaskedCrf
from xlingual.models.mner2_config import BRANCHES, CLIP_BACKBONE, RESNET_BACKBONE, Mner2Config
from xlingual.models.mner2_layers import TokenCrossAttention, VectorCrossAttention
from xlingual.models.wordpieces import pieces_per_token
from xlingual.models.vocab import Vocabulary


BRANCH_CACHES = {"vit": CLIP_BACKBONE, "resnet": RESNET_BACKBONE}
"""The feature cache each branch reads unless the model runs that branch's image encoder itself."""

PairedVisual = Callable[[Sample], tuple[Mapping[str, np.ndarray], bool]]
"""What 2M-NER reads per post: ``({"vit": tokens, "resnet": pooled vector}, has_image)``."""

VIT_SUBDIR = "vit"
"""A fine-tuned ViT's config and image preprocessing in a saved model folder (its weights are the model's)."""

SWITCHED_MODULES = ("vit", "vit_attention", "resnet", "resnet_proj", "resnet_attention", "fuse", "text_head", "vit_head", "resnet_head", "encoder.pooler")
"""Modules an ablation switch adds or removes (all absent from the text-only model); a checkpoint may lack them or carry extra ones."""

LABELS = Vocabulary(list(CANONICAL_LABELS))
"""The CRF's states of a model of the canonical labels: the nine, ids in their canonical order (no padding state).
A model's own states are its ``label_names`` in order (these nine, then other types' pairs)."""


def _caches_by_backbone(caches: Sequence[Any], wanted: Sequence[str], what: str) -> dict[str, Any]:
    """The caches by backbone when they are exactly one of each ``wanted``; else one line ``2mner {what}, got ...``."""
    by_backbone = {cache.backbone: cache for cache in caches}
    if set(by_backbone) != set(wanted) or len(caches) != len(wanted):
        found = ", ".join(f"{c.backbone} ({c.cache_dir})" for c in caches) or "none"
        raise ConfigError(f"2mner {what}, got {found}")
    return by_backbone


@dataclass
class Mner2Outputs:
    """One pass: word emissions (B, W, labels); projected views for the contrastive terms; ViT attention (B, heads, W, 50)."""

    emissions: torch.Tensor
    text_view: torch.Tensor | None = None
    vit_view: torch.Tensor | None = None
    resnet_view: torch.Tensor | None = None
    vit_attention: torch.Tensor | None = None


# ---------------------------------------------------------------------- encoder loading


# ---------------------------------------------------------------------- visual input


def named_lookup(lookups: Mapping[str, Callable[[Sample], tuple[Any, bool]]]) -> PairedVisual:
    """One 2M-NER lookup from one lookup per input name; a post has an image only when every lookup found one.

    A post seen through one branch only would be aligned in one space and
    masked in the other, which the reference never does.
    """

    def lookup(sample: Sample) -> tuple[Mapping[str, Any], bool]:
        found = {name: each(sample) for name, each in lookups.items()}
        return {name: value for name, (value, _) in found.items()}, all(has for _, has in found.values())

    return lookup


def paired_lookup(vit: Callable[[Sample], tuple[np.ndarray, bool]], resnet: Callable[[Sample], tuple[np.ndarray, bool]]) -> PairedVisual:
    """One 2M-NER lookup from two feature-cache lookups: ``paired_lookup(visual_lookup(clip_cache), pooled_lookup(resnet_cache))``.

    ``vit`` gives a post's (50, 768) CLIP ViT-B/32 tokens, ``resnet`` its
    (2048,) ResNet-152 vector (:mod:`xlingual.features.lookup`).

    A post counts as having an image only when both caches have it (:func:`named_lookup`).
    """
    return named_lookup({"vit": vit, "resnet": resnet})


# ---------------------------------------------------------------------- the model


class Mner2Model(BertEncoderTagger):
    """2M-NER on the :class:`~xlingual.models.base.MnerModel` base.

    It declares its visual inputs (one per active branch, :meth:`visual_inputs`);
    the base checks their shapes, drops an image-less post's arrays and
    collates them (zeros for such a post) with ``has_image``, as for ACN and
    UMT. Saving, loading, the label-map check, ``decode`` and ``predict`` are
    the base's too.
    """

    model_type = "2mner"
    config_class = Mner2Config
    visual_modules = SWITCHED_MODULES
    region_hint = "2M-NER reads CLIP ViT-B/32 tokens and the ResNet-152 vector per post (see paired_lookup)"
    named_visual_inputs = True

    @classmethod
    def visual_lookup_from(cls, caches: Sequence[Any], mode: str = "all", seed: int = 0) -> PairedVisual:
        """The paired lookup from a ``clip-vit-b32`` and a ``resnet152`` cache, in either order."""
        from xlingual.features import pooled_lookup, visual_lookup

        by_backbone = _caches_by_backbone(caches, (CLIP_BACKBONE, RESNET_BACKBONE),
                                          f"reads a {CLIP_BACKBONE} and a {RESNET_BACKBONE} feature cache")
        return paired_lookup(visual_lookup(by_backbone[CLIP_BACKBONE], mode=mode, seed=seed),
                             pooled_lookup(by_backbone[RESNET_BACKBONE], mode=mode, seed=seed))

    @classmethod
    def visual_combiner(cls, options: Mapping[str, Any], image_folders: Sequence[Path], model: "MnerModel | None" = None):
        """The cached pair (:meth:`visual_lookup_from`), or, when the model reads the images, each branch's input from
        ``image_folders`` or its cache: with ``vit: finetune`` the post's CLIP pixels
        (:func:`~xlingual.features.pixels.pixel_lookup`) instead of the clip-vit-b32 tokens, with ``resnet: reference``
        its random crop (:func:`~xlingual.features.pixels.crop_lookup`) instead of the resnet152 vector."""
        config = model.config if model is not None else Mner2Config.from_dict(options)
        if not config.reads_images:
            return cls.visual_lookup_from
        steps = None
        if config.finetunes_vit and model is not None:
            steps = model.vit_preprocessing
        elif config.finetunes_vit:
            from xlingual.features.clip import load_clip_preprocessing

            steps = load_clip_preprocessing(config.vit_weights)
        folders = list(image_folders)
        switches = " and ".join(name for name, on in (("model.vit=finetune", config.finetunes_vit), ("model.resnet=reference", config.runs_resnet)) if on)

        def combine(caches: Sequence[Any], mode: str = "all", seed: int = 0) -> PairedVisual:
            from xlingual.features import pooled_lookup, visual_lookup
            from xlingual.features.pixels import crop_lookup, pixel_lookup

            wanted = config.cached_backbones(tuple(BRANCH_CACHES[name] for name in config.branches))
            needs = " and ".join(f"a {name} feature cache" for name in wanted) or "no feature cache"
            by_backbone = _caches_by_backbone(caches, wanted, f"with {switches} reads the images and {needs}")
            lookups: dict[str, Callable[[Sample], tuple[Any, bool]]] = {}
            if config.finetunes_vit:
                lookups["vit_pixels"] = pixel_lookup(folders, steps, mode, seed)
            elif "vit" in config.branches:
                lookups["vit"] = visual_lookup(by_backbone[CLIP_BACKBONE], mode=mode, seed=seed)
            if config.runs_resnet:
                lookups["resnet_pixels"] = crop_lookup(folders, mode, seed)
            elif "resnet" in config.branches:
                lookups["resnet"] = pooled_lookup(by_backbone[RESNET_BACKBONE], mode=mode, seed=seed)
            return named_lookup(lookups)

        return combine

    @classmethod
    def keeps_pooler(cls, config: Mner2Config) -> bool:
        """The contrastive terms read BERT's pooled [CLS]; without them the pooler goes."""
        return config.uses_contrastive

    def __init__(self, config: Mner2Config, encoder: nn.Module, tokenizer: Any, label_names: Sequence[str] = CANONICAL_LABELS,
                 vit: nn.Module | None = None, vit_preprocessing: Any = None, resnet: nn.Module | None = None) -> None:
        """``vit`` (a :class:`~xlingual.features.clip.ClipTokens`) and its ``vit_preprocessing`` are needed when the config fine-tunes the ViT;
        ``resnet`` (:func:`~xlingual.features.backbones.load_backbone` of resnet152) when it runs the ResNet (``resnet: reference``)."""
        super().__init__()
        self._attach_encoder(config, encoder, tokenizer, label_names)
        self.labels = Vocabulary(list(self.label_names))
        text = encoder.config
        hidden = text.hidden_size
        eps = getattr(text, "layer_norm_eps", 1e-12)
        heads = config.cross_heads or text.num_attention_heads
        if config.uses_contrastive and getattr(encoder, "pooler", None) is None:
            raise ConfigError(f"encoder '{config.encoder}' has no pooler: the contrastive terms need its pooled [CLS] (set model.contrastive=false)")
        branches = config.branches
        # New layers keep PyTorch's default initialisation, as in the reference (plain nn.Modules there).
        # Text layers first: under one seed every ablation starts from the same text weights.
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(hidden, len(self.label_names))
        self.crf = MaskedCrf(len(self.label_names))
        if config.finetunes_vit:
            if vit is None or vit_preprocessing is None:
                raise ConfigError("model.vit=finetune: the model needs its CLIP vision model and preprocessing")
            from xlingual.features.clip import vision_token_shape

            shape = vision_token_shape(vit.vision.config)
            if shape != (config.vit_tokens, config.visual_dim):
                raise ConfigError(f"model.vit_tokens / model.visual_dim: the ViT of {config.vit_weights} gives {shape[0]} tokens of "
                                  f"{shape[1]} channels, the config says {config.vit_tokens} x {config.visual_dim}")
            self.vit = vit.requires_grad_(True)
            self.vit_preprocessing = vit_preprocessing
        if config.runs_resnet:
            if resnet is None:
                raise ConfigError("model.resnet=reference: the model needs its ResNet")
            norms = [module for module in resnet.modules() if isinstance(module, nn.BatchNorm2d)]
            channels = norms[-1].num_features if norms else None
            if channels != config.resnet_dim:
                raise ConfigError(f"model.resnet_dim: the ResNet of {config.resnet_weights} gives {channels} channels, the config says {config.resnet_dim}")
            self.resnet = resnet.requires_grad_(False)
        if "vit" in branches:
            if hidden % heads:
                raise ConfigError(f"model.cross_heads={heads} does not divide the encoder's hidden size {hidden}")
            if config.faithful_query_bug and config.visual_dim != hidden:
                raise ConfigError(f"model.faithful_query_bug projects words with the key weights: needs model.visual_dim == the encoder's hidden size ({config.visual_dim} != {hidden})")
            self.vit_attention = TokenCrossAttention(hidden, config.visual_dim, heads, config.dropout, eps, query_from_key=config.faithful_query_bug)
        if "resnet" in branches:
            self.resnet_proj = nn.Linear(config.resnet_dim, hidden)
            self.resnet_attention = VectorCrossAttention(hidden, hidden, config.dropout, eps)
        if branches:
            self.fuse = nn.Linear(len(branches) * hidden, hidden)
        if config.uses_contrastive:
            self.text_head = ProjectionHead(hidden, hidden, hidden)
            if "vit" in branches:
                self.vit_head = ProjectionHead(config.vit_tokens * config.visual_dim, hidden, hidden)
            if "resnet" in branches:
                self.resnet_head = ProjectionHead(config.resnet_dim, hidden, hidden)

    # ------------------------------------------------------------------ building and saving

    @classmethod
    def build(cls, config: dict[str, Any], vocab_samples: Sequence[Sample] = ()) -> "Mner2Model":
        """A new model on pre-trained encoder weights, with the labels of ``vocab_samples`` (the canonical nine without samples)."""
        mner2 = Mner2Config.from_dict(config)
        encoder, tokenizer = cls.pretrained_encoder(mner2)
        vit = steps = resnet = None
        if mner2.finetunes_vit:
            from xlingual.features.clip import load_clip, load_clip_preprocessing

            vit, steps = load_clip(mner2.vit_weights), load_clip_preprocessing(mner2.vit_weights)
        if mner2.runs_resnet:
            from xlingual.features.backbones import load_backbone

            resnet = load_backbone(RESNET_BACKBONE, mner2.resnet_weights, option="model.resnet_weights")
        return cls(mner2, encoder, tokenizer, label_inventory(vocab_samples), vit, steps, resnet)

    @classmethod
    def label_maps_for(cls, label_names: Sequence[str]) -> dict[str, list[str]]:
        return {"labels": list(label_names)}

    def _save_files(self, directory: Path) -> None:
        """The encoder's config and tokenizer (``encoder/``), a fine-tuned ViT's config and preprocessing (``vit/``): no network needed to reload."""
        super()._save_files(directory)
        if self.config.finetunes_vit:
            from xlingual.features.clip import PREPROCESSOR_FILE
            from xlingual.io import atomic_write_text

            folder = directory / VIT_SUBDIR
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(folder / "config.json", self.vit.vision.config.to_json_string())
            atomic_write_text(folder / PREPROCESSOR_FILE, json.dumps(self.vit_preprocessing.to_config(), indent=2) + "\n")

    @classmethod
    def _from_saved(cls, config: Mner2Config, extras: dict[str, Any], directory: Path, label_names: Sequence[str]) -> "Mner2Model":
        encoder, tokenizer = cls.saved_encoder(config, directory)
        vit = steps = resnet = None
        if config.finetunes_vit:
            vit, steps = _saved_vit(directory / VIT_SUBDIR)
        if config.runs_resnet:  # the architecture; its weights and BatchNorm statistics are the saved model's
            from xlingual.features.backbones import load_backbone

            resnet = load_backbone(RESNET_BACKBONE, "random")
        return cls(config, encoder, tokenizer, label_names, vit, steps, resnet)

    reshaped_by_switches = ("fuse.weight",)
    """The fusion layer concatenates one or two branches: a checkpoint's of the other width starts fresh."""

    def _optional_weight(self, key: str, missing: bool) -> bool:
        """Any ablation switch (not only ``use_image``) may add or drop the switched modules, either way."""
        return key.startswith(tuple(f"{name}." for name in SWITCHED_MODULES))

    # ------------------------------------------------------------------ data

    def _encode_text(self, samples: Sequence[Sample]) -> list[dict[str, Any]]:
        """Word pieces, and each kept word's first-piece position and label.

        A word with no pieces (e.g. U+00A0) is given the tokenizer's unknown
        piece, so every word has a representation; words whose first piece
        does not fit in ``max_length`` are cut and predicted ``O``.
        """
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
            items.append({
                "input_ids": np.array(input_ids, dtype=np.int64),
                "word_positions": np.array(positions, dtype=np.int64),
                "label_ids": sample_label_ids(sample, self.labels, len(positions), self.label_names),
                "num_tokens": len(sample.tokens),
            })
        return items

    @property
    def loader_workers(self) -> int:
        """``model.vit_workers`` decode the images of the next batches while the model trains on this one."""
        return self.config.vit_workers if self.config.reads_images else 0

    def visual_inputs(self) -> tuple[VisualInput, ...]:
        """The active branches' inputs, ViT first: ``vit`` (tokens, channels) and ``resnet`` (channels,), from :func:`paired_lookup`;
        ``vit_pixels`` (3, H, W) instead of ``vit`` when the ViT is fine-tuned, ``resnet_pixels`` (3, 224, 224) instead of
        ``resnet`` when the ResNet runs."""
        if self.config.finetunes_vit:
            from xlingual.features.pixels import pixel_shape

            vit = VisualInput("vit_pixels", pixel_shape(self.vit_preprocessing), option="model.vit_weights",
                              hint="the post's image with CLIP's preprocessing, from pixel_lookup (model.vit=finetune)", label="image pixel")
        else:
            vit = VisualInput("vit", (self.config.vit_tokens, self.config.visual_dim), option="model.vit_tokens / model.visual_dim",
                              hint="CLIP ViT-B/32 tokens, from visual_lookup of a clip-vit-b32 cache")
        if self.config.runs_resnet:
            from xlingual.features.preprocess import INPUT_SIZE

            resnet = VisualInput("resnet_pixels", (3, INPUT_SIZE, INPUT_SIZE), option="model.resnet",
                                 hint="the post's image, a random crop from crop_lookup (model.resnet=reference)", label="image pixel")
        else:
            resnet = VisualInput("resnet", (self.config.resnet_dim,), option="model.resnet_dim",
                                 hint="the ResNet-152 vector, from pooled_lookup of a resnet152 cache")
        inputs = {"vit": vit, "resnet": resnet}
        return tuple(inputs[name] for name in self.config.branches)

    def _collate_text(self, items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
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
        return {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(np.arange(length)[None, :] < pieces[:, None]),
            "word_positions": torch.from_numpy(positions),
            # An empty post keeps position 0 ([CLS]) on, labelled O: the CRF needs step 0; decoding returns [].
            "word_mask": torch.from_numpy(np.arange(width)[None, :] < np.maximum(words, 1)[:, None]),
            "word_counts": torch.from_numpy(words),
            "labels": torch.from_numpy(labels),
            "num_tokens": torch.tensor([item["num_tokens"] for item in items], dtype=torch.int64),
        }

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
        if self.config.finetunes_vit:
            tokens = self.vit(batch["vit_pixels"]).to(words.dtype)
        elif "vit" in branches:
            tokens = batch["vit"].to(words.dtype)
        if "resnet" in branches:
            vector = self._resnet_vector(batch).to(words.dtype)
        if branches:
            present = batch["has_image"]
            parts = []
            if "vit" in branches:
                fused_vit, vit_attention = self.vit_attention(words, tokens, present)
                parts.append(fused_vit)
            if "resnet" in branches:
                parts.append(self.resnet_attention(words, self.resnet_proj(vector), present))
            words = self.fuse(torch.cat(parts, dim=-1))
        out = Mner2Outputs(emissions=self.classifier(self.dropout(words)), vit_attention=vit_attention)
        if self.config.uses_contrastive:
            out.text_view = self.text_head(encoded.pooler_output)
            if "vit" in branches:
                out.vit_view = self.vit_head(tokens.flatten(1))
            if "resnet" in branches:
                out.resnet_view = self.resnet_head(vector)
        return out

    def _resnet_vector(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The (B, resnet_dim) ResNet vector: the cache's, or the running ResNet's ``mean(layer4)`` of the posts' crops.

        The ResNet runs without gradient (its weights never train) in the
        model's mode, on the posts that have an image only: an image-less
        post's zeros would move the BatchNorm statistics; its vector is zero
        (it is masked everywhere).
        """
        if not self.config.runs_resnet:
            return batch["resnet"]
        pixels, present = batch["resnet_pixels"], batch["has_image"]
        vector = pixels.new_zeros((pixels.shape[0], self.config.resnet_dim))
        if bool(present.any()):
            with torch.no_grad():
                vector[present] = self.resnet(pixels[present]).mean(dim=(2, 3)).to(vector.dtype)
        return vector

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

    def _viterbi(self, batch: dict[str, torch.Tensor]) -> tuple[list[list[int]], Vocabulary]:
        """Viterbi over the word positions."""
        return self.crf.viterbi(self.compute(batch).emissions, batch["word_mask"]), self.labels

    def _token_positions(self, batch: dict[str, torch.Tensor]) -> list[list[int]]:
        """Token ``i`` is word position ``i`` when its first piece fit in ``max_length``, else -1."""
        return [list(range(kept)) + [-1] * (total - kept)
                for kept, total in zip(batch["word_counts"].tolist(), batch["num_tokens"].tolist())]


def _saved_vit(folder: Path) -> tuple[nn.Module, Any]:
    """A fine-tuned ViT rebuilt from a saved model's ``vit/`` (weights not yet loaded) and its preprocessing."""
    from xlingual.features.clip import (PREPROCESSOR_FILE, ClipTokens, load_clip_config, read_preprocessor_settings, vision_family,
                                       vision_model_from_config)
    from xlingual.features.preprocess import ClipPreprocessing

    for name in ("config.json", PREPROCESSOR_FILE):
        if not (folder / name).is_file():
            raise ModelNotFoundError(f"{folder / name}: missing; the model fine-tuned its ViT and needs its config and preprocessing")
    settings = read_preprocessor_settings(folder / PREPROCESSOR_FILE)
    config = load_clip_config(str(folder))
    steps = ClipPreprocessing.from_config(settings, str(folder / PREPROCESSOR_FILE), vision_family(config))
    return ClipTokens(vision_model_from_config(config)), steps


__all__ = ["BRANCHES", "LABELS", "Mner2Config", "Mner2Model", "Mner2Outputs", "PairedVisual", "named_lookup", "paired_lookup"]
