"""Atomic file writing: a reader never sees a half-written file.

Everything long-running (translation output, feature caches, checkpoints,
reports) writes to a temporary file in the destination folder and renames it
into place, so an interruption leaves either the old file or the new one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

TMP_SUFFIX = ".tmp"
"""Suffix of a file or folder being written beside its destination (renamed into place when complete)."""
OLD_SUFFIX = ".old"
"""Suffix of a folder moved aside while its replacement is renamed in (removed once the new one is in place)."""


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8", newline: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success.

    On an exception the temporary file is removed and ``path`` is untouched.
    The file gets the permissions a plain ``open(path, "w")`` would give (0666
    less the umask): ``mkstemp`` creates it 0600, which would lock colleagues
    sharing a data directory out of it.

    An :class:`OSError` of the write itself (a full disk, a read-only folder)
    carries no file name, or the temporary one; it is raised again naming
    ``path``, so the one-line error says which output could not be written
    (:func:`xlingual.errors.storage_error_message`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _naming(path, any_name=True):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    binary = "b" in mode
    try:
        with _naming(path, tmp):
            os.chmod(tmp, 0o666 & ~current_umask())
            with os.fdopen(fd, mode, encoding=None if binary else encoding, newline=None if binary else newline) as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


@contextmanager
def _naming(path: Path, tmp: str | None = None, any_name: bool = False) -> Iterator[None]:
    """Re-raise an :class:`OSError` that names no file, or the temporary one ``tmp``, as naming ``path``.

    Errors that name another file (one the caller's code was reading) keep
    their name: they are about that file. ``any_name``: rename whatever it names.
    """
    try:
        yield
    except OSError as err:
        if any_name or err.filename is None or (tmp is not None and str(err.filename) == str(tmp)):
            raise OSError(err.errno, err.strerror or str(err), str(path)) from err
        raise


def current_umask() -> int:
    """The process umask, read from /proc where it can be (no window with a changed umask for other threads).

    Elsewhere reading it means setting it, so it is put straight back.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_digest(path: str | Path, algorithm: str = "sha256", **params: Any) -> str:
    """Hex digest of a file's bytes, read in 1 MiB blocks (datasets, weights and images can be large).

    ``params`` go to the hash constructor (e.g. ``digest_size=12`` for blake2b).
    """
    digest = hashlib.new(algorithm, **params)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def temp_sibling(path: str | Path) -> Path:
    """``<path>.tmp``: where a folder is written before it replaces ``path``."""
    path = Path(path)
    return path.with_name(path.name + TMP_SUFFIX)


def old_sibling(path: str | Path) -> Path:
    """``<path>.old``: where ``path`` waits while its replacement moves in (a reader may still find it there)."""
    path = Path(path)
    return path.with_name(path.name + OLD_SUFFIX)


def replace_dir(written: str | Path, path: str | Path) -> None:
    """Put the complete folder ``written`` at ``path``: the old one is moved aside, the new one renamed in, the old one removed.

    At every moment either ``path`` or its :func:`old_sibling` holds a whole folder.
    """
    written, path = Path(written), Path(path)
    old = old_sibling(path)
    if path.exists():
        shutil.rmtree(old, ignore_errors=True)
        path.rename(old)
    written.rename(path)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_write_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty sibling folder to write ``path``'s contents into; it replaces ``path`` when the block ends without error.

    On an exception the sibling is removed and ``path`` is untouched, so a
    folder (a saved model) is never seen half-written. A sibling left by a
    killed process is removed first.
    """
    path = Path(path)
    tmp = temp_sibling(path)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_dir(tmp, path)


def save_png(fig: Any, path: str | Path, dpi: int) -> Path:
    """Save a matplotlib figure as ``path`` (PNG) atomically; the figure stays open (the caller closes it)."""
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=dpi)
    return Path(path)


def atomic_write_text(path: str | Path, text: str, newline: str | None = "") -> None:
    """Write ``text`` to ``path`` atomically; ``newline=""`` keeps line endings as given."""
    with atomic_open(path, "w", newline=newline) as handle:
        handle.write(text)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON, atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
