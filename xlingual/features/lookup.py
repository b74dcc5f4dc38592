"""The bridge from the feature cache to the models: ``VisualLookup`` functions."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from xlingual.data.sample import Sample
from xlingual.errors import ConfigError
from xlingual.features.cache import FeatureCache
from xlingual.features.preprocess import keyed_rng


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
        rng = keyed_rng(seed, sample.id) if mode == "one" else None
        feature = cache.post_feature(sample.images, mode=mode, rng=rng)
        return feature.array, feature.has_image

    return lookup
