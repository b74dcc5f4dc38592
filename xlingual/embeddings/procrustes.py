"""Orthogonal Procrustes: the rotation W minimising ||X W^T - Y|| over dictionary pairs."""

from __future__ import annotations

import torch


def procrustes(src: torch.Tensor, tgt: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """W = U V^T from the SVD of Y^T X, with X, Y the dictionary rows; map with ``src @ W.T``.

    Solved in float64: the d x d SVD is cheap and keeps W orthogonal to 1e-12.
    """
    x = src[pairs[:, 0]].double()
    y = tgt[pairs[:, 1]].double()
    u, _, vt = torch.linalg.svd(y.T @ x)
    return (u @ vt).to(src.dtype)


def orthogonalize(weight: torch.Tensor, beta: float) -> torch.Tensor:
    """MUSE's orthogonality update W <- (1 + beta) W - beta (W W^T) W, keeping the mapping near-orthogonal."""
    return (1 + beta) * weight - beta * (weight @ weight.T) @ weight
