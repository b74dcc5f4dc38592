"""Multilingual ``joint`` training: mixed batches against one-language batches, on the same posts and seeds.

A tiny ACN (text only, random word vectors, the demo's sizes) is trained with
``xl train --config joint`` on the first ``--posts`` posts of each split of
Twitter2015 and CMNER, once with ``batching=mixed`` and once with
``batching=by_language``, for ``--seeds`` seeds each. Every run is scored on
both test sets; the script prints CMNER F1, Twitter2015 F1 and their macro
average per batching as mean ± std over the seeds, and the paired difference
per seed. The same code path as a user's run (``train_run`` on a resolved
config); only the sizes are small.

Usage:
    python benchmarks/bench_joint_batching.py [--data-dir ../shared/data] [--posts 300] [--seeds 3] [--epochs 8]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from _record import add_results_option, recorder

REPO = Path(__file__).resolve().parents[1]
TINY_ACN = ["model.word_dim=16", "model.char_dim=8", "model.char_filters=4", "model.char_out=8", "model.hidden=32",
            "model.word_vectors=null", "images=none", "batch_size=8", "eval_batch_size=32", "lr=5e-3"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--posts", type=int, default=300, help="posts per split and dataset")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "xlingual-bench" / "joint-batching")
    parser.add_argument("--fresh", action="store_true", help="delete the previous runs first (otherwise finished runs are reused)")
    add_results_option(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.fresh:
        shutil.rmtree(args.work, ignore_errors=True)

    import torch

    from xlingual.train.config import load_config
    from xlingual.train.run import train_run

    torch.set_num_threads(1)
    data_dir = args.data_dir if (args.data_dir / "cmner").is_dir() else None
    if data_dir is None:
        from xlingual.data.sample_data import write_sample_data_dir

        data_dir = write_sample_data_dir(args.work / "sample-data")
    setup = f"tiny ACN text only, {args.posts} posts per split of each dataset, {args.epochs} epochs, {args.seeds} seeds, data {data_dir}"
    out = recorder(__file__, args, setup)
    print(setup)
    scores: dict[str, list[dict[str, float]]] = {}
    for batching in ("mixed", "by_language"):
        for seed_index in range(args.seeds):
            overrides = [f"data.data_dir={data_dir}", f"data.max_samples={args.posts}", f"epochs={args.epochs}",
                         f"batching={batching}", *TINY_ACN]
            config = load_config("joint", "acn", "en-zh", overrides)
            config.seed += seed_index
            started = time.time()
            result = train_run(config, args.work / batching / config.run_name, resume=True)
            tests = result.metrics["tests"]
            row = {name: tests[name]["conlleval"]["f1"] for name in tests} | {"macro": result.metrics["test_macro_f1"]}
            scores.setdefault(batching, []).append(row)
            print(f"{batching:12s} seed {config.seed}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items()) + f" ({time.time() - started:.0f} s)")
    print("\nmean ± std over seeds (conlleval F1)")
    for batching, rows in scores.items():
        summary = {k: (statistics.fmean(r[k] for r in rows), statistics.stdev(r[k] for r in rows) if len(rows) > 1 else 0.0) for k in rows[0]}
        print(f"{batching:12s} " + ", ".join(f"{k} {m:.2f} ± {s:.2f}" for k, (m, s) in summary.items()))
        out.record(f"joint ACN macro F1, {batching} batches", summary["macro"][0], "F1", threads=1)
    deltas = [b["macro"] - a["macro"] for a, b in zip(scores["mixed"], scores["by_language"])]
    print(f"by_language - mixed, macro F1 per seed: {', '.join(f'{d:+.2f}' for d in deltas)}")
    out.record("joint ACN macro F1, by_language - mixed", statistics.fmean(deltas), "F1 points", threads=1)


if __name__ == "__main__":
    main()
