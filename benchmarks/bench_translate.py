"""Speed of ``xl translate`` against plain ``generate`` loops, and CTranslate2 against transformers.

A full-size Marian with opus-mt-en-zh's shape (random weights: no download
needed, and speed does not depend on the weights) translates N real
Twitter2015 sentences, greedy, new tokens bounded by 2 x input length + 10 in
every variant:

(a) a plain loop calling ``generate`` one sentence at a time (first 100, scaled to N);
(b) batched ``generate`` over the raw sentences, 32 per batch in input order: the floor;
(c) the projection pipeline (``translate_corpus``: placeholders, entity pass, cache
    writes) with the transformers backend, first strategy only and all strategies;
(d) the same with the CTranslate2 backend, int8.

Random weights rarely keep a placeholder, so with all strategies every sample
runs three sentence passes; with a real model the fallbacks run only for the
few samples that fail. Ratios are computed within one run on one machine.

    .venv/bin/python benchmarks/bench_translate.py --data ../shared/data --sentences 500 [--all-strategies]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path


def build_full_size_marian(folder: Path, sentences: list[str]) -> Path:
    """opus-mt-en-zh's architecture (512-d, 6+6 layers, 65001 vocab) with a SentencePiece tokenizer trained here."""
    import sentencepiece as spm
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    for name in ("source", "target"):
        spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(folder / name), vocab_size=4000, model_type="unigram",
                                       unk_id=1, eos_id=2, bos_id=-1, pad_id=-1, hard_vocab_limit=False, minloglevel=2,
                                       user_defined_symbols=[f"X{n}" for n in range(1, 10)])
        (folder / f"{name}.model").rename(folder / f"{name}.spm")
    processor = spm.SentencePieceProcessor(model_file=str(folder / "source.spm"))
    vocab = {"</s>": 0, "<unk>": 1}
    for i in range(processor.get_piece_size()):
        vocab.setdefault(processor.id_to_piece(i), len(vocab))
    while len(vocab) < 65000:  # opus-mt-en-zh's vocabulary size: the output layer costs what it costs there
        vocab[f"▁filler{len(vocab)}"] = len(vocab)
    vocab["<pad>"] = 65000
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    tokenizer = MarianTokenizer(source_spm=str(folder / "source.spm"), target_spm=str(folder / "target.spm"), vocab=str(folder / "vocab.json"))
    config = MarianConfig(vocab_size=65001, decoder_vocab_size=65001, d_model=512, encoder_layers=6, decoder_layers=6,
                          encoder_attention_heads=8, decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048,
                          max_position_embeddings=512, pad_token_id=65000, decoder_start_token_id=65000, eos_token_id=0,
                          forced_eos_token_id=0, share_encoder_decoder_embeddings=True)
    torch.manual_seed(0)
    model = MarianMTModel(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="data dir holding twitter2015/train.txt")
    parser.add_argument("--sentences", type=int, default=500)
    parser.add_argument("--loop-sentences", type=int, default=100, help="sentences for the one-at-a-time loop (scaled)")
    parser.add_argument("--all-strategies", action="store_true", help="also time all strategies (every random-weight sample runs 3 passes)")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default); 1 is steadier on a busy machine")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from xlingual.data.formats import read_samples
    from xlingual.projection import ProjectionSettings, translate_corpus
    from xlingual.projection.corpus import CorpusInput
    from xlingual.translate.base import DecodingOptions
    from xlingual.translate.ct2 import CTranslate2Translator
    from xlingual.translate.hf import HFTranslator

    samples = read_samples(args.data / "twitter2015" / "train.txt")[: args.sentences]
    raw = [s.text for s in samples]
    work = Path(tempfile.mkdtemp(prefix="bench-translate-"))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}; {len(samples)} Twitter2015 sentences, greedy")
    folder = build_full_size_marian(work / "marian", raw)
    options = DecodingOptions(beam_size=1, max_length=256, max_batch_size=32)
    hf = HFTranslator.from_pretrained(str(folder), "en", "zh", options, device="cpu")
    model, tokenizer = hf.model, hf.tokenizer
    figures: dict[str, float] = {}

    def limit(encoded) -> int:
        return options.new_token_limit(int(encoded["input_ids"].shape[1]))

    with torch.inference_mode():
        start = time.perf_counter()
        for text in raw[: args.loop_sentences]:
            encoded = tokenizer([text], return_tensors="pt")
            model.generate(**encoded, num_beams=1, do_sample=False, max_new_tokens=limit(encoded))
        figures["(a) loop, one sentence per generate"] = (time.perf_counter() - start) * len(raw) / min(len(raw), args.loop_sentences)
        print(f"(a) done: {figures['(a) loop, one sentence per generate']:.1f} s (scaled)", flush=True)
        start = time.perf_counter()
        for i in range(0, len(raw), 32):
            encoded = tokenizer(raw[i:i + 32], return_tensors="pt", padding=True)
            model.generate(**encoded, num_beams=1, do_sample=False, max_new_tokens=limit(encoded))
        figures["(b) batched generate, raw sentences"] = time.perf_counter() - start
        print(f"(b) done: {figures['(b) batched generate, raw sentences']:.1f} s", flush=True)

    def pipeline(name: str, translator, strategies: tuple[str, ...]) -> None:
        out = work / name.replace(" ", "_")
        start = time.perf_counter()
        result = translate_corpus([CorpusInput("train", samples)], out, translator, ProjectionSettings("en", "zh", strategies=strategies))
        figures[name] = time.perf_counter() - start
        mt = result.report["mt"]
        print(f"{name} done: {figures[name]:.1f} s; texts: {mt['sentence_texts']} sentence, {mt['entity_texts']} entity; "
              f"projected {result.report['samples_out']}/{result.report['samples_in']}", flush=True)

    pipeline("(c) xl translate, transformers, numbered only", hf, ("numbered",))
    if args.all_strategies:
        pipeline("(c') xl translate, transformers, all strategies", hf, ("numbered", "bracketed", "markers"))
    ct2 = CTranslate2Translator.from_pretrained(str(folder), "en", "zh", options, device="cpu", quantization="int8", cache_dir=work)
    pipeline("(d) xl translate, ctranslate2 int8, numbered only", ct2, ("numbered",))

    print(f"\n{'variant':52s} {'seconds':>8s} {'sent/s':>8s}")
    for name, seconds in figures.items():
        print(f"{name:52s} {seconds:8.1f} {len(raw) / seconds:8.2f}")
    a, b = figures["(a) loop, one sentence per generate"], figures["(b) batched generate, raw sentences"]
    c, d = figures["(c) xl translate, transformers, numbered only"], figures["(d) xl translate, ctranslate2 int8, numbered only"]
    print(f"\nxl translate vs loop (a): {a / c:.2f}x faster (goal >= 10x)")
    print(f"xl translate vs batched floor (b): {c / b:.2f}x the time (goal <= 1.3x)")
    print(f"ctranslate2 int8 vs transformers inside xl translate: {c / d:.2f}x faster (goal >= 2.5x)")


if __name__ == "__main__":
    main()
