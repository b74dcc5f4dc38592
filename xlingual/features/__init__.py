"""Image features: frozen VGG16 / ResNet-152 region grids, extracted once and cached.

``extract_features`` fills a cache folder (default ``features_dir(data_dir,
backbone)``), ``FeatureCache.open`` reads it, and ``visual_lookup`` gives the
models each sample's (49, C) input and a has-image flag.
"""

from xlingual.features.backbones import BACKBONES, BackboneSpec, load_backbone
from xlingual.features.cache import FeatureCache, PostFeature
from xlingual.features.extract import (
    ExtractionReport,
    extract_features,
    extract_folder,
    extract_for_data_dir,
    extract_for_datasets,
)
from xlingual.features.lookup import visual_lookup
from xlingual.features.preprocess import CROP_POLICIES, preprocess_image

__all__ = [
    "BACKBONES",
    "BackboneSpec",
    "CROP_POLICIES",
    "ExtractionReport",
    "FeatureCache",
    "PostFeature",
    "extract_features",
    "extract_folder",
    "extract_for_data_dir",
    "extract_for_datasets",
    "load_backbone",
    "preprocess_image",
    "visual_lookup",
]
