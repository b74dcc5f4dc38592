"""Paired bootstrap over test sentences: is a configuration's gain over ``tgt_only`` real?

The paper reports single runs with gains of 0.1-2.3 F1. We resample test
sentences with replacement (the same resample for both systems, hence
"paired"), recompute micro-F1 from summed entity counts for every seed's
run of each system, average over seeds, and count how often the difference
is not positive. That p-value covers test-set sampling; the seeds' standard
deviation, reported beside it, covers training noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

BOOTSTRAP_RESAMPLES = 1000
"""Resamples of every report's significance test unless ``--bootstrap`` says otherwise (the demo's included)."""
BOOTSTRAP_SEED = 0
"""The resampling's seed, one for every report: the same runs and resample count give the same p in every report."""


def paired_bootstrap(system: Sequence[np.ndarray], baseline: Sequence[np.ndarray], resamples: int = BOOTSTRAP_RESAMPLES,
                     seed: int = BOOTSTRAP_SEED, chunk: int = 200) -> tuple[float, float]:
    """(observed mean-F1 difference, one-sided p-value that the system is not better).

    ``system`` and ``baseline`` are per-seed arrays of per-sentence
    (true positives, predicted, gold) counts over the same test sentences.
    """
    import numpy as np  # here, so that the command line reads the defaults above without loading numpy

    from xlingual.evaluation.metrics import f1_from_counts

    sys_counts = np.stack(system).astype(np.int64)  # (seeds, sentences, 3)
    base_counts = np.stack(baseline).astype(np.int64)
    if sys_counts.shape[1] != base_counts.shape[1]:
        raise ValueError("the two systems were scored on different test sets")
    n = sys_counts.shape[1]
    observed = float(f1_from_counts(sys_counts.sum(axis=1)).mean() - f1_from_counts(base_counts.sum(axis=1)).mean())
    rng = np.random.default_rng(seed)
    not_better = 0
    done = 0
    while done < resamples:
        size = min(chunk, resamples - done)
        idx = rng.integers(0, n, size=(size, n))
        weights = np.stack([np.bincount(row, minlength=n) for row in idx])  # (size, n)
        sys_f1 = f1_from_counts(np.einsum("bn,snk->bsk", weights, sys_counts)).mean(axis=1)
        base_f1 = f1_from_counts(np.einsum("bn,snk->bsk", weights, base_counts)).mean(axis=1)
        not_better += int(np.sum(sys_f1 - base_f1 <= 0))
        done += size
    return observed, (not_better + 1) / (resamples + 1)
