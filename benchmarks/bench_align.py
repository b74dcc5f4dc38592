"""Benchmark: supervised Procrustes + refinement and CSLS evaluation, xlingual (torch) vs plain NumPy.

Two synthetic n x d sets (a hidden rotation plus noise). Both implementations
run the same steps: Procrustes on a 5,000-pair seed, ``--rounds`` refinement
rounds on mutual CSLS dictionaries among the 15,000 most frequent words, then
CSLS P@1 over 1,500 queries against the whole target vocabulary (hubness of
every target measured against every source, as MUSE does). Similarities are
computed block by block in both, so neither builds an n x n matrix.

    .venv/bin/python benchmarks/bench_align.py               # 200k x 300 (long on 2 cores)
    .venv/bin/python benchmarks/bench_align.py --n 50000
"""

from __future__ import annotations

import argparse
import platform
import resource
import time

import numpy as np
import torch

from xlingual.embeddings.align import AlignOptions, align_embeddings
from xlingual.embeddings.dictionary import Dictionary
from xlingual.embeddings.evaluate import word_translation_scores

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


def numpy_pipeline(src: np.ndarray, tgt: np.ndarray, seed: np.ndarray, rounds: int, rank: int, queries: np.ndarray) -> tuple[float, float, float]:
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
    return align_s, time.perf_counter() - started, p1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--noise", type=float, default=0.05)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    src = rng.normal(size=(args.n, args.dim)).astype(np.float32)
    rotation, _ = np.linalg.qr(rng.normal(size=(args.dim, args.dim)))
    tgt = (src @ rotation.T + args.noise * rng.normal(size=src.shape)).astype(np.float32)
    seed = np.stack([np.arange(5000)] * 2, 1)
    queries = np.arange(args.n - 1500, args.n)
    rank = min(15000, args.n)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, n={args.n}, dim={args.dim}")

    src_t, tgt_t = torch.from_numpy(src), torch.from_numpy(tgt)
    started = time.perf_counter()
    result = align_embeddings(src_t, tgt_t, Dictionary(torch.from_numpy(seed)), AlignOptions(refinement=args.rounds, dico_max_rank=rank))
    ours_align = time.perf_counter() - started
    started = time.perf_counter()
    test = Dictionary(torch.from_numpy(np.stack([queries] * 2, 1)))
    ours_p1 = word_translation_scores(src_t @ result.mapping.T, tgt_t, test).precision["csls.p@1"]
    ours_eval = time.perf_counter() - started
    peak_ours = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    np_align, np_eval, np_p1 = numpy_pipeline(src, tgt, seed, args.rounds, rank, queries)
    peak_all = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"xlingual: Procrustes + {args.rounds} refinements {ours_align:.1f} s (includes criterion scoring), CSLS eval {ours_eval:.1f} s, P@1 {ours_p1:.1f}")
    print(f"numpy   : Procrustes + {args.rounds} refinements {np_align:.1f} s, CSLS eval {np_eval:.1f} s, P@1 {np_p1:.1f}")
    print(f"ratio numpy/xlingual: align {np_align / ours_align:.2f}x, eval {np_eval / ours_eval:.2f}x")
    print(f"peak RSS after xlingual: {peak_ours:.0f} MB; after both: {peak_all:.0f} MB")


if __name__ == "__main__":
    main()
