"""The small made-up sample that ships with the package, laid out as a data directory on demand.

Thirty invented tweets (Twitter2015 format) and thirty-four invented
Weibo-style posts (CMNER format), with entities of all four types, split into
train/dev/test. As in real posts, the same people, places and organisations
recur across the splits (and across the two languages, through the sample
glossary), so the demo's tiny models have something real to learn and score
above zero honestly. They are stored flat in ``xlingual/samples/`` and written into
the layout of ``xl data download`` when needed, so the demo and the tests run
every command exactly as on real data.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from xlingual.data.datasets import get_dataset
from xlingual.workspace import DataDir

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "samples"
SAMPLE_DATASETS: tuple[str, ...] = ("twitter2015", "cmner")


def sample_file(dataset: str, split: str) -> Path:
    """The packaged sample file of one dataset split (e.g. ``twitter2015-sample.valid.txt``)."""
    spec = get_dataset(dataset)
    return SAMPLES_DIR / f"{dataset}-sample.{spec.split_name(split)}.txt"


def write_sample_data_dir(data_dir: str | Path) -> Path:
    """Copy the sample into ``data_dir`` in the data-directory layout; existing files are kept."""
    data_dir = Path(data_dir)
    for dataset in SAMPLE_DATASETS:
        spec = get_dataset(dataset)
        for split in spec.split_files:
            target = DataDir(data_dir).split_file(spec.name, split)
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(sample_file(dataset, split), target)
    return data_dir
