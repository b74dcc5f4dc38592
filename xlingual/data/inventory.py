"""What of each dataset a data directory holds (``xl data list``).

Counting is cheap on purpose (header lines, blocks, JSON lines); whether the
files are well-formed is ``xl data validate``'s question.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xlingual.data.datasets import DatasetSpec, available_datasets
from xlingual.data.formats import count_posts
from xlingual.data.images import count_images
from xlingual.errors import DataFormatError


@dataclass(frozen=True)
class SplitOnDisk:
    split: str
    path: Path
    posts: int | None
    """None when the file is missing; -1 when it cannot be read as text."""

    def describe(self) -> str:
        if self.posts is None:
            return "missing"
        if self.posts < 0:
            return "unreadable"
        return f"{self.posts:,} posts"


@dataclass(frozen=True)
class DatasetOnDisk:
    """A dataset of the registry and what of it is on disk."""

    spec: DatasetSpec
    splits: list[SplitOnDisk]
    images: Path
    image_count: int | None
    """None when the image folder is missing."""

    @property
    def source(self) -> str:
        return "built-in" if self.spec.declared is None else self.spec.declared.where()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.spec.name, "language": self.spec.lang, "format": self.spec.format, "labels": self.spec.label_kind.value,
            "source": self.source, "image_names": self.spec.image_names.value,
            "splits": {s.split: {"path": str(s.path), "posts": s.posts} for s in self.splits},
            "images": {"path": str(self.images), "count": self.image_count},
        }


def _split_on_disk(spec: DatasetSpec, data_dir: Path, split: str) -> SplitOnDisk:
    path = spec.split_path(data_dir, split)
    if not path.is_file():
        return SplitOnDisk(split, path, None)
    try:
        return SplitOnDisk(split, path, count_posts(path, spec.format))
    except DataFormatError:
        return SplitOnDisk(split, path, -1)


def inventory(data_dir: str | Path, datasets_file: str | Path | None = None) -> list[DatasetOnDisk]:
    """Every dataset (built-ins, then declared) with its splits' post counts and its image count, or what is missing."""
    root = Path(data_dir)
    found = []
    for spec in available_datasets(root, datasets_file):
        images = spec.images_path(root)
        found.append(DatasetOnDisk(spec, [_split_on_disk(spec, root, split) for split in spec.split_files], images,
                                   count_images(images) if images.is_dir() else None))
    return found


__all__ = ["DatasetOnDisk", "SplitOnDisk", "inventory"]
