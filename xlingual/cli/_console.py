"""The console of ``xl``: where log records go, how ``-v`` widens them, and how a command quiets them while it explains itself.

Kept apart from :mod:`xlingual.cli` (which registers the commands) so a
command module can use it without importing the package that imports it.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at emit time, not the stream current at set-up.

    Test runners and notebooks swap ``sys.stderr`` (and close their stand-in
    afterwards); a handler holding the old object would then fail on every log call.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def setup_logging(verbose: int) -> None:
    """INFO from xlingual by default, DEBUG with -v, DEBUG everywhere with -vv."""
    level = logging.DEBUG if verbose else logging.INFO
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(handlers=[handler], level=logging.DEBUG if verbose > 1 else logging.WARNING, force=True)
    logging.getLogger("xlingual").setLevel(level)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


@contextmanager
def quiet_console(hide: Callable[[logging.LogRecord], bool] = lambda record: False) -> Iterator[None]:
    """While it lasts, the console shows only warnings and errors, less those ``hide`` picks (what the command explains itself).

    Only the console handler :func:`setup_logging` installed is filtered: every
    other handler (a run's ``run.log``) still receives every record.
    """
    def keep(record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING and not hide(record)

    handlers = [handler for handler in logging.getLogger().handlers if isinstance(handler, _StderrHandler)]
    for handler in handlers:
        handler.addFilter(keep)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(keep)


def verbose_logging() -> bool:
    """Whether ``xl -v`` asked for debug output (see :func:`setup_logging`)."""
    return logging.getLogger("xlingual").isEnabledFor(logging.DEBUG)
