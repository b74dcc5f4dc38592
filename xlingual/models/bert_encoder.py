"""The BERT-style text encoder UMT and 2M-NER share (any ``AutoModel`` checkpoint): loaded offline-first, with one clear error.

``from_pretrained`` with a hub id and no network retries for tens of seconds
per file before failing; a user with a typo or no cache deserves the answer
at once. So: a local folder is used as is; a hub id is first looked up in the
local cache, and the network is tried only when the hub is switched on and
answers (:mod:`xlingual.hub`). Every failure becomes a
:class:`~xlingual.errors.ModelNotFoundError` that names the model and the
option to change.
"""

from __future__ import annotations

import logging
from pathlib import Path

from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from xlingual.errors import ModelNotFoundError

logger = logging.getLogger(__name__)

ENCODER_SUBDIR = "encoder"
"""Where a saved UMT or 2M-NER folder keeps its encoder's config and tokenizer files."""


def _not_found(name: str, reason: str) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"encoder '{name}' cannot be loaded ({reason}); download it once with network access, "
        f"or pass a local copy with --set model.encoder=PATH"
    )


def resolve_encoder(name: str) -> tuple[str, bool]:
    """``(name_or_path, local_files_only)`` to load ``name`` with; raises at once when it is not available.

    The lookup is :func:`xlingual.hub.resolve_model`'s, the one
    every model folder or hub id of xlingual goes through; the error names the
    option a UMT or 2M-NER user changes.
    """
    from xlingual.hub import resolve_model

    try:
        source = resolve_model(name)
    except ModelNotFoundError as err:  # its first clause says what is wrong; the hint here names the encoder option
        raise _not_found(name, str(err).split("; ")[0]) from None
    return source.location, source.local_files_only


def load_encoder(name: str, keep_pooler: bool = False) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Pre-trained encoder weights and tokenizer for ``name`` (hub id or folder); ``keep_pooler`` keeps BERT's pre-trained pooler."""
    source, local_only = resolve_encoder(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
        encoder = AutoModel.from_pretrained(source, local_files_only=local_only)
    except (OSError, ValueError) as err:
        raise _not_found(name, f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}") from err
    return (encoder if keep_pooler else drop_pooler(encoder)), tokenizer


def encoder_from_folder(folder: str | Path, keep_pooler: bool = False) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """An encoder with the architecture saved in ``folder`` (weights left random, to be loaded after); pooler as asked."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise ModelNotFoundError(f"{folder}: the model folder has no {ENCODER_SUBDIR}/config.json; re-save the model")
    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    encoder = AutoModel.from_config(config)
    return (encoder if keep_pooler else drop_pooler(encoder)), tokenizer


def save_encoder_files(encoder: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, folder: str | Path) -> None:
    """Config and tokenizer files (no weights: those live in the model's own safetensors file)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    encoder.config.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def drop_pooler(encoder: PreTrainedModel) -> PreTrainedModel:
    """Remove BERT's pooler where a model does not use it (UMT; 2M-NER without its contrastive terms): unused parameters would get no gradient."""
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None
    return encoder


__all__ = ["ENCODER_SUBDIR", "drop_pooler", "encoder_from_folder", "load_encoder", "resolve_encoder", "save_encoder_files"]
