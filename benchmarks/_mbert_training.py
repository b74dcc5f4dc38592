"""The set-up the full-size training benchmarks share: mBERT-shaped inputs, their options, and the timed steps.

``bench_models.py`` (UMT) and ``bench_mner2.py`` (2M-NER) measure one
training step of a model with bert-base-multilingual-cased's shape on random
weights. Both need the same synthetic vocabulary and posts, the same options,
and the same measurement (encode amortised over the steps, then collate and
model time per step after one warm-up step); it lives here once, so the two
figures are taken the same way. Each benchmark keeps what differs: its model,
its visual inputs and its optimiser step.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import BertTokenizer

from _record import Recorder, StepTiming, add_results_option, recorder
from xlingual.data.sample import Sample

MBERT_VOCAB = 119547


def mbert_shaped_tokenizer() -> BertTokenizer:
    """A WordPiece vocabulary of mBERT's size: specials, then synthetic whole words (one piece per word)."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = [f"w{i}" for i in range(MBERT_VOCAB - len(specials))]
    with tempfile.TemporaryDirectory() as tmp:
        vocab = Path(tmp) / "vocab.txt"
        vocab.write_text("\n".join(specials + words) + "\n", encoding="utf-8")
        return BertTokenizer(str(vocab), do_lower_case=False)


def synthetic_posts(count: int, length: int, seed: int) -> list[Sample]:
    """``count`` posts of ``length`` vocabulary words with random labels; post ``i`` has id ``str(i)`` and image ``i.jpg``."""
    rng = np.random.default_rng(seed)
    types = ["O"] * 6 + ["B-PER", "B-LOC", "B-ORG", "B-MISC"]
    posts = []
    for index in range(count):
        tokens = [f"w{i}" for i in rng.integers(0, MBERT_VOCAB - 5, size=length)]
        labels = [types[i] for i in rng.integers(0, len(types), size=length)]
        posts.append(Sample(id=str(index), tokens=tokens, labels=labels, images=[f"{index}.jpg"]))
    return posts


def training_options(doc: str, steps: int, batch: int, length_help: str) -> argparse.ArgumentParser:
    """The options every full-size training benchmark takes; a benchmark adds its own before parsing."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=steps, help="measured training steps (after one warm-up step)")
    parser.add_argument("--batch", type=int, default=batch)
    parser.add_argument("--length", type=int, default=128, help=length_help)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    add_results_option(parser)
    return parser


def start(script: str, args: argparse.Namespace, setup: str) -> Recorder:
    """Threads and seed set as the options say; the recorder of the benchmark's figures."""
    torch.set_num_threads(args.threads)
    out = recorder(script, args, setup)
    torch.manual_seed(0)
    return out


@dataclass
class MeasuredSteps:
    """What :func:`measure_steps` saw: the timing, the last batch, and each measured step's result."""

    timing: StepTiming
    last_batch: dict[str, Any]
    results: list[Any] = field(default_factory=list)


def measure_steps(model: Any, posts: Sequence[Sample], visual: Callable[[Sample], Any], batch: int, steps: int,
                  train_step: Callable[[dict[str, Any]], Any]) -> MeasuredSteps:
    """Encode ``posts`` once, then run ``steps`` training steps of ``batch`` posts; the first one is not measured.

    ``train_step`` takes a collated batch and does forward, backward and the
    optimiser step; its return value is kept for each measured step. Encode
    time is shared out over all the steps, as the engine encodes a dataset once.
    """
    began = time.perf_counter()
    items = model.encode(list(posts), visual)
    encode_per_step = (time.perf_counter() - began) / steps
    model.train()
    collate_times, model_times, results = [], [], []
    collated: dict[str, Any] = {}
    for step in range(steps):
        t0 = time.perf_counter()
        collated = model.collate(items[step * batch : (step + 1) * batch])
        t1 = time.perf_counter()
        result = train_step(collated)
        t2 = time.perf_counter()
        if step:  # the first step warms up allocators and kernels
            collate_times.append(t1 - t0)
            model_times.append(t2 - t1)
            results.append(result)
    timing = StepTiming(model_s=float(np.mean(model_times)), collate_s=float(np.mean(collate_times)), encode_s=encode_per_step)
    return MeasuredSteps(timing, collated, results)


def print_machine() -> None:
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, no GPU")
