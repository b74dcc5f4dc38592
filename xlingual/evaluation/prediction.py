"""Labelling a dataset file with a saved model (``xl predict``).

The output is the input rewritten with predicted labels, in the input's own
format (Twitter ``IMGID:``, CMNER ``WID:``, CoNLL or JSONL), so it can be read
back, diffed against the gold file or evaluated like any dataset file. A file
that is a split of a dataset (built-in, or declared in its data directory's
``datasets.yaml``) is read and written by that dataset's rule: its format and
its label spelling (a label map, an open label set). Any model folder works
(ACN, UMT, 2M-NER): the folder's ``config.json`` says which class.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from xlingual.data.formats import detect_format, format_samples
from xlingual.data.labels import LabelSchema, count_entities
from xlingual.data.sample import Sample
from xlingual.devices import DEFAULT_DEVICE, resolve_device
from xlingual.errors import ConfigError
from xlingual.models import load_model
from xlingual.models.base import MnerModel, VisualLookup
from xlingual.io import atomic_write_text
from xlingual.stage_inputs import dataset_file, read_dataset_file, visual_inputs_for_model
from xlingual.progress import progress_bar

logger = logging.getLogger(__name__)

CHUNK = 256
"""Samples encoded at a time: bounds memory on large files and drives the progress bar."""


@dataclass
class PredictionReport:
    """What ``predict_file`` did, for the CLI's summary line or ``--json``."""

    input: str
    output: str | None
    format: str
    samples: int
    tokens: int
    entities: dict[str, int]
    with_images: int
    model_type: str


def file_rule(path: str | Path) -> tuple[str, LabelSchema | None]:
    """The format and label spelling a file is read and written back with: its dataset's, or the detected format's own."""
    found = dataset_file(path)
    if found is not None:
        return found.spec.format, found.spec.schema
    return detect_format(path), None


def render_like(samples: Sequence[Sample], path: str | Path) -> str:
    """``samples`` as the text of a file like ``path`` (same format, same label spelling): what ``xl predict`` writes."""
    fmt, schema = file_rule(path)
    return format_samples(samples, fmt, schema=schema)


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


def predict_file(
    model_dir: str | Path,
    input_path: str | Path,
    output_path: str | Path | None = None,
    *,
    features: str | Path | Sequence[str | Path] | None = None,
    image_dir: str | Path | None = None,
    images: str = "all",
    seed: int = 0,
    batch_size: int = 32,
    device: str = DEFAULT_DEVICE,
) -> tuple[list[Sample], PredictionReport]:
    """Label every post of ``input_path``; write them to ``output_path`` (same format) when given."""
    if images not in ("one", "all"):
        raise ConfigError(f"--images must be 'one' or 'all', not '{images}'")
    fmt, _ = file_rule(input_path)
    samples = read_dataset_file(input_path)
    model = load_model(model_dir)
    model.to(resolve_device(device))
    visual, with_images = visual_inputs_for_model(model, samples, features, image_dir, images, seed, data_file=input_path)
    predicted = predict_samples(model, samples, visual, batch_size)
    if output_path is not None:
        atomic_write_text(output_path, render_like(predicted, input_path))
    report = PredictionReport(
        input=str(input_path), output=str(output_path) if output_path is not None else None, format=fmt,
        samples=len(predicted), tokens=sum(len(s) for s in predicted),
        entities=dict(sorted(count_entities([s.labels for s in predicted]).items())),
        with_images=with_images, model_type=model.model_type,
    )
    return predicted, report


__all__ = ["PredictionReport", "file_rule", "predict_file", "predict_samples", "render_like"]
