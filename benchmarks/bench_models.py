"""Training speed and memory of UMT at full size on this machine (random weights, nothing downloaded).

UMT in the cross-lingual configuration: bert-base-multilingual-cased's shape
(12 layers, H 768, vocabulary 119,547, random init from a BertConfig), bottom 3
layers + embeddings frozen, 12 cross-modal heads, batch 16, 128 word pieces,
ResNet-152-shaped cached region features (49 x 2048, float16 on disk like the
feature cache, float32 in the batch). One training step = collate + forward +
backward + AdamW step. "Outside the model" = the per-step share of encode
(amortised: the engine encodes a dataset once) and collate.

    .venv/bin/python benchmarks/bench_models.py             # 4 measured steps (about 1-3 minutes on 2 cores)
    .venv/bin/python benchmarks/bench_models.py --steps 8 --freeze 0
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import BertConfig, BertModel, BertTokenizer

from _record import StepTiming, add_results_option, recorder, report_training_step
from xlingual.data.sample import Sample
from xlingual.models.umt import UmtConfig, UmtModel
from xlingual.models.umt_encoder import drop_pooler

MBERT_VOCAB = 119547


def mbert_shaped_tokenizer(folder: Path) -> BertTokenizer:
    """A WordPiece vocabulary of mBERT's size: specials, then synthetic whole words."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = [f"w{i}" for i in range(MBERT_VOCAB - len(specials))]
    (folder / "vocab.txt").write_text("\n".join(specials + words) + "\n", encoding="utf-8")
    return BertTokenizer(str(folder / "vocab.txt"), do_lower_case=False)


def synthetic_posts(count: int, length: int, seed: int) -> list[Sample]:
    rng = np.random.default_rng(seed)
    types = ["O"] * 6 + ["B-PER", "B-LOC", "B-ORG", "B-MISC"]
    posts = []
    for index in range(count):
        tokens = [f"w{i}" for i in rng.integers(0, MBERT_VOCAB - 5, size=length)]
        labels = [types[i] for i in rng.integers(0, len(types), size=length)]
        posts.append(Sample(id=str(index), tokens=tokens, labels=labels, images=[f"{index}.jpg"]))
    return posts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4, help="measured training steps (after one warm-up step)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=128, help="word pieces per post incl. [CLS]/[SEP]")
    parser.add_argument("--freeze", type=int, default=3, help="frozen bottom encoder layers (3 for cross-lingual mBERT)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    add_results_option(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = recorder(__file__, args, f"{args.steps} measured steps after one warm-up, bottom {args.freeze} layers frozen")
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = mbert_shaped_tokenizer(Path(tmp))
    encoder = drop_pooler(BertModel(BertConfig(vocab_size=MBERT_VOCAB)))
    config = UmtConfig(encoder="bert-base-multilingual-cased(random)", max_length=args.length, freeze_bottom_layers=args.freeze)
    model = UmtModel(config, encoder, tokenizer)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=5e-5, weight_decay=0.01)

    steps = args.steps + 1
    posts = synthetic_posts(args.batch * steps, args.length - 2, seed=0)
    cache = np.random.default_rng(1).standard_normal((len(posts), 49, 2048)).astype(np.float16)

    def visual(sample: Sample) -> tuple[np.ndarray, bool]:
        return cache[int(sample.id)].astype(np.float32), True

    start = time.perf_counter()
    items = model.encode(posts, visual)
    encode_per_step = (time.perf_counter() - start) / steps

    model.train()
    collate_times, model_times = [], []
    for step in range(steps):
        t0 = time.perf_counter()
        batch = model.collate(items[step * args.batch : (step + 1) * args.batch])
        t1 = time.perf_counter()
        loss = model(batch)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        t2 = time.perf_counter()
        if step:  # the first step warms up allocators and kernels
            collate_times.append(t1 - t0)
            model_times.append(t2 - t1)
    assert batch["input_ids"].shape == (args.batch, args.length)

    timing = StepTiming(model_s=float(np.mean(model_times)), collate_s=float(np.mean(collate_times)), encode_s=encode_per_step)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, no GPU")
    print(f"UMT mBERT-shaped: {n_params / 1e6:.1f} M parameters ({sum(p.numel() for p in trainable) / 1e6:.1f} M trainable, bottom {args.freeze} layers frozen)")
    print(f"batch {args.batch} x {args.length} pieces, 49 x 2048 regions, {args.steps} measured steps")
    what = f"UMT, mBERT shape ({n_params / 1e6:.0f} M parameters), batch {args.batch} x {args.length}, cached-feature inputs"
    report_training_step(out, what, timing, args.batch, "AdamW")

if __name__ == "__main__":
    main()
