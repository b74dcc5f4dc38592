"""The names the dataset registry and its declaration files share: splits, the files' names, what a dataset may be called.

Kept apart from :mod:`xlingual.data.declared` (the reading and checking of
those files), which needs these names and pydantic; the names need neither.
"""

from __future__ import annotations

import re

SPLITS: tuple[str, ...] = ("train", "dev", "test")
"""The splits, by the library's names (a dataset's files may be called otherwise: Twitter's ``valid.txt``)."""

DATASETS_FILE_NAME = "datasets.yaml"
"""The declarations a data directory holds (``<data-dir>/datasets.yaml``), read whenever the data directory is."""

BUILTIN_FILE_NAME = "builtin_datasets.yaml"
"""The package's catalogue of its built-in datasets (package data in ``xlingual/data/``), in the declarations' vocabulary."""

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,39}")
"""A declared dataset's name: it becomes part of folder and run names, so no dots, slashes or capitals."""

__all__ = ["BUILTIN_FILE_NAME", "DATASETS_FILE_NAME", "NAME_PATTERN", "SPLITS"]
