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

2M-NER's ResNet branch with ``model.resnet=reference`` reads its input the
same way, but drawn anew: a :class:`DeferredCrop` is a random 224x224 window
(and flip) of the raw image, keyed by (seed, post, round), where the round is
the training epoch (:meth:`DeferredCrop.for_epoch`, applied by
:class:`~xlingual.models.base.EpochItems`) or ``"eval"`` for dev, test and
prediction. A resumed run therefore draws exactly the views an uninterrupted
one draws, in any DataLoader worker, and another seed draws others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from xlingual.data.sample import Sample
from xlingual.features.choices import Backbone, check_image_mode
from xlingual.models.base import DeferredArray
from xlingual.features.preprocess import INPUT_SIZE, ClipPreprocessing, check_crop, keyed_rng, preprocess_image, reference_resnet_input


@dataclass(frozen=True)
class DeferredPixels(DeferredArray):
    """One image file's CLIP input, decoded by :meth:`load`; picklable, so a DataLoader worker can decode it."""

    path: Path
    steps: ClipPreprocessing
    crop: str = "clean"

    @property
    def shape(self) -> tuple[int, int, int]:
        """The (3, H, W) shape :meth:`load` returns, known without decoding (what the model's shape check reads)."""
        return pixel_shape(self.steps)

    def load(self) -> np.ndarray:
        """The (3, H, W) float32 pixels; :class:`~xlingual.errors.ImageError` when the file cannot be decoded."""
        return preprocess_image(self.path, Backbone.CLIP_VIT_B32.value, self.crop, clip=self.steps)


def pixel_shape(steps: ClipPreprocessing) -> tuple[int, int, int]:
    """The (3, H, W) input ``steps`` make."""
    height, width = steps.crop or steps.resize_to or (steps.shortest_edge, steps.shortest_edge)
    return (3, int(height), int(width))


@dataclass(frozen=True)
class DeferredCrop(DeferredArray):
    """One post's ResNet input as 2M-NER's reference draws it (:func:`~xlingual.features.preprocess.reference_resnet_input`),
    the window and flip keyed by ``(seed, key, round)``; picklable, so a DataLoader worker can decode it."""

    path: Path
    seed: int
    key: str
    """The post's id and image file name: two posts sharing a picture still get their own views, as in the reference."""
    round: int | str = "eval"
    """The training epoch, or ``"eval"``: one fixed draw per seed for dev, test and prediction."""

    @property
    def shape(self) -> tuple[int, int, int]:
        return (3, INPUT_SIZE, INPUT_SIZE)

    def for_epoch(self, epoch: int) -> "DeferredCrop":
        """This post's view in training epoch ``epoch``: a fresh window and flip every epoch."""
        return replace(self, round=epoch)

    def load(self) -> np.ndarray:
        return reference_resnet_input(self.path, keyed_rng(self.seed, f"{self.key}\0{self.round}"))


ImageFinder = Callable[[Sample], "Path | None"]


def image_finder(image_folders: Sequence[str | Path], mode: str = "all", seed: int = 0) -> ImageFinder:
    """sample -> the one image file a model that reads raw images takes for it, or None.

    ``mode="one"`` picks it as the feature caches do (the same image for a
    post id under a seed), ``mode="all"`` takes the post's first image found
    (the reference's datasets have one image per post; averaging several
    posts' pixels would not mean anything). Folders are searched in order, as
    file names are unique within a data directory's image folders.
    """
    check_image_mode(mode)
    folders = [Path(folder) for folder in image_folders]

    def find(sample: Sample) -> Path | None:
        names = list(sample.images)
        if mode == "one" and len(names) > 1:
            names = [keyed_rng(seed, sample.id).choice(names)]
        return next((folder / name for name in names for folder in folders if (folder / name).is_file()), None)

    return find


def pixel_lookup(image_folders: Sequence[str | Path], steps: ClipPreprocessing, mode: str = "all", seed: int = 0,
                 crop: str = "clean") -> Callable[[Sample], tuple[DeferredPixels | np.ndarray, bool]]:
    """sample -> (its image's :class:`DeferredPixels`, True), or (zeros, False) when none of its images is in
    ``image_folders``; the image is :func:`image_finder`'s."""
    check_crop(crop)
    find = image_finder(image_folders, mode, seed)
    zeros = np.zeros(pixel_shape(steps), dtype=np.float32)

    def lookup(sample: Sample) -> tuple[DeferredPixels | np.ndarray, bool]:
        path = find(sample)
        return (DeferredPixels(path, steps, crop), True) if path is not None else (zeros, False)

    return lookup


def crop_lookup(image_folders: Sequence[str | Path], mode: str = "all", seed: int = 0) -> Callable[[Sample], tuple[DeferredCrop | np.ndarray, bool]]:
    """sample -> (its image's :class:`DeferredCrop` under ``seed``, True), or (zeros, False) without an image;
    the image is :func:`image_finder`'s."""
    find = image_finder(image_folders, mode, seed)
    zeros = np.zeros((3, INPUT_SIZE, INPUT_SIZE), dtype=np.float32)

    def lookup(sample: Sample) -> tuple[DeferredCrop | np.ndarray, bool]:
        path = find(sample)
        return (DeferredCrop(path, seed, f"{sample.id}\0{path.name}"), True) if path is not None else (zeros, False)

    return lookup


__all__ = ["DeferredCrop", "DeferredPixels", "crop_lookup", "image_finder", "pixel_lookup", "pixel_shape"]
