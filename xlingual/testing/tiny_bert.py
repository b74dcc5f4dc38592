"""A tiny BERT (random weights) and a WordPiece vocabulary that covers given text.

Tests and demos need an encoder loadable through the same path users take
(``AutoModel.from_pretrained(folder)`` / ``AutoTokenizer.from_pretrained(folder)``)
without any download: :func:`build_tiny_bert` writes such a folder in about a
second. The vocabulary holds the special tokens, every character given (also
as a ``##`` continuation piece, so any word made of known characters
tokenises without ``[UNK]``), and every whole word given, lower-cased or not
as ``do_lower_case`` says.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import torch
from transformers import BertConfig, BertModel, BertTokenizer

logger = logging.getLogger(__name__)

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
BASIC_CHARACTERS = [chr(c) for c in range(33, 127)]


def tiny_bert_vocab(vocab_tokens: Iterable[str] | None = None, do_lower_case: bool = False) -> list[str]:
    """Special tokens, ASCII characters, every character and word of ``vocab_tokens`` (+ ``##`` pieces)."""
    words: list[str] = []
    characters: list[str] = list(BASIC_CHARACTERS)
    for token in vocab_tokens or ():
        token = token.lower() if do_lower_case else token
        token = token.strip()
        if not token:
            continue
        words.append(token)
        characters.extend(token)
    vocab: list[str] = list(SPECIAL_TOKENS)
    seen = set(vocab)
    for entry in [*characters, *(f"##{c}" for c in characters), *words]:
        if entry not in seen and not any(ch.isspace() for ch in entry):
            seen.add(entry)
            vocab.append(entry)
    return vocab


def build_tiny_bert(
    folder: str | Path,
    vocab_tokens: Iterable[str] | None = None,
    *,
    hidden_size: int = 32,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 2,
    intermediate_size: int = 64,
    max_position_embeddings: int = 512,
    do_lower_case: bool = False,
    seed: int = 0,
) -> Path:
    """Write a random-weight ``BertModel`` and its ``BertTokenizer`` into ``folder``; return the folder.

    ``vocab_tokens`` are the words (or characters) the vocabulary must cover,
    e.g. every token of the samples a test trains on.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = tiny_bert_vocab(vocab_tokens, do_lower_case=do_lower_case)
    vocab_file = folder / "vocab.txt"
    vocab_file.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer(str(vocab_file), do_lower_case=do_lower_case, tokenize_chinese_chars=True)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=max_position_embeddings,
        pad_token_id=0,
    )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = BertModel(config)
    finally:
        torch.random.set_rng_state(generator_state)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    logger.debug("tiny BERT with %d vocabulary entries written to %s", len(vocab), folder)
    return folder


__all__ = ["build_tiny_bert", "tiny_bert_vocab"]
