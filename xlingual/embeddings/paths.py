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


def find_aligned_pair(data_dir: str | Path, lang_a: str, lang_b: str) -> dict[str, Path] | None:
    """Each language's aligned vectors from ``aligned.<a>-<b>/`` or ``aligned.<b>-<a>/``; None when neither exists.

    This is where training picks aligned vectors up, so an alignment that
    was flagged as failed is announced again here (see :func:`warn_if_suspect`).
    """
    for src, tgt in ((lang_a, lang_b), (lang_b, lang_a)):
        paths = AlignedPaths(aligned_dir(data_dir, src, tgt))
        if paths.root.is_dir():
            warn_if_suspect(paths)
            return {src: paths.src_vectors, tgt: paths.tgt_vectors}
    return None


def warn_if_suspect(paths: AlignedPaths) -> bool:
    """Whoever picks up aligned vectors hears again that their alignment looked failed; True when it did."""
    try:
        summary = json.loads(paths.summary.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if isinstance(summary, dict) and summary.get("suspect"):
        reasons = "; ".join(summary.get("suspect_reasons") or []) or "see alignment.json"
        logger.warning("%s: THIS ALIGNMENT LOOKED FAILED (%s)", paths.root, reasons)
        return True
    return False
