"""Finding each post's image files in an image folder.

One rule serves the built-in datasets and their translations: a post owns the
files whose stem equals its id (Twitter: ``1015799.jpg``) or starts with its id
and an underscore (CMNER: ``L364I3366_w0cl44p.jpg``). A bare prefix match would
be wrong: 260 Twitter2015 ids are prefixes of other ids (``377`` vs ``37771``).
A declared dataset names one of the two rules (``image_names: stem | prefix``).
"""

from __future__ import annotations

import functools
import time
from collections import defaultdict
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from xlingual.data.sample import Sample
from xlingual.errors import ImageError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"})


class ImageNames(str, Enum):
    """How a post's image files are named: ``stem`` (``<id>.jpg``), ``prefix`` (``<id>_*.jpg``) or either (the built-ins)."""

    STEM = "stem"
    PREFIX = "prefix"
    ANY = "any"


def count_images(folder: str | Path) -> int:
    """Image files directly in ``folder`` (0 when it does not exist)."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    return sum(1 for entry in folder.iterdir() if entry.suffix.lower() in IMAGE_SUFFIXES and entry.is_file())


class ImageIndex:
    """The image files of one folder, indexed by stem and/or by every ``<prefix>_`` of the stem, as ``names`` says."""

    def __init__(self, folder: str | Path, names: ImageNames | str = ImageNames.ANY) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise ImageError(f"{self.folder}: image folder does not exist")
        names = ImageNames(names)
        self._by_key: dict[str, list[str]] = defaultdict(list)
        count = 0
        for entry in sorted(self.folder.iterdir()):
            if entry.suffix.lower() not in IMAGE_SUFFIXES or not entry.is_file():
                continue
            count += 1
            stem = entry.name[: -len(entry.suffix)]
            if names is not ImageNames.PREFIX:
                self._by_key[stem].append(entry.name)
            if names is not ImageNames.STEM:
                for i, char in enumerate(stem):
                    if char == "_" and i > 0:
                        self._by_key[stem[:i]].append(entry.name)
        self.size = count

    @classmethod
    def of(cls, folder: str | Path, names: ImageNames | str = ImageNames.ANY) -> "ImageIndex":
        """The index of ``folder`` as it is now, built once per version of the folder's listing.

        A run reads its train, dev and test splits (and a translation's) from
        one image folder: listing and stating every file for each split cost
        seconds on a folder of tens of thousands of photos. The key holds the
        folder's modification time, which changes whenever a file is added,
        removed or renamed in it, so an edited folder is indexed again.
        """
        path = Path(folder)
        try:
            listed = path.stat().st_mtime_ns
        except OSError:
            return cls(path, names)  # not there: the constructor says so
        if time.time_ns() - listed < RACY_NS:
            return cls(path, names)
        return _index_of(path, path.absolute(), ImageNames(names), listed)

    def lookup(self, sample_id: str) -> list[str]:
        """File names belonging to ``sample_id``, sorted; empty when it has none."""
        return sorted(set(self._by_key.get(sample_id, [])))


RACY_NS = 2_000_000_000
"""A folder changed less than this long ago is indexed afresh: a file system's clock ticks coarsely, so two changes within one
tick leave one modification time (git treats such "racily clean" files the same way)."""


@functools.lru_cache(maxsize=32)
def _index_of(folder: Path, _absolute: Path, names: ImageNames, _listed_ns: int) -> ImageIndex:
    return ImageIndex(folder, names)


@dataclass
class ImageReport:
    """How many samples found their images, and which did not."""

    samples: int = 0
    with_images: int = 0
    images: int = 0
    missing_ids: list[str] = field(default_factory=list)

    @property
    def missing(self) -> int:
        return len(self.missing_ids)

    def summary(self, show: int = 5) -> str:
        text = f"{self.with_images}/{self.samples} samples have images ({self.images} files)"
        if self.missing_ids:
            first = ", ".join(self.missing_ids[:show])
            more = f", … ({self.missing} in all)" if self.missing > show else ""
            text += f"; missing for {first}{more}"
        return text


def attach_images(samples: list[Sample], folder: str | Path | ImageIndex, names: ImageNames | str = ImageNames.ANY) -> ImageReport:
    """Set each sample's ``images`` from the folder; samples without images get ``[]`` and are reported.

    The key is ``meta['source_id']`` when a translated sample carries one, so
    translations find the pictures of the post they came from. ``names`` is the
    naming rule when ``folder`` is a path (an index keeps its own).
    """
    index = folder if isinstance(folder, ImageIndex) else ImageIndex.of(folder, names)
    report = ImageReport(samples=len(samples))
    for sample in samples:
        key = str(sample.meta.get("source_id", sample.id))
        sample.images = index.lookup(key)
        if sample.images:
            report.with_images += 1
            report.images += len(sample.images)
        else:
            report.missing_ids.append(sample.id)
    return report
