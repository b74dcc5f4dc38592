"""Labelling posts with a saved model (``xl predict``): dataset files, raw text, token files.

A dataset file's output is the input rewritten with predicted labels, in the
input's own format (Twitter ``IMGID:``, CMNER ``WID:``, CoNLL or JSONL), so it
can be read back, diffed against the gold file or evaluated like any dataset
file. A file that is a split of a dataset (built-in, or declared in its data
directory's ``datasets.yaml``) is read and written by that dataset's rule: its
format and its label spelling (a label map, an open label set).

New posts (:mod:`xlingual.data.new_posts`) are raw text, tokenised as the
model's language's dataset is, written in that language's dataset format
(CMNER-style for Chinese, Twitter-style otherwise), or token files, written as
CoNLL. Any input can also be written as JSONL whose ``meta.entities`` lists
each predicted entity (text, type, start and end token offsets).

Any model folder works (ACN, UMT, 2M-NER): the folder's ``config.json`` says
which class; a run folder stands for its ``model/`` (:mod:`.model_source`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from xlingual.data.formats import format_for_lang, format_jsonl, format_samples
from xlingual.data.labels import LabelSchema, count_entities
from xlingual.data.sample import Sample
from xlingual.devices import DEFAULT_DEVICE, resolve_device
from xlingual.errors import ConfigError
from xlingual.evaluation.model_source import model_image_seed, model_language, resolve_model_dir
from xlingual.models import load_model
from xlingual.models.base import MnerModel, VisualLookup
from xlingual.io import atomic_write_text
from xlingual.stage_inputs import DatasetFile, dataset_file, read_dataset_file, visual_inputs_for_model
from xlingual.progress import progress_bar

logger = logging.getLogger(__name__)

CHUNK = 256
"""Samples encoded at a time: bounds memory on large files and drives the progress bar."""


@dataclass
class PredictionReport:
    """What ``predict_posts`` did, for the CLI's summary line or ``--json``."""

    input: str
    output: str | None
    format: str
    """What the input holds: ``raw``, ``tokens`` or a dataset format."""
    samples: int
    tokens: int
    entities: dict[str, int]
    with_images: int
    model_type: str
    output_format: str = ""
    """The format predictions are written in (the input's own for a dataset file)."""
    lang: str | None = None
    """The language raw text was tokenised as (None for dataset files, which carry their own)."""
    jsonl: str | None = None
    model: str = ""
    """The model folder used (``RUN/model`` for a run folder)."""


@dataclass
class PostsFile:
    """Posts read to be labelled, and how predictions on them are written."""

    path: Path
    kind: str
    samples: list[Sample]
    output_format: str
    schema: LabelSchema | None = None
    lang: str | None = None

    @cached_property
    def dataset(self) -> DatasetFile | None:
        """The dataset split the file is (:func:`~xlingual.stage_inputs.dataset_file`), looked up once: when the posts were read
        by that rule, or when first asked for (its image folder)."""
        return dataset_file(self.path)

    def render(self, samples: Sequence[Sample]) -> str:
        """``samples`` as the text of the output file: the input's format and label spelling, or new posts' output format."""
        return format_samples(samples, self.output_format, schema=self.schema)


def read_posts(path: str | Path, input_format: str | None = None, lang: str | None = None, tokenizer: str | None = None) -> PostsFile:
    """The posts of ``path``: a dataset split by its dataset's rule, else ``input_format`` (detected when None, see :mod:`xlingual.data.new_posts`).

    ``lang`` is the model's language: what raw text is tokenised as (``tokenizer``, a ``MODULE:NAME`` plug-in,
    replaces the built-in tokeniser) and what token files' posts are written in. Without ``input_format`` the
    file's dataset is looked up here, once: the result is the :attr:`PostsFile.dataset` its images are found by.
    """
    from xlingual.data.new_posts import INPUT_FORMATS

    path = Path(path)
    if input_format is not None and input_format not in INPUT_FORMATS:
        raise ConfigError(f"--input-format: '{input_format}' is not one of {', '.join(INPUT_FORMATS)}")
    if input_format is not None:
        return _read_new_posts(path, input_format, lang, tokenizer)
    found = dataset_file(path)
    if found is None:
        posts = _read_new_posts(path, None, lang, tokenizer)
    else:
        posts = PostsFile(path, found.spec.format, found.read(path), found.spec.format, found.spec.schema)
    posts.dataset = found  # known now: never looked up again
    return posts


def _read_new_posts(path: Path, input_format: str | None, lang: str | None, tokenizer: str | None) -> PostsFile:
    """The posts of a file read as ``input_format`` says (detected when None), not by a dataset's rule."""
    from xlingual.data.new_posts import RAW, TOKENS, UNLABELLED_OUTPUT, detect_input_format, read_raw_posts, read_token_posts
    from xlingual.projection.tokenization import CHARACTER_LANGUAGES

    kind = input_format or detect_input_format(path, one_char_tokens=lang in CHARACTER_LANGUAGES)
    if kind not in (RAW, TOKENS):  # a dataset format, named or detected: read and written back as it is
        return PostsFile(path, kind, read_dataset_file(path, kind), kind)
    if lang is None:
        raise ConfigError(f"{path}: {'raw text' if kind == RAW else 'a token file'}, and the model's language is not recorded "
                          "(a model folder outside a run folder): pass --lang (the language of the posts it was trained on)")
    if kind == TOKENS:
        return PostsFile(path, kind, read_token_posts(path, lang), UNLABELLED_OUTPUT[TOKENS], lang=lang)
    return PostsFile(path, kind, read_raw_posts(path, raw_tokenizer(lang, tokenizer), lang), format_for_lang(lang), lang=lang)


def raw_tokenizer(lang: str, custom: str | None = None):
    """The tokeniser of raw ``lang`` posts: the plug-in ``custom`` or the one that writes ``lang``'s datasets; a one-line error naming --lang when there is none."""
    from xlingual.projection.tokenization import has_builtin_tokenizer, target_tokenizer
    from xlingual.translate.languages import language_name

    if custom is None and not has_builtin_tokenizer(lang):
        raise ConfigError(f"--lang {lang}: xlingual has no tokeniser for {language_name(lang)} text; pass --tokenizer MODULE:NAME "
                          "(a function str -> list[str]), or give the posts already tokenised (--input-format tokens)")
    return target_tokenizer(lang, custom)


def entity_records(sample: Sample) -> list[dict[str, object]]:
    """Each entity of ``sample``: its text (tokens joined as the post's language joins them), type, start and end token offsets (end exclusive)."""
    return [{"text": dataclasses.replace(sample, tokens=sample.tokens[span.start:span.end], labels=sample.labels[span.start:span.end]).text,
             "type": span.type, "start": span.start, "end": span.end} for span in sample.entities()]


def with_entities(samples: Sequence[Sample]) -> list[Sample]:
    """Copies of ``samples`` whose ``meta['entities']`` lists their entities (:func:`entity_records`): the JSONL ``xl predict --jsonl`` writes."""
    return [dataclasses.replace(sample, meta={**sample.meta, "entities": entity_records(sample)}) for sample in samples]


def predict_samples(model: MnerModel, samples: list[Sample], visual: VisualLookup | None = None, batch_size: int = 32) -> list[Sample]:
    """Copies of ``samples`` carrying the model's labels (input labels are ignored)."""
    predicted: list[Sample] = []
    with progress_bar(total=len(samples), desc="predict", unit="post") as bar:
        for start in range(0, len(samples), CHUNK):
            chunk = samples[start : start + CHUNK]
            for sample, labels in zip(chunk, model.predict(chunk, visual, batch_size=batch_size)):
                predicted.append(dataclasses.replace(sample, labels=labels, meta=dict(sample.meta)))
            bar.update(len(chunk))
    return predicted


@dataclass
class Prediction:
    """The labelled posts, how they are written (``text``), and the report."""

    samples: list[Sample]
    text: str
    report: PredictionReport


def predict_posts(
    model_dir: str | Path,
    input_path: str | Path,
    output_path: str | Path | None = None,
    *,
    input_format: str | None = None,
    lang: str | None = None,
    tokenizer: str | None = None,
    jsonl_path: str | Path | None = None,
    features: str | Path | Sequence[str | Path] | None = None,
    image_dir: str | Path | None = None,
    images: str = "all",
    seed: int | None = None,
    batch_size: int = 32,
    device: str = DEFAULT_DEVICE,
) -> Prediction:
    """Label every post of ``input_path`` with the model of ``model_dir`` (a model or run folder); write the output files that are named.

    ``output_path`` gets the input's format (new posts: see :func:`read_posts`), ``jsonl_path`` the posts with
    their entities (:func:`with_entities`). Each is written whole or not at all.
    """
    if images not in ("one", "all"):
        raise ConfigError(f"--images must be 'one' or 'all', not '{images}'")
    model_dir = resolve_model_dir(model_dir)
    posts = read_posts(input_path, input_format, model_language(model_dir, lang), tokenizer)
    model = load_model(model_dir)
    model.to(resolve_device(device))
    visual, with_images = visual_inputs_for_model(model, posts.samples, features, image_dir, images, model_image_seed(model_dir, seed),
                                                  dataset=lambda: posts.dataset)  # the file's dataset, looked up once
    predicted = predict_samples(model, posts.samples, visual, batch_size)
    text = posts.render(predicted)
    if output_path is not None:
        atomic_write_text(output_path, text)
    if jsonl_path is not None:
        atomic_write_text(jsonl_path, format_jsonl(with_entities(predicted)))
    report = PredictionReport(
        input=str(input_path), output=str(output_path) if output_path is not None else None, format=posts.kind,
        samples=len(predicted), tokens=sum(len(s) for s in predicted),
        entities=dict(sorted(count_entities([s.labels for s in predicted]).items())),
        with_images=with_images, model_type=model.model_type, output_format=posts.output_format, lang=posts.lang,
        jsonl=str(jsonl_path) if jsonl_path is not None else None, model=str(model_dir),
    )
    return Prediction(predicted, text, report)


__all__ = ["Prediction", "PredictionReport", "PostsFile", "entity_records", "predict_posts", "predict_samples",
           "read_posts", "with_entities"]
