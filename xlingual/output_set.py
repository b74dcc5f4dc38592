"""Output sets: the files one stage writes together, seen by a reader as the old set or the new one, never a mix.

Each file is written atomically (:mod:`xlingual.io`), but a set of files is
not: a full disk after ``valid.txt`` and before ``valid.jsonl`` and
``report.json`` used to leave a folder whose files came from two runs. Two
parts make a set whole:

* **A manifest.** The set's manifest file (``report.json`` of a translation,
  ``metrics.json`` of a training run) is written last and lists every other
  file of the set under :data:`MANIFEST_KEY` with its size and SHA-256. A
  reader checks the files it uses against it (:func:`check_set`) and refuses
  one that does not match with one line naming the file and how to rebuild
  it. A manifest without that key comes from an older version and is
  trusted as before.

* **Staging** (:class:`StagedSet`), where a set replaces an earlier one in a
  folder that also holds what must survive (a translation folder's
  ``.cache/``, so the folder itself cannot be swapped). The whole set is
  written into a temporary folder inside the output folder first: a full
  disk, a read-only file system or an interrupt while writing leaves the
  old set untouched and the temporary folder removed. Only then are the
  files moved in, each by a rename within one file system (no copying, no
  new space needed): the manifest first, then the others. From the first
  rename on, the manifest in place is the new one, so a file that is still
  old (or already new but not yet complete as a set) does not match it and
  a reader refuses it; a failed rename puts the old files back, manifest
  last. Only a hard kill during the renames (microseconds) leaves a folder
  in between, and that folder is refused by every reader until the same
  command is run again.

A training run needs no staging: a finished run is never rewritten, and its
``metrics.json`` (the manifest) is the last file the run writes; a folder
without it is an unfinished run that ``xl report`` does not list.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from xlingual.errors import OutputSetError
from xlingual.io import file_digest
from xlingual.workspace import STAGING_PREFIX

logger = logging.getLogger(__name__)

MANIFEST_KEY = "output_files"
"""The manifest's key for ``{relative path: {"bytes": size, "sha256": digest}}`` of the set's other files."""



def describe_files(root: Path, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Size and SHA-256 of each file ``root / name``: what the manifest records."""
    return {name: {"bytes": (root / name).stat().st_size, "sha256": file_digest(root / name)} for name in sorted(names)}


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The files the manifest at ``path`` lists; None when there is no manifest, or one written before manifests listed files."""
    values = read_manifest_json(path)
    return None if values is None else manifest_files(values, path)


def read_manifest_json(path: Path) -> Any:
    """The parsed JSON of the manifest at ``path`` (None when there is none), for a reader that wants its other keys too."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise OutputSetError(f"{path}: not readable JSON ({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None


def manifest_files(values: Any, path: Path) -> dict[str, Any] | None:
    """The files a manifest's parsed JSON ``values`` lists (None: none listed), checked as :func:`read_manifest` checks them.

    For a reader that has parsed the manifest already (``xl report`` reads
    each run's ``metrics.json`` once); ``path`` names the manifest in errors.
    """
    listed = values.get(MANIFEST_KEY) if isinstance(values, dict) else None
    if listed is None:
        return None
    if not isinstance(listed, dict) or not all(isinstance(v, dict) and "bytes" in v and "sha256" in v for v in listed.values()):
        raise OutputSetError(f"{path}: '{MANIFEST_KEY}' is not a list of files with their size and digest")
    outside = next((name for name in listed if Path(name).is_absolute() or ".." in Path(name).parts), None)
    if outside is not None:  # a manifest names files of its own folder only: nothing else is read because one says so
        raise OutputSetError(f"{path}: '{MANIFEST_KEY}' names {outside!r}, outside its folder")
    return listed


def check_set(root: Path, manifest: Path, names: Sequence[str] | None = None, digests: bool = True, rebuild: str = "") -> bool:
    """Refuse a file of ``root`` that does not belong to the set ``manifest`` describes; True when a manifest was checked.

    ``names``: the files the caller reads (None: every file the manifest
    lists). A name the manifest does not list is refused too: that file is
    left from another set. ``digests=False`` compares sizes only, for a quick
    look before the reading that checks digests. ``rebuild`` tells the user
    how to write the set again (a command).
    """
    listed = read_manifest(manifest)
    if listed is None:
        return False
    check_listed(root, manifest, listed, names, digests, rebuild)
    return True


def check_listed(root: Path, manifest: Path, listed: dict[str, Any], names: Sequence[str] | None = None, digests: bool = True,
                 rebuild: str = "") -> None:
    """:func:`check_set` against a manifest's files already read (:func:`manifest_files`); ``manifest`` names it in errors."""
    how = f": {rebuild}" if rebuild else ""
    for name in listed if names is None else names:
        path = root / name
        expected = listed.get(name)
        if expected is None:
            raise OutputSetError(f"{path}: not part of the set {manifest.name} describes (a file left from another run){how}")
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise OutputSetError(f"{path}: missing, though {manifest.name} lists it (the set was not written whole){how}") from None
        if size != expected["bytes"]:
            raise OutputSetError(f"{path}: {size} bytes, {manifest.name} says {expected['bytes']} (the file was changed or cut, "
                                 f"or the set was not written whole){how}")
        if digests and file_digest(path) != expected["sha256"]:
            raise OutputSetError(f"{path}: its SHA-256 differs from the one {manifest.name} records (the file was changed, "
                                 f"or the set was not written whole){how}")


class StagedSet:
    """A set written into ``folder`` (a temporary folder inside ``target``), then moved into ``target`` by :meth:`commit`.

    Use as a context manager: on leaving it, the temporary folder is removed,
    whether the set was committed or not. See the module docstring for the
    order of the renames and what a reader sees meanwhile. The caller holds
    ``target``'s lock (:func:`xlingual.lock.output_lock`): a set left being
    written by a killed process is removed here as stale.
    """

    def __init__(self, target: str | Path) -> None:
        self.target = Path(target)
        self.folder: Path | None = None

    def __enter__(self) -> "StagedSet":
        self.target.mkdir(parents=True, exist_ok=True)
        for stale in self.target.glob(f"{STAGING_PREFIX}*"):
            logger.info("%s: removing a set a killed run left half-written", stale)
            shutil.rmtree(stale, ignore_errors=True)
        self.folder = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.target))
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, traceback: object) -> None:
        if self.folder is None:
            return
        shutil.rmtree(self.folder, ignore_errors=True)
        if isinstance(exc, OSError) and exc.filename and Path(exc.filename).is_relative_to(self.folder):
            # the user knows the output's name, not the temporary folder's (removed by now)
            named = self.target / Path(exc.filename).relative_to(self.folder)
            raise OSError(exc.errno, exc.strerror, str(named)) from exc

    def commit(self, manifest: str) -> list[Path]:
        """Move every file of the staged set into ``target``, ``manifest`` first; returns their new paths.

        A failure (an :class:`OSError`, an interrupt) puts the files the set
        replaced back, in reverse order, and is raised again.
        """
        assert self.folder is not None, "commit() inside the with block"
        staged = sorted(p.name for p in self.folder.iterdir() if p.is_file())
        if manifest not in staged:
            raise ValueError(f"{manifest} is not in the staged set")
        replaced = self.folder / ".replaced"
        replaced.mkdir()
        moved: list[tuple[str, bool]] = []  # (name, whether an old file was set aside)
        try:
            for name in [manifest, *(n for n in staged if n != manifest)]:
                kept = _set_aside(self.target / name, replaced / name)
                moved.append((name, kept))
                os.replace(self.folder / name, self.target / name)
        except BaseException:
            self._roll_back(moved, replaced)
            raise
        return [self.target / name for name in staged]

    def _roll_back(self, moved: list[tuple[str, bool]], replaced: Path) -> None:
        """Undo the renames of :meth:`commit` (newest first, so the new manifest goes last)."""
        assert self.folder is not None
        for name, kept in reversed(moved):
            try:
                if not (self.folder / name).exists():  # the new file had moved in
                    os.replace(self.target / name, self.folder / name)
                if kept:
                    os.replace(replaced / name, self.target / name)
            except OSError as err:
                logger.warning("%s: could not put the earlier file back (%s); readers refuse the folder until it is written again",
                               self.target / name, err)


def _set_aside(path: Path, to: Path) -> bool:
    """Move ``path`` to ``to`` if it exists; True when it did."""
    try:
        os.replace(path, to)
    except FileNotFoundError:
        return False
    return True


__all__ = ["MANIFEST_KEY", "STAGING_PREFIX", "StagedSet", "check_listed", "check_set", "describe_files", "manifest_files", "read_manifest", "read_manifest_json"]
