"""Everything a run reads: the samples of each training stage, the test split, and the model's inputs.

A run names only a direction, a setting and a data directory; this module
turns that into the samples of each training stage, and asks
:mod:`xlingual.stage_inputs` for the translation, the word vectors and the
visual inputs (which fails with one line saying which command builds what is
missing: ``xl translate``, ``xl features extract``, ``xl embeddings``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from xlingual.data.datasets import load_split
from xlingual.data.sample import Sample
from xlingual.errors import ConfigError
from xlingual.models.base import VisualLookup
from xlingual.stage_inputs import ensure_features, ensure_translation, ensure_word_vectors, read_translated_split, visual_inputs
from xlingual.train.config import TrainConfig
from xlingual.workspace import DataDir, RunFolder

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
    """Everything a run trains and evaluates on.

    ``test`` is the target dataset's test split, the one the CMNER paper's
    tables score; ``other_tests`` holds the other language's test split by
    dataset name, so every run is also scored there (the multilingual table
    reads both numbers from the same run). They stay out of
    :meth:`vocab_samples`: a run's vocabulary, hence its trained weights, must
    not depend on whether the other test set happens to be in the data directory.
    """

    stages: list[StageData]
    test: list[Sample]
    visual: VisualLookup | None = None
    model_config: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    other_tests: dict[str, list[Sample]] = field(default_factory=dict)

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
    """The folder holding the run's source dataset translated into the target language (built when ``build_missing``)."""
    return ensure_translation(config.data.data_dir, config.source_lang, config.target_lang, config.data.translation_model,
                              config.data.build_missing, needed_by=f"setting '{config.setting}'")


JOINT_SETTINGS: tuple[str, ...] = ("joint", "joint_tgt")
"""Multilingual settings: one stage on the source and the target dataset together (joint_tgt: plus the translation)."""


def translated_splits(config: TrainConfig) -> tuple[list[Sample], list[Sample], str]:
    """Train and dev posts of the source dataset translated into the target language, and where they came from."""
    folder = locate_translation(config)
    data_dir, src, tgt, limit = config.data.data_dir, config.source_lang, config.target_lang, config.data.max_samples
    train = _limit(read_translated_split(folder, data_dir, src, tgt, "train"), limit)
    dev = _limit(read_translated_split(folder, data_dir, src, tgt, "dev"), limit)
    return train, dev, f"{folder.name} ({tgt})"


def pretrain_stage(config: TrainConfig) -> StageData | None:
    """Source-side data of the first stage (SRC, TGT or SRC&TGT); None for tgt_only and the joint settings (one stage)."""
    if config.setting == "tgt_only" or config.setting in JOINT_SETTINGS:
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
        translated_train, translated_dev, origin = translated_splits(config)
        train += translated_train
        dev += translated_dev
        parts.append(origin)
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
    parts = [f"{dataset} ({config.target_lang})"]
    if config.setting in JOINT_SETTINGS:  # one model for both languages: selected on the union of both dev sets
        train += _limit(load_split(data_dir, config.source_dataset, "train"), limit)
        dev += _limit(load_split(data_dir, config.source_dataset, "dev", bio="keep"), limit)
        parts.append(f"{config.source_dataset} ({config.source_lang})")
        if config.setting == "joint_tgt":
            translated_train, _, origin = translated_splits(config)
            train += translated_train
            parts.append(origin)
    return StageData("target", train, dev, " + ".join(parts)), test


def other_test_sets(config: TrainConfig) -> dict[str, list[Sample]]:
    """The source language's test split (labels as written), when the data directory has it."""
    dataset = config.source_dataset
    if not DataDir(config.data.data_dir).split_file(dataset, "test").is_file():
        logger.info("%s test split not found: the run is scored on %s only", dataset, config.target_dataset)
        return {}
    return {dataset: _limit(load_split(config.data.data_dir, dataset, "test", bio="keep"), config.data.max_samples)}


def build_visual(config: TrainConfig, samples: list[Sample]) -> VisualLookup | None:
    """The image-feature lookup of the run, or None for text-only runs (``images: none``).

    The samples carry their images already (``load_split`` and the translated
    splits attach them from the datasets' image folders).
    """
    if config.images == "none":
        return None
    from xlingual.models import model_class

    folders = [ensure_features(config.data.data_dir, backbone, [config.source_dataset, config.target_dataset], config.data.build_missing,
                               config.images) for backbone in config.feature_backbones]
    return visual_inputs(samples, folders, mode=config.images, seed=config.seed, combine=model_class(config.model_type).visual_lookup_from).lookup


def resolve_inputs(config: TrainConfig, run_dir: Path) -> RunInputs:
    """Read every split the run needs and prepare its visual and word-vector inputs."""
    stages = []
    pre = pretrain_stage(config)
    if pre is not None:
        stages.append(pre)
    target, test = target_data(config)
    stages.append(target)
    inputs = RunInputs(stages=stages, test=test, model_config=dict(config.model), other_tests=other_test_sets(config))
    inputs.model_config["use_image"] = config.images != "none" and bool(config.model.get("use_image", True))
    if config.model_type == "acn" and "word_vectors" in config.model:
        inputs.model_config["word_vectors"] = ensure_word_vectors(
            config.model.get("word_vectors"), config.data.data_dir, config.source_lang, config.target_lang,
            target_only=config.setting == "tgt_only", merged_out=RunFolder(run_dir).word_vectors,
        )
    if inputs.model_config["use_image"]:
        inputs.visual = build_visual(config, inputs.vocab_samples())
    for stage in stages:
        logger.info("stage %s: %d train / %d dev samples from %s", stage.name, len(stage.train), len(stage.dev), stage.description)
    return inputs
