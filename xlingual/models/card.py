"""The model card: a README.md beside a model folder's weights that says what the model is.

The Hugging Face convention for a saved model is a ``README.md`` with a small
YAML header (library, languages, datasets, tags) and prose for people:
which model, trained on what, in which setting and with which seed, how well
it scored, with which versions, and the command that trained it. xlingual
writes one into every model folder (:meth:`xlingual.models.base.MnerModel.save_pretrained`)
and reads it nowhere: ``config.json`` stays what rebuilds the model.

The card is deterministic: the same facts give the same bytes. It holds no
timestamp and no path of the folder it is written to; the command is the one
the user typed (``xl ...``), recorded only when the process is ``xl``.
"""

from __future__ import annotations

import importlib.metadata
import json
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from xlingual.io import atomic_write_text
from xlingual.text_escape import markdown_cell
from xlingual.workspace import RUN_CONFIG_NAME

CARD_NAME = "README.md"

CARD_VERSIONS = ("xlingual", "torch", "transformers")
"""The packages whose versions a card names: what read the weights and what wrote them."""


@dataclass(frozen=True)
class ModelCard:
    """What a training run knows about the model it saves; every field may be unknown (a model saved outside a run)."""

    run: str | None = None
    """The run's name (``acn-en-zh-tgt_only-seed444``)."""
    setting: str | None = None
    direction: str | None = None
    datasets: tuple[tuple[str, str], ...] = ()
    """(dataset, language) of the run's source datasets, then its target dataset."""
    target_dataset: str | None = None
    images: str | None = None
    seed: int | None = None
    stage: str | None = None
    """The training stage that produced the weights (``pretrain`` or ``target``)."""
    trained_on: str | None = None
    """What the stage trained on, as the run's summary names it (``twitter2015 (en) + cmner (zh)``)."""
    selected: str | None = None
    """Where model selection kept these weights (``epoch 3, step 120``)."""
    metrics: dict[str, float] = field(default_factory=dict)
    """Scores known when the folder was written (dev F1 at selection; test scores once the run evaluated them)."""
    command: str | None = None

    def selected_by(self, stage: str, epoch: int, step: int, dev_f1: float) -> ModelCard:
        """This card for the weights that model selection kept in ``stage`` at ``epoch``/``step`` with ``dev_f1``."""
        return replace(self, stage=stage, selected=f"epoch {epoch}, step {step}",
                       metrics={**self.metrics, "dev F1 (conlleval)": round(dev_f1, 4)})

    def with_metrics(self, metrics: Mapping[str, float]) -> ModelCard:
        return replace(self, metrics={**self.metrics, **metrics})


def invocation(argv: Sequence[str] | None = None) -> str | None:
    """The ``xl`` command line of this process (``xl train ...``), or None when the process is not ``xl``.

    The program is written ``xl`` whatever path started it, so the card holds
    no path of the installation; another program (a test runner, a Ray
    worker) gives None: its command line says nothing about the model.
    """
    argv = list(sys.argv if argv is None else argv)
    if not argv:
        return None
    program = Path(argv[0])
    if program.name == "xl" or (program.name == "__main__.py" and program.parent.name == "xlingual"):
        return shlex.join(["xl", *argv[1:]])
    return None


def package_versions(names: Sequence[str] = CARD_VERSIONS) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def render_card(card: ModelCard, model_type: str, label_names: Sequence[str], versions: dict[str, str | None]) -> str:
    """The card's Markdown (a YAML header in the Hugging Face model-card style, then prose and tables)."""
    languages = list(dict.fromkeys(lang for _, lang in card.datasets))
    names = [name for name, _ in card.datasets]
    header = ["---", "library_name: xlingual", "pipeline_tag: token-classification",
              f"tags: {_flow(['ner', 'multimodal-ner', 'cross-lingual', model_type])}"]
    if languages:
        header.append(f"language: {_flow(languages)}")
    if names:
        header.append(f"datasets: {_flow(names)}")
    title = _cell(card.run or "") or f"{model_type} model"
    lines = [*header, "---", "", f"# {title}", "",
             f"{model_type.upper()} model for multimodal named entity recognition, saved by xlingual. "
             "The other files of this folder rebuild it (`xl predict --model <this folder>`); this card is for people.", ""]
    types = sorted({label[2:] for label in label_names if label[:2] in ("B-", "I-")})
    facts = [("Model type", model_type), ("Entity types", ", ".join(types) or None), ("Setting", card.setting),
             ("Direction", card.direction),
             ("Datasets of the run", ", ".join(f"{name} ({lang})" for name, lang in card.datasets) or None),
             ("Target dataset", card.target_dataset), ("Images", card.images),
             ("Seed", None if card.seed is None else str(card.seed)), ("Stage", card.stage), ("Trained on", card.trained_on),
             ("Selected at", card.selected)]
    cells = [(name, _cell(value)) for name, value in facts if value is not None]
    lines += ["| | |", "|---|---|", *(f"| {name} | {cell} |" for name, cell in cells if cell), ""]
    lines += ["## Metrics", ""]
    if card.metrics:
        lines += ["| metric | value |", "|---|---|", *(f"| {_cell(name)} | {value:.2f} |" for name, value in card.metrics.items()), ""]
    else:
        lines += ["None recorded when this folder was written.", ""]
    lines += ["## Versions", "", *(f"- {name} {version or 'not installed'}" for name, version in versions.items()), ""]
    lines += ["## How it was trained", ""]
    if card.command:
        lines += ["```", card.command, "```", "", f"The run folder's `{RUN_CONFIG_NAME}` holds the resolved config.", ""]
    else:
        lines += ["Not recorded (saved outside an `xl` command).", ""]
    return "\n".join(lines)


def _flow(items: Sequence[str]) -> str:
    """A YAML flow list (JSON is YAML): quoted, so a declared dataset's name cannot break the header."""
    return json.dumps(list(items), ensure_ascii=False)


def _cell(value: str) -> str:
    """A value on one line, its runs of white space as one space, escaped as every Markdown table cell of the project is
    (:func:`~xlingual.text_escape.markdown_cell`: no column separator, no HTML)."""
    return markdown_cell(" ".join(value.split()))


def write_card(directory: str | Path, card: ModelCard | None, model_type: str, label_names: Sequence[str]) -> Path:
    """Write ``README.md`` into ``directory`` atomically and return its path."""
    path = Path(directory) / CARD_NAME
    atomic_write_text(path, render_card(card or ModelCard(), model_type, label_names, package_versions()))
    return path


__all__ = ["CARD_NAME", "CARD_VERSIONS", "ModelCard", "invocation", "package_versions", "render_card", "write_card"]
