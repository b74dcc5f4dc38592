"""Tiny UMT models for tests: a 2-layer BERT with a vocabulary covering the test samples, 4x16 'image' regions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import zlib

import numpy as np
import torch

from xlingual.data.sample import Sample
from xlingual.models.umt import UmtModel
from xlingual.testing.tiny_bert import build_tiny_bert

REGIONS, CHANNELS = 4, 16


def tiny_umt_config(encoder: Path, **overrides: Any) -> dict[str, Any]:
    config = {"encoder": str(encoder), "cross_heads": 2, "visual_dim": CHANNELS, "num_visual_regions": REGIONS, "max_length": 128}
    config.update(overrides)
    return config


def tiny_encoder(folder: Path, samples: Sequence[Sample], **options: Any) -> Path:
    return build_tiny_bert(folder, [token for sample in samples for token in sample.tokens], **options)


def build_umt(encoder: Path, seed: int = 0, **overrides: Any) -> UmtModel:
    torch.manual_seed(seed)
    return UmtModel.build(tiny_umt_config(encoder, **overrides), [])


def random_visual(seed: int = 0, missing: frozenset[str] = frozenset()):
    """A VisualLookup with fixed random features per sample id (zeros and False for ids in ``missing``)."""
    cache: dict[str, np.ndarray] = {}

    def lookup(sample: Sample) -> tuple[np.ndarray, bool]:
        if sample.id in missing:
            return np.zeros((REGIONS, CHANNELS), dtype=np.float32), False
        if sample.id not in cache:
            rng = np.random.default_rng([seed, zlib.crc32(sample.id.encode())])
            cache[sample.id] = rng.standard_normal((REGIONS, CHANNELS)).astype(np.float32)
        return cache[sample.id], True

    return lookup


def micro_f1(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> float:
    """Entity-level micro F1 (conlleval-style spans, exact span and type)."""
    from xlingual.data.labels import spans

    tp = n_gold = n_pred = 0
    for g, p in zip(gold, predicted):
        gs = {(s.start, s.end, s.type) for s in spans(list(g))}
        ps = {(s.start, s.end, s.type) for s in spans(list(p))}
        tp += len(gs & ps)
        n_gold += len(gs)
        n_pred += len(ps)
    if tp == 0:
        return 0.0
    precision, recall = tp / n_pred, tp / n_gold
    return 2 * precision * recall / (precision + recall)


def train_steps(model: UmtModel, items: list[dict], steps: int, lr: float = 1e-3, batch_size: int = 16) -> list[float]:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    losses = []
    for step in range(steps):
        start = (step * batch_size) % len(items)
        batch = model.collate(items[start : start + batch_size])
        loss = model(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def single_threaded():
    """Generator for a module fixture: tiny models run fastest on one intra-op thread (no oversubscription)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
