"""Finding everything a run reads: datasets, translated corpora, word vectors, image features.

A run names only a direction, a setting and a data directory; this module
turns that into the samples of each training stage and the visual/word-vector
inputs, or fails with one line that says which command builds what is
missing (``xl translate``, ``xl features extract``, ``xl embeddings``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from xlingual.data.datasets import (
    embeddings_dir,
    features_dir,
    find_translated_dirs,
    get_dataset,
    load_split,
    translated_dir,
)
from xlingual.data.formats import format_for_lang, read_samples
from xlingual.data.images import attach_images
from xlingual.data.sample import Sample
from xlingual.embeddings.paths import find_aligned_pair
from xlingual.embeddings.vectors import merge_vector_files
from xlingual.errors import ConfigError
from xlingual.models.base import VisualLookup
from xlingual.models.visual_inputs import build_visual_inputs
from xlingual.train.config import TrainConfig

logger = logging.getLogger(__name__)


@dataclass
class StageData:
    """The train and dev samples of one training stage."""

    name: str  # "pretrain" or "target"
    train: list[Sample]
    dev: list[Sample]
    description: str = ""


@dataclass
class RunInputs:
    """Everything a run trains and evaluates on."""

    stages: list[StageData]
    test: list[Sample]
    visual: VisualLookup | None = None
    model_config: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def target(self) -> StageData:
        return self.stages[-1]

    def vocab_samples(self) -> list[Sample]:
        """Every sample the run will ever see (all stages, all splits): ACN's vocabulary covers them."""
        seen: list[Sample] = []
        for stage in self.stages:
            seen.extend(stage.train)
            seen.extend(stage.dev)
        seen.extend(self.test)
        return seen


def _limit(samples: list[Sample], max_samples: int | None) -> list[Sample]:
    return samples[:max_samples] if max_samples else samples


def locate_translation(config: TrainConfig) -> Path:
    """The folder holding the source dataset translated into the target language."""
    data_dir = config.data.data_dir
    src, tgt, dataset = config.source_lang, config.target_lang, config.source_dataset
    build_hint = f"xl translate --src {src} --tgt {tgt} --data-dir {data_dir}"
    if config.data.translation_model:
        candidate = Path(config.data.translation_model)
        folder = candidate if candidate.is_dir() and (candidate / get_dataset(dataset).split_files["train"]).is_file() else translated_dir(data_dir, dataset, src, tgt, config.data.translation_model)
        if not folder.is_dir():
            raise ConfigError(f"data.translation_model: no translation at {folder} (build it with '{build_hint} --model {config.data.translation_model}')")
        return folder
    found = find_translated_dirs(data_dir, dataset, src, tgt)
    if not found:
        raise ConfigError(f"setting '{config.setting}' needs {dataset} translated {src}->{tgt}, none under {Path(data_dir) / 'translated'} (build it with '{build_hint}' or pass --build-missing)")
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise ConfigError(f"several translations of {dataset} {src}->{tgt} ({names}): choose one with --set data.translation_model=<model>")
    return found[0]


def build_translation(config: TrainConfig) -> Path:
    """Translate and project the source dataset as ``xl translate`` does (default MT model unless configured)."""
    from xlingual.projection.corpus import ProjectionSettings, default_output_dir, read_source_dataset, translate_corpus
    from xlingual.translate import default_model, load_translator

    src, tgt, data_dir = config.source_lang, config.target_lang, config.data.data_dir
    model = config.data.translation_model or default_model(src, tgt)
    out = default_output_dir(data_dir, src, tgt, model)
    logger.info("building the %s->%s translation of %s with %s into %s", src, tgt, config.source_dataset, model, out)
    translator = load_translator(src, tgt, model, work_dir=out / ".cache")
    translate_corpus(read_source_dataset(data_dir, src), out, translator, ProjectionSettings(src, tgt, model_name=model))
    return out


def read_translated_split(folder: Path, config: TrainConfig, split: str) -> list[Sample]:
    spec = get_dataset(config.source_dataset)
    path = folder / spec.split_files[split]
    if not path.is_file():
        raise ConfigError(f"{path}: translated split missing (re-run 'xl translate --src {config.source_lang} --tgt {config.target_lang}')")
    if path.stat().st_size == 0:  # projection kept no post of this split (see the folder's report.json)
        logger.warning("%s: empty (no post survived projection; see %s)", path, folder / "report.json")
        return []
    samples = read_samples(path, format_for_lang(config.target_lang))
    source_images = spec.images_dir(config.data.data_dir)
    if source_images.is_dir():
        attach_images(samples, source_images)  # translated samples keep meta["source_id"]
    return samples


def pretrain_stage(config: TrainConfig) -> StageData | None:
    """Source-side data of the first stage (SRC, TGT or SRC&TGT); None for tgt_only."""
    if config.setting == "tgt_only":
        return None
    limit = config.data.max_samples
    train: list[Sample] = []
    dev: list[Sample] = []
    parts = []
    if config.setting in ("src", "src_tgt"):
        train += _limit(load_split(config.data.data_dir, config.source_dataset, "train"), limit)
        dev += _limit(load_split(config.data.data_dir, config.source_dataset, "dev"), limit)
        parts.append(f"{config.source_dataset} ({config.source_lang})")
    if config.setting in ("tgt", "src_tgt"):
        try:
            folder = locate_translation(config)
        except ConfigError:
            if not config.data.build_missing:
                raise
            folder = build_translation(config)
        train += _limit(read_translated_split(folder, config, "train"), limit)
        dev += _limit(read_translated_split(folder, config, "dev"), limit)
        parts.append(f"{folder.name} ({config.target_lang})")
    if not train or not dev:
        raise ConfigError(f"setting '{config.setting}': the pre-training data ({' + '.join(parts)}) has no {'train' if not train else 'dev'} posts; check the translation's report.json")
    return StageData("pretrain", train, dev, " + ".join(parts))


def target_data(config: TrainConfig) -> tuple[StageData, list[Sample]]:
    """The target dataset's splits; dev and test keep their labels as written, since they are scored.

    Training labels have orphan ``I-`` tags repaired; scoring against
    repaired gold would make strict IOB2 equal to conlleval by construction.
    """
    limit = config.data.max_samples
    data_dir, dataset = config.data.data_dir, config.target_dataset
    train = _limit(load_split(data_dir, dataset, "train"), limit)
    dev = _limit(load_split(data_dir, dataset, "dev", bio="keep"), limit)
    test = _limit(load_split(data_dir, dataset, "test", bio="keep"), limit)
    return StageData("target", train, dev, f"{dataset} ({config.target_lang})"), test


def aligned_vector_files(config: TrainConfig) -> list[Path]:
    """The aligned ``.vec`` files of the run's languages (target last, so it wins on shared words)."""
    src, tgt = config.source_lang, config.target_lang
    by_lang = find_aligned_pair(config.data.data_dir, src, tgt)
    if by_lang is None:
        raise ConfigError(
            f"model.word_vectors=auto: no aligned vectors under {embeddings_dir(config.data.data_dir)} (aligned.{src}-{tgt}/); "
            "build them with 'xl embeddings' (see docs/embeddings.md), pass --set model.word_vectors=PATH.vec, "
            "or --set model.word_vectors=null for random embeddings"
        )
    wanted = [by_lang[tgt]] if config.setting == "tgt_only" else [by_lang[src], by_lang[tgt]]
    missing = [p for p in wanted if not p.is_file()]
    if missing:
        raise ConfigError(f"{missing[0]}: aligned vectors missing (re-run 'xl embeddings align')")
    return wanted


def resolve_word_vectors(config: TrainConfig, run_dir: Path) -> str | None:
    value = config.model.get("word_vectors")
    if value in (None, "", "none", "null"):
        return None
    if value != "auto":
        if not Path(value).is_file():
            raise ConfigError(f"model.word_vectors: {value} does not exist")
        return str(value)
    files = aligned_vector_files(config)
    if len(files) == 1:
        return str(files[0])
    return str(merge_vector_files(files, run_dir / "word_vectors.vec"))


def build_visual(config: TrainConfig, samples: list[Sample]) -> VisualLookup | None:
    """The image-feature lookup of the run, or None for text-only runs (``images: none``).

    The samples carry their images already (``load_split`` and the translated
    splits attach them from the datasets' image folders).
    """
    if config.images == "none":
        return None
    folder = features_dir(config.data.data_dir, config.feature_backbone)
    if not folder.exists():
        if not config.data.build_missing:
            raise ConfigError(
                f"images={config.images} needs cached {config.feature_backbone} features at {folder}; build them with "
                f"'xl features extract --data-dir {config.data.data_dir} --backbone {config.feature_backbone}', "
                "pass --build-missing, or --set images=none for text only"
            )
        extract_missing_features(config, samples, folder)
    return build_visual_inputs(samples, folder, mode=config.images, seed=config.seed).lookup


def extract_missing_features(config: TrainConfig, samples: list[Sample], folder: Path) -> None:
    from xlingual.features import extract_features

    for dataset in {config.source_dataset, config.target_dataset}:
        images_dir = get_dataset(dataset).images_dir(config.data.data_dir)
        if not images_dir.is_dir():
            continue
        names = sorted({name for s in samples for name in s.images if (images_dir / name).is_file()})
        if names:
            logger.info("extracting %s features of %d images from %s", config.feature_backbone, len(names), images_dir)
            extract_features(images_dir, names, folder, config.feature_backbone, weights="default")


def resolve_inputs(config: TrainConfig, run_dir: Path) -> RunInputs:
    """Read every split the run needs and prepare its visual and word-vector inputs."""
    stages = []
    pre = pretrain_stage(config)
    if pre is not None:
        stages.append(pre)
    target, test = target_data(config)
    stages.append(target)
    inputs = RunInputs(stages=stages, test=test, model_config=dict(config.model))
    inputs.model_config["use_image"] = config.images != "none" and bool(config.model.get("use_image", True))
    if config.model_type == "acn" and "word_vectors" in config.model:
        inputs.model_config["word_vectors"] = resolve_word_vectors(config, run_dir)
    if inputs.model_config["use_image"]:
        inputs.visual = build_visual(config, inputs.vocab_samples())
    for stage in stages:
        logger.info("stage %s: %d train / %d dev samples from %s", stage.name, len(stage.train), len(stage.dev), stage.description)
    return inputs
