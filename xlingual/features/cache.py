"""The on-disk feature cache: one movable folder per backbone and producer.

Layout::

    <cache>/cache.json               what produced the features (backbone, weights, crop, seed, dtype)
    <cache>/shard-000001.safetensors  (49, C) arrays keyed by image file name, plus each file's fingerprint
    <cache>/shard-000002.safetensors  ...

Why this shape:

* Shards are written whole, to a temporary name, then renamed
  (:func:`xlingual.io.atomic_open`), so an interrupted extraction leaves only
  complete shards; the next run finds what they hold and extracts the rest.
* Keys are image file names. Twitter and CMNER names do not collide, so one
  cache serves both datasets and every translation of them (translated samples
  keep their source post's image names).
* Each entry carries its file's fingerprint (size + BLAKE2 of the bytes): an
  image replaced under the same name is extracted again; the later shard wins.
  Its size and modification time are kept too, so an unchanged file is
  recognised without reading it; a copied folder (new times) is hashed once.
* A cache's output set (:mod:`xlingual.output_set`) is one shard: the
  shard's entries travel with their fingerprints, ``cache.json`` is written
  before any shard and never changes once there is one, and readers take every whole shard
  there is. A full disk keeps the shards written so far and removes the
  temporary file (the error names the shard); nothing can be half a shard.
* ``cache.json`` names the producer. A cache is never extended with features of
  other weights or another crop policy: :meth:`CacheWriter.open` refuses, and
  the user picks another folder. Random-weight features therefore can never be
  mixed with real ones.
* float16 by default halves the size (CMNER's 18k images with ResNet-152:
  ~3.7 GB instead of 7.4 GB); readers always get float32.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save as save_safetensors

from xlingual.errors import ConfigError, ImageError
from xlingual.features.choices import check_image_mode
from xlingual.io import atomic_open, atomic_write_json, file_digest

logger = logging.getLogger(__name__)

CACHE_FORMAT = "xlingual-features/1"
META_FILE = "cache.json"
SHARD_PATTERN = re.compile(r"^shard-(\d{6})\.safetensors$")
DTYPES = {"float16": np.float16, "float32": np.float32}


@dataclass(frozen=True)
class CacheProducer:
    """Everything that changes the stored numbers; two caches mix only when these are equal."""

    backbone: str
    region_shape: tuple[int, int]
    weights_id: str
    crop: str
    crop_seed: int | None
    dtype: str

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["region_shape"] = list(self.region_shape)
        return out

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> "CacheProducer":
        return cls(
            backbone=obj["backbone"], region_shape=tuple(obj["region_shape"]), weights_id=obj["weights_id"],
            crop=obj["crop"], crop_seed=obj.get("crop_seed"), dtype=obj["dtype"],
        )

    def differences(self, other: "CacheProducer") -> list[str]:
        mine, theirs = self.to_dict(), other.to_dict()
        return [f"{key}={mine[key]} (this run: {theirs[key]})" for key in mine if mine[key] != theirs[key]]


def file_stat_key(path: Path) -> str:
    """Size and modification time: the cheap check that a file is the one the cache saw."""
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def file_fingerprint(path: Path) -> str:
    """Size and content hash of an image file, so a replaced image is never read from the cache."""
    return f"{path.stat().st_size}:{file_digest(path, 'blake2b', digest_size=12)}"


@dataclass
class PostFeature:
    """A post's visual input: the mean of its cached images' features, or zeros and ``has_image=False``."""

    array: np.ndarray
    has_image: bool
    n_images: int


def _read_meta(cache_dir: Path) -> dict[str, Any]:
    path = cache_dir / META_FILE
    if not path.is_file():
        raise ImageError(f"{cache_dir}: not a feature cache (no {META_FILE}); build it with 'xl features extract'")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # ValueError: not JSON, or not UTF-8 text at all
        raise ImageError(f"{path}: unreadable cache description ({str(err)[:200]})") from None
    if not isinstance(meta, dict) or meta.get("format") != CACHE_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ImageError(f"{path}: unknown cache format {found!r} (expected {CACHE_FORMAT})")
    try:
        CacheProducer.from_dict(meta["producer"])
        if not isinstance(meta["weights"], str):
            raise TypeError("'weights' is not a string")
    except (KeyError, TypeError, ValueError) as err:
        missing = f"no {err}" if isinstance(err, KeyError) else str(err)
        raise ImageError(f"{path}: damaged cache description ({missing}); extract into a new folder or delete this one") from None
    return meta


def _write_meta(cache_dir: Path, producer: CacheProducer, weights: str) -> dict[str, Any]:
    """Describe ``cache_dir`` as made by ``producer`` from ``weights``; the description as :func:`_read_meta` returns it."""
    meta = {"format": CACHE_FORMAT, "producer": producer.to_dict(), "weights": weights}
    atomic_write_json(cache_dir / META_FILE, meta)
    return meta


def _shard_paths(cache_dir: Path) -> list[Path]:
    """Complete shards, oldest first; temporary files of an interrupted write are ignored."""
    return sorted(p for p in cache_dir.iterdir() if SHARD_PATTERN.match(p.name))


class FeatureCache:
    """Read access to a feature cache; see the module docstring for the layout."""

    def __init__(self, cache_dir: Path, meta: dict[str, Any]) -> None:
        self.cache_dir = cache_dir
        self.producer = CacheProducer.from_dict(meta["producer"])
        self.weights: str = meta["weights"]
        """What the user asked for: ``"default"``, ``"random"`` or a path."""
        self._location: dict[str, Path] = {}
        self._fingerprints: dict[str, str] = {}
        self._stat_keys: dict[str, str] = {}
        self._handles: dict[Path, Any] = {}
        for shard in _shard_paths(cache_dir):
            self._index_shard(shard)

    @classmethod
    def open(cls, cache_dir: str | Path) -> "FeatureCache":
        cache_dir = Path(cache_dir)
        return cls(cache_dir, _read_meta(cache_dir))

    def _index_shard(self, shard: Path) -> None:
        try:
            with safe_open(str(shard), framework="np") as handle:
                names = list(handle.keys())
                metadata = handle.metadata() or {}
                fingerprints = json.loads(metadata.get("fingerprints", "{}"))
                stat_keys = json.loads(metadata.get("stats", "{}"))
        except Exception as err:  # a damaged shard costs its entries, not the whole cache
            logger.warning("%s: unreadable shard skipped (%s); its images will be extracted again", shard, err)
            return
        for name in names:
            self._location[name] = shard
            self._fingerprints[name] = fingerprints.get(name, "")
            self._stat_keys[name] = stat_keys.get(name, "")

    @property
    def backbone(self) -> str:
        return self.producer.backbone

    @property
    def region_shape(self) -> tuple[int, int]:
        return self.producer.region_shape

    @property
    def crop(self) -> str:
        return self.producer.crop

    def __len__(self) -> int:
        return len(self._location)

    def __contains__(self, image_name: object) -> bool:
        return image_name in self._location

    def names(self) -> list[str]:
        return sorted(self._location)

    def fingerprint(self, image_name: str) -> str | None:
        return self._fingerprints.get(image_name)

    def stat_key(self, image_name: str) -> str | None:
        return self._stat_keys.get(image_name)

    def get(self, image_name: str) -> np.ndarray | None:
        """The image's (49, C) float32 features, or None when it is not cached."""
        shard = self._location.get(image_name)
        if shard is None:
            return None
        handle = self._handles.get(shard)
        if handle is None:
            handle = self._handles[shard] = safe_open(str(shard), framework="np")
        features = np.asarray(handle.get_tensor(image_name), dtype=np.float32)
        if not np.isfinite(features).all():  # would train NaN losses to the end of the run
            raise ImageError(f"{shard}: the features of {image_name} hold NaN or infinite values; delete this shard and run "
                             "'xl features extract' again")
        return features

    def post_feature(self, image_names: Sequence[str], mode: str = "all", rng: random.Random | None = None) -> PostFeature:
        """One post's input: the mean over its cached images (``"all"``, the paper's method) or one random image (``"one"``)."""
        check_image_mode(mode)
        usable = [name for name in image_names if name in self._location]
        if not usable:
            return PostFeature(np.zeros(self.region_shape, dtype=np.float32), has_image=False, n_images=0)
        if mode == "one":
            chosen = (rng or random.Random(0)).choice(usable)
            return PostFeature(self.get(chosen), has_image=True, n_images=1)
        total = np.zeros(self.region_shape, dtype=np.float64)
        for name in usable:
            total += self.get(name)
        return PostFeature((total / len(usable)).astype(np.float32), has_image=True, n_images=len(usable))

    def summary(self) -> dict[str, Any]:
        """What ``xl features info`` shows: backbone, region shape, what produced the features, how many images."""
        producer = {k: v for k, v in self.producer.to_dict().items() if k not in ("backbone", "region_shape")}
        return {"cache_dir": str(self.cache_dir), "backbone": self.backbone, "region_shape": list(self.region_shape),
                "weights": self.weights, **producer, "images": len(self)}

    def close(self) -> None:
        self._handles.clear()


class CacheWriter:
    """Adds features to a cache folder in atomic shards; refuses a folder made by another producer."""

    def __init__(self, cache: FeatureCache) -> None:
        self.cache = cache
        self._pending: dict[str, np.ndarray] = {}
        self._pending_fingerprints: dict[str, str] = {}
        self._pending_stat_keys: dict[str, str] = {}
        existing = [int(SHARD_PATTERN.match(p.name).group(1)) for p in _shard_paths(cache.cache_dir)]
        self._next_shard = max(existing, default=0) + 1
        self.shards_written = 0

    @classmethod
    def open(cls, cache_dir: str | Path, producer: CacheProducer, weights: str) -> "CacheWriter":
        cache_dir = Path(cache_dir)
        if cache_dir.exists() and not cache_dir.is_dir():
            raise ConfigError(f"--output {cache_dir}: exists and is not a folder")
        if (cache_dir / META_FILE).is_file():
            meta = _read_meta(cache_dir)
            differences = CacheProducer.from_dict(meta["producer"]).differences(producer)
            if differences and not _shard_paths(cache_dir):
                logger.info("%s: empty cache re-described for this run (%s)", cache_dir, ", ".join(differences))
                meta = _write_meta(cache_dir, producer, weights)
            elif differences:
                raise ConfigError(
                    f"--output {cache_dir}: this cache holds features made with {', '.join(differences)}; "
                    "features are never mixed: pass another --output folder or delete this one"
                )
        else:
            cache_dir.mkdir(parents=True, exist_ok=True)
            meta = _write_meta(cache_dir, producer, weights)
        return cls(FeatureCache(cache_dir, meta))

    def is_current(self, image_name: str, path: Path) -> tuple[bool, str, str]:
        """Whether the cache holds this exact file's features, with the file's (fingerprint, stat key).

        An unchanged size and modification time settle it without reading the
        file; otherwise the content hash decides.
        """
        name, stat_key = image_name, file_stat_key(path)
        known = self.cache.fingerprint(name) or self._pending_fingerprints.get(name)
        if known and stat_key == (self.cache.stat_key(name) or self._pending_stat_keys.get(name)):
            return True, known, stat_key
        fingerprint = file_fingerprint(path)
        return fingerprint == known, fingerprint, stat_key

    def add(self, image_name: str, regions: np.ndarray, fingerprint: str, stat_key: str = "") -> None:
        expected = self.cache.region_shape
        if tuple(regions.shape) != tuple(expected):
            raise ValueError(f"{image_name}: features of shape {regions.shape}, cache holds {expected}")
        self._pending[image_name] = np.ascontiguousarray(regions, dtype=DTYPES[self.cache.producer.dtype])
        self._pending_fingerprints[image_name] = fingerprint
        self._pending_stat_keys[image_name] = stat_key

    @property
    def pending(self) -> int:
        return len(self._pending)

    def flush(self) -> Path | None:
        """Write the pending entries as one new shard (atomically) and make them readable."""
        if not self._pending:
            return None
        shard = self.cache.cache_dir / f"shard-{self._next_shard:06d}.safetensors"
        payload = save_safetensors(self._pending, metadata={
            "fingerprints": json.dumps(self._pending_fingerprints, ensure_ascii=False),
            "stats": json.dumps(self._pending_stat_keys, ensure_ascii=False),
        })
        with atomic_open(shard, "wb") as handle:
            handle.write(payload)
        self._next_shard += 1
        self.shards_written += 1
        self._pending.clear()
        self._pending_fingerprints.clear()
        self._pending_stat_keys.clear()
        self.cache._index_shard(shard)
        logger.debug("wrote %s", shard)
        return shard

    def adopt(self, other: FeatureCache) -> int:
        """Move every shard of ``other`` (a cache of the same producer, e.g. a Ray worker's part) into this cache.

        Each shard is renamed, whole, to this cache's next shard number, in
        ``other``'s order, so later entries still win; returns how many moved.
        """
        if other.producer != self.cache.producer:
            raise ConfigError(f"{other.cache_dir}: features of {', '.join(other.producer.differences(self.cache.producer))}; not merged")
        moved = 0
        for shard in _shard_paths(other.cache_dir):
            target = self.cache.cache_dir / f"shard-{self._next_shard:06d}.safetensors"
            os.replace(shard, target)
            self._next_shard += 1
            self.shards_written += 1
            self.cache._index_shard(target)
            moved += 1
        return moved
