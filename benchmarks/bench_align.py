"""Benchmark: supervised Procrustes + refinement and CSLS evaluation, xlingual vs plain NumPy, side by side in one run.

Two synthetic n x d sets (a hidden rotation plus noise). Both implementations
run the same steps: Procrustes on a 5,000-pair seed, ``--rounds`` refinement
rounds on mutual CSLS dictionaries among the 15,000 most frequent words, then
CSLS P@1 over 1,500 queries against the whole target vocabulary (hubness of
every target measured against every source, as MUSE does). Similarities are
computed block by block in both, so neither builds an n x n matrix. xlingual
does more than the baseline: it scores every candidate mapping with MUSE's
criterion (identity, Procrustes start, each round) and runs the failure check.

xlingual runs once per ``--backends`` entry (faiss, the torch fallback); the
mappings and P@1 of all pipelines are compared at the end. The load average
is printed before and after each pipeline, since shared machines skew timings.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_align.py --n 50000 --backends faiss,torch
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_align.py --skip-numpy     # 200k x 300, the default
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time

import numpy as np
import torch

from _record import add_results_option, recorder
from xlingual.embeddings.align import AlignOptions, align_embeddings
from xlingual.embeddings.dictionary import Dictionary
from xlingual.embeddings.evaluate import word_translation_scores
from xlingual.embeddings.similarity import use_search_backend

BLOCK = 1 << 26


def np_mean_topk(q: np.ndarray, keys: np.ndarray, k: int) -> np.ndarray:
    step = max(1, BLOCK // len(keys))
    out = []
    for s in range(0, len(q), step):
        sims = q[s:s + step] @ keys.T
        out.append(np.partition(sims, -k, axis=1)[:, -k:].mean(axis=1))
    return np.concatenate(out)


def np_csls_best(q: np.ndarray, keys: np.ndarray, r_keys: np.ndarray) -> np.ndarray:
    step = max(1, BLOCK // len(keys))
    return np.concatenate([(2 * q[s:s + step] @ keys.T - r_keys[None]).argmax(axis=1) for s in range(0, len(q), step)])


def np_unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def numpy_pipeline(src: np.ndarray, tgt: np.ndarray, seed: np.ndarray, rounds: int, rank: int, queries: np.ndarray) -> tuple[float, float, float, np.ndarray]:
    started = time.perf_counter()
    u, _, vt = np.linalg.svd(tgt[seed[:, 1]].T @ src[seed[:, 0]])
    w = u @ vt
    for _ in range(rounds):
        s, t = np_unit(src[:rank] @ w.T), np_unit(tgt[:rank])
        r_s, r_t = np_mean_topk(s, t, 10), np_mean_topk(t, s, 10)
        fwd, bwd = np_csls_best(s, t, r_t), np_csls_best(t, s, r_s)
        keep = bwd[fwd] == np.arange(rank)
        pairs = np.stack([np.arange(rank)[keep], fwd[keep]], 1)
        u, _, vt = np.linalg.svd(tgt[pairs[:, 1]].T @ src[pairs[:, 0]])
        w = u @ vt
    align_s = time.perf_counter() - started
    started = time.perf_counter()
    mapped, t = np_unit(src @ w.T), np_unit(tgt)
    r_t = np_mean_topk(t, mapped, 10)
    best = np_csls_best(mapped[queries], t, r_t)
    p1 = 100.0 * float((best == queries).mean())
    return align_s, time.perf_counter() - started, p1, w


def load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic(n: int, dim: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Built 10,000 rows at a time in float32, so generating the data does not set the process's peak memory."""
    rng = np.random.default_rng(0)
    rotation = np.linalg.qr(rng.normal(size=(dim, dim)))[0].astype(np.float32)
    src = np.empty((n, dim), np.float32)
    tgt = np.empty((n, dim), np.float32)
    for start in range(0, n, 10_000):
        rows = rng.standard_normal(size=(min(10_000, n - start), dim), dtype=np.float32)
        src[start:start + len(rows)] = rows
        tgt[start:start + len(rows)] = rows @ rotation.T + noise * rng.standard_normal(size=rows.shape, dtype=np.float32)
    return src, tgt


def xlingual_pipeline(src: np.ndarray, tgt: np.ndarray, seed: np.ndarray, rounds: int, rank: int, queries: np.ndarray) -> tuple[float, float, float, np.ndarray]:
    src_t, tgt_t = torch.from_numpy(src), torch.from_numpy(tgt)
    started = time.perf_counter()
    result = align_embeddings(src_t, tgt_t, Dictionary(torch.from_numpy(seed)), AlignOptions(refinement=rounds, dico_max_rank=rank))
    align_s = time.perf_counter() - started
    started = time.perf_counter()
    test = Dictionary(torch.from_numpy(np.stack([queries] * 2, 1)))
    p1 = word_translation_scores(src_t @ result.mapping.T, tgt_t, test).precision["csls.p@1"]
    if result.suspect:
        print(f"  (failure check: suspect {result.suspect}: {result.check.reasons})")
    return align_s, time.perf_counter() - started, p1, result.mapping.numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--noise", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=1, help="torch, faiss and (through OMP/OpenBLAS variables) NumPy threads")
    parser.add_argument("--backends", default="faiss", help="comma-separated xlingual search backends to time: faiss, torch")
    parser.add_argument("--skip-numpy", action="store_true", help="time xlingual only (the 200k default: NumPy takes as long again)")
    add_results_option(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = recorder(__file__, args, f"synthetic {args.n:,} x {args.dim}, {args.rounds} refinements, 1,500 CSLS queries")
    what = f"Procrustes + {args.rounds} refinements / CSLS evaluation, {args.n:,} x {args.dim}"
    started_all = time.perf_counter()
    src, tgt = synthetic(args.n, args.dim, args.noise)
    seed = np.stack([np.arange(5000)] * 2, 1)
    queries = np.arange(args.n - 1500, args.n)
    rank = min(15000, args.n)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch/faiss threads, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, n={args.n}, dim={args.dim}, rounds={args.rounds}")
    print(f"inputs ready: peak RSS {peak_rss_mb():.0f} MB; {load()}")
    rows, mappings = [], {}
    for backend in args.backends.split(","):
        print(f"xlingual ({backend}): start, {load()}", flush=True)
        with use_search_backend(backend):
            align_s, eval_s, p1, mappings[backend] = xlingual_pipeline(src, tgt, seed, args.rounds, rank, queries)
        rows.append((f"xlingual ({backend})", align_s, eval_s, p1))
        print(f"xlingual ({backend}): Procrustes + {args.rounds} refinements {align_s:.1f} s (includes criterion scoring and the failure check), "
              f"CSLS eval {eval_s:.1f} s, P@1 {p1:.1f}; peak RSS so far {peak_rss_mb():.0f} MB; {load()}", flush=True)
    if not args.skip_numpy:
        print(f"numpy: start, {load()}", flush=True)
        np_align, np_eval, np_p1, mappings["numpy"] = numpy_pipeline(src, tgt, seed, args.rounds, rank, queries)
        print(f"numpy   : Procrustes + {args.rounds} refinements {np_align:.1f} s, CSLS eval {np_eval:.1f} s, P@1 {np_p1:.1f}; "
              f"peak RSS so far {peak_rss_mb():.0f} MB; {load()}")
        for name, align_s, eval_s, _ in rows:
            print(f"speed vs numpy ({name}): align {np_align / align_s:.2f}x, eval {np_eval / eval_s:.2f}x, "
                  f"total {(np_align + np_eval) / (align_s + eval_s):.2f}x")
    for name, align_s, eval_s, p1 in rows:
        versus = "" if args.skip_numpy else "plain NumPy's speed"
        out.record(f"{what}: {name} alignment time", align_s, "s", None if args.skip_numpy else np_align / align_s, versus, args.threads)
        out.record(f"{what}: {name} evaluation time (P@1 {p1:.1f})", eval_s, "s", None if args.skip_numpy else np_eval / eval_s, versus, args.threads)
    names = list(mappings)
    for other in names[1:]:
        print(f"max |W_{names[0]} - W_{other}| = {np.abs(mappings[names[0]] - mappings[other]).max():.2e}")
    print(f"whole run {time.perf_counter() - started_all:.0f} s wall; peak RSS {peak_rss_mb():.0f} MB; {load()}")
    out.record(f"{what}: peak resident memory of the whole run", peak_rss_mb() / 1024, "GiB", threads=args.threads)


if __name__ == "__main__":
    main()
