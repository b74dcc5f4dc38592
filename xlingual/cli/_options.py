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

DataDirOption = Annotated[Path, typer.Option("--data-dir", help="Data directory in the layout of 'xl data download' (derived files go beside the datasets).")]
FormatOption = Annotated[Optional[DatasetFormat], typer.Option("--format", "-f", help="File format (guessed from the first line when omitted).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of the table.")]
DeviceOption = Annotated[str, typer.Option("--device", help="auto (a GPU when there is one), cpu, cuda, cuda:1, …")]
SetOption = Annotated[list[str], typer.Option("--set", help="Override a config field, e.g. --set lr=3e-5 (both stages), --set target.epochs=5, "
                                              "--set model.hidden=100, --set images=none. Repeatable.")]
BuildMissingOption = Annotated[bool, typer.Option("--build-missing", help="Build a missing translation or feature cache instead of failing.")]


def format_name(value: DatasetFormat | None) -> str | None:
    """The library's name for a chosen ``--format`` (None: guess from the file)."""
    return value.value if value is not None else None


__all__ = ["BuildMissingOption", "DataDirOption", "DeviceOption", "FormatOption", "JsonOption", "SetOption", "format_name"]
