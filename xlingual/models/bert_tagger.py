"""What UMT and 2M-NER share: a tagger whose text side is a pre-trained BERT-style encoder.

Building one loads the encoder and its tokenizer (hub id or folder,
:mod:`xlingual.models.bert_encoder`); saving writes the encoder's config and
tokenizer under ``encoder/`` (its weights go into the model's own safetensors
file); loading rebuilds that architecture offline before the weights are
read. A model that reads BERT's pooled ``[CLS]`` says so
(:meth:`BertEncoderTagger.keeps_pooler`); otherwise the pooler is removed, so
no parameter goes without a gradient.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from xlingual.models.base import MnerModel
from xlingual.models.bert_encoder import ENCODER_SUBDIR, encoder_from_folder, load_encoder, save_encoder_files


class BertEncoderTagger(MnerModel):
    """Base of the models on a pre-trained ``AutoModel`` encoder (UMT, 2M-NER): the encoder's loading, saving and rebuilding."""

    @classmethod
    def keeps_pooler(cls, config: Any) -> bool:
        """Whether a model of ``config`` reads BERT's pooled ``[CLS]`` (2M-NER's contrastive terms); UMT does not."""
        return False

    def _attach_encoder(self, config: Any, encoder: nn.Module, tokenizer: Any, label_names: Sequence[str]) -> None:
        """Keep the config, the labels, the encoder and its tokenizer: the first lines of every such model's constructor."""
        self.config = config
        self.label_names = tuple(label_names)
        self.encoder = encoder
        self.tokenizer = tokenizer

    @classmethod
    def pretrained_encoder(cls, config: Any) -> tuple[nn.Module, Any]:
        """The pre-trained encoder and tokenizer ``config.encoder`` names, pooler as :meth:`keeps_pooler` says."""
        return load_encoder(config.encoder, keep_pooler=cls.keeps_pooler(config))

    @classmethod
    def saved_encoder(cls, config: Any, directory: Path) -> tuple[nn.Module, Any]:
        """The encoder architecture and tokenizer a saved folder holds (weights loaded after), pooler as when it was built."""
        return encoder_from_folder(directory / ENCODER_SUBDIR, keep_pooler=cls.keeps_pooler(config))

    def _save_files(self, directory: Path) -> None:
        """The encoder's config and tokenizer (``encoder/``): no network needed to reload."""
        save_encoder_files(self.encoder, self.tokenizer, directory / ENCODER_SUBDIR)


__all__ = ["BertEncoderTagger"]
