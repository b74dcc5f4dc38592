"""Speed of ``xl translate`` against plain ``generate`` loops, and CTranslate2 against transformers.

A full-size Marian with opus-mt-en-zh's shape (random weights: no download
needed, and speed does not depend on the weights) translates N real
Twitter2015 sentences, greedy, new tokens bounded by 2 x input length + 10 in
every variant:

(a) a plain loop calling ``generate`` one sentence at a time (first 100, scaled to N);
(b) batched ``generate`` over the raw sentences, 32 per batch in input order: the floor;
(c) the projection pipeline (``translate_corpus``: placeholders, entity pass, cache
    writes) with the transformers backend, first strategy only and all strategies;
    (c0) the same with one batch at a time on all threads, the backend's only mode before
    batches were decoded side by side; (c16) with ``--bfloat16``, the same as (c) in bfloat16;
(d) the same with the CTranslate2 backend, int8, batched by xlingual (length-sorted, token budget);
(e) the same, with the whole list handed to one ``translate_batch`` (``max_batch_size`` as a
    token budget, ``batch_type="tokens"``), CTranslate2 sorting and batching itself.

The output records the CPU model, the cores this process may use, the thread
counts (torch, CTranslate2 ``intra_threads``) and the load average before and
after: on a machine shared with other work only ratios measured in the same run
mean anything. Random weights never emit end-of-sentence, so every sentence
decodes up to its cap; ``--fixed-new-tokens N`` gives every sentence the same
cap N, so (d) and (e) do the same decoding work whatever their batching (in (e)
the usual cap would follow the longest sentence of the whole list).

Random weights rarely keep a placeholder, so with all strategies every sample
runs three sentence passes; with a real model the fallbacks run only for the
few samples that fail. Ratios are computed within one run on one machine.

    .venv/bin/python benchmarks/bench_translate.py --data ../shared/data --sentences 500 [--all-strategies]
    .venv/bin/python benchmarks/bench_translate.py --ct2-only --sentences 200 --fixed-new-tokens 32
    .venv/bin/python benchmarks/bench_translate.py --sweep --split test --sentences 100 --threads 2

``--repeats N`` runs the pipeline variants (c0)-(d) N times, interleaved, and keeps
each one's fastest run (interference only ever slows a run down); ``make bench`` uses 2.

``--sweep`` profiles the pipeline with the CTranslate2 backend (time spent
waiting for each text kind's translations, and the projection's own Python)
under several settings side by side, checks each
setting's outputs against the default's, and times the transformers backend
before and after the CTranslate2 settings in the same run (the ratio uses the
faster of the two).
"""

from __future__ import annotations

import argparse
import functools
import atexit
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _record import add_results_option, cpu_model, recorder

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


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="data dir holding twitter2015/train.txt")
    parser.add_argument("--sentences", type=int, default=500)
    parser.add_argument("--tokenizer-sentences", type=int, default=500,
                        help="the SentencePiece vocabularies learn from the first max(this, --sentences) sentences")
    parser.add_argument("--loop-sentences", type=int, default=100, help="sentences for the one-at-a-time loop (scaled)")
    parser.add_argument("--all-strategies", action="store_true", help="also time all strategies (every random-weight sample runs 3 passes)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch intra-op threads (0: torch's default) and CTranslate2 intra_threads (0: the cores given); 1 is steadier on a busy machine")
    parser.add_argument("--ct2-only", action="store_true", help="only the CTranslate2 variants (d) and (e)")
    parser.add_argument("--sweep", action="store_true", help="profile and compare CTranslate2 settings (see above)")
    parser.add_argument("--split", default="train", help="Twitter2015 split the sentences come from")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run the pipeline variants (c0)-(e) this many times, interleaved, and keep each one's fastest")
    parser.add_argument("--bfloat16", action="store_true", help="also time the transformers backend with --dtype bfloat16 (variant c16)")
    parser.add_argument("--fixed-new-tokens", type=int, default=0, help="give every sentence the same new-token cap (see above)")
    add_results_option(parser)
    args = parser.parse_args()
    out = recorder(__file__, args, f"full-size random Marian, {args.sentences} Twitter2015 sentences (loop: first {args.loop_sentences}, scaled), greedy"
                                   + (f", {args.fixed_new_tokens} new tokens each" if args.fixed_new_tokens else "")
                                   + (f", pipeline variants: fastest of {args.repeats} interleaved runs" if args.repeats > 1 else ""))

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    # the thread count every figure was measured with (torch's own count at record time can have been changed by loading a model)
    out.record = functools.partial(out.record, threads=torch.get_num_threads())

    from xlingual.data.formats import read_samples
    from xlingual.projection import ProjectionSettings, translate_corpus
    from xlingual.projection.corpus import CorpusInput
    from xlingual.translate.base import DecodingOptions, available_cores
    from xlingual.translate.ct2 import CTranslate2Translator
    from xlingual.translate.hf import HFTranslator

    corpus = read_samples(args.data / "twitter2015" / f"{args.split}.txt")
    samples = corpus[: args.sentences]
    raw = [s.text for s in samples]
    # The tokenizer always learns from the same sentences, so a short run splits text into as many pieces as a full one
    # (trained on the first 48 Twitter2015 sentences it keeps 555 pieces, not 3,627, and cuts those 48 sentences into
    # 1.3x as many, so every decode, capped at 2 x input + 10 new tokens, would run longer than in a full run).
    tokenizer_text = [s.text for s in corpus[: max(args.sentences, args.tokenizer_sentences)]]
    work = Path(tempfile.mkdtemp(prefix="bench-translate-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)  # the model alone is 300 MB
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores ({available_cores()} given to this process), torch {torch.__version__}, "
          f"torch threads {torch.get_num_threads()}; {len(samples)} Twitter2015 sentences, greedy")
    print(f"load average before (1, 5, 15 min): {load_average()}", flush=True)
    folder = build_full_size_marian(work / "marian", tokenizer_text)
    if args.fixed_new_tokens:
        options = DecodingOptions(beam_size=1, max_length=args.fixed_new_tokens, length_ratio=1e6, max_batch_size=32)
    else:
        options = DecodingOptions(beam_size=1, max_length=256, max_batch_size=32)
    hf = HFTranslator.from_pretrained(str(folder), "en", "zh", options, device="cpu", threads=args.threads)
    hf_one_batch = HFTranslator(hf.model, hf.tokenizer, "en", "zh", options, "cpu", "same", threads=args.threads, inter_threads=1)
    print(f"transformers: {hf.layout.batches} batches side by side x {hf.layout.per_batch} threads; before: 1 x {hf_one_batch.layout.per_batch}",
          flush=True)
    model, tokenizer = hf.model, hf.tokenizer
    figures: dict[str, float] = {}

    def limit(encoded) -> int:
        return options.new_token_limit(int(encoded["input_ids"].shape[1]))

    runs: dict[str, list[float]] = {}

    def pipeline(name: str, translator, strategies: tuple[str, ...], repeat: int = 0) -> None:
        """One timed ``translate_corpus`` into a fresh folder (a fresh cache); ``figures`` keeps the fastest of the repeats."""
        out = work / f"{name.replace(' ', '_')}-{repeat}"
        start = time.perf_counter()
        result = translate_corpus([CorpusInput("train", samples)], out, translator, ProjectionSettings("en", "zh", strategies=strategies))
        runs.setdefault(name, []).append(time.perf_counter() - start)
        figures[name] = min(runs[name])  # interference only ever slows a run down
        mt = result.report["mt"]
        print(f"{name} done: {runs[name][-1]:.1f} s; texts: {mt['sentence_texts']} sentence, {mt['entity_texts']} entity; "
              f"projected {result.report['samples_out']}/{result.report['samples_in']}", flush=True)

    if args.sweep:
        sweep(args, folder, samples, options, hf, work, out)
        return
    if not args.ct2_only:
        with torch.inference_mode():
            start = time.perf_counter()
            for text in raw[: args.loop_sentences]:
                encoded = tokenizer([text], return_tensors="pt")
                model.generate(**encoded, num_beams=1, do_sample=False, max_new_tokens=limit(encoded))
            figures[A] = (time.perf_counter() - start) * len(raw) / min(len(raw), args.loop_sentences)
            print(f"(a) done: {figures[A]:.1f} s (scaled)", flush=True)
            start = time.perf_counter()
            for i in range(0, len(raw), 32):
                encoded = tokenizer(raw[i:i + 32], return_tensors="pt", padding=True)
                model.generate(**encoded, num_beams=1, do_sample=False, max_new_tokens=limit(encoded))
            figures[B] = time.perf_counter() - start
            print(f"(b) done: {figures[B]:.1f} s", flush=True)
    variants: list[tuple[str, object, tuple[str, ...]]] = []
    if not args.ct2_only:
        variants += [(C0, hf_one_batch, ("numbered",)), (C, hf, ("numbered",))]
        if args.bfloat16:
            variants.append((C16, HFTranslator.from_pretrained(str(folder), "en", "zh", options, device="cpu", threads=args.threads,
                                                              dtype="bfloat16"), ("numbered",)))
        if args.all_strategies:
            variants.append(("(c') xl translate, transformers, all strategies", hf, ("numbered", "bracketed", "markers")))
    for name, whole_list in ((D, False), (E, True)):
        ct2 = CTranslate2Translator.from_pretrained(str(folder), "en", "zh", options, device="cpu", quantization="int8", cache_dir=work,
                                                    threads=args.threads, whole_list=whole_list)
        print(f"{name[:3]} CTranslate2 inter_threads {ct2.inter_threads} x intra_threads {max(1, ct2.threads // ct2.inter_threads)}"
              + (" (whole list)" if ct2.whole_list else ""), flush=True)
        variants.append((name, ct2, ("numbered",)))
    for repeat in range(args.repeats):  # interleaved, so a slow spell of the machine hits every variant alike
        for name, translator, strategies in variants:
            if repeat == 0 or name != E:  # the whole-list comparison is no goal: once is enough
                pipeline(name, translator, strategies, repeat)
    if args.repeats > 1:
        print("pipeline variants, every repeat (s): " + "; ".join(f"{name[:4]} " + ", ".join(f"{t:.1f}" for t in times)
                                                         for name, times in runs.items()))

    print(f"load average after (1, 5, 15 min): {load_average()}")
    print(f"\n{'variant':58s} {'seconds':>8s} {'sent/s':>8s}")
    for name, seconds in figures.items():
        print(f"{name:58s} {seconds:8.1f} {len(raw) / seconds:8.2f}")
    if not args.ct2_only:
        a, b, c, c0, d = figures[A], figures[B], figures[C], figures[C0], figures[D]
        print(f"\nxl translate vs loop (a): {a / c:.2f}x faster (goal >= 12x; one batch at a time: {a / c0:.2f}x)")
        print(f"xl translate vs batched floor (b): {c / b:.2f}x the time (goal <= 1.0x; one batch at a time: {c0 / b:.2f}x)")
        print(f"transformers batches side by side vs one at a time: {c0 / c:.2f}x faster")
        print(f"ctranslate2 int8 vs transformers inside xl translate: {c / d:.2f}x faster; vs transformers one batch at a time (the"
              f" backend before): {c0 / d:.2f}x (goal >= 3.5x)")
        out.record("`xl translate` (transformers) vs one-sentence-at-a-time `generate` (goal >= 12x)", c, "s", a / c, "faster")
        out.record("`xl translate` (transformers) vs batched `generate` over the raw sentences, the floor (goal <= 1.0x)", c, "s",
                   c / b, "the floor's time")
        out.record("`xl translate` (transformers), batches side by side vs one batch at a time on all threads (before)", c, "s",
                   c0 / c, "faster")
        if args.bfloat16:
            c16 = figures[C16]
            print(f"transformers --dtype bfloat16 vs float32 inside xl translate: {c / c16:.2f}x faster (another precision: other outputs)")
            out.record("`xl translate` (transformers) `--dtype bfloat16` vs float32 (another precision, other outputs)", c16, "s", c / c16, "faster")
        out.record("`xl translate` with CTranslate2 int8 vs transformers one batch at a time (goal >= 3.5x)", d, "s", c0 / d, "faster")
        out.record("`xl translate` with CTranslate2 int8 vs transformers batches side by side (both backends now)", d, "s", c / d, "faster")
    print(f"ctranslate2 batching the whole list (e) vs xlingual's batches (d): {figures[D] / figures[E]:.2f}x faster")
    out.record("CTranslate2 batching the whole list vs xlingual's length-sorted batches", figures[E], "s",
               figures[D] / figures[E], "faster")


@dataclass(frozen=True)
class Setting:
    """One CTranslate2 configuration of the sweep (``inter_threads`` None: the backend's default, one batch per thread)."""

    name: str
    compute_type: str = "int8"
    threads: int = 2
    inter_threads: int | None = None
    whole_list: bool = False


SETTINGS = (
    Setting("default: int8, xlingual batches side by side"),
    Setting("one batch at a time on all threads", inter_threads=1),
    Setting("one batch at a time, intra_threads 1", threads=1, inter_threads=1),
    Setting("int8_float32", compute_type="int8_float32"),
    Setting("whole_list (tokens), one call at a time", whole_list=True, inter_threads=1),
    Setting("whole_list, inter 2 x intra 1", whole_list=True, inter_threads=2),
    Setting("default again (drift check)"),
)


class _Timed:
    """A translator that adds up, per text kind (the one the projector is submitting), the texts and the seconds spent waiting for them."""

    def __init__(self, inner, kind: list[str], clock: dict[str, float], outputs: dict[str, str]) -> None:
        self.inner, self.kind, self.clock, self.outputs = inner, kind, clock, outputs

    @property
    def cache_key(self) -> str:
        from xlingual.translate.base import translator_cache_key

        return translator_cache_key(self.inner)

    def too_long(self, texts: list[str]) -> list[bool]:
        from xlingual.translate.base import too_long

        return too_long(self.inner, texts)

    def translate(self, texts: list[str]) -> list[str]:
        return self.submit(texts)()

    def submit(self, texts: list[str]):
        from xlingual.translate.base import submit

        which = self.kind[0]
        self.clock[f"{which} texts"] += len(texts)
        start = time.perf_counter()
        pending = submit(self.inner, texts)
        self.clock[f"{which} translate()"] += time.perf_counter() - start

        def result() -> list[str]:
            start = time.perf_counter()
            translations = pending()
            self.clock[f"{which} translate()"] += time.perf_counter() - start
            self.outputs.update(zip(texts, translations))
            return translations

        return result


def sweep(args, folder: Path, samples, options, hf, work: Path, out) -> None:
    """Profile the pipeline with each setting in ``SETTINGS``; outputs compared with the first setting's."""
    from collections import defaultdict

    import xlingual.projection.project as project
    from xlingual.projection import ProjectionSettings, translate_corpus
    from xlingual.projection.corpus import CorpusInput
    from xlingual.translate.ct2 import CTranslate2Translator

    kind = ["none"]
    original = project.Projector._submit

    def labelled(self, texts, which):
        kind[0] = which
        return original(self, texts, which)

    project.Projector._submit = labelled

    def run(name: str, translator, clock: dict[str, float], outputs: dict[str, str]) -> float:
        """The pipeline with ``translator``; ``clock`` gets, per text kind, the texts and the seconds spent waiting for them."""
        start = time.perf_counter()
        translate_corpus([CorpusInput("train", samples)], work / name.replace(" ", "_").replace(",", "").replace(":", ""),
                         _Timed(translator, kind, clock, outputs), ProjectionSettings("en", "zh", strategies=("numbered",)))
        return time.perf_counter() - start

    hf_clock: dict[str, float] = defaultdict(float)
    hf_seconds = run("transformers", hf, hf_clock, {})
    print(f"transformers backend: {hf_seconds:.1f} s", flush=True)
    rows = []
    reference: dict[str, str] | None = None
    converted = None
    for setting in SETTINGS:
        if converted is None:
            ct2 = CTranslate2Translator.from_pretrained(str(folder), "en", "zh", options, device="cpu", quantization="int8", cache_dir=work,
                                                        threads=setting.threads)
            converted = ct2.folder
        ct2 = CTranslate2Translator(converted, "en", "zh", options, device="cpu", compute_type=setting.compute_type,
                                    threads=setting.threads, whole_list=setting.whole_list, inter_threads=setting.inter_threads)
        layout = f"{ct2.inter_threads}x{max(1, ct2.threads // ct2.inter_threads)}"
        clock: dict[str, float] = defaultdict(float)
        outputs: dict[str, str] = {}
        seconds = run(setting.name, ct2, clock, outputs)
        reference = reference if reference is not None else outputs
        same = sum(outputs.get(t) == o for t, o in reference.items())
        rows.append((setting, layout, seconds, clock, same, len(reference)))
        print(f"{setting.name}: {seconds:.1f} s, outputs equal to the default's: {same}/{len(reference)}", flush=True)
    hf_again = run("transformers again", hf, defaultdict(float), {})
    print(f"transformers backend again (drift check): {hf_again:.1f} s", flush=True)
    project.Projector._submit = original
    hf_seconds = min(hf_seconds, hf_again)

    print(f"load average after (1, 5, 15 min): {load_average()}")
    print(f"\ntransformers: {hf_seconds:.1f} s total (the faster of its two runs; first run by kind: " + ", ".join(
        f"{k}: {hf_clock[k + ' translate()']:.1f} s for {int(hf_clock[k + ' texts'])} texts" for k in ("sentence_texts", "entity_texts")) + ")")
    print("\nwait: time the pipeline spent submitting a kind's texts and waiting for their translations (tokenisation, decoding,"
          " detokenisation); with batches side by side the two kinds overlap, so a wait can be shorter than its decoding")
    print(f"\n{'setting (CTranslate2, inter x intra threads)':56s} {'total':>6s} {'sent wait':>9s} {'ent wait':>8s} {'python':>6s} "
          f"{'vs hf':>6s} {'same out':>9s}")
    for setting, layout, seconds, clock, same, total in rows:
        waits = [clock[f"{k} translate()"] for k in ("sentence_texts", "entity_texts")]
        python = seconds - sum(waits)
        label = f"{setting.name} ({layout})"
        print(f"{label:56s} {seconds:6.1f} {waits[0]:9.1f} {waits[1]:8.1f} {python:6.1f} {hf_seconds / seconds:5.2f}x {same:>4d}/{total}")
        out.record(f"`xl translate` CTranslate2 {setting.name} ({layout} threads)"
                   f" vs transformers", seconds, "s", hf_seconds / seconds, "faster")


A = "(a) loop, one sentence per generate"
B = "(b) batched generate, raw sentences"
C0 = "(c0) xl translate, transformers, one batch at a time"
C = "(c) xl translate, transformers, numbered only"
C16 = "(c16) the same, transformers --dtype bfloat16"
D = "(d) xl translate, ctranslate2 int8, numbered only"
E = "(e) the same, ctranslate2 batches the whole list (tokens)"


if __name__ == "__main__":
    main()
