"""A persistent translation cache, so no text is translated twice.

Entries are keyed by a hash of the translator's ``cache_key`` (model,
direction, decoding options) and the source text, so a changed option never
reads a stale entry. Every batch is committed as soon as it is translated:
after Ctrl-C or ``kill -9`` a rerun finds everything finished so far, and
because projection is deterministic given the translations, the resumed
run's output is identical to an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from xlingual.errors import FREE_SPACE_HINT, XlingualError
from xlingual.translate.base import PendingTranslations, Translator, submit, too_long, translator_cache_key, translator_name

logger = logging.getLogger(__name__)


def _entry_key(translator_key: str, text: str) -> str:
    return hashlib.sha256(f"{translator_key}\x00{text}".encode("utf-8")).hexdigest()


_STORAGE_CODES = {getattr(sqlite3, name): reason for name, reason in (
    ("SQLITE_FULL", "No space left on device"), ("SQLITE_READONLY", "cannot write (read-only)"),
    ("SQLITE_CANTOPEN", "cannot open"), ("SQLITE_PERM", "Permission denied"), ("SQLITE_IOERR", "input/output error"),
) if hasattr(sqlite3, name)}
"""SQLite's result codes for what the machine causes, not a damaged file (Python 3.11+ puts the code on the error)."""


class TranslationCache:
    """An SQLite table ``key -> translation``; safe to reopen after an interrupted run."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._damage_reported():
            self._db = sqlite3.connect(str(self.path))
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS translations (key TEXT PRIMARY KEY, source TEXT, target TEXT)")
            self._db.commit()

    @contextmanager
    def _damage_reported(self, path: str | Path | None = None) -> Iterator[None]:
        """SQLite's errors on a damaged file (a garbled page, not a database) as one line naming the file.

        A full disk or a folder we may not write is no damage: deleting the
        cache would throw finished translations away, so those say what they are.
        """
        try:
            yield
        except sqlite3.DatabaseError as err:
            code = getattr(err, "sqlite_errorcode", -1) & 0xFF  # the primary code of an extended one
            if code in _STORAGE_CODES:
                hint = FREE_SPACE_HINT if code == sqlite3.SQLITE_FULL else ""
                raise XlingualError(f"{path or self.path}: {_STORAGE_CODES[code]} ({err}){hint}") from None
            raise XlingualError(f"{path or self.path}: translation cache is unusable ({err}); delete it to start afresh") from None

    def get_many(self, translator_key: str, texts: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        keys = {_entry_key(translator_key, t): t for t in texts}
        items = list(keys)
        with self._damage_reported():
            for start in range(0, len(items), 500):
                chunk = items[start:start + 500]
                rows = self._db.execute(
                    f"SELECT key, target FROM translations WHERE key IN ({','.join('?' * len(chunk))})", chunk
                ).fetchall()
                for key, target in rows:
                    if not isinstance(target, str):
                        raise sqlite3.DatabaseError(f"an entry holds {type(target).__name__}, not a translation")
                    found[keys[key]] = target
        return found

    def put_many(self, translator_key: str, pairs: dict[str, str]) -> None:
        with self._damage_reported():
            self._db.executemany(
                "INSERT OR REPLACE INTO translations (key, source, target) VALUES (?, ?, ?)",
                [(_entry_key(translator_key, s), s, t) for s, t in pairs.items()],
            )
            self._db.commit()

    def absorb(self, other: str | Path) -> int:
        """Copy every entry of another cache file into this one (entries this one has are kept); returns how many were new.

        ``xl translate --ray`` gives each shard its own cache; absorbing them
        afterwards lets a later single-process run reuse every translation.
        """
        before = len(self)
        with self._damage_reported(other):
            self._db.execute("ATTACH DATABASE ? AS other", (str(other),))
            try:
                self._db.execute("INSERT OR IGNORE INTO translations (key, source, target) SELECT key, source, target FROM other.translations")
                self._db.commit()
            finally:
                self._db.execute("DETACH DATABASE other")
        return len(self) - before

    def __len__(self) -> int:
        with self._damage_reported():
            return self._db.execute("SELECT COUNT(*) FROM translations").fetchone()[0]

    def close(self) -> None:
        self._db.close()


@dataclass
class CacheStats:
    """What a :class:`CachedTranslator` saved: texts asked for, answered from cache, sent to MT."""

    requested: int = 0
    cache_hits: int = 0
    mt_calls: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"requested": self.requested, "cache_hits": self.cache_hits, "mt_calls": self.mt_calls}


class CachedTranslator:
    """Wraps a translator: duplicates and cached texts never reach it; new results are stored at once.

    Texts are sent to the inner translator in slices of ``commit_every`` so a
    long call is committed piece by piece. :meth:`submit` starts a list without
    waiting for it (see :func:`~xlingual.translate.base.submit`); slices are
    collected and committed in the order they were submitted, so a text already
    on its way is never sent twice and the cache never holds a later slice
    without the earlier ones.
    """

    def __init__(self, inner: Translator, cache: TranslationCache | None, commit_every: int = 256) -> None:
        self.inner = inner
        self.cache = cache
        self.key = translator_cache_key(inner)
        self.commit_every = commit_every
        self.stats = CacheStats()
        self._memory: dict[str, str] = {}
        self._in_flight: set[str] = set()
        self._queue: deque[tuple[int, list[str], PendingTranslations]] = deque()
        self._submitted = 0  # slices submitted so far; a slice's number is its place in that order

    @property
    def cache_key(self) -> str:
        return self.key

    @property
    def label(self) -> str:
        """The wrapped translator's name, so an error names the backend or plug-in, not the cache."""
        return translator_name(self.inner)

    def too_long(self, texts: list[str]) -> list[bool]:
        """The inner translator's answer (a cached text was short enough when it was translated)."""
        return too_long(self.inner, texts)

    def translate(self, texts: list[str]) -> list[str]:
        return self.submit(texts)()

    def submit(self, texts: list[str]) -> PendingTranslations:
        texts = list(texts)
        self.stats.requested += len(texts)
        unique = list(dict.fromkeys(texts))
        missing = [t for t in unique if t not in self._memory and t not in self._in_flight]
        if missing and self.cache is not None:
            stored = self.cache.get_many(self.key, missing)
            self._memory.update(stored)
            missing = [t for t in missing if t not in stored]
        for start in range(0, len(missing), self.commit_every):
            chunk = missing[start:start + self.commit_every]
            self._queue.append((self._submitted, chunk, submit(self.inner, chunk)))
            self._submitted += 1
            self._in_flight.update(chunk)
        self.stats.cache_hits += len(texts) - len(missing)
        needed = self._submitted  # every slice submitted up to now: this call's own and the earlier ones it may share texts with

        def result() -> list[str]:
            self._collect(needed)
            return [self._memory[t] for t in texts]

        return result

    def _collect(self, count: int) -> None:
        """Wait for and commit the slices numbered below ``count``, oldest first.

        :func:`~xlingual.translate.base.submit` has checked each slice (one
        string per text) before it gets here; a slice that fails raises before
        anything of it is cached.
        """
        while self._queue and self._queue[0][0] < count:
            _, chunk, pending = self._queue[0]
            outputs = pending()
            self._queue.popleft()
            fresh = dict(zip(chunk, outputs))
            self.stats.mt_calls += len(chunk)
            if self.cache is not None:
                self.cache.put_many(self.key, fresh)
            self._memory.update(fresh)
            self._in_flight.difference_update(chunk)
