"""Every path convention of xlingual, in one place: the data directory, the run folder and the translation folder.

Nothing else in the library builds these paths; it asks a :class:`DataDir`,
a :class:`RunFolder` (with its :class:`StageState`) or a :class:`TranslationFolder`.
So a layout decision (where translations go, what a run folder holds) is read
and changed here only; ``tests/test_workspace_paths.py`` fails on a file or
folder name of this layout spelt in another module.

The data directory (``--data-dir``, default ``./data``) is laid out as
``xl data download`` creates it, with derived artefacts beside the datasets
under names that say what made them::

    data/twitter2015/{train,valid,test}.txt   data/twitter2015/images/
    data/cmner/text/{train,dev,test}.txt      data/cmner/images/
    data/datasets.yaml                                 datasets a user declares (their paths are theirs;
                                                       see xlingual.data.declared)
    data/translated/<dataset>.<src>-<tgt>.<model>/     xl translate
    data/features/<backbone>/                          xl features extract
    data/embeddings/<name>.<lang>.vec                  xl embeddings train
    data/embeddings/aligned.<src>-<tgt>/               xl embeddings align (vectors-src.vec, vectors-tgt.vec,
                                                       mapping.npy, alignment.json)

A run folder (``xl report`` and ``xl evaluate`` read only this)::

    config.yaml          resolved config (re-run with: xl train --config config.yaml)
    environment.json     package versions, device, git revision, seed, command line
    run.log              the log of the run (appended on resume)
    pretrain-model/      best pre-training model (SRC / TGT / SRC&TGT only)
    model/               best target model (save_pretrained folder; xl evaluate --model)
    predictions/{dev,test}.txt    predictions in the target dataset's format
    predictions/{dev,test}.jsonl  the same with gold labels (meta.gold), for re-scoring
    metrics.json         dev/test scores (conlleval and strict), best epochs, timings; written last, it lists
                         each predictions/ file with its size and SHA-256 (``output_files``, checked by readers)
    failed.json          instead of metrics.json when training diverged (NaN loss): the error; never resumed
    word_vectors.vec     both languages' aligned vectors in one file (cross-lingual ACN runs)
    state/<stage>/       resumable training state (removed parts once a stage is done): loop_state.json beside
                         accelerate's files; a checkpoint is written into state/<stage>.tmp/ and swapped in
                         (the previous one waits in state/<stage>.old/ meanwhile)
    tensorboard/<stage>/ TensorBoard event files: loss and learning rate per step, dev F1 per evaluation (tensorboard: true)

A translation folder (``xl translate --output``, or ``data/translated/...``)::

    NAME.txt, NAME.jsonl  each input file projected (NAME: the input's name; the split files of a dataset)
    NAME.failures.jsonl   each left-out sample with its reason and attempts
    preview.html          a page of projected and left-out posts
    report.json           the numbers, and the manifest of the other files; written last
    .cache/translations.sqlite      the persistent translation cache (a rerun translates nothing twice)
    .cache/shards/        per-shard results and caches of a --ray run
    .incoming-*/          a set being written (moved into the folder by rename once complete)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from xlingual.data.datasets import DatasetSpec, available_datasets, get_dataset
from xlingual.io import old_sibling, temp_sibling

DEFAULT_DATA_DIR = Path("data")
METRICS_NAME = "metrics.json"
"""The file whose presence marks a finished run (``xl report`` searches for it)."""
RUN_CONFIG_NAME = "config.yaml"
RUN_LOG_NAME = "run.log"
FAILURE_NAME = "failed.json"
"""Written instead of ``metrics.json`` when a run failed."""
REPORT_NAME = "report.json"
"""A translation folder's report, the manifest of its output set (written last)."""
PREVIEW_NAME = "preview.html"
CACHE_DIR_NAME = ".cache"
"""A translation folder's working files: kept across runs, never part of its output set."""
TRANSLATION_CACHE = Path(CACHE_DIR_NAME) / "translations.sqlite"
"""The translation cache, relative to the translation folder."""
STAGING_PREFIX = ".incoming-"
"""Name prefix of an output set being written (inside the output folder, so its files move in by rename)."""
LOOP_STATE_NAME = "loop_state.json"
"""The loop counters of a stage's checkpoint (where it stopped, what it has seen)."""


def model_tag(model: str) -> str:
    """A folder-safe name for a model id or path (``Helsinki-NLP/opus-mt-en-zh`` -> ``opus-mt-en-zh``)."""
    name = Path(str(model).rstrip("/")).name or str(model)
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name)


@dataclass(frozen=True)
class AlignedPaths:
    """The files one alignment writes into its output folder (``aligned.<src>-<tgt>/`` or any ``--output``)."""

    root: Path

    SRC_VECTORS: ClassVar[str] = "vectors-src.vec"
    TGT_VECTORS: ClassVar[str] = "vectors-tgt.vec"
    SUMMARY: ClassVar[str] = "alignment.json"

    @property
    def src_vectors(self) -> Path:
        return self.root / self.SRC_VECTORS

    @property
    def tgt_vectors(self) -> Path:
        return self.root / self.TGT_VECTORS

    @property
    def mapping(self) -> Path:
        return self.root / "mapping.npy"

    @property
    def summary(self) -> Path:
        return self.root / self.SUMMARY


@dataclass(frozen=True)
class TranslationFolder:
    """The files of one translated corpus (see the module docstring); ``xl translate`` writes it, training reads it."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def report(self) -> Path:
        return self.root / REPORT_NAME

    @property
    def preview(self) -> Path:
        return self.root / PREVIEW_NAME

    def output(self, name: str, suffix: str = ".txt") -> Path:
        """``NAME.txt`` (the dataset file) or ``NAME.jsonl`` (with projection details) of the input named ``name``."""
        return self.root / f"{name}{suffix}"

    def failures(self, name: str) -> Path:
        """The left-out samples of the input named ``name``."""
        return self.output(name, ".failures.jsonl")

    @property
    def work_dir(self) -> Path:
        """``.cache/``: working files a rerun reuses (the translation cache, converted models, Ray shards)."""
        return self.root / CACHE_DIR_NAME

    @property
    def cache(self) -> Path:
        return self.root / TRANSLATION_CACHE

    @property
    def shards(self) -> Path:
        """Where a ``--ray`` run keeps each shard's result and cache (so a rerun redoes only unfinished shards)."""
        return self.work_dir / "shards"

    def shard_cache(self, stem: str) -> Path:
        """The translation cache of the shard whose files are named ``stem``."""
        return self.shards / f"{stem}.{TRANSLATION_CACHE.name}"


@dataclass(frozen=True)
class StageState:
    """The resumable state of one training stage, ``state/<stage>/``, and the folders its checkpoint swaps through."""

    root: Path

    @property
    def loop_state(self) -> Path:
        return self.root / LOOP_STATE_NAME

    @property
    def incoming(self) -> Path:
        """``state/<stage>.tmp/``: a checkpoint being written."""
        return temp_sibling(self.root)

    @property
    def previous(self) -> Path:
        """``state/<stage>.old/``: the last checkpoint while a new one is swapped in (still a whole checkpoint)."""
        return old_sibling(self.root)


def other_test_split(dataset: str) -> str:
    """The split name of another dataset's test set a run is scored on (``test.<dataset>``: predictions and metrics keys)."""
    return f"test.{dataset}"


@dataclass(frozen=True)
class DataDir:
    """A data directory: where each dataset's files are and where derived artefacts go.

    Where a dataset's files lie is the dataset registry's answer
    (:mod:`xlingual.data.datasets`) for this root: the built-ins, what
    ``<root>/datasets.yaml`` declares and what ``datasets_file`` declares.
    """

    root: Path
    datasets_file: Path | None

    def __init__(self, root: str | Path = DEFAULT_DATA_DIR, datasets_file: str | Path | None = None) -> None:
        object.__setattr__(self, "root", Path(root))
        object.__setattr__(self, "datasets_file", Path(datasets_file) if datasets_file is not None else None)

    @classmethod
    def of(cls, data_dir: "str | Path | DataDir") -> "DataDir":
        """``data_dir`` as a DataDir; one already built keeps its datasets file (functions take either)."""
        return data_dir if isinstance(data_dir, DataDir) else cls(data_dir)

    # -- datasets -------------------------------------------------------------
    def dataset(self, name: str) -> DatasetSpec:
        return get_dataset(name, self.root, self.datasets_file)

    def datasets(self) -> list[DatasetSpec]:
        """Every dataset this data directory can hold: built-ins first, then the declared ones."""
        return available_datasets(self.root, self.datasets_file)

    def text_dir(self, dataset: str) -> Path:
        """The folder of a built-in's split files (a declared dataset's paths start at the root)."""
        return self.root / self.dataset(dataset).text_subdir

    def split_file(self, dataset: str, split: str) -> Path:
        """``data/twitter2015/valid.txt`` for ``("twitter2015", "dev")``: the file name is the dataset's own."""
        return self.dataset(dataset).split_path(self.root, split)

    def images_dir(self, dataset: str) -> Path:
        return self.dataset(dataset).images_path(self.root)

    def dataset_of_file(self, path: str | Path) -> tuple[str, str] | None:
        """``(dataset, split)`` when ``path`` is a split file of this data directory, else None."""
        resolved = Path(path).resolve()
        for spec in self.datasets():
            for split in spec.split_files:
                if spec.split_path(self.root, split).resolve() == resolved:
                    return spec.name, split
        return None

    # -- translations -----------------------------------------------------------
    @property
    def translations_root(self) -> Path:
        return self.root / "translated"

    def translation(self, dataset: str, src: str, tgt: str, model: str) -> Path:
        """Where ``xl translate`` writes ``dataset`` translated by ``model`` (split file names kept from the source)."""
        return self.translations_root / f"{dataset}.{src}-{tgt}.{model_tag(model)}"

    def find_translations(self, dataset: str, src: str, tgt: str) -> list[Path]:
        """Every translation of ``dataset`` from ``src`` to ``tgt``, by any model."""
        return sorted(p for p in self.translations_root.glob(f"{dataset}.{src}-{tgt}.*") if p.is_dir())

    # -- image features ---------------------------------------------------------
    def features(self, backbone: str) -> Path:
        return self.root / "features" / backbone

    # -- word vectors -------------------------------------------------------------
    @property
    def embeddings_dir(self) -> Path:
        return self.root / "embeddings"

    def monolingual_vectors(self, lang: str, name: str = "fasttext") -> Path:
        """``data/embeddings/<name>.<lang>.vec``."""
        return self.embeddings_dir / f"{name}.{lang}.vec"

    def aligned(self, src: str, tgt: str) -> AlignedPaths:
        """``data/embeddings/aligned.<src>-<tgt>/``."""
        return AlignedPaths(self.embeddings_dir / f"aligned.{src}-{tgt}")


@dataclass(frozen=True)
class RunFolder:
    """The folder of one training run (see the module docstring for what each file holds)."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def config(self) -> Path:
        return self.root / RUN_CONFIG_NAME

    @property
    def environment(self) -> Path:
        return self.root / "environment.json"

    @property
    def log(self) -> Path:
        return self.root / RUN_LOG_NAME

    @property
    def metrics(self) -> Path:
        return self.root / METRICS_NAME

    @property
    def model(self) -> Path:
        """The best target model."""
        return self.root / "model"

    @property
    def pretrain_model(self) -> Path:
        return self.root / "pretrain-model"

    def best_model(self, stage: str) -> Path:
        """Where a stage keeps its best model: ``pretrain-model/`` for pre-training, ``model/`` for the target."""
        return self.pretrain_model if stage == "pretrain" else self.model

    @property
    def predictions(self) -> Path:
        return self.root / "predictions"

    def prediction(self, split: str, suffix: str = ".jsonl") -> Path:
        return self.predictions / f"{split}{suffix}"

    @property
    def word_vectors(self) -> Path:
        return self.root / "word_vectors.vec"

    @property
    def state(self) -> Path:
        return self.root / "state"

    def stage_state(self, stage: str) -> Path:
        return self.state / stage

    def tensorboard(self, stage: str) -> Path:
        """A stage's TensorBoard event files (``tensorboard: true``); ``tensorboard --logdir RUN/tensorboard`` shows every stage."""
        return self.root / "tensorboard" / stage

    def stage(self, stage: str) -> StageState:
        """The layout of a stage's resumable state (checkpoint folder, loop state, swap folders)."""
        return StageState(self.stage_state(stage))

    @property
    def failure(self) -> Path:
        """Written instead of ``metrics.json`` when a run failed (a NaN loss): such a run is never finished or resumed."""
        return self.root / FAILURE_NAME

    @property
    def finished(self) -> bool:
        return self.metrics.is_file()



__all__ = ["CACHE_DIR_NAME", "DEFAULT_DATA_DIR", "FAILURE_NAME", "RUN_CONFIG_NAME", "RUN_LOG_NAME", "LOOP_STATE_NAME", "METRICS_NAME", "PREVIEW_NAME", "REPORT_NAME", "STAGING_PREFIX",
           "TRANSLATION_CACHE", "AlignedPaths", "DataDir", "RunFolder", "StageState", "TranslationFolder", "model_tag", "other_test_split"]
