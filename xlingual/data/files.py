"""Where a command reads "files of a dataset", a folder stands for the dataset files it holds.

One rule for every such command (``xl data stats``, ``xl data validate``,
``xl data compare``, ``xl translate --input``): a folder means its ``*.txt``
files in name order, the files ``xl data download`` and ``xl translate``
write (a translation folder's ``.jsonl`` twins and reports are not read twice).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from xlingual.errors import ConfigError

DATASET_FILE_PATTERN = "*.txt"


def dataset_files(path: str | Path) -> list[Path]:
    """``path`` itself for a file; for a folder, its dataset files (an error naming the folder when it holds none)."""
    path = Path(path)
    if not path.is_dir():
        return [path]
    found = sorted(p for p in path.glob(DATASET_FILE_PATTERN) if p.is_file())
    if not found:
        raise ConfigError(f"{path}: no dataset files ({DATASET_FILE_PATTERN}) in this folder")
    return found


def expand_dataset_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Each path as :func:`dataset_files` reads it, in the order given."""
    return [file for path in paths for file in dataset_files(path)]


__all__ = ["DATASET_FILE_PATTERN", "dataset_files", "expand_dataset_paths"]
