"""A Twitter2017 folder made from the packaged sample, for ``xl translate --dataset twitter2017`` without ../shared."""

from __future__ import annotations

from pathlib import Path

from xlingual.data.formats import read_samples, write_samples
from xlingual.workspace import DataDir


def twitter2017_from_sample(data_dir: Path, posts: int = 6) -> Path:
    """Write ``data_dir``'s Twitter2017 splits from the first ``posts`` posts of each Twitter2015 sample split there."""
    layout = DataDir(data_dir)
    for split in ("train", "dev", "test"):
        samples = read_samples(layout.split_file("twitter2015", split))[:posts]
        target = layout.split_file("twitter2017", split)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_samples(target, samples, "twitter")
    return data_dir
