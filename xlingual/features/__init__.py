"""Image features: frozen VGG16 / ResNet-152 region grids and CLIP ViT-B/32 tokens, extracted once and cached.

``extract_features`` fills a cache folder (default ``DataDir(data_dir).features(
backbone)``), ``FeatureCache.open`` reads it, ``visual_lookup`` gives the
models each sample's (49, C) grid or (50, 768) tokens and a has-image flag,
and ``pooled_lookup`` a CNN grid's average-pooled (C,) vector.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xlingual.lazy import lazy_exports

#: public name -> the module that defines it; imported on first use, so that
#: ``import xlingual.features`` (and every ``xl`` command) does not load torch.
_EXPORTS: dict[str, str] = {
    "BACKBONES": "backbones", "BackboneSpec": "backbones", "load_backbone": "backbones",
    "FeatureCache": "cache", "PostFeature": "cache",
    "ExtractionReport": "extract", "extract_features": "extract", "extract_folder": "extract",
    "extract_for_data_dir": "extract", "extract_for_datasets": "extract",
    "visual_lookup": "lookup", "pooled_lookup": "lookup", "pooled_vector": "lookup",
    "CROP_POLICIES": "preprocess", "ClipPreprocessing": "preprocess", "preprocess_image": "preprocess",
    "Backbone": "choices", "CropPolicy": "choices", "StorageDtype": "choices",
}

if TYPE_CHECKING:
    from xlingual.features.backbones import BACKBONES, BackboneSpec, load_backbone
    from xlingual.features.cache import FeatureCache, PostFeature
    from xlingual.features.choices import Backbone, CropPolicy, StorageDtype
    from xlingual.features.extract import (
        ExtractionReport, extract_features, extract_folder, extract_for_data_dir, extract_for_datasets,
    )
    from xlingual.features.lookup import pooled_lookup, pooled_vector, visual_lookup
    from xlingual.features.preprocess import CROP_POLICIES, ClipPreprocessing, preprocess_image


__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = sorted(_EXPORTS)
