"""Batched nearest-neighbour and CSLS search on unit-normalised embeddings (torch; GPU when present).

Similarities are computed one block of queries at a time so a 200k x 200k
search never materialises the full matrix: each block holds at most
``MAX_BLOCK_ELEMENTS`` scores (256 MB in float32).
"""

from __future__ import annotations

import numpy as np
import torch

MAX_BLOCK_ELEMENTS = 1 << 26


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def as_tensor(matrix: np.ndarray | torch.Tensor, device: torch.device | None = None) -> torch.Tensor:
    tensor = matrix if isinstance(matrix, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(matrix, dtype=np.float32))
    return tensor.to(device or default_device(), dtype=torch.float32)


def unit_rows(matrix: torch.Tensor) -> torch.Tensor:
    """Rows scaled to length 1 (zero rows stay zero)."""
    return matrix / matrix.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _block_size(n_keys: int) -> int:
    return max(1, MAX_BLOCK_ELEMENTS // max(1, n_keys))


def topk_scores(
    queries: torch.Tensor, keys: torch.Tensor, k: int, key_penalty: torch.Tensor | None = None,
    query_penalty: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` keys per query by ``q.key`` (NN) or, with penalties, by CSLS ``2 q.key - r_q - r_key``."""
    k = min(k, keys.shape[0])
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
    if not values:
        return queries.new_zeros((0, k)), torch.zeros((0, k), dtype=torch.long, device=queries.device)
    return torch.cat(values), torch.cat(indices)


def mean_topk_similarity(queries: torch.Tensor, keys: torch.Tensor, k: int = 10) -> torch.Tensor:
    """CSLS's hubness term r: the mean cosine of each query to its ``k`` nearest keys."""
    values, _ = topk_scores(queries, keys, k)
    return values.mean(dim=1)


def csls_topk(queries: torch.Tensor, keys: torch.Tensor, k: int, knn: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` keys per query by CSLS with ``knn`` neighbours (Conneau et al. 2018, eq. 6)."""
    r_keys = mean_topk_similarity(keys, queries, knn)
    r_queries = mean_topk_similarity(queries, keys, knn)
    return topk_scores(queries, keys, k, key_penalty=r_keys, query_penalty=r_queries)
