"""Picking up aligned vectors for training: either direction's folder, and a loud word when the alignment looked failed.

The folder layout (``data/embeddings/aligned.<src>-<tgt>/`` and the files in it) is
:mod:`xlingual.workspace`'s (``DataDir.aligned``, ``AlignedPaths``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from xlingual.output_set import check_set
from xlingual.workspace import AlignedPaths, DataDir

logger = logging.getLogger(__name__)


def find_aligned_pair(data_dir: str | Path, lang_a: str, lang_b: str) -> dict[str, Path] | None:
    """Each language's aligned vectors from ``aligned.<a>-<b>/`` or ``aligned.<b>-<a>/``; None when neither exists.

    This is where training picks aligned vectors up, so an alignment that
    was flagged as failed is announced again here (see :func:`warn_if_suspect`).
    """
    for src, tgt in ((lang_a, lang_b), (lang_b, lang_a)):
        paths = DataDir(data_dir).aligned(src, tgt)
        if paths.root.is_dir():
            check_aligned_files([paths.src_vectors, paths.tgt_vectors], digests=False)
            warn_if_suspect(paths)
            return {src: paths.src_vectors, tgt: paths.tgt_vectors}
    return None


def check_aligned_files(files: list[Path], digests: bool = True) -> None:
    """Refuse aligned vectors that are not the set their folder's ``alignment.json`` lists (one line, how to rebuild).

    An alignment written before alignments were output sets has no list and
    is read as before. ``digests=False`` compares sizes only: the quick look
    of an input check; the run that reads the vectors checks their digests.
    """
    by_folder: dict[Path, list[str]] = {}
    for file in files:
        by_folder.setdefault(file.parent, []).append(file.name)
    for folder, names in by_folder.items():  # each alignment.json read once
        paths = AlignedPaths(folder)
        check_set(paths.root, paths.summary, names, digests, rebuild="run 'xl embeddings align' into it again")


ALIGNMENT_SUSPECT = "alignment_suspect"
"""The attribute set on the log records that say an alignment looked failed, so a caller that explains it (the demo) can tell them apart."""


def suspect_reasons(paths: AlignedPaths) -> list[str] | None:
    """Why the alignment in ``paths`` looked failed (its ``alignment.json``), or None when it did not (or was never checked)."""
    try:
        summary = json.loads(paths.summary.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(summary, dict) and summary.get("suspect"):
        return [str(reason) for reason in summary.get("suspect_reasons") or []]
    return None


def warn_if_suspect(paths: AlignedPaths) -> bool:
    """Whoever picks up aligned vectors hears again that their alignment looked failed; True when it did."""
    reasons = suspect_reasons(paths)
    if reasons is None:
        return False
    logger.warning("%s: THIS ALIGNMENT LOOKED FAILED (%s)", paths.root, "; ".join(reasons) or f"see {AlignedPaths.SUMMARY}",
                   extra={ALIGNMENT_SUSPECT: True})
    return True
