"""Tiny translation models built offline: a Marian with SentencePiece tokenizers, an NLLB and an M2M-100.

Tests and the ``make demo`` pipeline need real transformers models that load
through the same ``--model PATH`` code path as the published ones, without any
download. The builders train SentencePiece models on a toy parallel corpus
(made-up sentences with ``X1``-style placeholders and a few named entities),
build small configs and, when ``train_steps > 0``, fit the model to that corpus
for a few hundred steps so it copies placeholders and translates the toy
entities. With the default ``train_steps=0`` the weights are random (output
is gibberish, which exercises every failure path) and a build takes about a
second; training costs roughly 0.1-0.3 s per step on a 2-core CPU.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

ENTITIES: list[tuple[str, str]] = [
    ("Paris", "巴黎"), ("London", "伦敦"), ("John", "约翰"), ("Apple", "苹果"), ("Google", "谷歌"),
    ("China", "中国"), ("Obama", "奥巴马"), ("Beijing", "北京"), ("Nike", "耐克"), ("Mary", "玛丽"),
]
TEMPLATES: list[tuple[str, str]] = [
    ("{0} loves {1} .", "{0}爱{1}。"), ("{0} went to {1} today .", "{0}今天去了{1}。"),
    ("we met {0} in {1} .", "我们在{1}见到了{0}。"), ("{0} and {1} are good .", "{0}和{1}很好。"),
    ("I see {0} .", "我看见{0}。"), ("{0} is in {1} with {2} .", "{0}和{2}在{1}。"),
    ("good game , {0} !", "好比赛，{0}！"), ("the city is big .", "城市很大。"), ("we love the game .", "我们爱比赛。"),
    ("{0} visit {1} and {2} .", "{0}访问{1}和{2}。"),
]


def toy_parallel_corpus(size: int = 400, seed: int = 0) -> list[tuple[str, str]]:
    """``size`` made-up (English, Chinese) pairs: templates filled with placeholders or entities, plus the entities alone."""
    rng = random.Random(seed)
    pairs = [(en, zh) for en, zh in ENTITIES]
    while len(pairs) < size:
        en_t, zh_t = rng.choice(TEMPLATES)
        slots = en_t.count("{")
        if rng.random() < 0.6:
            numbers = rng.sample(range(1, 10), slots)
            fill_en = fill_zh = [f"X{n}" for n in numbers]
        else:
            chosen = rng.sample(ENTITIES, slots)
            fill_en, fill_zh = [e for e, _ in chosen], [z for _, z in chosen]
        pairs.append((en_t.format(*fill_en), zh_t.format(*fill_zh)))
    return pairs


def _directed(pairs: list[tuple[str, str]], src: str) -> tuple[list[str], list[str]]:
    if src == "en":
        return [a for a, _ in pairs], [b for _, b in pairs]
    return [b for _, b in pairs], [a for a, _ in pairs]


def _train_spm(lines: list[str], prefix: Path, vocab_size: int, model_type: str, ids: dict[str, int]) -> Path:
    import sentencepiece as spm

    text = prefix.with_suffix(".txt")
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(text), model_prefix=str(prefix), vocab_size=vocab_size, model_type=model_type,
        character_coverage=1.0, hard_vocab_limit=False, minloglevel=2, user_defined_symbols=[f"X{n}" for n in range(1, 10)], **ids,
    )
    text.unlink()
    return prefix.with_suffix(".model")


def _fit(model, tokenizer, sources: list[str], targets: list[str], steps: int, seed: int, lr: float = 3e-3, batch_size: int = 32) -> None:
    import torch

    torch.manual_seed(seed)
    rng = random.Random(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    encoded = tokenizer(sources, text_target=targets, padding=True, return_tensors="pt")
    encoded["labels"][encoded["labels"] == tokenizer.pad_token_id] = -100
    model.train()
    loss = torch.zeros(())
    for _ in range(steps):
        picks = torch.tensor(rng.sample(range(len(sources)), min(batch_size, len(sources))))
        batch = {key: value[picks] for key, value in encoded.items()}
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    logger.debug("tiny model trained %d steps, last loss %.3f", steps, float(loss.detach()))


def build_tiny_marian(folder: str | Path, src: str = "en", tgt: str = "zh", train_steps: int = 0, seed: int = 0,
                      d_model: int = 64, corpus_size: int = 400, max_positions: int = 256) -> Path:
    """A Marian model for ``src``->``tgt`` with SentencePiece tokenizers, saved to ``folder`` (returned).

    ``max_positions`` sets ``max_position_embeddings``: a small table (64, as
    some published Marian models have) reproduces the inputs and generations
    that run off its end.
    """
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sources, targets = _directed(toy_parallel_corpus(corpus_size, seed), src)
    ids = {"unk_id": 1, "eos_id": 2, "bos_id": -1, "pad_id": -1}
    src_spm = _train_spm(sources, folder / "spm_src", 120, "unigram", ids)
    tgt_spm = _train_spm(targets, folder / "spm_tgt", 120, "unigram", ids)
    (folder / "source.spm").write_bytes(src_spm.read_bytes())
    (folder / "target.spm").write_bytes(tgt_spm.read_bytes())
    for path in (src_spm, tgt_spm, src_spm.with_suffix(".vocab"), tgt_spm.with_suffix(".vocab")):
        path.unlink()
    import sentencepiece as spm

    vocab: dict[str, int] = {"</s>": 0, "<unk>": 1}
    for name in ("source.spm", "target.spm"):
        processor = spm.SentencePieceProcessor(model_file=str(folder / name))
        for i in range(processor.get_piece_size()):
            vocab.setdefault(processor.id_to_piece(i), len(vocab))
    vocab["<pad>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    tokenizer = MarianTokenizer(source_spm=str(folder / "source.spm"), target_spm=str(folder / "target.spm"),
                                vocab=str(folder / "vocab.json"), source_lang=src, target_lang=tgt)
    pad = vocab["<pad>"]
    config = MarianConfig(
        vocab_size=len(vocab), decoder_vocab_size=len(vocab), d_model=d_model, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=2 * d_model, decoder_ffn_dim=2 * d_model,
        max_position_embeddings=max_positions, pad_token_id=pad, decoder_start_token_id=pad, eos_token_id=0, forced_eos_token_id=0,
        share_encoder_decoder_embeddings=True, tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = MarianMTModel(config)
    if train_steps:
        _fit(model, tokenizer, sources, targets, train_steps, seed)
    with torch.no_grad():  # CTranslate2 starts decoding from a zero vector: keep the <pad> row zero
        model.get_input_embeddings().weight[pad].zero_()
    model.generation_config.max_length = 128
    model.generation_config.num_beams = 1
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_tiny_nllb(folder: str | Path, src: str = "en", tgt: str = "zh", train_steps: int = 0, seed: int = 0,
                    d_model: int = 64, corpus_size: int = 400, languages: Sequence[str] = ("en", "zh")) -> Path:
    """An NLLB-style M2M100 model with an offline-built NllbTokenizer, saved to ``folder`` (returned).

    The tokenizer carries the NLLB codes of ``languages`` (ISO 639-1; the
    default keeps the tiny model exactly as it always was), so the same folder
    serves any direction between them (``src``/``tgt`` only choose what
    ``train_steps`` fits, on the English-Chinese toy corpus).
    """
    from transformers import NllbTokenizer

    from xlingual.translate.languages import LANGUAGES

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pairs = toy_parallel_corpus(corpus_size, seed)
    model_file = _train_spm([a for a, _ in pairs] + [b for _, b in pairs], folder / "spm", 200, "bpe",
                            {"unk_id": 0, "bos_id": 1, "eos_id": 2, "pad_id": -1})
    (folder / "sentencepiece.bpe.model").write_bytes(model_file.read_bytes())
    model_file.unlink()
    model_file.with_suffix(".vocab").unlink()
    codes = [LANGUAGES[code].nllb for code in languages]
    tokenizer = NllbTokenizer.from_pretrained(str(folder), src_lang=LANGUAGES[src].nllb, tgt_lang=LANGUAGES[tgt].nllb, extra_special_tokens=codes)
    return _save_m2m100(folder, tokenizer, len(tokenizer), pairs, src, train_steps, seed, d_model, pad_id=1)


def build_tiny_m2m100(folder: str | Path, src: str = "en", tgt: str = "zh", train_steps: int = 0, seed: int = 0,
                      d_model: int = 64, corpus_size: int = 400) -> Path:
    """An M2M-100 model with an offline-built M2M100Tokenizer (all of M2M-100's ``__xx__`` language tokens), saved to ``folder``."""
    import sentencepiece as spm
    from transformers import M2M100Tokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pairs = toy_parallel_corpus(corpus_size, seed)
    model_file = _train_spm([a for a, _ in pairs] + [b for _, b in pairs], folder / "spm", 200, "bpe",
                            {"bos_id": 0, "pad_id": 1, "eos_id": 2, "unk_id": 3})
    (folder / "sentencepiece.bpe.model").write_bytes(model_file.read_bytes())
    processor = spm.SentencePieceProcessor(model_file=str(model_file))
    vocab = {processor.id_to_piece(i): i for i in range(processor.get_piece_size())}
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    model_file.unlink()
    model_file.with_suffix(".vocab").unlink()
    tokenizer = M2M100Tokenizer(str(folder / "vocab.json"), str(folder / "sentencepiece.bpe.model"), src_lang=src, tgt_lang=tgt)
    vocab_size = len(tokenizer.encoder) + len(tokenizer.lang_token_to_id) + tokenizer.num_madeup_words  # language tokens come after the pieces
    return _save_m2m100(folder, tokenizer, vocab_size, pairs, src, train_steps, seed, d_model, pad_id=1)


def _save_m2m100(folder: Path, tokenizer, vocab_size: int, pairs: list[tuple[str, str]], src: str, train_steps: int, seed: int,
                 d_model: int, pad_id: int) -> Path:
    import torch
    from transformers import M2M100Config, M2M100ForConditionalGeneration

    config = M2M100Config(
        vocab_size=vocab_size, d_model=d_model, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=2 * d_model, decoder_ffn_dim=2 * d_model, max_position_embeddings=256,
        bos_token_id=0, pad_token_id=pad_id, eos_token_id=2, decoder_start_token_id=2, scale_embedding=True,
    )
    torch.manual_seed(seed)
    model = M2M100ForConditionalGeneration(config)
    if train_steps:
        sources, targets = _directed(pairs, src)
        _fit(model, tokenizer, sources, targets, train_steps, seed)
    model.generation_config.max_length = 128
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
