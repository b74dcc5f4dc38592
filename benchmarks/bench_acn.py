"""ACN training speed and memory at the CMNER paper configuration, on whatever machine runs it.

Configuration: L = 250 characters, batch 16, 300-d word vectors (frozen, as
the reference), CharCNN (2,3,4) x 32 -> 50, BiLSTM 2 x 100, multimodal with
49 x 512 VGG16 regions, Adam lr 1e-3. Weights and features are random; the
posts are synthetic Chinese-character posts whose lengths follow CMNER's
(uniform 30-250) unless ``--data-dir`` points at real CMNER data.

Printed per mode (``mask_padding`` on = dynamic padding + length-respecting
BiLSTM + masked attention; off = the reference's fixed padding to 250):
training steps/s, seconds per step, the share of step time spent outside the
model (collating a batch from encoded posts, plus the one-off encoding
amortised over an epoch), and peak resident memory. The engine encodes a
dataset once, so collation is the per-step data cost.

    .venv/bin/python benchmarks/bench_acn.py                # ~2-4 minutes on 2 CPU cores
    .venv/bin/python benchmarks/bench_acn.py --steps 20 --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
import zlib

import numpy as np
import torch

from _record import add_results_option, recorder
from xlingual.data.sample import Sample
from xlingual.models.acn import AcnModel


def synthetic_posts(count: int, seed: int = 0) -> list[Sample]:
    """Chinese-character posts with CMNER-like lengths and a few entities."""
    rng = np.random.default_rng(seed)
    alphabet = [chr(c) for c in range(0x4E00, 0x4E00 + 3900)]
    posts = []
    for i in range(count):
        n = int(rng.integers(30, 251))
        tokens = [alphabet[j] for j in rng.zipf(1.3, n) % len(alphabet)]
        labels = ["O"] * n
        for start in rng.integers(0, n - 3, 3):
            labels[start], labels[start + 1] = "B-PER", "I-PER"
        posts.append(Sample(id=str(i), tokens=tokens, labels=labels, images=[f"{i}.jpg"], lang="zh"))
    return posts


def real_posts(data_dir: str) -> list[Sample]:
    from xlingual.data.datasets import load_split

    return load_split(data_dir, "cmner", "train", with_images=False)


def random_regions(sample: Sample) -> tuple[np.ndarray, bool]:
    rng = np.random.default_rng(zlib.crc32(sample.id.encode()))
    return rng.standard_normal((49, 512)).astype(np.float32), True


def write_vectors(path: str, posts: list[Sample], dim: int = 300) -> None:
    """A 300-d vectors file covering most characters, so the embedding is frozen as in the paper."""
    rng = np.random.default_rng(1)
    chars = sorted({t for p in posts for t in p.tokens})
    chars = chars[: int(0.9 * len(chars))]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(f"{len(chars)} {dim}\n")
        for c in chars:
            handle.write(c + " " + " ".join(f"{x:.4f}" for x in rng.uniform(-1, 1, dim)) + "\n")


def current_rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_mode(posts: list[Sample], vectors: str, mask_padding: bool, steps: int, batch_size: int, warmup: int) -> dict[str, float]:
    config = {"word_vectors": vectors, "max_length": 250, "mask_padding": mask_padding, "seed": 444}
    model = AcnModel.build(config, posts)
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    needed = (steps + warmup) * batch_size
    started = time.perf_counter()
    items = model.encode(posts[:needed], random_regions)
    encode_per_post = (time.perf_counter() - started) / len(items)
    model.train()
    collate_s = model_s = 0.0
    for step in range(steps + warmup):
        t0 = time.perf_counter()
        batch = model.collate(items[step * batch_size : (step + 1) * batch_size])
        t1 = time.perf_counter()
        loss = model(batch)["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        t2 = time.perf_counter()
        if step >= warmup:
            collate_s += t1 - t0
            model_s += t2 - t1
    per_step = (collate_s + model_s) / steps
    data_per_step = collate_s / steps + encode_per_post * batch_size
    return {
        "steps_per_s": 1 / per_step,
        "s_per_step": per_step,
        "collate_ms": 1000 * collate_s / steps,
        "encode_ms_per_step": 1000 * encode_per_post * batch_size,
        "outside_share": data_per_step / (data_per_step + model_s / steps),
        "peak_rss_mib": peak_rss_mib(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8, help="measured steps per mode (after --warmup)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--data-dir", default=None, help="read real CMNER train posts instead of synthetic ones")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    add_results_option(parser)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = recorder(__file__, args, f"{'real' if args.data_dir else 'synthetic'} posts, {args.steps} measured steps per mode, batch {args.batch_size}")
    posts = real_posts(args.data_dir) if args.data_dir else synthetic_posts(400)
    vectors = os.path.join(os.environ.get("TMPDIR", "/tmp"), "bench_acn_300d.vec")
    write_vectors(vectors, posts)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}")
    print(f"ACN, CMNER paper configuration: L=250, batch {args.batch_size}, 300-d frozen words, 49x512 regions; {'real' if args.data_dir else 'synthetic'} posts; {args.steps} measured steps per mode")
    print(f"resident memory before any model is built: {current_rss_mib():.0f} MiB (torch, posts, vectors file)")
    results = {}
    for mask_padding in (True, False):
        name = "mask_padding=on (dynamic padding)" if mask_padding else "mask_padding=off (reference, pad to 250)"
        r = run_mode(posts, vectors, mask_padding, args.steps, args.batch_size, args.warmup)
        results[mask_padding] = r
        print(f"{name:42s} {r['steps_per_s']:.3f} steps/s ({r['s_per_step']:.2f} s/step), collate {r['collate_ms']:.1f} ms + encode {r['encode_ms_per_step']:.1f} ms per step, outside the model {100 * r['outside_share']:.2f}%, process peak RSS so far {r['peak_rss_mib']:.0f} MiB")
    ratio = results[True]["steps_per_s"] / results[False]["steps_per_s"]
    print(f"speed ratio on/off (same run): {ratio:.2f}x")
    worst = max(r["outside_share"] for r in results.values())
    paper = "ACN, paper configuration (L 250, 300-d, 49 x 512 regions)"
    out.record(f"{paper}, mask_padding on: training speed", results[True]["steps_per_s"], "steps/s",
               ratio, "mask_padding off's speed")
    out.record(f"{paper}, mask_padding off (reference padding): training speed", results[False]["steps_per_s"], "steps/s")
    out.record(f"{paper}: share of step time outside the model (worse mode; target < 10 %)", 100 * worst, "%")
    out.record(f"{paper}: peak resident memory", max(r["peak_rss_mib"] for r in results.values()) / 1024, "GiB")
    print(f"share of step time outside the model: {100 * worst:.2f}% (target < 10%): {'OK' if worst < 0.10 else 'TOO HIGH'}")


if __name__ == "__main__":
    main()
