"""The bridge from the feature cache to the models: ``VisualLookup`` functions.

Every cache gives a (regions, C) array per post: 49 grid regions for the CNNs,
50 tokens for CLIP ViT-B/32. 2M-NER also needs ResNet-152's pooled 2048-d
vector; it is the mean of the cached 7x7 grid (:func:`pooled_vector`), equal
to torchvision's average pool on a 224x224 input, so it comes from the
ResNet-152 cache with no second pass over the images.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from xlingual.data.sample import Sample
from xlingual.errors import ConfigError
from xlingual.features.cache import FeatureCache
from xlingual.features.choices import Backbone, check_image_mode
from xlingual.features.preprocess import keyed_rng

GRID_BACKBONES = frozenset({Backbone.VGG16.value, Backbone.RESNET152.value})
"""Caches whose regions are a CNN's spatial grid, so that their mean is the CNN's average pool."""


def visual_lookup(cache: FeatureCache, mode: str = "all", seed: int = 0) -> Callable[[Sample], tuple[np.ndarray, bool]]:
    """A ``VisualLookup`` (xlingual.models.base): sample -> ((regions, C) float32, has_image).

    (49, C) for the CNN caches, (50, 768) for CLIP ViT-B/32. ``mode="all"``
    averages the features of the sample's images (the CMNER paper's method);
    ``mode="one"`` takes one of them at random, the same one for a sample id
    under a given seed (Table 2's "one image" rows). A sample with no cached
    image gets zeros and ``False``, which the models use as a mask; it is never
    dropped.
    """
    check_image_mode(mode)

    def lookup(sample: Sample) -> tuple[np.ndarray, bool]:
        rng = keyed_rng(seed, sample.id) if mode == "one" else None
        feature = cache.post_feature(sample.images, mode=mode, rng=rng)
        return feature.array, feature.has_image

    return lookup


def pooled_vector(regions: np.ndarray) -> np.ndarray:
    """A CNN grid's average pool: the (C,) mean of its (49, C) regions, float32.

    For a post with several images the mean of their grids pools to the mean of
    their pooled vectors (both are averages), so "all" mode stays consistent.
    """
    if regions.ndim != 2:
        raise ValueError(f"expected (regions, C) features, got shape {regions.shape}")
    return regions.mean(axis=0, dtype=np.float64).astype(np.float32)


def pooled_lookup(cache: FeatureCache, mode: str = "all", seed: int = 0) -> Callable[[Sample], tuple[np.ndarray, bool]]:
    """Like :func:`visual_lookup`, but sample -> ((C,) pooled vector, has_image): 2M-NER's ResNet-152 vector.

    Only for a CNN grid cache: CLIP's pooled output is the post-layernorm CLS
    token, not a mean of its tokens, so a CLIP cache is refused.
    """
    if cache.backbone not in GRID_BACKBONES:
        raise ConfigError(
            f"{cache.cache_dir}: a {cache.backbone} cache holds tokens, not a CNN grid; the pooled vector comes from a "
            f"{' or '.join(sorted(GRID_BACKBONES))} cache"
        )
    regions = visual_lookup(cache, mode=mode, seed=seed)

    def lookup(sample: Sample) -> tuple[np.ndarray, bool]:
        array, has_image = regions(sample)
        return pooled_vector(array), has_image

    return lookup
