"""Everything a run reads: the samples of each training stage, the test split, and the model's inputs.

A run names its datasets (or a direction, the paper's shorthand for them), a
setting and a data directory; this module reads the stages the setting
declares (:mod:`xlingual.train.config.stages`) into samples, and asks
:mod:`xlingual.stage_inputs` for the translation, the word vectors and the
visual inputs (which fails with one line saying which command builds what is
missing: ``xl translate``, ``xl features extract``, ``xl embeddings``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from xlingual.data.datasets import load_split
from xlingual.data.sample import Sample
from xlingual.errors import ConfigError
from xlingual.stage_inputs import (Missing, ensure_features, ensure_translation, ensure_word_vectors, locate_features, locate_pretrained,
                                   locate_split, locate_translated_split, locate_translation, locate_word_vectors, missing_summary,
                                   read_translated_split, visual_inputs)
from xlingual.train.config import TrainConfig
from xlingual.train.config.schema import dataset_lang
from xlingual.train.config.stages import SettingPlan, StagePlan, setting_plan
from xlingual.workspace import REPORT_NAME, RunFolder

if TYPE_CHECKING:
    from xlingual.models.base import VisualLookup

logger = logging.getLogger(__name__)

T = TypeVar("T")


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
    tables score; ``other_tests`` holds each source dataset's test split by
    dataset name, so every run is also scored there (the multilingual table
    reads every number from the same run). They stay out of
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


def translated_datasets(config: TrainConfig) -> tuple[str, ...]:
    """The source datasets a ``translation`` part reads translated into the target's language (each in another language)."""
    for dataset in config.source_datasets:
        if dataset_lang(dataset, config.data) == config.target_lang:
            raise ConfigError(f"setting '{config.setting}' trains on a translation, but {dataset} is already in the target's "
                              f"language ({config.target_lang})")
    return config.source_datasets


def _needed_by(config: TrainConfig) -> str:
    return f"setting '{config.setting}'"


def build_translation(config: TrainConfig, dataset: str) -> Path:
    """The folder holding ``dataset`` translated into the target language (built when ``build_missing``)."""
    return ensure_translation(config.data.layout, dataset, config.target_lang, config.data.translation_model,
                              config.data.build_missing, needed_by=_needed_by(config))


@dataclass
class Part:
    """One dataset's samples of one split, and how the stage summary names it (``twitter2015 (en)``)."""

    samples: list[Sample]
    description: str


def read_split(config: TrainConfig, dataset: str, split: str, bio: str) -> list[Sample]:
    """One split of one of the run's datasets, found in the run's data directory (declared datasets included)."""
    layout = config.data.layout
    return load_split(layout.root, dataset, split, bio=bio, datasets_file=layout.datasets_file)


def _each_translation(config: TrainConfig, find: Callable[[str], T]) -> dict[str, T]:
    """``find(dataset)`` of each source dataset the run reads translated; none when its setting has no ``translation`` part."""
    if "translation" not in setting_plan(config.setting).parts:
        return {}
    return {dataset: find(dataset) for dataset in translated_datasets(config)}


def run_translations(config: TrainConfig) -> dict[str, Path]:
    """Each source dataset's translation folder the run reads, found (or built) and size-checked once for the whole run.

    Every stage and split of the run then reads its files from these folders,
    each file checked against its set's report as it is read.
    """
    return _each_translation(config, lambda dataset: build_translation(config, dataset))


def part_splits(config: TrainConfig, part: str, split: str, translations: Mapping[str, Path], bio: str = "repair") -> list[Part]:
    """The samples one declared part contributes to ``split``: one entry per dataset it stands for.

    ``source`` is every source dataset, ``target`` the target dataset and
    ``translation`` every source dataset translated into the target's
    language (:mod:`xlingual.train.config.stages`), read from the run's
    ``translations`` (:func:`run_translations`).
    """
    limit = config.data.max_samples
    if part == "target":
        dataset = config.target_dataset
        return [Part(_limit(read_split(config, dataset, split, bio), limit), f"{dataset} ({config.target_lang})")]
    if part == "source":
        return [Part(_limit(read_split(config, dataset, split, bio), limit), f"{dataset} ({dataset_lang(dataset, config.data)})")
                for dataset in config.source_datasets]
    parts = []
    for dataset in translated_datasets(config):
        folder = translations[dataset]
        samples = _limit(read_translated_split(folder, config.data.layout, dataset, config.target_lang, split), limit)
        parts.append(Part(samples, f"{folder.name} ({config.target_lang})"))
    return parts


def stage_data(config: TrainConfig, plan: StagePlan, translations: Mapping[str, Path]) -> StageData:
    """One declared stage's train and dev samples, read in the order the setting lists its parts.

    The target stage reads its dev sets' labels as written, since they select
    the run's model; pre-training dev sets, like every training set, have
    orphan ``I-`` tags repaired.
    """
    dev_bio = "keep" if plan.name == "target" else "repair"
    train = [part for name in plan.train for part in part_splits(config, name, "train", translations)]
    dev = [part for name in plan.dev for part in part_splits(config, name, "dev", translations, dev_bio)]
    descriptions = list(dict.fromkeys(part.description for part in train + dev))
    data = StageData(plan.name, [s for part in train for s in part.samples], [s for part in dev for s in part.samples],
                     " + ".join(descriptions))
    if not data.train or not data.dev:
        stage = "pre-training" if plan.name == "pretrain" else "target stage's"
        hint = f"; check the translation's {REPORT_NAME}" if "translation" in plan.parts else ""
        raise ConfigError(f"setting '{config.setting}': the {stage} data ({data.description}) has no "
                          f"{'train' if not data.train else 'dev'} posts{hint}")
    return data


def test_sets(config: TrainConfig) -> tuple[list[Sample], dict[str, list[Sample]]]:
    """The target dataset's test split, and every source dataset's that the data directory has (labels as written)."""
    limit = config.data.max_samples
    test = _limit(read_split(config, config.target_dataset, "test", "keep"), limit)
    others = {}
    for dataset in config.source_datasets:
        if not config.data.layout.split_file(dataset, "test").is_file():
            logger.info("%s test split not found: the run is not scored there", dataset)
            continue
        others[dataset] = _limit(read_split(config, dataset, "test", "keep"), limit)
    return test, others


def build_visual(config: TrainConfig, samples: list[Sample]) -> VisualLookup | None:
    """The image-feature lookup of the run, or None for text-only runs (``images: none``).

    The samples carry their images already (``load_split`` and the translated
    splits attach them from the datasets' image folders).
    """
    if config.images == "none":
        return None
    from xlingual.models import model_class

    datasets = [*config.source_datasets, config.target_dataset]
    folders = [ensure_features(config.data.layout, backbone, datasets, config.data.build_missing, config.images)
               for backbone in cached_backbones(config)]
    layout = config.data.layout
    image_folders = [layout.images_dir(name) for name in dict.fromkeys(datasets) if layout.images_dir(name).is_dir()]
    combine = model_class(config.model_type).visual_combiner(config.model_options, image_folders)
    return visual_inputs(samples, folders, mode=config.images, seed=config.seed, combine=combine).lookup


def _model_settings(config: TrainConfig) -> Any:
    """The run's model options as its model's config class reads them; None for a model type the package does not know."""
    from xlingual.models import MODEL_CONFIGS, model_config_class

    if config.model_type not in MODEL_CONFIGS:
        return None
    return model_config_class(config.model_type).from_dict(config.model_options)


def cached_backbones(config: TrainConfig, settings: Any = None) -> tuple[str, ...]:
    """The feature caches the run reads: its ``backbone`` list less any the model computes itself (a fine-tuned ViT).

    ``settings``: the model options already read (:func:`_model_settings`), not read again."""
    settings = settings if settings is not None else _model_settings(config)
    return config.feature_backbones if settings is None else settings.cached_backbones(config.feature_backbones)


def _word_vector_request(config: TrainConfig, plan: SettingPlan) -> tuple[str | None, str, bool] | None:
    """ACN's ``word_vectors`` value, the language whose vectors pair with the target's, and whether only the target's are read;
    None for a run that reads no word vectors."""
    if config.model_type != "acn" or "word_vectors" not in config.model:
        return None
    value = config.model.get("word_vectors")
    src = word_vector_source_lang(config) if value == "auto" else config.target_lang  # only auto reads a pair
    return value, src, plan.parts == {"target"}


def missing_inputs(config: TrainConfig) -> list[Missing]:
    """Every input the run needs that is not there (each once), found without reading or building anything.

    The one list of what a run needs: the split files of each part its
    setting declares (translations included), the target's test split, the
    feature caches of a multimodal run, ACN's word vectors and the pre-trained
    weights the model loads. An input the run makes itself (with
    ``--build-missing``, or hub weights it may download) comes with ``built``
    set.
    """
    layout = config.data.layout
    plan = setting_plan(config.setting)
    translations = _each_translation(config, lambda dataset: locate_translation(
        layout, dataset, config.target_lang, config.data.translation_model, _needed_by(config), config.data.build_missing))
    found: list[Path | Missing | None] = []
    for stage in plan.stages:
        for split, parts in (("train", stage.train), ("dev", stage.dev)):
            for part in parts:
                found += _part_files(config, part, split, translations)
    found.append(locate_split(layout, config.target_dataset, "test"))
    settings = _model_settings(config)
    if config.model_options["use_image"]:
        found += [locate_features(layout, backbone, config.images, config.data.build_missing) for backbone in cached_backbones(config, settings)]
    if (vectors := _word_vector_request(config, plan)) is not None:
        value, src, target_only = vectors
        found.append(locate_word_vectors(value, config.data.data_dir, src, config.target_lang, target_only=target_only))
    weights = settings.pretrained_weights() if settings is not None else {}
    found += [locate_pretrained(name, option) for option, name in weights.items()]
    return list(dict.fromkeys(item for item in found if isinstance(item, Missing)))


def check_inputs(config: TrainConfig) -> list[Missing]:
    """The run's missing inputs that it makes itself; one :class:`ConfigError` naming every one it cannot make.

    A run calls it before it creates anything, so a missing input never
    leaves a run folder behind, and an experiment calls it for every cell
    before the first one trains.
    """
    missing = missing_inputs(config)
    blocking = [item for item in missing if not item.built]
    if blocking:
        raise ConfigError(missing_summary(blocking))
    return [item for item in missing if item.built]


def _part_files(config: TrainConfig, part: str, split: str, translations: Mapping[str, Path | Missing]) -> list[Path | Missing]:
    """The files one declared part reads for ``split`` (see :func:`part_splits`), or what is missing of them."""
    layout = config.data.layout
    if part == "target":
        return [locate_split(layout, config.target_dataset, split)]
    if part == "source":
        return [locate_split(layout, dataset, split) for dataset in config.source_datasets]
    files: list[Path | Missing] = []
    for dataset in translated_datasets(config):
        folder = translations[dataset]
        files.append(folder if isinstance(folder, Missing) else locate_translated_split(folder, layout, dataset, config.target_lang, split))
    return files


def resolve_inputs(config: TrainConfig, run_dir: Path) -> RunInputs:
    """Read every split the run's setting declares and prepare its visual and word-vector inputs.

    :func:`~xlingual.train.run.train_run` has checked every input before
    (:func:`check_inputs`), so all that are missing were named at once; the
    ones the run makes are made here.
    """
    plan = setting_plan(config.setting)
    translations = run_translations(config)
    stages = [stage_data(config, stage, translations) for stage in plan.stages]
    test, other_tests = test_sets(config)
    inputs = RunInputs(stages=stages, test=test, model_config=config.model_options, other_tests=other_tests)
    if (vectors := _word_vector_request(config, plan)) is not None:
        value, src, target_only = vectors
        inputs.model_config["word_vectors"] = ensure_word_vectors(value, config.data.data_dir, src, config.target_lang,
                                                                  target_only=target_only, merged_out=RunFolder(run_dir).word_vectors)
    if inputs.model_config["use_image"]:
        inputs.visual = build_visual(config, inputs.vocab_samples())
    for stage in stages:
        logger.info("stage %s: %d train / %d dev samples from %s", stage.name, len(stage.train), len(stage.dev), stage.description)
    return inputs


def word_vector_source_lang(config: TrainConfig) -> str:
    """The other language of the aligned pair ACN's ``word_vectors: auto`` reads: the sources' one language.

    Asked only when ``word_vectors`` is ``auto``, so a run with a vector file of its own, or none, may have
    sources in several languages or no source.
    """
    langs = list(dict.fromkeys(dataset_lang(d, config.data) for d in config.source_datasets))
    if len(langs) == 1:
        return langs[0]
    if not langs:
        raise ConfigError(f"model.word_vectors=auto reads the {config.target_lang} side of an aligned pair, and a run with no "
                          "source dataset names no pair: pass --set model.word_vectors=PATH.vec, or null for random embeddings")
    raise ConfigError(f"model.word_vectors=auto reads one aligned pair, but the sources are in {', '.join(langs)}: "
                      "pass --set model.word_vectors=PATH.vec (one file for every language) or null")
