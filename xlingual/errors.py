"""One exception family for everything the library reports to users.

The CLI catches :class:`XlingualError` (and only it), prints ``str(err)`` on one
line and exits with status 2. Any other exception is a bug and keeps its
traceback.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Hashable
from pathlib import Path


class XlingualError(Exception):
    """Base class of every error a user can cause and fix (bad input, bad option, missing model)."""


class DataFormatError(XlingualError):
    """A dataset file that does not follow its format; ``str()`` is ``path:line: message``."""

    def __init__(self, path: str | Path | None, line: int | None, message: str) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.message = message
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.path or "<input>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {shortened(self.message)}"


MAX_MESSAGE_CHARS = 500
"""Messages quote the bad content (a header, a label, an id); a 5 MB line must not become 5 MB of stderr."""


def shortened(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``message`` with its middle cut out when longer than ``limit``: the start quotes the content, the end says what is wrong."""
    if len(message) <= limit:
        return message
    keep = (limit - 40) // 2
    return f"{message[:keep]}…[{len(message) - 2 * keep:,} characters cut]…{message[-keep:]}"


class DataValidationError(XlingualError):
    """Several format errors in one file, collected so a user can fix them in one pass."""

    def __init__(self, errors: list[DataFormatError], total: int | None = None) -> None:
        self.errors = errors
        self.total = total if total is not None else len(errors)
        first = errors[0] if errors else None
        more = self.total - 1
        suffix = f" (and {more} more error{'s' if more != 1 else ''})" if more > 0 else ""
        super().__init__(f"{first}{suffix}" if first else "invalid data")


class ModelNotFoundError(XlingualError):
    """A model (hub id or local path) that cannot be loaded here."""


class ConfigError(XlingualError):
    """A configuration value or command-line option that is invalid."""


class TranslatorError(XlingualError):
    """A translator (backend or plug-in) that raised, or returned something other than one string per text."""


class ImageError(XlingualError):
    """An image folder or image file that cannot be used."""


class NetworkError(XlingualError):
    """A download that failed (no network, bad checksum, HTTP error)."""


class FolderInUseError(XlingualError):
    """An output folder (or file) another process is writing: ``FOLDER is in use by process PID (started TIME)``."""


class TrainingDivergedError(XlingualError):
    """A loss or gradient norm that became NaN or infinite: ``step N: loss is nan (...)``; the run is marked failed."""


class OutputSetError(XlingualError):
    """A file of an output set that does not match the manifest written with it (see :mod:`xlingual.output_set`)."""


class CheckpointWriteError(XlingualError):
    """A training checkpoint that could not be written (a full disk, a read-only folder); the previous one is kept."""


STORAGE_ERRNOS = frozenset(getattr(errno, name) for name in (
    "ENOSPC", "EDQUOT", "EFBIG", "EACCES", "EPERM", "EROFS", "EIO", "EMFILE", "ENFILE") if hasattr(errno, name))
"""What the machine, not the code, causes: a full disk or quota, a file we may not write, a read-only or failing disk."""


FREE_SPACE_HINT = "; free some space and run the same command again (finished work is kept)"
"""What a full disk's one-line error adds, wherever the full disk is met (a file write, the SQLite translation cache)."""


def storage_error_message(err: BaseException) -> str | None:
    """``PATH: No space left on device`` for an :class:`OSError` of :data:`STORAGE_ERRNOS`; None for any other error.

    The CLI prints it as its one line (exit 2): a full disk is the user's to
    fix, not a bug to show a traceback for. Writers name the file they were
    writing (:func:`xlingual.io.atomic_open` puts the destination's path on
    the error); ``ENOSPC`` adds that finished work is kept.
    """
    if not isinstance(err, OSError) or err.errno not in STORAGE_ERRNOS:
        return None
    reason = err.strerror or os.strerror(err.errno)
    where = f"{err.filename}: " if err.filename else ""
    hint = FREE_SPACE_HINT if err.errno in (errno.ENOSPC, errno.EDQUOT) else ""
    return f"{where}{reason}{hint}"


def failure_summary(what: str, total: int, failures: dict[Hashable, str], redo: str) -> str:
    """One line for a run some of whose jobs failed: how many, the first with its error, how to redo them.

    Shared by the stages that keep going past a failed job (an experiment grid, Ray shards and parts), so they all say it alike.
    """
    first, error = next(iter(failures.items()))
    more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
    return f"{len(failures)} of {total} {what} failed; {redo}. {first}: {error}{more}"
