"""Every path convention of xlingual, in one place: the data directory and the run folder.

Nothing else in the library builds these paths; it asks a :class:`DataDir` or
a :class:`RunFolder`. So a layout decision (where translations go, what a run
folder holds) is read and changed here only.

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
    state/<stage>/       resumable training state (removed parts once a stage is done)
    tensorboard/<stage>/ TensorBoard event files: loss and learning rate per step, dev F1 per evaluation (tensorboard: true)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from xlingual.data.datasets import DatasetSpec, available_datasets, get_dataset

DEFAULT_DATA_DIR = Path("data")
METRICS_NAME = "metrics.json"
"""The file whose presence marks a finished run (``xl report`` searches for it)."""


def model_tag(model: str) -> str:
    """A folder-safe name for a model id or path (``Helsinki-NLP/opus-mt-en-zh`` -> ``opus-mt-en-zh``)."""
    name = Path(str(model).rstrip("/")).name or str(model)
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name)


@dataclass(frozen=True)
class AlignedPaths:
    """The files one alignment writes into its output folder (``aligned.<src>-<tgt>/`` or any ``--output``)."""

    root: Path

    @property
    def src_vectors(self) -> Path:
        return self.root / "vectors-src.vec"

    @property
    def tgt_vectors(self) -> Path:
        return self.root / "vectors-tgt.vec"

    @property
    def mapping(self) -> Path:
        return self.root / "mapping.npy"

    @property
    def summary(self) -> Path:
        return self.root / "alignment.json"


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
        return self.root / "config.yaml"

    @property
    def environment(self) -> Path:
        return self.root / "environment.json"

    @property
    def log(self) -> Path:
        return self.root / "run.log"

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

    @property
    def failure(self) -> Path:
        """Written instead of ``metrics.json`` when a run failed (a NaN loss): such a run is never finished or resumed."""
        return self.root / "failed.json"

    @property
    def finished(self) -> bool:
        return self.metrics.is_file()



__all__ = ["DEFAULT_DATA_DIR", "METRICS_NAME", "AlignedPaths", "DataDir", "RunFolder", "model_tag"]
