"""Turning an image file into the (3, H, W) array a backbone reads (224x224 for all three full-size ones).

Two crop policies per backbone (docs/features.md, "Preprocessing (crop policies)", names the reference script each follows):

* ``"clean"`` (default): the image is converted to RGB properly (alpha
  composited on white, CMYK and grey-scale converted), then
  ResNet-152: shorter side resized to 256, centre crop 224;
  VGG16: resized to 224x224 ignoring the aspect ratio (bicubic, as ACN's script);
  both normalised with the ImageNet mean/std torchvision's weights expect.
* ``"faithful"``: the original scripts' preprocessing.
  ResNet-152 (UMT ``save_resnet_feat.py``): one random 224x224 crop of the raw,
  unresized image plus a random horizontal flip, deterministic per (seed, file
  name); images smaller than 224 on a side cannot be cropped and are reported.
  VGG16 (ACN ``save_vgg_feature.py``): resize 224x224 of the image in its own
  mode (palette as indices, CMYK as its first three ink channels, grey-scale
  replicated, alpha dropped), then the Caffe BGR means subtracted from R, G, B
  in 8-bit unsigned arithmetic: truncated, negative values wrapping modulo 256.

CLIP ViT-B/32 takes CLIP's own preprocessing (:class:`ClipPreprocessing`, read
from the model's ``preprocessor_config.json``; for ViT-B/32: shorter side to
224 bicubic, centre crop 224, CLIP's mean/std), the same as transformers'
``CLIPImageProcessorPil``. Its two policies differ only in the RGB conversion:
``clean`` as above, ``faithful`` Pillow's plain ``convert("RGB")`` as the 2M-NER
reference code does (alpha dropped, not composited).

Any problem with one file raises :class:`~xlingual.errors.ImageError`; the
extractor reports it and goes on.
"""

from __future__ import annotations

import hashlib
import random
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from xlingual.errors import ConfigError, ImageError, ModelNotFoundError
from xlingual.features.choices import Backbone, CropPolicy

CROP_POLICIES = tuple(policy.value for policy in CropPolicy)
INPUT_SIZE = 224
RESIZE_SHORTER = 256
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
CAFFE_BGR_MEANS = (103.939, 116.779, 123.68)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
DRAFT_ABOVE_PIXELS = 40_000_000
"""JPEGs larger than this are decoded at a reduced scale (clean policy only) to bound memory and time."""


def decode_limit() -> int | None:
    """Most pixels an image may decode to: Pillow's own limit, ``PIL.Image.MAX_IMAGE_PIXELS`` (89,478,485 unless changed; None: no limit).

    Pillow itself only warns between the limit and twice it, and decodes: a
    164 KB PNG can state 13000x13000 and cost 0.8 GB. :func:`open_image`
    refuses such a file on the size its header states (after a JPEG's
    reduced-scale draft), before any pixel is decoded.
    """
    limit = Image.MAX_IMAGE_PIXELS
    return int(limit) if limit else None


def check_crop(crop: str) -> str:
    if crop not in CROP_POLICIES:
        raise ConfigError(f"--crop {crop}: choose from {', '.join(CROP_POLICIES)}")
    return crop


def open_image(path: Path, draft_to: int | None = None) -> Image.Image:
    """The fully decoded image; truncated, unreadable and oversized files raise ImageError.

    An image larger than :func:`decode_limit` is refused from its header, before it is decoded.
    """
    if not path.is_file():
        raise ImageError(f"{path.name}: file not found")
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is reported, never half-read silently
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
            if draft_to is not None and image.format == "JPEG" and image.width * image.height > DRAFT_ABOVE_PIXELS:
                image.draft("RGB", (draft_to, draft_to))
            if (limit := decode_limit()) is not None and image.width * image.height > limit:
                image.close()
                raise ImageError(f"{path.name}: too large to decode ({image.width}x{image.height} pixels, more than Pillow's limit of {limit:,})")
            image.load()
    except UnidentifiedImageError:
        raise ImageError(f"{path.name}: not an image Pillow can read") from None
    except Image.DecompressionBombError as err:
        raise ImageError(f"{path.name}: too large ({err})") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{path.name}: cannot decode ({err})") from None
    if image.width < 1 or image.height < 1:
        raise ImageError(f"{path.name}: empty image")
    return image


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB without surprises: transparency over white, 16-bit and float grey rescaled to 8 bits."""
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("I", "F") or image.mode.startswith("I;"):
        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = np.zeros_like(values) if high <= low else (values - low) / (high - low) * 255.0
        return Image.fromarray(scaled.round().astype(np.uint8)).convert("RGB")
    return image.convert("RGB")


def _normalise(rgb: Image.Image) -> np.ndarray:
    array = np.asarray(rgb, dtype=np.float32) / 255.0
    return ((array - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1).copy()


def _resize_shorter_then_centre_crop(rgb: Image.Image) -> Image.Image:
    width, height = rgb.size
    scale = RESIZE_SHORTER / min(width, height)
    size = (max(INPUT_SIZE, round(width * scale)), max(INPUT_SIZE, round(height * scale)))
    resized = rgb.resize(size, Image.Resampling.BILINEAR)
    left = (size[0] - INPUT_SIZE) // 2
    top = (size[1] - INPUT_SIZE) // 2
    return resized.crop((left, top, left + INPUT_SIZE, top + INPUT_SIZE))


def keyed_rng(seed: int, key: str) -> random.Random:
    """A random source that depends only on (seed, key): an image's faithful crop or a post's
    "one image" choice is the same whatever the order, batch size, subset or resume."""
    digest = hashlib.sha256(f"{seed}\0{key}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _random_crop_and_flip(rgb: Image.Image, rng: random.Random, name: str) -> Image.Image:
    width, height = rgb.size
    if width < INPUT_SIZE or height < INPUT_SIZE:
        raise ImageError(f"{name}: {width}x{height} is smaller than {INPUT_SIZE}x{INPUT_SIZE}; the faithful crop needs the raw image (use --crop clean)")
    left = rng.randint(0, width - INPUT_SIZE)
    top = rng.randint(0, height - INPUT_SIZE)
    patch = rgb.crop((left, top, left + INPUT_SIZE, top + INPUT_SIZE))
    if rng.random() < 0.5:
        patch = patch.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return patch


def reference_resnet_input(path: Path, rng: random.Random) -> np.ndarray:
    """The (3, 224, 224) ResNet input 2M-NER's reference builds for a post every time it reads it (its ``dataset/data.py``).

    Pillow's plain ``convert("RGB")``; an image smaller than 224 on either
    side is first resized to 224x224 (bilinear), any other keeps its own size;
    then a random 224x224 window of it, flipped left-right with probability
    one half, normalised with the ImageNet mean/std. ``rng`` is the draw:
    the caller keys it so the same post in the same round gets the same view.
    """
    image = open_image(path)
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    if rgb.width < INPUT_SIZE or rgb.height < INPUT_SIZE:
        rgb = rgb.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR)
    return _normalise(_random_crop_and_flip(rgb, rng, path.name))


def _vgg_faithful(image: Image.Image) -> np.ndarray:
    resized = image.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BICUBIC)
    array = np.asarray(resized)
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    elif array.shape[2] < 3:
        array = np.repeat(array[:, :, :1], 3, axis=2)
    array = array[:, :, :3].astype(np.float64)
    if array.max() > 255:  # 16-bit modes: the original would have overflowed differently; keep 8 bits
        array = array / array.max() * 255.0
    means = np.array(CAFFE_BGR_MEANS)
    wrapped = np.mod(np.trunc(np.floor(array) - means), 256.0)
    return wrapped.astype(np.float32).transpose(2, 0, 1).copy()


def _size_pair(value: Any, where: str, key: str) -> tuple[int, int]:
    """A ``{"height", "width"}`` dict or one int (a square) as (height, width)."""
    if isinstance(value, int) and value > 0:
        return (value, value)
    if isinstance(value, Mapping) and isinstance(value.get("height"), int) and isinstance(value.get("width"), int):
        return (value["height"], value["width"])
    raise ModelNotFoundError(f"{where}: {key}={value!r} is not an int or a height/width pair")


@dataclass(frozen=True)
class ClipPreprocessing:
    """CLIP's image preprocessing, as a model's ``preprocessor_config.json`` describes it.

    Re-implemented with Pillow and NumPy (the steps of transformers'
    ``CLIPImageProcessorPil``: resize, centre crop, rescale, normalise) so the
    decoding threads need neither transformers nor torch; a test checks the two
    agree. The defaults are openai/clip-vit-base-patch32's.
    """

    shortest_edge: int | None = 224
    """Resize the shorter side to this, the longer one to ``int(edge * long / short)`` (None: ``resize_to``)."""
    resize_to: tuple[int, int] | None = None
    """Resize to exactly (height, width) when the config gives a height/width size."""
    crop: tuple[int, int] | None = (224, 224)
    """Centre crop (height, width); None: no crop."""
    resample: int = Image.Resampling.BICUBIC
    rescale: float | None = 1 / 255
    mean: tuple[float, ...] | None = CLIP_MEAN
    std: tuple[float, ...] | None = CLIP_STD

    @classmethod
    def from_config(cls, config: Mapping[str, Any], where: str, family: str = "clip") -> "ClipPreprocessing":
        """From an image processor's settings (``preprocessor_config.json``); ``where`` names it in errors.

        ``family`` is whose defaults fill what the file leaves out: ``clip``
        (CLIPImageProcessor: a bare int size is the shorter side, centre crop
        on) or ``vit`` (ViTImageProcessor, google/vit-base-patch16-224: a bare
        int size is the square the image is resized to, no crop).
        """
        shortest: int | None = None
        resize_to: tuple[int, int] | None = None
        vit = family == "vit"
        if config.get("do_resize", True):
            size = config.get("size", {"height": 224, "width": 224} if vit else {"shortest_edge": 224})
            if isinstance(size, int) and vit:  # ViT's old feature-extractor format: a square
                resize_to = (size, size)
            elif isinstance(size, int):  # the old feature-extractor format (openai/clip-vit-base-patch32): the shorter side
                shortest = size
            elif isinstance(size, Mapping) and isinstance(size.get("shortest_edge"), int) and not size.get("longest_edge"):
                shortest = size["shortest_edge"]
            else:
                resize_to = _size_pair(size, where, "size")
        crop = _size_pair(config.get("crop_size", 224), where, "crop_size") if config.get("do_center_crop", not vit) else None
        fits = min(resize_to) if resize_to else shortest
        if crop is not None and fits is not None and max(crop) > fits:
            raise ModelNotFoundError(f"{where}: crop_size {crop} is larger than the resized image ({fits}); padding crops are not supported")
        if crop is None and resize_to is None:
            raise ModelNotFoundError(f"{where}: without a centre crop the size must be a height/width pair (inputs of one shape)")
        normalise = config.get("do_normalize", True)
        return cls(
            shortest_edge=shortest, resize_to=resize_to, crop=crop,
            resample=int(config.get("resample", Image.Resampling.BILINEAR if vit else Image.Resampling.BICUBIC)),
            rescale=float(config.get("rescale_factor", 1 / 255)) if config.get("do_rescale", True) else None,
            mean=tuple(float(v) for v in config.get("image_mean", (0.5, 0.5, 0.5) if vit else CLIP_MEAN)) if normalise else None,
            std=tuple(float(v) for v in config.get("image_std", (0.5, 0.5, 0.5) if vit else CLIP_STD)) if normalise else None,
        )

    def to_config(self) -> dict[str, Any]:
        """The settings as a ``preprocessor_config.json`` says them; :meth:`from_config` reads them back to an equal object."""
        config: dict[str, Any] = {"do_resize": self.shortest_edge is not None or self.resize_to is not None,
                                  "do_center_crop": self.crop is not None, "resample": int(self.resample),
                                  "do_rescale": self.rescale is not None, "do_normalize": self.mean is not None and self.std is not None}
        if self.shortest_edge is not None:
            config["size"] = {"shortest_edge": self.shortest_edge}
        elif self.resize_to is not None:
            config["size"] = {"height": self.resize_to[0], "width": self.resize_to[1]}
        if self.crop is not None:
            config["crop_size"] = {"height": self.crop[0], "width": self.crop[1]}
        if self.rescale is not None:
            config["rescale_factor"] = self.rescale
        if config["do_normalize"]:
            config["image_mean"], config["image_std"] = list(self.mean), list(self.std)
        return config

    @property
    def decode_size(self) -> int:
        """The side a large JPEG may be decoded down to (Pillow's draft keeps at least this)."""
        return self.shortest_edge or max(self.resize_to or (INPUT_SIZE,))

    def __call__(self, rgb: Image.Image) -> np.ndarray:
        """The (3, H, W) float32 input for an RGB image."""
        if self.shortest_edge is not None:
            width, height = rgb.size
            if width <= height:
                size = (self.shortest_edge, int(self.shortest_edge * height / width))
            else:
                size = (int(self.shortest_edge * width / height), self.shortest_edge)
            rgb = rgb.resize(size, self.resample)
        elif self.resize_to is not None:
            rgb = rgb.resize((self.resize_to[1], self.resize_to[0]), self.resample)
        if self.crop is not None:
            crop_height, crop_width = self.crop
            top, left = (rgb.height - crop_height) // 2, (rgb.width - crop_width) // 2
            rgb = rgb.crop((left, top, left + crop_width, top + crop_height))
        array = np.asarray(rgb, dtype=np.float64)
        if self.rescale is not None:
            array = array * self.rescale
        array = array.astype(np.float32)
        if self.mean is not None and self.std is not None:
            array = (array - np.asarray(self.mean, dtype=np.float32)) / np.asarray(self.std, dtype=np.float32)
        return array.transpose(2, 0, 1).copy()


def preprocess_image(path: Path, backbone: str, crop: str = "clean", seed: int = 0, clip: ClipPreprocessing | None = None) -> np.ndarray:
    """The (3, H, W) float32 input of ``backbone`` for one file, under the crop policy.

    ``clip`` is the CLIP model's own preprocessing (default: ViT-B/32's); the
    CNNs ignore it.
    """
    check_crop(crop)
    if backbone == Backbone.CLIP_VIT_B32.value:
        steps = clip or ClipPreprocessing()
        if crop == "faithful":  # the 2M-NER reference: Pillow's convert, alpha dropped
            image = open_image(path)
            return steps(image if image.mode == "RGB" else image.convert("RGB"))
        return steps(to_rgb(open_image(path, draft_to=steps.decode_size)))
    if backbone == "vgg16":
        if crop == "faithful":
            return _vgg_faithful(open_image(path))
        rgb = to_rgb(open_image(path, draft_to=INPUT_SIZE))
        return _normalise(rgb.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BICUBIC))
    if backbone == "resnet152":
        if crop == "faithful":
            return _normalise(_random_crop_and_flip(to_rgb(open_image(path)), keyed_rng(seed, path.name), path.name))
        return _normalise(_resize_shorter_then_centre_crop(to_rgb(open_image(path, draft_to=RESIZE_SHORTER))))
    raise ConfigError(f"unknown backbone '{backbone}'")
