"""``xl translate``'s entry point, and its ``--ray`` path: a corpus projected in shards by Ray workers, merged into the files one process writes.

:func:`load_and_translate_corpus` takes the translator as a recipe (the
arguments of :func:`~xlingual.translate.factory.load_translator`) so that it
can be loaded where the work runs: in this process
(:func:`~xlingual.projection.corpus.translate_corpus`), or once in every Ray
worker (:func:`translate_corpus_on_ray`).

Each input file is cut into shards of ``shard_size`` samples. A worker loads
the translator once (any backend, plug-ins included) and projects shard after
shard with the same functions as a single process
(:func:`xlingual.projection.corpus.project_part`), each shard with its own
translation cache. When a shard is done the worker writes its results to
``OUTPUT/.cache/shards/NAME.NNNNN.json`` (atomically); once every shard is
there, the driver concatenates them in input order and writes the outputs and
the report with the single-process writers. So:

* the output files and ``preview.html`` are byte-identical to a single-process
  run with the same translator (projection of a sample depends only on the
  sample and the translations of its texts);
* ``report.json`` is identical except the fields that measure the work:
  ``seconds``/``sentences_per_s`` are summed over the shards (worker time), and
  in ``mt`` the counts that the single process de-duplicates across the whole
  corpus (``requested``, ``cache_hits``, ``mt_calls``, ``entity_texts``,
  ``too_long``) are de-duplicated per shard; each shard records the work
  that produced it, so a rerun that redoes nothing rewrites the same report;
* a killed driver or worker loses only unfinished shards: a rerun reuses
  every shard file whose fingerprint (inputs, direction, strategies, model
  and decoding options) matches, and a shard cut short resumes from its cache.

A shard file is data, never code: JSON, checked when read against the
shard's own samples. A file that is not such a record (garbled, truncated,
from another version or planted) is discarded with a warning naming it, and
its shard is projected again; nothing in it is ever executed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from xlingual.data.sample import Sample
from xlingual.lock import locks_output
from xlingual.errors import XlingualError, failure_summary
from xlingual.io import atomic_write_text
from xlingual.projection.corpus import (
    CorpusInput, CorpusResult, ProjectedPart, ProjectionSettings, check_source_language, open_translation, project_part,
    translate_corpus, write_corpus,
)
from xlingual.scale.runtime import RaySettings, import_ray, run_on_workers
from xlingual.translate.base import Translator
from xlingual.translate.cache import TranslationCache
from xlingual.workspace import TranslationFolder

logger = logging.getLogger(__name__)

DEFAULT_SHARD_SIZE = 1024
"""Samples per shard: four projection chunks; a killed worker loses at most one shard's projection (not its cached translations)."""
SHARD_FORMAT = "xlingual-projection-shard/2"
"""Version 1 was a pickle (``.pkl``); such files are never read, their shards are projected again."""


@dataclass(frozen=True)
class ShardJob:
    """One shard of one input file: where its results and its translation cache go, and what must match to reuse them."""

    file: str
    name: str
    samples: list[Sample]
    path: Path
    cache_path: Path | None
    fingerprint: str


@dataclass
class ShardedCorpusResult(CorpusResult):
    shards: int = 0
    reused: int = 0
    workers: int = 0


def plan_shards(inputs: list[CorpusInput], output_dir: Path, settings: ProjectionSettings, recipe: str, shard_size: int) -> list[ShardJob]:
    """Every shard of every input, in input order; ``recipe`` identifies the translator and projection settings."""
    if shard_size < 1:
        raise XlingualError(f"--shard-size {shard_size}: must be at least 1")
    jobs = []
    for item in inputs:
        for number, start in enumerate(range(0, len(item.samples), shard_size)):
            samples = item.samples[start:start + shard_size]
            stem = f"{item.name}.{number:05d}"
            folder = TranslationFolder(output_dir)
            digest = hashlib.sha256(recipe.encode("utf-8"))
            for sample in samples:
                digest.update(json.dumps(asdict(sample), sort_keys=True, ensure_ascii=False).encode("utf-8"))
            jobs.append(ShardJob(item.name, f"{item.name}[{start}:{start + len(samples)}]", samples, folder.shards / f"{stem}.json",
                                 folder.shard_cache(stem) if settings.use_cache else None, digest.hexdigest()))
    return jobs


def recipe_key(loader: dict[str, Any], settings: ProjectionSettings) -> str:
    """What changes a shard's results besides its samples: the translator's recipe and the projection settings."""
    options = loader.get("options")
    return json.dumps({
        "src": settings.src, "tgt": settings.tgt, "strategies": list(settings.strategies), "entity_context": settings.entity_context,
        "model_name": settings.model_name, "model": loader.get("model"), "backend": loader.get("backend"), "plugin": loader.get("plugin"),
        "device": loader.get("device"), "quantization": loader.get("quantization"),
        "options": options.output_key() if options is not None else None,
        # named only when set, so shards written before these options existed stay valid
        **({"tokenizer": settings.tokenizer} if settings.tokenizer else {}),
        **({"tokenizer_from": loader["tokenizer_from"]} if loader.get("tokenizer_from") else {}),
    }, sort_keys=True)


def write_shard(path: Path, fingerprint: str, part: ProjectedPart) -> None:
    """One JSON record, keys in the order written (a sample's ``meta`` keeps its order, so the merged outputs match one process's)."""
    atomic_write_text(path, json.dumps({"format": SHARD_FORMAT, "fingerprint": fingerprint, **part.to_dict()}, ensure_ascii=False))


def read_shard(job: ShardJob) -> ProjectedPart | None:
    """The shard's finished results, or None when it has none for these inputs and settings (not run, stale or damaged).

    Only JSON is read, and only a record of this shard's own samples is
    accepted: anything else costs its shard, which is projected again.
    """
    if not job.path.is_file():
        return None
    try:
        stored = json.loads(job.path.read_text(encoding="utf-8"))
        if not isinstance(stored, dict) or stored.get("format") != SHARD_FORMAT:
            raise ValueError(f"not a {SHARD_FORMAT} record")
        if stored.get("fingerprint") != job.fingerprint:
            return None  # stale: other inputs or settings
        part = ProjectedPart.from_dict(stored)
        if [r.source for r in part.results] != job.samples:
            raise ValueError("its results are not those of the shard's samples")
    except (OSError, ValueError, TypeError, KeyError) as err:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        logger.warning("%s: unusable shard file (%s); projecting it again", job.path, str(err)[:200])
        return None
    return part


class _ShardStage:
    """A worker's stage: one loaded translator, projecting shard after shard."""

    def __init__(self, translator: Translator, settings: ProjectionSettings) -> None:
        self.translator = translator
        self.settings = settings

    def __call__(self, job: ShardJob) -> int:
        cached, projector = open_translation(self.translator, self.settings, job.cache_path)
        try:
            part = project_part(job.name, job.samples, cached, projector, self.settings)
        finally:
            if cached.cache is not None:
                cached.cache.close()
        write_shard(job.path, job.fingerprint, part)
        return len(part.results)


@dataclass(frozen=True)
class ShardProjectorFactory:
    """Sent to every worker: loads the translator there, once (``loader`` holds :func:`load_translator`'s arguments)."""

    loader: dict[str, Any]
    settings: ProjectionSettings

    def __call__(self) -> _ShardStage:
        from xlingual.translate.factory import load_translator

        return _ShardStage(load_translator(**self.loader), self.settings)


def load_and_translate_corpus(inputs: list[CorpusInput], output_dir: str | Path, loader: dict[str, Any], settings: ProjectionSettings,
                              ray: RaySettings | None = None, shard_size: int = DEFAULT_SHARD_SIZE) -> CorpusResult:
    """Load the translator ``loader`` describes and project ``inputs`` into ``output_dir``: here, or with ``ray`` on Ray workers.

    ``loader`` holds the keyword arguments of
    :func:`~xlingual.translate.factory.load_translator`; ``shard_size`` is
    the unit of work under Ray (see the module docstring). Either way the
    files written are those of
    :func:`~xlingual.projection.corpus.translate_corpus`.
    """
    if ray is not None:
        return translate_corpus_on_ray(inputs, output_dir, loader, settings, ray, shard_size)
    from xlingual.translate.factory import load_translator

    return translate_corpus(inputs, output_dir, load_translator(**loader), settings)


@locks_output("output_dir")
def translate_corpus_on_ray(inputs: list[CorpusInput], output_dir: str | Path, loader: dict[str, Any], settings: ProjectionSettings,
                            ray: RaySettings, shard_size: int = DEFAULT_SHARD_SIZE) -> ShardedCorpusResult:
    """:func:`~xlingual.projection.corpus.translate_corpus` on Ray workers; see the module docstring.

    ``loader`` holds the keyword arguments of
    :func:`~xlingual.translate.factory.load_translator`; its ``threads`` become
    the worker's CPUs (at least one), so workers do not fight over cores.
    """
    import_ray()  # before any work: without Ray, --ray is one line saying how to install it
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    check_source_language(inputs, settings.src)
    loader = {**loader, "threads": ray.cpus_per_worker}
    jobs = plan_shards(inputs, output_dir, settings, recipe_key(loader, settings), shard_size)
    done = {job.name: part for job in jobs if (part := read_shard(job)) is not None}
    todo = [(job.name, job) for job in jobs if job.name not in done]
    logger.info("%d shards: %d finished earlier, %d to project", len(jobs), len(done), len(todo))
    outcome = run_on_workers(ray, ShardProjectorFactory(loader, settings), todo, desc="translation shards")
    if outcome.failures:
        raise XlingualError(failure_summary("shards", len(jobs), outcome.failures, "the finished ones are kept, run the same command again to redo the rest"))
    result = merge_shards(inputs, jobs, output_dir, settings, done)
    return ShardedCorpusResult(result.output_dir, result.report, result.files, shards=len(jobs), reused=len(done), workers=outcome.workers)


def merge_shards(inputs: list[CorpusInput], jobs: list[ShardJob], output_dir: Path, settings: ProjectionSettings,
                 loaded: dict[str, ProjectedPart] | None = None) -> CorpusResult:
    """Every shard's results, concatenated per input file in input order, written as one process writes them.

    ``loaded`` holds shards already read by name (those a rerun found finished), so no shard file is read twice.
    """
    parts: dict[str, list[ProjectedPart]] = {item.name: [] for item in inputs}
    for job in jobs:
        part = (loaded or {}).get(job.name) or read_shard(job)
        if part is None:
            raise XlingualError(f"{job.path}: a worker reported this shard finished but its file is missing or stale; is {output_dir} on a file system every node sees?")
        parts[job.file].append(part)
    merged = {name: ProjectedPart.concatenate(file_parts) for name, file_parts in parts.items()}
    absorb_shard_caches(jobs, output_dir, settings)
    return write_corpus(output_dir, settings, merged)


def absorb_shard_caches(jobs: list[ShardJob], output_dir: Path, settings: ProjectionSettings) -> None:
    """Copy the shards' translations into the corpus cache a single-process run reads, so it translates nothing again."""
    shard_caches = [job.cache_path for job in jobs if job.cache_path is not None and job.cache_path.is_file()]
    corpus_cache = settings.cache_file(output_dir)
    if corpus_cache is None or not shard_caches:
        return
    cache = TranslationCache(corpus_cache)
    try:
        added = sum(cache.absorb(path) for path in shard_caches)
    finally:
        cache.close()
    logger.info("%d translations of %d shards added to %s", added, len(shard_caches), cache.path)
