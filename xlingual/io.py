"""Atomic file writing: a reader never sees a half-written file.

Everything long-running (translation output, feature caches, checkpoints,
reports) writes to a temporary file in the destination folder and renames it
into place, so an interruption leaves either the old file or the new one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8", newline: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success.

    On an exception the temporary file is removed and ``path`` is untouched.
    The file gets the permissions a plain ``open(path, "w")`` would give (0666
    less the umask): ``mkstemp`` creates it 0600, which would lock colleagues
    sharing a data directory out of it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    binary = "b" in mode
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~current_umask())
        with os.fdopen(fd, mode, encoding=None if binary else encoding, newline=None if binary else newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
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


def atomic_write_text(path: str | Path, text: str, newline: str | None = "") -> None:
    """Write ``text`` to ``path`` atomically; ``newline=""`` keeps line endings as given."""
    with atomic_open(path, "w", newline=newline) as handle:
        handle.write(text)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON, atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
