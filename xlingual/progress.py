"""Progress bars with one set of defaults for every long-running stage.

Bars go to stderr, so ``--json`` output on stdout stays machine-readable, and
are switched off when stderr is not a terminal (CI logs, tests) unless
``XLINGUAL_PROGRESS=1`` forces them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

_transient = False


@contextmanager
def transient_bars() -> Iterator[None]:
    """Bars vanish when done instead of leaving a line each: a command that prints one summary line per stage (the demo)."""
    global _transient
    previous, _transient = _transient, True
    try:
        yield
    finally:
        _transient = previous


def progress_enabled() -> bool:
    forced = os.environ.get("XLINGUAL_PROGRESS")
    if forced is not None:
        return forced not in ("0", "", "false")
    return sys.stderr.isatty()


def progress_bar(iterable: Iterable[T] | None = None, total: int | None = None, desc: str = "", unit: str = "it", **kwargs) -> tqdm:
    """A tqdm bar on stderr, disabled off-terminal; use as an iterator or call ``update``."""
    return tqdm(
        iterable, total=total, desc=desc, unit=unit, file=sys.stderr, disable=not progress_enabled(),
        dynamic_ncols=True, mininterval=0.5, leave=kwargs.pop("leave", True) and not _transient, **kwargs,
    )
