"""Where ``xl embeddings`` puts its files inside a data directory.

Layout (``data/embeddings/``)::

    data/embeddings/<name>.<lang>.vec                      monolingual vectors (xl embeddings train)
    data/embeddings/aligned.<src>-<tgt>/vectors-src.vec    source vectors, mapped into the shared space
    data/embeddings/aligned.<src>-<tgt>/vectors-tgt.vec    target vectors (normalised as for alignment)
    data/embeddings/aligned.<src>-<tgt>/mapping.npy        the learned (dim x dim) matrix W: src @ W.T
    data/embeddings/aligned.<src>-<tgt>/alignment.json     method, options, criterion, dictionary sizes
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from xlingual.data.datasets import embeddings_dir

SRC_VECTORS = "vectors-src.vec"
TGT_VECTORS = "vectors-tgt.vec"
MAPPING = "mapping.npy"
SUMMARY = "alignment.json"

logger = logging.getLogger(__name__)


def monolingual_vectors_path(data_dir: str | Path, lang: str, name: str = "fasttext") -> Path:
    """``data/embeddings/<name>.<lang>.vec``."""
    return embeddings_dir(data_dir) / f"{name}.{lang}.vec"


def aligned_dir(data_dir: str | Path, src_lang: str, tgt_lang: str) -> Path:
    """``data/embeddings/aligned.<src>-<tgt>/``."""
    return embeddings_dir(data_dir) / f"aligned.{src_lang}-{tgt_lang}"


@dataclass(frozen=True)
class AlignedPaths:
    """The files one alignment writes into its output folder."""

    root: Path

    @property
    def src_vectors(self) -> Path:
        return self.root / SRC_VECTORS

    @property
    def tgt_vectors(self) -> Path:
        return self.root / TGT_VECTORS

    @property
    def mapping(self) -> Path:
        return self.root / MAPPING

    @property
    def summary(self) -> Path:
        return self.root / SUMMARY

    def vectors_for(self, side: str) -> Path:
        """``side`` is ``"src"`` or ``"tgt"``."""
        return {"src": self.src_vectors, "tgt": self.tgt_vectors}[side]


def aligned_paths(data_dir: str | Path, src_lang: str, tgt_lang: str) -> AlignedPaths:
    return AlignedPaths(aligned_dir(data_dir, src_lang, tgt_lang))


def find_aligned_vectors(data_dir: str | Path, lang: str) -> Path | None:
    """The aligned vectors of ``lang`` under ``data/embeddings/`` (either direction), or None.

    Looks in ``aligned.<lang>-*`` (as source) then ``aligned.*-<lang>`` (as target).
    """
    root = embeddings_dir(data_dir)
    for folder in sorted(root.glob(f"aligned.{lang}-*")):
        if (folder / SRC_VECTORS).is_file():
            return _warn_if_suspect(folder / SRC_VECTORS)
    for folder in sorted(root.glob(f"aligned.*-{lang}")):
        if (folder / TGT_VECTORS).is_file():
            return _warn_if_suspect(folder / TGT_VECTORS)
    return None


def _warn_if_suspect(vectors: Path) -> Path:
    """Whoever picks up aligned vectors hears again that their alignment looked failed."""
    try:
        summary = json.loads((vectors.parent / SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return vectors
    if isinstance(summary, dict) and summary.get("suspect"):
        reasons = "; ".join(summary.get("suspect_reasons") or []) or "see alignment.json"
        logger.warning("%s: THIS ALIGNMENT LOOKED FAILED (%s)", vectors, reasons)
    return vectors
