"""Translating whole dataset files into an output folder: ``xl translate``'s library side.

For every input file ``NAME.txt`` the output folder gets

* ``NAME.txt``: the projected samples in the target language's native format
  (CMNER-style for zh, Twitter-style for every other language), ids kept;
* ``NAME.jsonl``: the same samples with provenance in ``meta`` (source id and
  text, MT input and raw output, strategy, entity translations);
* ``NAME.failures.jsonl``: each left-out sample with its reason and attempts;

and ``report.json`` sums them up (per file under ``files``); ``preview.html``
shows it with a sample of posts (see :mod:`xlingual.projection.preview`).
These files are one output set (:mod:`xlingual.output_set`): they are written
together into a temporary folder, ``report.json`` lists the others with their
sizes and digests (``output_files``), and they replace an earlier set so that
a reader sees the old set or the new one, never a mix
(:func:`check_translation`).
Translations go through a persistent cache (``.cache/translations.sqlite`` in the output
folder unless told otherwise), so an interrupted run resumes where it stopped
and produces byte-identical files.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from xlingual.data.datasets import SOURCE_DATASET_BY_LANG, DatasetSpec, get_dataset, load_split
from xlingual.data.formats import detect_format, format_for_lang, read_samples, write_samples
from xlingual.data.images import attach_images
from xlingual.data.labels import LabelSchema
from xlingual.data.files import expand_dataset_paths
from xlingual.data.sample import Sample
from xlingual.errors import ConfigError
from xlingual.io import atomic_write_json, atomic_write_text
from xlingual.lock import locks_output
from xlingual.output_set import MANIFEST_KEY, StagedSet, check_set, describe_files
from xlingual.progress import progress_bar
from xlingual.projection.preview import DEFAULT_PREVIEW_POSTS, write_preview
from xlingual.projection.project import STRATEGIES, Projector, ProjectionResult, project_samples
from xlingual.projection.report import ProjectionReport
from xlingual.projection.tokenization import target_tokenizer
from xlingual.translate.base import Translator
from xlingual.translate.cache import CachedTranslator, TranslationCache
from xlingual.workspace import REPORT_NAME, TRANSLATION_CACHE, TranslationFolder

logger = logging.getLogger(__name__)

CACHE_NAME = TRANSLATION_CACHE
"""The translation cache, relative to the output folder (the workspace's name for it)."""


@dataclass
class ProjectionSettings:
    """How to project: direction, strategies, entity handling, chunking, where the cache lives, the target tokeniser.

    ``tokenizer`` is a plug-in ``MODULE:NAME`` (a callable ``str -> list[str]``)
    for target text; None uses the built-in tokeniser of ``tgt``. A language
    without one, or a plug-in that cannot be loaded, is refused here, before any model loads.
    """

    src: str
    tgt: str
    strategies: Sequence[str] = STRATEGIES
    entity_context: bool = False
    chunk_size: int = 256
    cache_path: Path | None = None  # None: <output>/.cache/translations.sqlite
    use_cache: bool = True
    model_name: str | None = None
    preview_posts: int = DEFAULT_PREVIEW_POSTS  # posts shown in preview.html (and as many left-out ones)
    tokenizer: str | None = None  # MODULE:NAME of the target tokeniser (None: built-in)
    label_schema: LabelSchema | None = None
    """How the translated text files spell labels; None: the target format's own (``DatasetSpec.translation_schema``)."""

    def __post_init__(self) -> None:
        target_tokenizer(self.tgt, self.tokenizer)

    def for_dataset(self, spec: DatasetSpec) -> ProjectionSettings:
        """These settings for translating the splits of ``spec``: the translated files spell labels as its translation does."""
        return replace(self, label_schema=spec.translation_schema)

    def cache_file(self, output_dir: Path) -> Path | None:
        """The corpus's translation cache (None: no cache, no resume)."""
        return (self.cache_path or TranslationFolder(output_dir).cache) if self.use_cache else None


@dataclass
class CorpusInput:
    """One file to translate: the name its outputs take and its samples."""

    name: str
    samples: list[Sample]


@dataclass
class CorpusResult:
    output_dir: Path
    report: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)


def write_outputs(output_dir: Path, name: str, results: list[ProjectionResult], settings: ProjectionSettings) -> None:
    """Write ``name``.txt / .jsonl / .failures.jsonl for one input file."""
    projected = [r.sample for r in results if r.sample is not None]
    folder = TranslationFolder(output_dir)
    write_samples(folder.output(name), projected, format_for_lang(settings.tgt), schema=settings.label_schema)
    write_samples(folder.output(name, ".jsonl"), projected, "jsonl")
    failures = "".join(json.dumps(r.failure_record(), ensure_ascii=False) + "\n" for r in results if not r.ok)
    atomic_write_text(folder.failures(name), failures)


@dataclass
class ProjectedPart:
    """The projection results of one input file (or one shard of it) and the MT work that produced them.

    ``mt`` holds the translation cache's counters and the projector's per-pass
    counts; a file projected in several shards is the concatenation of its
    shards, their counts and seconds summed (see :mod:`xlingual.scale.translate`).
    """

    results: list[ProjectionResult]
    mt: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @classmethod
    def concatenate(cls, parts: Sequence["ProjectedPart"]) -> "ProjectedPart":
        mt: Counter = Counter()
        for part in parts:
            mt.update(part.mt)
        return cls([r for part in parts for r in part.results], dict(mt), sum(part.seconds for part in parts))

    def to_dict(self) -> dict[str, Any]:
        return {"results": [r.to_dict() for r in self.results], "mt": dict(self.mt), "seconds": self.seconds}

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> "ProjectedPart":
        """The inverse of :meth:`to_dict`, for a part read back from a file: every field is checked (ValueError)."""
        mt, seconds, results = obj.get("mt"), obj.get("seconds"), obj.get("results")
        if not isinstance(mt, dict) or not all(isinstance(k, str) and type(v) is int for k, v in mt.items()):
            raise ValueError("'mt' is not a mapping of counts")
        if type(seconds) not in (int, float) or not isinstance(results, list):
            raise ValueError("'seconds' or 'results' is missing")
        return cls([ProjectionResult.from_dict(r) for r in results], mt, float(seconds))

    def report(self) -> ProjectionReport:
        report = ProjectionReport.from_results(self.results)
        report.seconds = self.seconds
        report.mt.update(self.mt)
        return report


def check_source_language(inputs: Sequence[CorpusInput], src: str) -> None:
    for item in inputs:
        wrong = next((s for s in item.samples if s.lang != src), None)
        if wrong is not None:
            raise ConfigError(f"{item.name}: sample '{wrong.id}' is in '{wrong.lang}' but --src is '{src}'")


def open_translation(translator: Translator, settings: ProjectionSettings, cache_path: Path | None) -> tuple[CachedTranslator, Projector]:
    """The cached translator (``cache_path`` None: no cache) and the projector one corpus (or shard) is projected with."""
    cached = CachedTranslator(translator, TranslationCache(cache_path) if cache_path is not None else None)
    projector = Projector(cached, settings.src, settings.tgt, settings.strategies, settings.entity_context, settings.model_name,
                          target_tokenizer(settings.tgt, settings.tokenizer))
    return cached, projector


def project_part(name: str, samples: list[Sample], cached: CachedTranslator, projector: Projector, settings: ProjectionSettings) -> ProjectedPart:
    """Project ``samples`` (one file, or a shard of one) and count the MT work it took."""
    before_mt, before_proj = cached.stats.to_dict(), projector.stats.to_dict()
    started = time.perf_counter()
    with progress_bar(total=len(samples), desc=f"{name} {settings.src}->{settings.tgt}", unit="sent") as bar:
        results = project_samples(samples, cached, settings.src, settings.tgt, chunk_size=settings.chunk_size,
                                  on_progress=bar.update, projector=projector)
    seconds = time.perf_counter() - started
    after_mt, after_proj = cached.stats.to_dict(), projector.stats.to_dict()
    mt = {k: after_mt[k] - before_mt[k] for k in after_mt}
    mt.update({k: after_proj[k] - before_proj[k] for k in after_proj})
    return ProjectedPart(results, mt, seconds)


@locks_output("output_dir")
def translate_corpus(inputs: list[CorpusInput], output_dir: str | Path, translator: Translator, settings: ProjectionSettings) -> CorpusResult:
    """Project every input into ``output_dir`` (see the module docstring for what is written), holding the folder's lock."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    check_source_language(inputs, settings.src)
    cached, projector = open_translation(translator, settings, settings.cache_file(output_dir))
    parts: dict[str, ProjectedPart] = {}
    try:
        for item in inputs:
            parts[item.name] = project_part(item.name, item.samples, cached, projector, settings)
    finally:
        if cached.cache is not None:
            cached.cache.close()
    return write_corpus(output_dir, settings, parts)


@locks_output("output_dir")
def write_corpus(output_dir: Path, settings: ProjectionSettings, parts: dict[str, ProjectedPart]) -> CorpusResult:
    """Write the whole output set of ``parts`` (every file's outputs, ``report.json``, ``preview.html``) into ``output_dir``.

    The set is written into a temporary folder first and moved in with
    ``report.json`` as its manifest (:class:`~xlingual.output_set.StagedSet`),
    so a full disk or an interrupt leaves the earlier set as it was.
    """
    with StagedSet(output_dir) as staged:
        assert staged.folder is not None
        for name, part in parts.items():
            write_outputs(staged.folder, name, part.results, settings)
        report = write_corpus_report(staged.folder, settings, parts)
        staged.commit(REPORT_NAME)
    files = {name: TranslationFolder(output_dir).output(name) for name in parts}
    return CorpusResult(output_dir, report, files)


def write_corpus_report(output_dir: Path, settings: ProjectionSettings, parts: dict[str, ProjectedPart]) -> dict[str, Any]:
    """Write ``preview.html`` and then ``report.json`` beside the projected files (each already written by :func:`write_outputs`).

    ``report.json`` comes last: it lists every other file of the folder with
    its size and digest (``output_files``), the manifest readers check.
    """
    total = ProjectionReport()
    per_file: dict[str, Any] = {}
    for name, part in parts.items():
        report = part.report()
        per_file[name] = report.to_dict()
        total.add(report)
        logger.info("%s: %d/%d samples projected", name, report.samples_out, report.samples_in)
    report = {
        **total.to_dict(), "files": per_file, "src": settings.src, "tgt": settings.tgt, "model": settings.model_name,
        "strategies": list(settings.strategies), "entity_context": settings.entity_context,
        "output_format": format_for_lang(settings.tgt),
        **({"tokenizer": settings.tokenizer} if settings.tokenizer else {}),
    }
    write_preview(output_dir, report, {name: part.results for name, part in parts.items()}, settings.preview_posts)
    report[MANIFEST_KEY] = describe_files(output_dir, (p.name for p in output_dir.iterdir() if p.is_file() and p.name != REPORT_NAME))
    atomic_write_json(output_dir / REPORT_NAME, report)
    return report


def check_translation(folder: Path, names: Sequence[str] | None = None, digests: bool = True, rebuild: str = "") -> None:
    """Refuse files of the translation ``folder`` that are not those its ``report.json`` lists (a set written in part, or edited).

    ``names``: the files about to be read (None: the whole set). A folder
    whose report predates the list (or that has no report) is taken as it is.
    """
    check_set(folder, TranslationFolder(folder).report, names, digests, rebuild or "run 'xl translate' into it again")


def read_input_files(paths: Sequence[str | Path], input_format: str | None = None, images_dir: str | Path | None = None,
                     lang: str | None = None) -> list[CorpusInput]:
    """Inputs from dataset files (format guessed unless given); images attached from ``images_dir`` when given.

    A text format fixes only the kind of script (CMNER: Chinese; Twitter: a
    language written with spaces), so with ``lang`` (``--src``) the posts of a
    file in that language's format are taken to be in ``lang`` (a Twitter-format
    file read for ``--src de`` is German); a file of the other format keeps its
    language, and :func:`check_source_language` refuses it.
    """
    inputs = []
    for path in expand_dataset_paths(paths):
        file_format = input_format or detect_format(path)
        samples = read_samples(path, file_format)
        if lang is not None and file_format != "jsonl" and file_format == format_for_lang(lang):
            _set_language(samples, lang)
        if images_dir is not None:
            attach_images(samples, images_dir)
        inputs.append(CorpusInput(path.stem, samples))
    names = [i.name for i in inputs]
    if len(set(names)) != len(names):
        raise ConfigError(f"--input: two files share the name stem '{next(n for n in names if names.count(n) > 1)}'; outputs would collide")
    return inputs


def _set_language(samples: list[Sample], lang: str) -> None:
    for sample in samples:
        sample.lang = lang


def source_dataset(dataset: str | None, src: str | None, data_dir: str | Path | None = None,
                   datasets_file: str | Path | None = None) -> tuple[str, str]:
    """The dataset ``xl translate`` reads and its language, from ``--dataset`` and ``--src``.

    With ``dataset``, ``src`` defaults to its language and, when given, must be
    it. Without, ``src`` names the CMNER paper's dataset of that language
    (en: Twitter2015, zh: CMNER; :data:`~xlingual.data.datasets.SOURCE_DATASET_BY_LANG`).
    """
    if dataset is None:
        if src is None:
            raise ConfigError("--dataset NAME or --src LANG: say what to translate (e.g. --dataset twitter2017 --tgt de)")
        if src not in SOURCE_DATASET_BY_LANG:
            known = ", ".join(f"{lang}: {name}" for lang, name in SOURCE_DATASET_BY_LANG.items())
            raise ConfigError(f"--src {src}: no default dataset in '{src}' ({known}); name the dataset with --dataset NAME")
        return SOURCE_DATASET_BY_LANG[src], src
    spec = get_dataset(dataset, data_dir, datasets_file)
    if src is not None and src != spec.lang:
        raise ConfigError(f"--src {src}: dataset {spec.name} is in '{spec.lang}'; leave --src out or pass --src {spec.lang}")
    return spec.name, spec.lang


def read_source_dataset(data_dir: str | Path, dataset: str, datasets_file: str | Path | None = None) -> list[CorpusInput]:
    """All splits of ``dataset`` in ``data_dir``, named after their files (Twitter's ``valid``, CMNER's ``dev``), in its language."""
    spec = get_dataset(dataset, data_dir, datasets_file)
    inputs = [CorpusInput(spec.split_name(split), load_split(data_dir, spec.name, split, datasets_file=datasets_file))
              for split in spec.split_files]
    for item in inputs:
        _set_language(item.samples, spec.lang)
    return inputs
