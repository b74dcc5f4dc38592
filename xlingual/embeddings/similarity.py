"""Exact nearest-neighbour and CSLS search on unit-normalised embeddings: faiss, or torch when faiss is missing.

MUSE runs the searches behind CSLS and dictionary induction with faiss, and so
does xlingual: ``faiss.knn`` is an exact inner-product search that computes
scores one cache-sized block at a time and keeps the best ``k`` in a heap, so a
200k x 200k search never materialises the full matrix and costs less than a
matrix product followed by a sort. CSLS's key penalty is folded into the
search by one extra dimension: ``[2q, -1] . [key, r_key] = 2 q.key - r_key``;
the query's own penalty shifts all its scores alike and is subtracted after.

Backends (``search_backend`` / ``use_search_backend``):

* ``faiss``: the default when ``faiss`` imports; its GPU build searches on
  the GPU when the tensors live there;
* ``torch``: the fallback (and the choice for CUDA tensors without faiss's GPU
  build): blocks of at most ``MAX_BLOCK_ELEMENTS`` scores (256 MB) and ``topk``.

Both give the same neighbours up to float rounding (scores within ~1e-6; a
near-tie may order differently).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from functools import lru_cache
from typing import Iterator

import numpy as np
import torch

from xlingual.devices import resolve_device

MAX_BLOCK_ELEMENTS = 1 << 26
BACKENDS = ("faiss", "torch")
_chosen: str | None = os.environ.get("XLINGUAL_SEARCH") or None


def _faiss():
    try:
        import faiss
    except ImportError:
        return None
    return faiss


@lru_cache(maxsize=1)
def _gpu_resources():
    """One set of faiss GPU resources per process (creating them costs a CUDA context's worth of setup)."""
    return _faiss().StandardGpuResources()


def search_backend() -> str:
    """``faiss`` when it imports (unless ``XLINGUAL_SEARCH=torch`` or ``use_search_backend`` says otherwise), else ``torch``."""
    if _chosen is not None:
        if _chosen not in BACKENDS:
            raise ValueError(f"XLINGUAL_SEARCH must be one of {', '.join(BACKENDS)}, got {_chosen!r}")
        if _chosen == "faiss" and _faiss() is None:
            raise ValueError("XLINGUAL_SEARCH=faiss but faiss is not installed (pip install faiss-cpu)")
        return _chosen
    return "faiss" if _faiss() is not None else "torch"


@contextmanager
def use_search_backend(name: str) -> Iterator[None]:
    """Run the enclosed searches with ``name`` (tests compare the backends; benchmarks time them)."""
    global _chosen
    previous, _chosen = _chosen, name
    try:
        search_backend()
        yield
    finally:
        _chosen = previous


def default_device() -> torch.device:
    """Where searches run: :func:`xlingual.devices.resolve_device`'s ``auto``."""
    return torch.device(resolve_device())


def as_tensor(matrix: np.ndarray | torch.Tensor, device: torch.device | None = None) -> torch.Tensor:
    tensor = matrix if isinstance(matrix, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(matrix, dtype=np.float32))
    return tensor.to(device or default_device(), dtype=torch.float32)


def unit_rows(matrix: torch.Tensor) -> torch.Tensor:
    """Rows scaled to length 1 (zero rows stay zero)."""
    return matrix / matrix.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _block_size(n_keys: int) -> int:
    return max(1, MAX_BLOCK_ELEMENTS // max(1, n_keys))


def _torch_topk(
    queries: torch.Tensor, keys: torch.Tensor, k: int, key_penalty: torch.Tensor | None, query_penalty: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    values, indices = [], []
    step = _block_size(keys.shape[0])
    with torch.no_grad():
        for start in range(0, queries.shape[0], step):
            scores = queries[start:start + step] @ keys.T
            if key_penalty is not None:
                scores.mul_(2).sub_(key_penalty[None, :])
                if query_penalty is not None:
                    scores.sub_(query_penalty[start:start + step, None])
            top = scores.topk(k, dim=1)
            values.append(top.values)
            indices.append(top.indices)
    return torch.cat(values), torch.cat(indices)


def _numpy32(tensor: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(tensor.detach().cpu().numpy(), dtype=np.float32)


def _faiss_topk(
    queries: torch.Tensor, keys: torch.Tensor, k: int, key_penalty: torch.Tensor | None, query_penalty: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Exact inner-product top-k by faiss; None when the tensors are on a GPU that faiss's build cannot use."""
    faiss = _faiss()
    on_gpu = queries.is_cuda and faiss.get_num_gpus() > 0
    if queries.is_cuda and not on_gpu:
        return None
    q, x = _numpy32(queries), _numpy32(keys)
    if key_penalty is not None:
        q = np.hstack([2 * q, -np.ones((q.shape[0], 1), np.float32)])
        x = np.hstack([x, _numpy32(key_penalty)[:, None]])
    faiss.omp_set_num_threads(torch.get_num_threads())
    if on_gpu:
        scores, ids = faiss.knn_gpu(_gpu_resources(), q, x, k, metric=faiss.METRIC_INNER_PRODUCT)
    else:
        scores, ids = faiss.knn(q, x, k, metric=faiss.METRIC_INNER_PRODUCT)
    values = torch.from_numpy(scores).to(queries.device)
    if key_penalty is not None and query_penalty is not None:
        values -= query_penalty[:, None]
    return values, torch.from_numpy(ids).to(queries.device)


def topk_scores(
    queries: torch.Tensor, keys: torch.Tensor, k: int, key_penalty: torch.Tensor | None = None,
    query_penalty: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` keys per query by ``q.key`` (NN) or, with penalties, by CSLS ``2 q.key - r_q - r_key``."""
    k = min(k, keys.shape[0])
    if queries.shape[0] == 0 or k == 0:
        return queries.new_zeros((queries.shape[0], k)), torch.zeros((queries.shape[0], k), dtype=torch.long, device=queries.device)
    if search_backend() == "faiss":
        found = _faiss_topk(queries, keys, k, key_penalty, query_penalty)
        if found is not None:
            return found
    return _torch_topk(queries, keys, k, key_penalty, query_penalty)


def mean_topk_similarity(queries: torch.Tensor, keys: torch.Tensor, k: int = 10) -> torch.Tensor:
    """CSLS's hubness term r: the mean cosine of each query to its ``k`` nearest keys."""
    values, _ = topk_scores(queries, keys, k)
    return values.mean(dim=1)
