"""Raw images as a model reads them when it fine-tunes its image encoder: one post's pixels, decoded when a batch needs them.

A frozen backbone's features are computed once into a cache
(:mod:`xlingual.features.cache`); a fine-tuned one sees the image anew at
every step, so a post's visual input is its preprocessed pixels. Keeping a
(3, 224, 224) float32 array for every training post would hold 0.6 MB per
post in memory for the whole run, so the lookup returns a
:class:`DeferredPixels` (a file path and the preprocessing) and the pixels
are decoded when a batch is collated: in the training DataLoader's worker
processes (:func:`xlingual.models.base.load_deferred`), or in the
collation of an evaluation batch.

The decoding is :func:`~xlingual.features.preprocess.preprocess_image` of
CLIP ViT-B/32, so the fine-tuned ViT sees exactly what the cache's ViT saw
(:func:`~xlingual.features.preprocess.open_image` refuses oversized files).
A file that cannot be decoded makes the post image-less (masked), as in the
cache, and is logged once per file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xlingual.data.sample import Sample
from xlingual.errors import ConfigError
from xlingual.features.choices import Backbone
from xlingual.models.base import DeferredArray
from xlingual.features.preprocess import ClipPreprocessing, check_crop, keyed_rng, preprocess_image


@dataclass(frozen=True)
class DeferredPixels(DeferredArray):
    """One image file's CLIP input, decoded by :meth:`load`; picklable, so a DataLoader worker can decode it."""

    path: Path
    steps: ClipPreprocessing
    crop: str = "clean"

    @property
    def shape(self) -> tuple[int, int, int]:
        """The (3, H, W) shape :meth:`load` returns, known without decoding (what the model's shape check reads)."""
        height, width = self.steps.crop or self.steps.resize_to or (self.steps.shortest_edge, self.steps.shortest_edge)
        return (3, int(height), int(width))

    def load(self) -> np.ndarray:
        """The (3, H, W) float32 pixels; :class:`~xlingual.errors.ImageError` when the file cannot be decoded."""
        return preprocess_image(self.path, Backbone.CLIP_VIT_B32.value, self.crop, clip=self.steps)


def pixel_shape(steps: ClipPreprocessing) -> tuple[int, int, int]:
    """The (3, H, W) input ``steps`` make."""
    return DeferredPixels(Path("."), steps).shape


def pixel_lookup(image_folders: Sequence[str | Path], steps: ClipPreprocessing, mode: str = "all", seed: int = 0,
                 crop: str = "clean") -> Callable[[Sample], tuple[DeferredPixels | np.ndarray, bool]]:
    """sample -> (its image's :class:`DeferredPixels`, True), or (zeros, False) when none of its images is in ``image_folders``.

    A fine-tuned ViT reads one image per post: ``mode="one"`` picks it as the
    feature caches do (the same image for a post id under a seed),
    ``mode="all"`` takes the post's first image found (the reference's
    datasets have one image per post; averaging several posts' pixels would
    not mean anything). Folders are searched in order, as file names are
    unique within a data directory's image folders.
    """
    if mode not in ("all", "one"):
        raise ConfigError(f"image mode '{mode}': choose 'all' or 'one'")
    check_crop(crop)
    folders = [Path(folder) for folder in image_folders]
    zeros = np.zeros(pixel_shape(steps), dtype=np.float32)

    def find(name: str) -> Path | None:
        return next((folder / name for folder in folders if (folder / name).is_file()), None)

    def lookup(sample: Sample) -> tuple[DeferredPixels | np.ndarray, bool]:
        names = list(sample.images)
        if mode == "one" and len(names) > 1:
            names = [keyed_rng(seed, sample.id).choice(names)]
        for name in names:
            path = find(name)
            if path is not None:
                return DeferredPixels(path, steps, crop), True
        return zeros, False

    return lookup


__all__ = ["DeferredPixels", "pixel_lookup", "pixel_shape"]
