"""``xl features extract``'s entry point, and its ``--ray`` path: images run through the CNN by Ray workers, each writing cache shards of its own.

:func:`extract` runs :func:`xlingual.features.extract.extract` with the
backbone in this process, or with ``ray`` on Ray workers (:class:`RayParts`,
the stage's :class:`~xlingual.features.extract.BackboneRunner` for Ray).
The driver decides what to extract exactly as one process does
(:func:`xlingual.features.extract.extract_features`: same names, same
fingerprints, same cached images skipped) and cuts that list into parts of
whole batches. A worker loads the backbone once and runs each part with the
single-process loop (:func:`~xlingual.features.extract.run_backbone`) into its
own folder, ``CACHE/.parts/part-NNNNNN/`` (a small cache of the same
producer). When every part is in, the driver moves their shards into the
cache in part order and indexes them, once. Each part's batches are the
single-process run's batches, so the cache holds the same keys and the same
values; only the shard files are cut differently. A part holds at most
``--part-size`` images (rounded up to whole batches); ``--workers N`` cuts at
least N parts where there are N batches, so N workers get work
(:func:`plan_parts`).

A part left by a killed driver or worker is complete shard by shard (written
atomically): the next run adopts whatever shards it holds before deciding
what is left to extract.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xlingual.errors import ConfigError, ImageError, XlingualError, failure_summary
from xlingual.features.cache import CacheProducer, CacheWriter, FeatureCache
from xlingual.scale.runtime import DEFAULT_PART_SIZE, RaySettings, import_ray, ray_session, run_on_workers

if TYPE_CHECKING:  # the stage imports torch: loaded only when something is extracted, so that ``xl --help`` stays light
    from xlingual.features.extract import BackboneWork, ExtractionReport

logger = logging.getLogger(__name__)

PARTS_DIR = ".parts"


@dataclass(frozen=True)
class FeaturePart:
    """One worker job: whole batches of the images to extract, and the folder its shards go to."""

    number: int
    todo: list[tuple[str, str, str]]  # (name, fingerprint, stat key), as extract_features found them
    folder: Path


def adopt_parts(writer: CacheWriter) -> int:
    """Move the shards of every part folder under the cache into it (part order), then remove the parts; how many shards moved."""
    root = writer.cache.cache_dir / PARTS_DIR
    if not root.is_dir():
        return 0
    moved = 0
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            part = FeatureCache.open(folder)
        except ImageError:  # a worker killed before it described its part: nothing in it to keep
            part = None
        if part is not None and part.producer == writer.cache.producer:
            moved += writer.adopt(part)
        shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)
    if moved:
        logger.info("%s: %d shards of Ray workers merged into the cache", writer.cache.cache_dir, moved)
    return moved


class _PartStage:
    """A worker's stage: the backbone loaded once, running part after part."""

    def __init__(self, producer: CacheProducer, images_dir: Path, weights: str, batch_size: int, device: str, seed: int,
                 decode_workers: int | None) -> None:
        import torch

        from xlingual.devices import resolve_device
        from xlingual.features.backbones import load_backbone

        self.producer, self.images_dir, self.weights = producer, images_dir, weights
        self.batch_size, self.seed, self.decode_workers = batch_size, seed, decode_workers
        self.device = torch.device(resolve_device(device))
        self.model = load_backbone(producer.backbone, weights, seed).to(self.device)

    def __call__(self, part: FeaturePart):
        from xlingual.features.extract import ExtractionReport, run_backbone

        writer = CacheWriter.open(part.folder, self.producer, self.weights)
        report = ExtractionReport(cache_dir=str(part.folder), backbone=self.producer.backbone, weights=self.weights, crop=self.producer.crop)
        run_backbone(part.todo, self.images_dir, writer, report, self.weights, self.batch_size, self.device, self.seed,
                     len(part.todo) + 1, self.decode_workers, model=self.model)
        return report


@dataclass(frozen=True)
class PartStageFactory:
    producer: CacheProducer
    images_dir: Path
    weights: str
    batch_size: int
    device: str
    seed: int
    decode_workers: int | None

    def __call__(self) -> _PartStage:
        return _PartStage(self.producer, self.images_dir, self.weights, self.batch_size, self.device, self.seed, self.decode_workers)


def plan_parts(count: int, batch_size: int, part_size: int = DEFAULT_PART_SIZE, workers: int = 0) -> list[range]:
    """The parts of ``count`` images to extract: consecutive runs of whole batches, as even as whole batches allow.

    Each part holds at most ``part_size`` images rounded up to whole batches,
    and there are at least ``workers`` parts where there are that many
    batches, so ``--workers N`` means N workers on a small folder too. The
    last batch may be short, as in one process.
    """
    if part_size < 1:
        raise ConfigError(f"--part-size {part_size}: must be at least 1")
    if batch_size < 1:
        raise ConfigError(f"--batch-size {batch_size}: must be at least 1")
    batches = -(-count // batch_size)
    per_part = -(-part_size // batch_size)
    parts = max(-(-batches // per_part), min(workers, batches))
    cuts, first = [], 0
    for number in range(parts):
        taken = batches // parts + (number < batches % parts)
        cuts.append(range(first * batch_size, min(count, (first + taken) * batch_size)))
        first += taken
    return cuts


@dataclass(frozen=True)
class RayParts:
    """The :class:`~xlingual.features.extract.BackboneRunner` of ``--ray``: the images to extract run on Ray workers, in parts (see the module docstring).

    The parts are those of :func:`plan_parts` for ``part_size`` and ``settings.workers``;
    the workers resolve the device, so the driver needs none of its own.
    """

    settings: RaySettings
    part_size: int = DEFAULT_PART_SIZE

    def prepare(self, writer: CacheWriter, device: str) -> None:
        adopt_parts(writer)  # a killed earlier run's finished parts join the cache before it is read for what is left

    def run(self, work: BackboneWork, writer: CacheWriter, report: ExtractionReport) -> None:
        import_ray()
        root = writer.cache.cache_dir / PARTS_DIR
        todo = work.todo
        parts = [FeaturePart(n, todo[cut.start:cut.stop], root / f"part-{n:06d}")
                 for n, cut in enumerate(plan_parts(len(todo), work.batch_size, self.part_size, self.settings.workers))]
        factory = PartStageFactory(writer.cache.producer, Path(work.images_dir).resolve(), work.weights, work.batch_size, work.device,
                                   work.seed, work.decode_workers)
        outcome = run_on_workers(self.settings, factory, [(f"part {p.number} ({p.todo[0][0]} .. {p.todo[-1][0]})", p) for p in parts],
                                 desc="feature parts")
        adopt_parts(writer)
        for key in sorted(outcome.results, key=lambda k: int(k.split()[1])):  # part order: failures listed as one process lists them
            done = outcome.results[key]
            report.device = done.device
            report.extracted += done.extracted
            report.forward_batches += done.forward_batches
            report.failed.update(done.failed)
        if outcome.failures:
            raise XlingualError(failure_summary("feature parts", len(parts), outcome.failures,
                                                "the finished ones are in the cache, run the same command again to extract the rest"))


def extract(images: str | Path | None, data_dir: str | Path, datasets: Sequence[str | Path] | None = None,
            cache_dir: str | Path | None = None, datasets_file: str | Path | None = None, ray: RaySettings | None = None,
            part_size: int = DEFAULT_PART_SIZE, **options: Any) -> ExtractionReport:
    """``xl features extract``: :func:`xlingual.features.extract.extract` in this process, or with ``ray`` on Ray workers in parts of ``part_size`` images.

    Under ``ray`` every dataset of the command shares one Ray runtime, started
    by the first that has images to extract, and a named cluster is reached
    before the cache folder is made (:func:`~xlingual.scale.runtime.ray_session`).
    """
    from xlingual.features.extract import IN_PROCESS, extract as extract_here

    runner = IN_PROCESS if ray is None else RayParts(ray, part_size)
    with ray_session(ray):
        return extract_here(images, data_dir, datasets, cache_dir, datasets_file, runner=runner, **options)
