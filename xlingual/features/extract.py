"""Extracting image features once, into the cache every training run reads.

Work is skipped at three levels: an image already in the cache (same file
fingerprint) is not decoded, a run with nothing to extract does not even load
the backbone, and an interrupted run keeps every shard it finished (plus the
pending entries, written on Ctrl-C) and resumes from there.

Where the backbone runs is the caller's choice, not this module's: a
:class:`BackboneRunner` runs the images left to extract, in this process by
default (:data:`IN_PROCESS`); :mod:`xlingual.scale.features` provides one that
runs them on Ray workers.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from xlingual.data.datasets import load_split
from xlingual.data.files import expand_dataset_paths
from xlingual.data.formats import read_samples
from xlingual.data.images import ImageIndex, attach_images
from xlingual.data.sample import Sample
from xlingual.devices import resolve_device
from xlingual.errors import ConfigError, ImageError
from xlingual.features.backbones import ensure_weights, get_backbone, input_transform, load_backbone, region_shape, weights_identity
from xlingual.features.cache import DTYPES, CacheProducer, CacheWriter, FeatureCache
from xlingual.features.preprocess import ClipPreprocessing, check_crop, preprocess_image
from xlingual.lock import locks_output
from xlingual.progress import progress_bar

logger = logging.getLogger(__name__)

DEFAULT_SHARD_SIZE = 512
"""Images per shard: bounds the work a hard kill (no chance to flush) can lose, and the number of files."""


@dataclass
class ExtractionReport:
    """What one extraction did; ``to_dict()`` is what ``xl features extract --json`` prints."""

    cache_dir: str
    backbone: str
    weights: str
    crop: str
    device: str = "none"
    named: int = 0
    """Distinct image names asked for."""
    extracted: int = 0
    """Images run through the CNN now."""
    cached: int = 0
    """Images found in the cache (same file contents), no work done."""
    failed: dict[str, str] = field(default_factory=dict)
    """Image name -> why it has no features (missing file, unreadable, too small for the crop)."""
    forward_batches: int = 0
    seconds: float = 0.0
    samples: int | None = None
    """Samples read from dataset files (None when names were given directly)."""
    samples_without_image: int | None = None
    """Samples that end up with no usable image: a zero feature with ``has_image=False``."""

    @property
    def images_per_second(self) -> float:
        return self.extracted / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["images_per_second"] = round(self.images_per_second, 3)
        out["seconds"] = round(self.seconds, 3)
        return out


@dataclass(frozen=True)
class BackboneWork:
    """The images left to extract, and how to run the backbone over them: what a :class:`BackboneRunner` is handed."""

    todo: list[tuple[str, str, str]]
    """(name, fingerprint, stat key) of each image to run, in order."""
    images_dir: Path
    weights: str
    batch_size: int
    device: str
    seed: int
    shard_size: int
    decode_workers: int | None


class BackboneRunner(Protocol):
    """Runs the backbone over the images :func:`extract_features` found left to extract, wherever it runs them.

    Whichever runner runs them, the cache ends up with the same keys and the same values.
    """

    def prepare(self, writer: CacheWriter, device: str) -> None:
        """Before the cache is read for what is left: fail early on what cannot run, or take in work a killed run left."""

    def run(self, work: BackboneWork, writer: CacheWriter, report: ExtractionReport) -> None:
        """Extract ``work.todo`` into ``writer``'s cache, adding what was done to ``report``."""


class InProcess:
    """The default :class:`BackboneRunner`: the backbone runs here, on ``device`` (:func:`run_backbone`)."""

    def prepare(self, writer: CacheWriter, device: str) -> None:
        resolve_device(device)  # a device this machine lacks fails before thousands of files are hashed

    def run(self, work: BackboneWork, writer: CacheWriter, report: ExtractionReport) -> None:
        run_backbone(work.todo, work.images_dir, writer, report, work.weights, work.batch_size, torch.device(resolve_device(work.device)),
                     work.seed, work.shard_size, work.decode_workers)


IN_PROCESS = InProcess()


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _producer(backbone: str, weights: str, crop: str, seed: int, dtype: str) -> CacheProducer:
    return CacheProducer(
        backbone=backbone, region_shape=region_shape(backbone, weights), weights_id=weights_identity(backbone, weights, seed),
        crop=crop, crop_seed=seed if crop == "faithful" and backbone == "resnet152" else None, dtype=dtype,
    )


def _load_inputs(paths: Sequence[Path], backbone: str, crop: str, seed: int, pool: ThreadPoolExecutor,
                 transform: ClipPreprocessing | None = None) -> list[np.ndarray | ImageError]:
    def one(path: Path) -> np.ndarray | ImageError:
        try:
            return preprocess_image(path, backbone, crop, seed, transform)
        except ImageError as err:
            return err
        except MemoryError:
            return ImageError(f"{path.name}: out of memory while decoding")

    return list(pool.map(one, paths))


@torch.no_grad()
def regions_of(model: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """(B, C, 7, 7) maps as (B, 49, C), region r = 7*row + col (the transpose, not UMT-CMNER's scrambled reshape);
    a token encoder's (B, tokens, C) output as it is."""
    maps = model(inputs)
    return maps if maps.dim() == 3 else maps.flatten(2).transpose(1, 2)


@locks_output("cache_dir")
def extract_features(
    images_dir: str | Path,
    image_names: Iterable[str],
    cache_dir: str | Path,
    backbone: str = "vgg16",
    weights: str = "default",
    batch_size: int = 16,
    device: str = "auto",
    crop: str = "clean",
    seed: int = 0,
    dtype: str = "float16",
    shard_size: int = DEFAULT_SHARD_SIZE,
    decode_workers: int | None = None,
    runner: BackboneRunner = IN_PROCESS,
) -> ExtractionReport:
    """Make sure ``cache_dir`` holds features for every named image in ``images_dir``; return what was done.

    Each name is read once however often it is given. Failed images are
    reported in ``failed`` (never raised); bad options raise ConfigError.
    ``runner`` runs the backbone over the images to extract: in this process
    by default, on Ray workers with :class:`xlingual.scale.features.RayParts`;
    the cache ends up the same.
    """
    started = time.perf_counter()
    images_dir = check_options(images_dir, backbone, crop, batch_size, dtype)
    names = _unique(image_names)
    writer = CacheWriter.open(cache_dir, _producer(backbone, weights, crop, seed, dtype), weights)
    report = ExtractionReport(cache_dir=str(cache_dir), backbone=backbone, weights=weights, crop=crop, named=len(names))

    runner.prepare(writer, device)
    if weights != "random" and any(name not in writer.cache and (images_dir / name).is_file() for name in names):
        ensure_weights(backbone, weights)  # fail before hashing thousands of files, not after
    todo = _images_left(names, images_dir, writer, report)
    if todo:
        runner.run(BackboneWork(todo, images_dir, weights, batch_size, device, seed, shard_size, decode_workers), writer, report)
    report.seconds = time.perf_counter() - started
    if report.failed:
        logger.warning("%d of %d images have no features (first: %s: %s)", len(report.failed), len(names), *next(iter(report.failed.items())))
    return report


def check_options(images_dir: str | Path, backbone: str, crop: str, batch_size: int, dtype: str) -> Path:
    """The image folder of an extraction, once its options are known good; a one-line error naming the bad one.

    Checked before the cache is opened or anything is hashed, so a typo costs nothing.
    """
    get_backbone(backbone)
    check_crop(crop)
    if batch_size < 1:
        raise ConfigError(f"--batch-size {batch_size}: must be at least 1")
    if dtype not in DTYPES:
        raise ConfigError(f"--dtype {dtype}: choose from {', '.join(DTYPES)}")
    folder = Path(images_dir)
    if not folder.is_dir():
        raise ImageError(f"--images {folder}: image folder does not exist")
    return folder


def _images_left(names: Sequence[str], images_dir: Path, writer: CacheWriter, report: ExtractionReport) -> list[tuple[str, str, str]]:
    """(name, fingerprint, stat key) of each named image the cache lacks or holds for other file contents.

    A missing file is recorded in ``report.failed``, a current one counted in ``report.cached``.
    """
    todo: list[tuple[str, str, str]] = []
    for name in names:
        path = images_dir / name
        if not path.is_file():
            report.failed[name] = "file not found"
            continue
        current, fingerprint, stat_key = writer.is_current(name, path)
        if current:
            report.cached += 1
        else:
            todo.append((name, fingerprint, stat_key))
    return todo

def run_backbone(
    todo: list[tuple[str, str, str]], images_dir: Path, writer: CacheWriter, report: ExtractionReport,
    weights: str, batch_size: int, torch_device: torch.device, seed: int, shard_size: int, decode_workers: int | None,
    model: torch.nn.Module | None = None,
) -> None:
    """Run the CNN over ``todo`` (name, fingerprint, stat key) in batches of ``batch_size``, in order, into ``writer``.

    ``model``: the backbone already loaded on ``torch_device`` (a Ray worker loads it once for all its shards).
    """
    report.device = str(torch_device)
    model = model if model is not None else load_backbone(report.backbone, weights, seed).to(torch_device)
    transform = input_transform(report.backbone, weights)
    if torch_device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # every input is 3x224x224: tune the convolutions once
    logger.info("extracting %d images with %s (%s weights, %s crop) on %s", len(todo), report.backbone, weights, report.crop, torch_device)
    bar = progress_bar(total=len(todo), desc=f"{report.backbone} features", unit="img")
    workers = decode_workers or min(8, os.cpu_count() or 1)
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for start in range(0, len(todo), batch_size):
                chunk = todo[start : start + batch_size]
                inputs = _load_inputs([images_dir / name for name, _, _ in chunk], report.backbone, report.crop, seed, pool, transform)
                good = [(name, fp, key, x) for (name, fp, key), x in zip(chunk, inputs) if isinstance(x, np.ndarray)]
                for (name, _, _), x in zip(chunk, inputs):
                    if isinstance(x, ImageError):
                        report.failed[name] = str(x).split(": ", 1)[-1]
                if good:
                    batch = torch.from_numpy(np.stack([x for *_, x in good]))
                    if torch_device.type == "cuda":  # pinned host memory lets the copy overlap the previous batch
                        batch = batch.pin_memory()
                    batch = batch.to(torch_device, non_blocking=True)
                    regions = regions_of(model, batch).float().cpu().numpy()
                    report.forward_batches += 1
                    limit = float(np.finfo(DTYPES[writer.cache.producer.dtype]).max)
                    for (name, fp, key, _), features in zip(good, regions):
                        if not np.isfinite(features).all() or np.abs(features).max() > limit:
                            report.failed[name] = f"features not finite in {writer.cache.producer.dtype} (try --dtype float32 or other weights)"
                            continue
                        writer.add(name, features, fp, key)
                        report.extracted += 1
                if writer.pending >= shard_size:
                    writer.flush()
                bar.update(len(chunk))
    finally:
        writer.flush()  # also on Ctrl-C: finished batches are kept, the next run resumes after them
        bar.close()


def samples_with_images(parts: Iterable[list[Sample]], index: ImageIndex) -> list[Sample]:
    """The samples of every part, in order, with ``images`` set from one index of the image folder.

    The folder is listed once however many files (splits) name its posts.
    """
    samples: list[Sample] = []
    for part in parts:
        attach_images(part, index)
        samples.extend(part)
    return samples


def collect_samples(dataset_files: Sequence[str | Path], images_dir: str | Path) -> list[Sample]:
    """Samples of every dataset file, with ``images`` set from the folder (source ids for translations)."""
    return samples_with_images((read_samples(path) for path in expand_dataset_paths(dataset_files)), ImageIndex.of(images_dir))


def extract_for_datasets(
    images_dir: str | Path, dataset_files: Sequence[str | Path], cache_dir: str | Path, **options: Any
) -> ExtractionReport:
    """Extract the images that the samples of ``dataset_files`` own; also count samples left without an image."""
    return extract_for_samples(images_dir, collect_samples(dataset_files, images_dir), cache_dir, **options)


def extract_for_samples(images_dir: str | Path, samples: Sequence[Sample], cache_dir: str | Path, **options: Any) -> ExtractionReport:
    """Extract the images ``samples`` name (their ``images`` set from ``images_dir``); also count samples left without an image."""
    report = extract_features(images_dir, (name for s in samples for name in s.images), cache_dir, **options)
    cache = FeatureCache.open(cache_dir)
    report.samples = len(samples)
    report.samples_without_image = sum(1 for s in samples if not any(name in cache for name in s.images))
    return report


def extract_folder(images_dir: str | Path, cache_dir: str | Path, **options: Any) -> ExtractionReport:
    """Extract every image file in the folder (when no dataset files are given)."""
    from xlingual.data.images import IMAGE_SUFFIXES

    folder = Path(images_dir)
    if not folder.is_dir():
        raise ImageError(f"--images {folder}: image folder does not exist")
    names = sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    return extract_features(folder, names, cache_dir, **options)


def merge_reports(reports: Sequence[ExtractionReport]) -> ExtractionReport:
    """One summary of several extractions into the same cache (e.g. one per dataset)."""
    first = reports[0]
    merged = ExtractionReport(cache_dir=first.cache_dir, backbone=first.backbone, weights=first.weights, crop=first.crop)
    for report in reports:
        if report.device != "none":
            merged.device = report.device
        merged.named += report.named
        merged.extracted += report.extracted
        merged.cached += report.cached
        merged.failed.update(report.failed)
        merged.forward_batches += report.forward_batches
        merged.seconds += report.seconds
        if report.samples is not None:
            merged.samples = (merged.samples or 0) + report.samples
            merged.samples_without_image = (merged.samples_without_image or 0) + (report.samples_without_image or 0)
    return merged


def extract_for_data_dir(
    data_dir: str | Path, backbone: str = "vgg16", datasets: Sequence[str] | None = None, cache_dir: str | Path | None = None,
    datasets_file: str | Path | None = None, **options: Any
) -> ExtractionReport:
    """Every dataset under ``data_dir`` (built-in or declared) that has an image folder, all its splits, into one cache.

    The default cache is ``DataDir(data_dir).features(backbone)``, where training
    runs look. Translations need nothing extra: their samples name the source
    posts' images. ``options`` (a ``runner`` among them) go to :func:`extract_features`.
    """
    from xlingual.workspace import DataDir

    layout = DataDir(data_dir, datasets_file)
    cache_dir = cache_dir or layout.features(backbone)
    reports = []
    for spec in [layout.dataset(name) for name in datasets] if datasets else layout.datasets():
        name, images_dir = spec.name, spec.images_path(layout.root)
        splits = [split for split in spec.split_files if spec.split_path(layout.root, split).is_file()]
        if not images_dir.is_dir() or not splits:
            logger.info("%s: skipped (no image folder %s or no split files)", name, images_dir)
            continue
        logger.info("%s: images of %d split files from %s", name, len(splits), images_dir)
        splits_read = (load_split(layout.root, name, split, with_images=False, datasets_file=datasets_file) for split in splits)
        samples = samples_with_images(splits_read, ImageIndex.of(images_dir, spec.image_names))
        reports.append(extract_for_samples(images_dir, samples, cache_dir, backbone=backbone, **options))
    if not reports:
        raise ImageError(f"--data-dir {data_dir}: no dataset with both split files and an image folder (e.g. {layout.images_dir('cmner')}); pass --images and --dataset")
    return merge_reports(reports)


def extract(images: str | Path | None, data_dir: str | Path, datasets: Sequence[str | Path] | None = None,
            cache_dir: str | Path | None = None, datasets_file: str | Path | None = None, **options: Any) -> ExtractionReport:
    """``xl features extract``: a folder's images, only those the given dataset files' posts name, or (no folder) every dataset under ``data_dir``.

    ``options`` (a ``runner`` among them) go to :func:`extract_features`;
    ``xl features extract --ray`` comes here through :func:`xlingual.scale.features.extract`.
    """
    from xlingual.workspace import DataDir

    if images is None and datasets:
        raise ConfigError("--dataset needs --images (the folder holding those posts' images)")
    if images is None:
        return extract_for_data_dir(data_dir, cache_dir=cache_dir, datasets_file=datasets_file, **options)
    cache_dir = cache_dir or DataDir(data_dir).features(options.get("backbone", "vgg16"))
    if datasets:
        return extract_for_datasets(images, list(datasets), cache_dir, **options)
    return extract_folder(images, cache_dir, **options)

