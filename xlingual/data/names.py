"""The names the dataset registry and its declarations file share: splits, the file's name, what a dataset may be called.

Kept apart from :mod:`xlingual.data.declared` so that commands which never
read a ``datasets.yaml`` (``xl --help``) do not load pydantic.
"""

from __future__ import annotations

import re

SPLITS: tuple[str, ...] = ("train", "dev", "test")
"""The splits, by the library's names (a dataset's files may be called otherwise: Twitter's ``valid.txt``)."""

DATASETS_FILE_NAME = "datasets.yaml"
"""The declarations a data directory holds (``<data-dir>/datasets.yaml``), read whenever the data directory is."""

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,39}")
"""A declared dataset's name: it becomes part of folder and run names, so no dots, slashes or capitals."""

__all__ = ["DATASETS_FILE_NAME", "NAME_PATTERN", "SPLITS"]
