"""The bridge from the feature cache to the models: ``VisualLookup`` functions."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

import numpy as np

from xlingual.data.sample import Sample
from xlingual.errors import ConfigError
from xlingual.features.cache import FeatureCache


def sample_rng(seed: int, sample_id: str) -> random.Random:
    """A per-sample random source: the same image is chosen whatever the order or subset of samples."""
    digest = hashlib.sha256(f"{seed}\0{sample_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def visual_lookup(cache: FeatureCache, mode: str = "all", seed: int = 0) -> Callable[[Sample], tuple[np.ndarray, bool]]:
    """A ``VisualLookup`` (xlingual.models.base): sample -> ((49, C) float32, has_image).

    ``mode="all"`` averages the features of the sample's images (the CMNER
    paper's method); ``mode="one"`` takes one of them at random, the same one
    for a sample id under a given seed (Table 2's "one image" rows). A sample
    with no cached image gets zeros and ``False``, which the models use as a
    mask; it is never dropped.
    """
    if mode not in ("all", "one"):
        raise ConfigError(f"image mode '{mode}': choose 'all' (mean of the post's images) or 'one' (one random image)")

    def lookup(sample: Sample) -> tuple[np.ndarray, bool]:
        rng = sample_rng(seed, sample.id) if mode == "one" else None
        feature = cache.post_feature(sample.images, mode=mode, rng=rng)
        return feature.array, feature.has_image

    return lookup
