"""Test doubles for feature extraction, shared by the CNN and the CLIP cache tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import xlingual.features.extract as extract_module
from xlingual.features.backbones import load_backbone
from xlingual.features.cache import CacheProducer, CacheWriter, file_fingerprint, file_stat_key


class ForwardCounter:
    """Wraps ``load_backbone`` so a test knows how often the encoder was loaded and run, and on how many images."""

    def __init__(self) -> None:
        self.loads = 0
        self.forwards = 0
        self.images = 0

    def __call__(self, *args, **kwargs):
        self.loads += 1
        model = load_backbone(*args, **kwargs)

        def count(_module, inputs, _output):
            self.forwards += 1
            self.images += inputs[0].shape[0]

        model.register_forward_hook(count)
        return model


def interrupt_at_batch(monkeypatch: pytest.MonkeyPatch, batch: int = 2):
    """Make extraction raise KeyboardInterrupt on its ``batch``-th forward pass; returns the real ``regions_of`` to restore."""
    real_regions_of = extract_module.regions_of
    calls = {"n": 0}

    def interrupted(model, inputs):
        calls["n"] += 1
        if calls["n"] == batch:
            raise KeyboardInterrupt
        return real_regions_of(model, inputs)

    monkeypatch.setattr(extract_module, "regions_of", interrupted)
    return real_regions_of


def write_random_cache(cache_dir: Path, images_dir: Path, backbone: str, shape: tuple[int, int], seed: int = 0) -> None:
    """A ``backbone`` cache of random ``shape`` arrays, one per image of ``images_dir``, recorded as extracted from each file:
    for tests of what reads a cache, where running the encoder would cost time and test nothing."""
    producer = CacheProducer(backbone, shape, "random:test", "clean", None, "float16")
    writer = CacheWriter.open(cache_dir, producer, "random")
    rng = np.random.default_rng(seed)
    for path in sorted(images_dir.iterdir()):
        writer.add(path.name, rng.random(shape, dtype=np.float32), file_fingerprint(path), file_stat_key(path))
    writer.flush()
