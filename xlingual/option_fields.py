"""Dataclass fields that are also command-line options: the flag and its help stand beside the default.

transformers' ``HfArgumentParser`` builds its arguments from dataclass fields
and their ``metadata``; the library's options classes do the same, so a
default, its flag and its help are written once. A class declares
``dim: int = option(300, "--dim", "Vector dimension.")``; the CLI turns every
such field into a typer option (:func:`xlingual.cli._option_fields.options_of`).
A field declared the plain way is a library option only. Nothing here imports
typer, so the options classes stay importable without the CLI.
"""

from __future__ import annotations

from dataclasses import Field, dataclass, field
from typing import Any

_METADATA_KEY = "xlingual.flag"


@dataclass(frozen=True)
class Flag:
    """How a field is spelt on the command line, and what its help says."""

    name: str
    help: str


def option(default: Any, flag: str, help: str) -> Any:
    """A dataclass field with ``default`` that the command line offers as ``flag``."""
    return field(default=default, metadata={_METADATA_KEY: Flag(flag, help)})


def flag_of(declared: Field) -> Flag | None:
    """The command-line flag of a dataclass field; None for a library-only field."""
    return declared.metadata.get(_METADATA_KEY)
