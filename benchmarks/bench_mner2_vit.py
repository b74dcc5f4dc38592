"""2M-NER's training step with the ViT fine-tuned (``model.vit=finetune``) beside the cached, frozen ViT, in one run.

Both at full size with random weights (nothing downloaded): mBERT's shape for
the text encoder (as bench_mner2.py), CLIP ViT-B/32 (``CLIPVisionConfig()``'s
defaults, 88 M parameters) for the ViT, the ResNet-152 vector cached in both.

* ``cached``: the ViT's 50 x 768 tokens come from the feature cache (float16 in
  memory, as on disk); the ViT is not part of the model.
* ``finetune``: the ViT is a submodule; each step decodes the posts' JPEGs
  (drawn 504 x 376 pictures) with CLIP's preprocessing, runs the ViT on the
  (B, 3, 224, 224) pixels, back-propagates into it and Adam-steps its weights
  too (one group, lr 5e-5, as the reference).

A training step is collate + forward + backward + Adam step; image decoding
is timed apart (in training it runs in the DataLoader's workers, ahead of the
step). Each variant runs in its own process, so its peak resident memory (or,
on a GPU, peak allocated memory) is its own.

    .venv/bin/python benchmarks/bench_mner2_vit.py                          # batch 32 x 64 pieces, 1 measured step each
    .venv/bin/python benchmarks/bench_mner2_vit.py --batch 8 --steps 2 --device cuda
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _record import add_results_option, cpu_model, recorder

VIT_SHAPE, RESNET_DIM = (50, 768), 2048
VARIANTS = ("cached", "finetune")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(variant: str, args: argparse.Namespace) -> dict:
    """Time ``args.steps`` training steps (after one warm-up) of one variant; runs in a fresh process."""
    from transformers import BertConfig, BertModel

    from _mbert_training import MBERT_VOCAB, mbert_shaped_tokenizer, synthetic_posts
    from xlingual.features.clip import load_clip
    from xlingual.features.pixels import pixel_lookup
    from xlingual.features.preprocess import ClipPreprocessing
    from xlingual.models.base import load_deferred
    from xlingual.models.mner2 import Mner2Config, Mner2Model, named_lookup
    from xlingual.testing.synthetic import write_images

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    steps = args.steps + 1
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = mbert_shaped_tokenizer()
        posts = synthetic_posts(args.batch * steps, args.length - 2, seed=0)
        for post in posts:
            post.images = [f"{post.id}.jpg"]
        rng = np.random.default_rng(1)
        resnet = rng.standard_normal((len(posts), RESNET_DIM)).astype(np.float16)
        encoder = BertModel(BertConfig(vocab_size=MBERT_VOCAB))
        config = Mner2Config(encoder="bert-base-multilingual-cased(random)", max_length=args.length, vit=variant,
                             vit_weights="random")
        if variant == "finetune":
            write_images(tmp, [post.images[0] for post in posts], size=(504, 376))
            steps_ = ClipPreprocessing()
            model = Mner2Model(config, encoder, tokenizer, vit=load_clip("random"), vit_preprocessing=steps_)
            lookups = {"vit_pixels": pixel_lookup([tmp], steps_), "resnet": lambda s: (resnet[int(s.id)], True)}
        else:
            vit_cache = rng.standard_normal((len(posts), *VIT_SHAPE)).astype(np.float16)
            model = Mner2Model(config, encoder, tokenizer)
            lookups = {"vit": lambda s: (vit_cache[int(s.id)], True), "resnet": lambda s: (resnet[int(s.id)], True)}
        model.to(device).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=5e-5)
        items = model.encode(posts, named_lookup(lookups))

        decode_times, collate_times, model_times = [], [], []
        for step in range(steps):
            t0 = time.perf_counter()
            loaded = load_deferred(items[step * args.batch : (step + 1) * args.batch])
            t1 = time.perf_counter()
            batch = {k: v.to(device) for k, v in model.collate(loaded).items()}
            _sync(device)
            t2 = time.perf_counter()
            result = model(batch)
            optimizer.zero_grad(set_to_none=True)
            result["loss"].backward()
            optimizer.step()
            _sync(device)
            t3 = time.perf_counter()
            if step == 0 and device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            if step:  # the first step warms up allocators and kernels
                decode_times.append(t1 - t0)
                collate_times.append(t2 - t1)
                model_times.append(t3 - t2)
        loss = float(result["loss"].detach())
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**30
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"variant": variant, "model_s": float(np.mean(model_times)), "collate_s": float(np.mean(collate_times)),
            "decode_s": float(np.mean(decode_times)), "peak_gib": peak, "params_m": trainable / 1e6, "loss": loss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1, help="measured training steps per variant (after one warm-up step)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=64, help="word pieces per post incl. [CLS]/[SEP]")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    add_results_option(parser)
    args = parser.parse_args()
    out = recorder(__file__, args, f"{args.steps} measured steps after one warm-up per variant, each in its own process, Adam on every weight")
    context = multiprocessing.get_context("spawn")  # a fresh process per variant: its own peak memory, no CUDA state shared
    results = {}
    for variant in VARIANTS:
        with context.Pool(1) as pool:
            results[variant] = pool.apply(measure, (variant, args))
        print(f"{variant}: {results[variant]}", flush=True)

    where = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else f"{cpu_model()}, {args.threads} torch threads, no GPU"
    memory = "peak GPU memory allocated" if args.device.startswith("cuda") else "peak resident memory"
    print(f"machine: {where}, torch {torch.__version__}")
    print(f"2M-NER mBERT-shaped, batch {args.batch} x {args.length} pieces, ResNet vector 2048 cached; {args.steps} measured step(s) each")
    for variant, r in results.items():
        step = r["model_s"] + r["collate_s"]
        decoding = f"image decoding {r['decode_s'] * 1000:.0f} ms per batch (in loader workers when training), " if variant == "finetune" else ""
        print(f"{variant:>9}: {step:.2f} s per step (model {r['model_s']:.2f} s, collate {r['collate_s'] * 1000:.0f} ms), {decoding}"
              f"{memory} {r['peak_gib']:.2f} GiB, {r['params_m']:.1f} M trainable parameters, loss {r['loss']:.3f}")
        what = f"2M-NER ViT {variant}, mBERT shape, batch {args.batch} x {args.length}"
        out.record(f"{what}: time per training step", step, "s")
        out.record(f"{what}: {memory}", r["peak_gib"], "GiB")
    ratio = (results["finetune"]["model_s"] + results["finetune"]["collate_s"]) / (results["cached"]["model_s"] + results["cached"]["collate_s"])
    print(f"finetune / cached step time: {ratio:.2f}x")


if __name__ == "__main__":
    main()
