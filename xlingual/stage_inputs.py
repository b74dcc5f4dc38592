"""One function per input a stage needs: a translation, image features, word vectors, the visual inputs of posts.

``xl translate``, ``xl train`` (``--build-missing``), the demo, ``xl predict`` and
``xl evaluate`` all come here, so each input is found, built and reported the
same way whoever asks for it. Where things lie is :mod:`xlingual.workspace`'s
business; how they are made is the stage packages' (projection, features,
embeddings). This module only decides "find it, or build it, or say which
command builds it".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from xlingual.data.datasets import MissingSplit, find_split
from xlingual.data.formats import format_for_lang, raise_for_errors, read_samples
from xlingual.data.images import attach_images
from xlingual.data.sample import Sample
from xlingual.embeddings.paths import check_aligned_files, find_aligned_pair
from xlingual.embeddings.vectors import merge_vector_files
from xlingual.errors import ConfigError
from xlingual.workspace import DataDir, TranslationFolder

if TYPE_CHECKING:
    from xlingual.data.datasets import DatasetSpec
    from xlingual.features import FeatureCache
    from xlingual.models.base import MnerModel, VisualLookup
    from xlingual.projection.corpus import CorpusResult, ProjectionSettings
    from xlingual.translate.base import Translator

logger = logging.getLogger(__name__)

Located = TypeVar("Located")


@dataclass(frozen=True)
class Missing:
    """An input a stage needs that is not there: what it is, the command that makes it, and its one-line error.

    The ``locate_*`` functions below return one instead of raising, so a
    caller can list every missing input at once (``xl experiment --dry-run``,
    the check before a run creates anything), and the ``ensure_*``/``find_*``
    functions raise its ``error`` when it is the only answer.
    """

    what: str
    command: str
    """The command (or option) that makes it."""
    error: str
    built: bool = False
    """The run makes it itself: a translation or feature cache with ``--build-missing``, hub weights it may download."""


def missing_summary(missing: Sequence[Missing]) -> str:
    """One line for missing inputs: the error of the only one, or every one with the command that makes it."""
    if len(missing) == 1:
        return missing[0].error
    return f"{len(missing)} inputs are missing: " + "; ".join(f"{m.what} (make it with '{m.command}')" for m in missing)


# -- translations ----------------------------------------------------------------

def translate_source_dataset(data_dir: str | Path | DataDir, dataset: str, translator: "Translator", settings: "ProjectionSettings",
                             output: str | Path | None = None) -> "CorpusResult":
    """Translate and project every split of ``dataset`` (``settings.src`` -> ``settings.tgt``).

    The output defaults to ``DataDir.translation(...)``, the folder training
    looks in; the split files keep their source names.
    """
    from xlingual.projection.corpus import read_source_dataset, translate_corpus

    src, tgt = settings.src, settings.tgt
    layout = DataDir.of(data_dir)
    _check_source_lang(layout, dataset, src)
    settings = settings.for_dataset(layout.dataset(dataset))
    output = Path(output) if output is not None else layout.translation(dataset, src, tgt, settings.model_name or "model")
    return translate_corpus(read_source_dataset(layout.root, dataset, layout.datasets_file), output, translator, settings)


def _check_source_lang(layout: DataDir, dataset: str, src: str) -> None:
    lang = layout.dataset(dataset).lang
    if lang != src:
        raise ConfigError(f"{dataset} is in '{lang}', not '{src}': translate it from {lang}")


def default_translation_dir(data_dir: str | Path | DataDir, dataset: str, src: str, tgt: str, model: str) -> Path:
    """``data/translated/<dataset>.<src>-<tgt>.<model>/``."""
    return DataDir.of(data_dir).translation(dataset, src, tgt, model)


def locate_translation(data_dir: str | Path | DataDir, dataset: str, tgt: str, model: str | None = None,
                       needed_by: str = "this run", build_missing: bool = False) -> Path | Missing:
    """The folder holding ``dataset`` translated into ``tgt`` (by ``model``: a tag or a folder), or what is missing."""
    layout = DataDir.of(data_dir)
    spec = layout.dataset(dataset)
    src = spec.lang
    build_hint = f"xl translate --dataset {dataset} --tgt {tgt} --data-dir {layout.root}"
    if layout.datasets_file is not None:
        build_hint += f" --datasets {layout.datasets_file}"
    what = f"{dataset} translated {src}->{tgt}"
    if model:
        candidate = Path(model)
        is_translation = candidate.is_dir() and TranslationFolder(candidate).output(spec.split_name("train")).is_file()
        folder = candidate if is_translation else layout.translation(dataset, src, tgt, model)
        if not folder.is_dir():
            command = f"{build_hint} --model {model}"
            return Missing(f"{what} by {model} ({folder})", command,
                           f"data.translation_model: no translation at {folder} (build it with '{command}')", build_missing)
        return folder
    found = layout.find_translations(dataset, src, tgt)
    if not found:
        return Missing(what, build_hint, f"{needed_by} needs {what}, none under {layout.translations_root} "
                                         f"(build it with '{build_hint}' or pass --build-missing)", build_missing)
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        return Missing(f"one translation of {dataset} {src}->{tgt} chosen among {names}", "--set data.translation_model=<model>",
                       f"several translations of {dataset} {src}->{tgt} ({names}): choose one with --set data.translation_model=<model>")
    return found[0]


def find_translation(data_dir: str | Path | DataDir, dataset: str, tgt: str, model: str | None = None,
                     needed_by: str = "this run") -> Path:
    """The folder holding ``dataset`` translated into ``tgt`` (by ``model``: a tag or a folder), once its files are the set its report lists.

    Sizes are checked here, digests as each file is read (:func:`read_translated_split`).
    """
    from xlingual.projection.corpus import check_translation

    folder = _found(locate_translation(data_dir, dataset, tgt, model, needed_by))
    command = f"xl translate --dataset {dataset} --tgt {tgt}" + (f" --model {model}" if model else "")
    check_translation(folder, digests=False, rebuild=f"rebuild it with '{command}'")
    return folder


def _found(found: Located | Missing) -> Located:
    """What a ``locate_*`` function found, or its one-line error raised."""
    if isinstance(found, Missing):
        raise ConfigError(found.error)
    return found


def ensure_translation(data_dir: str | Path | DataDir, dataset: str, tgt: str, model: str | None = None, build_missing: bool = False,
                       needed_by: str = "this run") -> Path:
    """:func:`find_translation`, or (``build_missing``) translate with ``model`` or the default MT model as ``xl translate`` does."""
    try:
        return find_translation(data_dir, dataset, tgt, model, needed_by)
    except ConfigError:
        if not build_missing:
            raise
    from xlingual.projection.corpus import ProjectionSettings
    from xlingual.translate import default_model, load_translator

    layout = DataDir.of(data_dir)
    src = layout.dataset(dataset).lang
    model = model or default_model(src, tgt)
    out = layout.translation(dataset, src, tgt, model)
    logger.info("building the %s->%s translation of %s with %s into %s", src, tgt, dataset, model, out)
    translator = load_translator(src, tgt, model, work_dir=TranslationFolder(out).work_dir)
    translate_source_dataset(layout, dataset, translator, ProjectionSettings(src, tgt, model_name=model), out)
    return out


def locate_translated_split(folder: Path, data_dir: str | Path | DataDir, dataset: str, tgt: str, split: str) -> Path | Missing:
    """One split file of a translation folder, or what is missing."""
    path = TranslationFolder(folder).output(DataDir.of(data_dir).dataset(dataset).split_name(split))
    if path.is_file():
        return path
    command = f"xl translate --dataset {dataset} --tgt {tgt}"
    return Missing(f"{path} (translated {split} split)", command, f"{path}: translated split missing (re-run '{command}')")


def read_translated_split(folder: Path, data_dir: str | Path | DataDir, dataset: str, tgt: str, split: str) -> list[Sample]:
    """One split of ``dataset``'s translation, with the source posts' images attached (translated posts keep ``meta.source_id``)."""
    layout = DataDir.of(data_dir)
    spec = layout.dataset(dataset)
    path = _found(locate_translated_split(folder, layout, dataset, tgt, split))
    from xlingual.projection.corpus import check_translation

    check_translation(folder, [path.name], rebuild=f"re-run 'xl translate --dataset {dataset} --tgt {tgt}' to write the set again")
    if path.stat().st_size == 0:  # projection kept no post of this split (see the folder's report.json)
        logger.warning("%s: empty (no post survived projection; see %s)", path, TranslationFolder(folder).report)
        return []
    samples = read_samples(path, format_for_lang(tgt), schema=spec.translation_schema)
    source_images = layout.images_dir(dataset)
    if source_images.is_dir():
        attach_images(samples, source_images)
    return samples


# -- image features ----------------------------------------------------------------

def locate_features(data_dir: str | Path | DataDir, backbone: str, images_option: str = "all", build_missing: bool = False) -> Path | Missing:
    """The feature cache of ``backbone`` in ``data_dir``, or what is missing."""
    layout = DataDir.of(data_dir)
    folder = layout.features(backbone)
    if folder.exists():
        return folder
    command = f"xl features extract --data-dir {layout.root} --backbone {backbone}"
    return Missing(f"{backbone} features at {folder}", command,
                   f"images={images_option} needs cached {backbone} features at {folder}; build them with '{command}', "
                   "pass --build-missing, or --set images=none for text only", build_missing)


def ensure_features(data_dir: str | Path | DataDir, backbone: str, datasets: Sequence[str], build_missing: bool = False,
                    images_option: str = "all") -> Path:
    """The feature cache of ``backbone`` in ``data_dir``, extracted from the datasets' images when missing and asked to."""
    layout = DataDir.of(data_dir)
    found = locate_features(layout, backbone, images_option, build_missing)
    if isinstance(found, Path):
        return found
    if not build_missing:
        raise ConfigError(found.error)
    folder = layout.features(backbone)
    from xlingual.features.extract import extract_for_data_dir

    with_images = [name for name in dict.fromkeys(datasets) if layout.images_dir(name).is_dir()]
    logger.info("extracting %s features of %s into %s", backbone, ", ".join(with_images) or "no dataset", folder)
    extract_for_data_dir(layout.root, backbone, datasets=with_images, cache_dir=folder, datasets_file=layout.datasets_file,
                         weights="default")
    return folder


# -- word vectors ----------------------------------------------------------------------

def locate_word_vectors(value: str | None, data_dir: str | Path, src: str, tgt: str, target_only: bool) -> list[Path] | Missing:
    """The ``.vec`` file(s) ACN's ``word_vectors`` option names (none, a file, or ``auto``: the run's aligned pair), or what is missing."""
    if value in (None, "", "none", "null"):
        return []
    if value != "auto":
        if not Path(value).is_file():
            return Missing(f"word vectors {value}", "--set model.word_vectors=PATH.vec (or null for random embeddings)",
                           f"model.word_vectors: {value} does not exist")
        return [Path(value)]
    by_lang = find_aligned_pair(data_dir, src, tgt)
    if by_lang is None:
        folder = DataDir(data_dir).aligned(src, tgt).root
        return Missing(f"aligned {src}-{tgt} word vectors at {folder}", "xl embeddings (see docs/embeddings.md)",
                       f"model.word_vectors=auto: no aligned vectors at {folder} (either direction); "
                       "build them with 'xl embeddings' (see docs/embeddings.md), pass --set model.word_vectors=PATH.vec, "
                       "or --set model.word_vectors=null for random embeddings")
    wanted = [by_lang[tgt]] if target_only else [by_lang[src], by_lang[tgt]]
    missing = [p for p in wanted if not p.is_file()]
    if missing:
        return Missing(f"aligned word vectors {missing[0]}", "xl embeddings align", f"{missing[0]}: aligned vectors missing (re-run 'xl embeddings align')")
    return wanted


def aligned_vector_files(data_dir: str | Path, src: str, tgt: str, target_only: bool) -> list[Path]:
    """The aligned ``.vec`` files of a run's languages (target last, so it wins on shared words)."""
    return _found(locate_word_vectors("auto", data_dir, src, tgt, target_only))


def ensure_word_vectors(value: str | None, data_dir: str | Path, src: str, tgt: str, target_only: bool, merged_out: Path) -> str | None:
    """The ``.vec`` file ACN reads: none, a given file, or (``auto``) the run's aligned vectors, merged into ``merged_out`` when two."""
    files = _found(locate_word_vectors(value, data_dir, src, tgt, target_only))
    if not files:
        return None
    if value != "auto":
        return str(value)
    check_aligned_files(files)
    if len(files) == 1:
        return str(files[0])
    return str(merge_vector_files(files, merged_out))


# -- dataset splits and pre-trained weights ------------------------------------------------

def locate_split(data_dir: str | Path | DataDir, dataset: str, split: str) -> Path | Missing:
    """One split file of a dataset (built-in or declared), or what is missing."""
    layout = DataDir.of(data_dir)
    found = find_split(layout.dataset(dataset), layout.root, split)
    if isinstance(found, MissingSplit):
        return Missing(f"{found.path} ({dataset}'s {split} split)", found.command, found.error)
    return found


def locate_pretrained(name: str, option: str) -> Missing | None:
    """None when the weights ``name`` (a hub id or a folder) load here; else what is missing (``built`` when the hub will download them)."""
    from xlingual.errors import ModelNotFoundError
    from xlingual.hub import looks_like_path, resolve_model

    try:
        source = resolve_model(name)
    except ModelNotFoundError as err:
        reason = str(err).split("; ")[0]
        command = f"--set {option}=PATH" if looks_like_path(name) or Path(name).expanduser().exists() else f"hf download {name}"
        return Missing(f"{option} '{name}' weights ({reason})", command,
                       f"{option} '{name}' cannot be loaded ({reason}); download it once with network access ('hf download {name}'), "
                       f"or pass a local copy with --set {option}=PATH")
    if source.local_files_only:
        return None
    return Missing(f"{option} '{name}' weights (not in the local cache: downloaded when the run starts)", f"hf download {name}",
                   f"{option} '{name}' is not in the local cache", built=True)


# -- visual inputs of posts ------------------------------------------------------------------

@dataclass
class VisualInputs:
    """The lookup (sample -> region features, has_image) and how many posts it covers."""

    lookup: "VisualLookup"
    with_images: int
    """Posts that name at least one image file."""
    cached: int
    """Posts with at least one of their images in the feature cache."""


@dataclass(frozen=True)
class DatasetFile:
    """A file that is one split of a dataset of some data directory (built-in or declared there)."""

    layout: DataDir
    spec: "DatasetSpec"
    split: str

    def read(self, data_file: str | Path, bio: str = "repair") -> list[Sample]:
        """The samples of ``data_file`` (this split's file) by its dataset's rule: format, label map or open label set."""
        return raise_for_errors(self.spec.parse(data_file, self.split, bio))

    def image_dir(self) -> Path | None:
        """The dataset's image folder in its data directory, if it exists."""
        folder = self.layout.images_dir(self.spec.name)
        return folder if folder.is_dir() else None


def dataset_file(data_file: str | Path) -> DatasetFile | None:
    """The data directory, dataset and split ``data_file`` is, when it lies where a data directory puts one of its splits.

    ``data/cmner/text/test.txt`` is CMNER's test split; ``data/shop/exam.tsv``
    the test split of a dataset ``data/datasets.yaml`` declares. Any other
    path: None. ``xl predict`` and ``xl evaluate`` read such a file by its
    dataset's rule (format, label map or open label set) and find its images.
    """
    path = Path(data_file).resolve()
    for root in path.parents:
        layout = DataDir(root)
        found = layout.dataset_of_file(path)
        if found is not None:
            return DatasetFile(layout, layout.dataset(found[0]), found[1])
    return None


def read_dataset_file(data_file: str | Path, format: str | None = None, bio: str = "repair") -> list[Sample]:
    """The samples of a file: by its dataset's rule when it is a dataset's split and no ``format`` is forced, else as ``format`` says (or detected)."""
    found = dataset_file(data_file) if format is None else None
    if found is not None:
        return found.read(data_file, bio)
    return read_samples(data_file, format, bio=bio)


def visual_inputs(samples: list[Sample], caches: "FeatureCache | str | Path | Sequence[FeatureCache | str | Path]", *,
                  combine: "Callable[[list[FeatureCache], str, int], VisualLookup]", image_dir: str | Path | None = None,
                  mode: str = "all", seed: int = 0) -> VisualInputs:
    """Attach each post's images (from ``image_dir`` when given) and build the feature lookup.

    ``combine`` turns the open caches into the lookup a model reads: the model
    class's ``visual_lookup_from`` (one cache's regions per post in the base,
    several caches for 2M-NER). A post counts as cached when every cache holds
    one of its images.

    ``mode`` is ``all`` (mean over a post's images, the paper's method) or
    ``one`` (one image per post, chosen by ``seed`` and the post id). A CMNER
    post names no image in its text file (Twitter's ``IMGID`` names
    ``<id>.jpg``); its pictures are found only through the dataset's image
    folder. Without it a multimodal model would silently see every post as
    image-less, i.e. be scored text-only, so that case is refused.
    """
    from xlingual.features import FeatureCache

    if isinstance(caches, (str, Path, FeatureCache)):
        caches = [caches]

    if image_dir is not None:
        report = attach_images(samples, image_dir)
        if report.missing:
            logger.warning("%s", report.summary())
    with_images = sum(1 for sample in samples if sample.images)
    if samples and not with_images:
        raise ConfigError(
            "image features were asked for but no post names an image: pass --image-dir (the dataset's image folder), "
            "or score text-only with a text-only model"
        )
    opened = [cache if isinstance(cache, FeatureCache) else FeatureCache.open(cache) for cache in caches]
    cached = sum(1 for sample in samples if all(any(name in cache for name in sample.images) for cache in opened))
    if with_images and not cached:
        where = ", ".join(str(cache.cache_dir) for cache in opened)
        logger.warning("%s: none of the posts' images is in this feature cache; every post is treated as image-less", where)
    return VisualInputs(combine(opened, mode, seed), with_images, cached)


def visual_inputs_for_model(model: "MnerModel", samples: list[Sample], features: "str | Path | Sequence[str | Path] | None",
                            image_dir: str | Path | None, images: str, seed: int,
                            dataset: "Callable[[], DatasetFile | None] | None" = None) -> tuple["VisualLookup | None", int]:
    """The visual lookup a saved model needs for ``samples`` (``xl predict``, ``xl evaluate --model``) and how many posts have an image.

    ``features`` is the cache folder, or the folders of a model that reads
    several (2M-NER: the clip-vit-b32 and the resnet152 cache).

    ``image_dir`` defaults to the image folder of the dataset whose split the
    posts' file is (``data/cmner/text/test.txt``): ``dataset`` says which, as
    the caller looked it up; it is called only when that folder is needed.
    """
    uses_images = bool(getattr(getattr(model, "config", None), "use_image", False))
    if not uses_images:
        if features:
            logger.warning("the model is text-only; --features is ignored")
        return None, 0
    if isinstance(features, (str, Path)):
        features = [features]
    reads_images = bool(getattr(model.config, "reads_images", False))
    if not features and not reads_images:
        logger.warning("multimodal model without --features: every post is treated as having no image")
        return None, 0
    if image_dir is None and dataset is not None:
        found = dataset()
        image_dir = None if found is None else found.image_dir()
    if reads_images and image_dir is None:
        raise ConfigError("the model reads the raw images (a fine-tuned ViT or model.resnet=reference): pass --image-dir (the posts' image folder)")
    combine = type(model).visual_combiner(model.config.to_dict(), [Path(image_dir)] if image_dir is not None else [], model=model)
    inputs = visual_inputs(samples, list(features or []), image_dir=image_dir, mode=images, seed=seed, combine=combine)
    return inputs.lookup, inputs.with_images


__all__ = [
    "DatasetFile", "Missing", "locate_features", "locate_pretrained", "locate_split", "locate_translated_split", "locate_translation",
    "locate_word_vectors", "missing_summary", "VisualInputs", "aligned_vector_files", "dataset_file", "default_translation_dir", "ensure_features",
    "ensure_translation", "ensure_word_vectors", "find_translation", "read_dataset_file", "read_translated_split",
    "translate_source_dataset", "visual_inputs", "visual_inputs_for_model",
]
