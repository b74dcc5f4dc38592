"""One writer per output: an exclusive lock on an output folder (or file), with a record of who holds it.

Two ``xl train`` (or ``xl translate``, ``xl features extract``, ``xl
embeddings``) writing into one folder leave files of both runs side by side,
each file whole but the set mixed. Each of those commands holds this lock on
its output while it writes; a second process gets
``FOLDER is in use by process PID (started TIME)`` and exits 2.

The lock is ``flock`` on ``FOLDER/.xl.lock`` (for a file output,
``.NAME.xl.lock`` beside it), so the kernel releases it when its process
ends, however it ends. The file holds the holder's record (process id, start
time, host, command line) for the message above. A process that was killed
leaves its record behind; the next writer finds the lock free, logs that it
takes over from that process, and goes on. On a clean exit the lock file is
removed (and a folder the lock created and nothing else used). Locks are
advisory and per host: two machines writing one network folder are not
kept apart.

Within one process the lock is re-entrant: a library function that locks
its output may be called by another that holds the same lock.
"""

from __future__ import annotations

import fcntl
import functools
import inspect
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from xlingual.errors import ConfigError, FolderInUseError

logger = logging.getLogger(__name__)

LOCK_NAME = ".xl.lock"


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: what the refusal names, and what a take-over logs."""

    pid: int
    started: str
    host: str = ""
    command: list[str] = field(default_factory=list)

    @classmethod
    def this_process(cls) -> "Holder":
        return cls(os.getpid(), time.strftime("%Y-%m-%dT%H:%M:%S%z"), socket.gethostname(), list(sys.argv))

    @classmethod
    def parse(cls, text: str) -> "Holder | None":
        """The record a lock file holds; None when it is empty or not a record (a holder that had not written it yet)."""
        try:
            values = json.loads(text)
            return cls(int(values["pid"]), str(values["started"]), str(values.get("host", "")), list(values.get("command", [])))
        except (ValueError, TypeError, KeyError):
            return None


_held: dict[Path, tuple[int, int]] = {}
"""Lock file -> (descriptor, nesting depth) of the locks this process holds."""


def lock_file_for(output: str | Path, folder: bool = True) -> Path:
    """Where the lock of ``output`` lives: inside a folder, beside a file."""
    output = Path(output)
    return output / LOCK_NAME if folder else output.with_name(f".{output.name}{LOCK_NAME}")


@contextmanager
def output_lock(output: str | Path, folder: bool = True) -> Iterator[Path]:
    """Hold the exclusive lock of ``output`` (a folder, created if missing; with ``folder=False`` a file) in the block.

    Raises :class:`FolderInUseError` at once when another process holds it.
    Yields ``output`` as a Path.
    """
    output = Path(output)
    if folder and output.exists() and not output.is_dir():
        raise ConfigError(f"{output}: exists and is not a folder; choose another output folder")
    created = folder and not output.exists()
    try:
        (output if folder else output.parent).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"{output}: cannot create the output folder ({err.strerror or err})") from None
    lock_path = lock_file_for(output, folder).resolve()
    if lock_path in _held:
        fd, depth = _held[lock_path]
        _held[lock_path] = (fd, depth + 1)
        try:
            yield output
        finally:
            _held[lock_path] = (fd, depth)
        return
    fd = _acquire(lock_path, output)
    _held[lock_path] = (fd, 1)
    try:
        yield output
    finally:
        del _held[lock_path]
        _release(fd, lock_path)
        if created:
            try:
                output.rmdir()  # only when nothing but the lock was ever written there
            except OSError:
                pass


def locks_output(parameter: str, folder: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a stage function so it holds :func:`output_lock` on its argument ``parameter`` while it runs.

    The one way a library function that writes an output set takes the
    lock, so the CLI, Python callers and other stages get it alike.
    """
    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def locked(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            with output_lock(bound.arguments[parameter], folder):
                return function(*args, **kwargs)
        return locked
    return decorate


def _acquire(lock_path: Path, output: Path) -> int:
    while True:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as err:  # a read-only folder, or one we may not write
            raise ConfigError(f"{output}: cannot write here ({err.strerror or err})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = Holder.parse(_read(fd))
            os.close(fd)
            who = f"process {holder.pid} (started {holder.started})" if holder else "another process"
            raise FolderInUseError(f"{output} is in use by {who}") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder removed this file between our open and our lock: lock the new one
    previous = Holder.parse(_read(fd))
    if previous is not None and previous.pid != os.getpid():
        logger.warning("%s: taking over the lock of process %d (started %s), which ended without releasing it",
                       output, previous.pid, previous.started)
    _write(fd, asdict(Holder.this_process()))
    return fd


def _release(fd: int, lock_path: Path) -> None:
    try:
        lock_path.unlink()  # while still locked: a waiting process sees the inode change and retries
    except FileNotFoundError:
        pass
    finally:
        os.close(fd)


def _read(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")


def _write(fd: int, record: dict[str, Any]) -> None:
    data = json.dumps(record).encode("utf-8")
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, data)
    os.fsync(fd)


__all__ = ["LOCK_NAME", "Holder", "lock_file_for", "locks_output", "output_lock"]
