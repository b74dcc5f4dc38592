"""The visual inputs of a set of posts: their image files and the feature lookup the models read.

One function serves ``xl train``, ``xl evaluate --model`` and ``xl predict``,
so a model is scored with exactly the image inputs it is trained and used
with. A CMNER post names no image in its text file (Twitter's ``IMGID`` names
``<id>.jpg``); its pictures are found only through the dataset's image
folder. Without that folder a multimodal model would silently see every post
as image-less, i.e. be scored text-only, so that case is refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from xlingual.data.images import attach_images
from xlingual.data.sample import Sample
from xlingual.errors import ConfigError
from xlingual.models.base import VisualLookup

if TYPE_CHECKING:
    from xlingual.features import FeatureCache

logger = logging.getLogger(__name__)


@dataclass
class VisualInputs:
    """The lookup (sample -> region features, has_image) and how many posts it covers."""

    lookup: VisualLookup
    with_images: int
    """Posts that name at least one image file."""
    cached: int
    """Posts with at least one of their images in the feature cache."""


def dataset_image_dir(data_file: str | Path) -> Path | None:
    """The image folder of a dataset file laid out as ``xl data download`` does, if it exists.

    ``data/cmner/text/test.txt`` -> ``data/cmner/images``; any other path -> None.
    """
    from xlingual.data.datasets import DATASETS

    path = Path(data_file).resolve()
    for spec in DATASETS.values():
        for split in spec.split_files:
            for root in path.parents:
                if spec.split_path(root, split) == path:
                    folder = spec.images_dir(root)
                    return folder if folder.is_dir() else None
    return None


def build_visual_inputs(samples: list[Sample], cache: "FeatureCache | str | Path", *, image_dir: str | Path | None = None,
                        mode: str = "all", seed: int = 0) -> VisualInputs:
    """Attach each post's images (from ``image_dir`` when given) and build the feature lookup.

    ``mode`` is ``all`` (mean over a post's images, the paper's method) or
    ``one`` (one image per post, chosen by ``seed`` and the post id).
    """
    from xlingual.features import FeatureCache, visual_lookup

    if image_dir is not None:
        report = attach_images(samples, image_dir)
        if report.missing:
            logger.warning("%s", report.summary())
    with_images = sum(1 for sample in samples if sample.images)
    if samples and not with_images:
        raise ConfigError(
            "image features were asked for but no post names an image: pass --image-dir (the dataset's image folder), "
            "or score text-only with a text-only model"
        )
    opened = cache if isinstance(cache, FeatureCache) else FeatureCache.open(cache)
    cached = sum(1 for sample in samples if any(name in opened for name in sample.images))
    if with_images and not cached:
        logger.warning("%s: none of the posts' images is in this feature cache; every post is treated as image-less", opened.cache_dir)
    return VisualInputs(visual_lookup(opened, mode=mode, seed=seed), with_images, cached)


__all__ = ["VisualInputs", "build_visual_inputs", "dataset_image_dir"]
