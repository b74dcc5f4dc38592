"""The names a user chooses among, kept free of torch so the command line can list them without loading it."""

from __future__ import annotations

from enum import Enum


DEFAULT_CLIP_MODEL = "openai/clip-vit-base-patch32"
"""The CLIP checkpoint whose vision tower gives the ``clip-vit-b32`` features (2M-NER's ViT), unless weights are named."""


class Backbone(str, Enum):
    """The frozen image encoders features can be extracted with (their specs: :data:`xlingual.features.backbones.BACKBONES`)."""

    VGG16 = "vgg16"
    RESNET152 = "resnet152"
    CLIP_VIT_B32 = "clip-vit-b32"


class CropPolicy(str, Enum):
    """How an image becomes a backbone's square input (see :mod:`xlingual.features.preprocess`)."""

    CLEAN = "clean"
    FAITHFUL = "faithful"


class StorageDtype(str, Enum):
    """The float type a feature cache stores."""

    FLOAT16 = "float16"
    FLOAT32 = "float32"


class PostImages(str, Enum):
    """How a post with several images becomes one visual input (``--images``)."""

    ALL = "all"
    """The mean over the post's images: the CMNER paper's method."""
    ONE = "one"
    """One of the post's images, chosen by the seed and the post id."""


def check_image_mode(mode: str) -> None:
    """Refuse an image mode other than :class:`PostImages`'s, in one line (every reader of a post's images asks here)."""
    if mode not in (PostImages.ALL.value, PostImages.ONE.value):
        from xlingual.errors import ConfigError

        raise ConfigError(f"image mode '{mode}': choose 'all' (mean of the post's images) or 'one' (one random image)")
