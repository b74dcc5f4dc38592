"""Options shared by several ``xl`` commands, defined once (as spaCy's ``cli/_util.py`` does).

A command declares ``data_dir: DataDirOption = DEFAULT_DATA_DIR`` instead of
repeating the flag, its spelling and its help; choices are Enums from the
library, so typer lists and checks them and no command validates by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from xlingual.data.formats import DatasetFormat
from xlingual.data.names import DATASETS_FILE_NAME
from xlingual.features.choices import PostImages
from xlingual.scale.runtime import RAY_HELP

DataDirOption = Annotated[Path, typer.Option("--data-dir", help="Data directory in the layout of 'xl data download' (derived files go beside the datasets).")]
DatasetsOption = Annotated[Optional[Path], typer.Option("--datasets", help=f"A {DATASETS_FILE_NAME} declaring more datasets (read beside <data-dir>/{DATASETS_FILE_NAME}, "
                                                        "which is read whenever it exists); see 'xl data list'.")]
FormatOption = Annotated[Optional[DatasetFormat], typer.Option("--format", "-f", help="File format (guessed from the first line when omitted).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of the table.")]
DeviceOption = Annotated[str, typer.Option("--device", help="auto (a GPU when there is one), cpu, cuda, cuda:1, …")]
SetOption = Annotated[list[str], typer.Option("--set", help="Override a config field, e.g. --set lr=3e-5 (both stages), --set target.epochs=5, "
                                              "--set model.hidden=100, --set images=none. Repeatable.")]
FeaturesOption = Annotated[Optional[list[Path]], typer.Option("--features", help="Image feature cache from 'xl features extract' (models that use images); "
                                                                "repeat it for a model that reads several (2M-NER: the clip-vit-b32 and the resnet152 cache).")]
ImageDirOption = Annotated[Optional[Path], typer.Option("--image-dir", help="The dataset's image folder, to find each post's images in the cache "
                                                        "(default: found from the data file's data-directory layout).")]
PostImagesOption = Annotated[PostImages, typer.Option("--images", help="all: the mean over a post's images (the paper's method); one: one image chosen by --seed.")]
ImageSeedOption = Annotated[Optional[int], typer.Option("--seed", help="Seed for '--images one' and for the random crops of a 2M-NER model with "
                                                          "model.resnet=reference (default: the seed of the run the model was trained in, else 0).")]
BuildMissingOption = Annotated[bool, typer.Option("--build-missing", help="Build a missing translation or feature cache instead of failing.")]
RayOption = Annotated[Optional[str], typer.Option("--ray", metavar="[ADDRESS]", help=RAY_HELP)]
WorkersOption = Annotated[int, typer.Option("--workers", min=0, help="With --ray: workers, each loading the model once (0: as many as the cluster holds).")]
GpusPerWorkerOption = Annotated[float, typer.Option("--gpus-per-worker", min=0, help="With --ray: GPUs each worker reserves (0: CPU workers).")]


def format_name(value: DatasetFormat | None) -> str | None:
    """The library's name for a chosen ``--format`` (None: guess from the file)."""
    return value.value if value is not None else None


__all__ = [
    "BuildMissingOption", "DataDirOption", "DatasetsOption", "DeviceOption", "FeaturesOption", "FormatOption", "GpusPerWorkerOption", "ImageDirOption",
    "ImageSeedOption", "JsonOption", "PostImagesOption", "RayOption", "SetOption", "WorkersOption", "format_name",
]
