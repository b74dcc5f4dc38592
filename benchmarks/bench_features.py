"""Image-feature extraction speed, and what the cache saves over a 10-epoch training run.

Measures, on this machine, with random-weight full-size backbones:

1. images/s of ``extract_features`` (decode + preprocess + encoder + cache write) for
   VGG16, ResNet-152 and CLIP ViT-B/32 (all 50 tokens, 2M-NER's input) at batch sizes 1 and 16;
2. seconds per post of reading a post's mean feature from the cache;
3. from those, the image time of an N-epoch training run on CMNER-sized and
   Twitter2015-sized training sets, with the cache (extract once, read every
   epoch) versus recomputing the encoder every step as the original UMT and 2M-NER
   code do, and the ratio between the two.

Images: the real CMNER sample images when ../shared/data is present (cycled to
the requested count under distinct names), generated 800x600 JPEGs otherwise.

Usage:
    .venv/bin/python benchmarks/bench_features.py            # ~5-10 min on a 2-core CPU
    .venv/bin/python benchmarks/bench_features.py --n-images 16 --backbones vgg16
    .venv/bin/python benchmarks/bench_features.py --n-images 24 --backbones clip-vit-b32 --batch-sizes 1 8
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from _record import add_results_option, recorder
from xlingual.features import FeatureCache, extract_features

REPO = Path(__file__).resolve().parents[1]
REAL_IMAGES = REPO.parent / "shared" / "data" / "cmner" / "images"
# Training-set sizes (posts) and images per post: CMNER paper Table 1 / §3, Twitter2015 and MMNERD (English) train splits.
TRAIN_SETS = {
    "cmner (train 3,000 posts x 3.67 images)": (3000, 3.67),
    "twitter2015 (train 4,000 posts x 1 image)": (4000, 1.0),
    "mmnerd (train 19,968 posts x 1 image)": (19968, 1.0),
}


def machine() -> str:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    load = ", load average %.1f" % os.getloadavg()[0] if hasattr(os, "getloadavg") else ""
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores{load}, torch {torch.__version__} ({torch.get_num_threads()} threads), {gpu}"


def encoder(backbone: str) -> str:
    """How the figures name the network: the CNNs' names stay as earlier results recorded them."""
    return "ViT" if backbone.startswith("clip") else "CNN"


def prepare_images(folder: Path, count: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted(REAL_IMAGES.glob("*.jpg")) if REAL_IMAGES.is_dir() else []
    names = []
    rng = np.random.default_rng(0)
    for i in range(count):
        name = f"B{i:05d}_img.jpg"
        if sources:
            shutil.copy(sources[i % len(sources)], folder / name)
        else:
            Image.fromarray(rng.integers(0, 256, (600, 800, 3), dtype=np.uint8)).save(folder / name, quality=85)
        names.append(name)
    return names


def measure_extraction(images: Path, names: list[str], backbone: str, batch_size: int, device: str, work: Path) -> tuple[float, Path]:
    cache_dir = work / f"{backbone}-b{batch_size}"
    warm = names[: max(1, batch_size)]
    extract_features(images, warm, cache_dir, backbone=backbone, weights="random", batch_size=batch_size, device=device)
    rest = names[len(warm) :]
    started = time.perf_counter()
    report = extract_features(images, rest, cache_dir, backbone=backbone, weights="random", batch_size=batch_size, device=device)
    elapsed = time.perf_counter() - started  # includes the model build, as a user's run does
    return report.extracted / elapsed, cache_dir


def measure_lookup(cache_dir: Path, images_per_post: int, posts: int = 2000) -> float:
    cache = FeatureCache.open(cache_dir)
    names = cache.names()
    rng = random.Random(0)
    groups = [rng.sample(names, min(images_per_post, len(names))) for _ in range(posts)]
    started = time.perf_counter()
    for group in groups:
        cache.post_feature(group)
    return (time.perf_counter() - started) / posts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-images", type=int, default=48, help="images per measurement (the first batch is a warm-up)")
    parser.add_argument("--backbones", nargs="+", default=["vgg16", "resnet152", "clip-vit-b32"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 16])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--device", default="auto")
    add_results_option(parser)
    args = parser.parse_args()
    out = recorder(__file__, args, f"random full-size weights, {args.n_images} "
                                   f"{'real CMNER' if REAL_IMAGES.is_dir() else 'generated'} images per measurement (first batch a warm-up)")

    print(f"machine: {machine()}")
    print(f"images: {'real CMNER samples (cycled)' if REAL_IMAGES.is_dir() else 'generated 800x600 JPEGs'}, {args.n_images} per measurement")
    with tempfile.TemporaryDirectory(prefix="bench-features-") as tmp:
        work = Path(tmp)
        names = prepare_images(work / "images", args.n_images)
        rates: dict[tuple[str, int], float] = {}
        caches: dict[str, Path] = {}
        print("\nextraction (decode + preprocess + encoder + cache write), random full-size weights")
        for backbone in args.backbones:
            for batch_size in args.batch_sizes:
                rate, cache_dir = measure_extraction(work / "images", names, backbone, batch_size, args.device, work)
                rates[backbone, batch_size] = rate
                caches[backbone] = cache_dir
                print(f"  {backbone:12s} batch {batch_size:3d}: {rate:6.2f} images/s")
                out.record(f"image features, {backbone}, batch {batch_size}: extraction (decode + {encoder(backbone)} + cache write)", rate, "images/s")
            if len(args.batch_sizes) > 1:
                low, high = min(args.batch_sizes), max(args.batch_sizes)
                print(f"  {backbone:12s} batch {high} / batch {low}: {rates[backbone, high] / rates[backbone, low]:.2f}x")

        print(f"\nimage time of a {args.epochs}-epoch training run (recompute every step, as original UMT / 2M-NER, vs extract once + cache reads)")
        for backbone in args.backbones:
            best = max(rates[backbone, b] for b in args.batch_sizes)
            for label, (posts, per_post) in TRAIN_SETS.items():
                lookup = measure_lookup(caches[backbone], max(1, round(per_post)))
                images_total = posts * per_post
                recompute = args.epochs * images_total / best
                cached = images_total / best + args.epochs * posts * lookup
                print(
                    f"  {backbone:12s} {label}: recompute {recompute / 3600:7.2f} h, cache {cached / 3600:6.2f} h "
                    f"(extract {images_total / best / 60:.1f} min + reads {args.epochs * posts * lookup:.1f} s; "
                    f"{lookup * 1e3:.2f} ms/post) -> {recompute / cached:.1f}x"
                )
                out.record(f"image features, {backbone}, {label}: image time of a {args.epochs}-epoch run with the cache",
                           cached / 3600, "h", recompute / cached, f"less than recomputing the {encoder(backbone)} every step")
    print(f"\nmachine at the end: {machine()}")


if __name__ == "__main__":
    main()
