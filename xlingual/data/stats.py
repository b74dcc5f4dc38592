"""Dataset statistics in the shape of the CMNER paper's Table 1.

Entities are counted conlleval-style (an orphan ``I-X`` starts an entity), the
way seqeval's default mode and the published UMT/CMNER scores count them, so
the figures can be compared with those papers directly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from xlingual.data.labels import count_entities, table_types
from xlingual.data.files import expand_dataset_paths
from xlingual.data.sample import Sample

logger = logging.getLogger(__name__)


@dataclass
class SplitStats:
    """Counts for one dataset file."""

    name: str
    posts: int
    tokens: int
    min_tokens: int
    max_tokens: int
    entities: dict[str, int] = field(default_factory=dict)
    posts_without_entities: int = 0
    images: int | None = None
    posts_with_images: int | None = None
    repaired_orphans: int = 0

    @property
    def total_entities(self) -> int:
        return sum(self.entities.values())

    @property
    def mean_tokens(self) -> float:
        return self.tokens / self.posts if self.posts else 0.0

    def to_dict(self) -> dict:
        out = asdict(self)
        out["total_entities"] = self.total_entities
        out["mean_tokens"] = round(self.mean_tokens, 2)
        return out


def compute_stats(name: str, samples: list[Sample], images_known: bool = False, repaired_orphans: int = 0) -> SplitStats:
    """Statistics of one split; image counts only when images were looked up in a folder."""
    lengths = [len(s) for s in samples]
    counts = count_entities([s.labels for s in samples])
    return SplitStats(
        name=name,
        posts=len(samples),
        tokens=sum(lengths),
        min_tokens=min(lengths, default=0),
        max_tokens=max(lengths, default=0),
        entities={t: counts.get(t, 0) for t in table_types(counts)},
        posts_without_entities=sum(1 for s in samples if not s.entities()),
        images=sum(len(s.images) for s in samples) if images_known else None,
        posts_with_images=sum(1 for s in samples if s.images) if images_known else None,
        repaired_orphans=repaired_orphans,
    )


def stats_of_files(paths: Sequence[str | Path], format: str | None = None, images: str | Path | None = None) -> list[SplitStats]:
    """One column per file (``xl data stats``); with ``images``, each post's images are counted too (missing ones logged)."""
    from xlingual.data.formats import parse_valid_file
    from xlingual.data.images import attach_images

    columns = []
    for path in expand_dataset_paths(paths):
        result = parse_valid_file(path, format)
        if images is not None:
            found = attach_images(result.samples, images)
            if found.missing:
                logger.warning("%s: %s", path, found.summary())
        columns.append(compute_stats(path.stem, result.samples, images_known=images is not None, repaired_orphans=result.repaired_orphans))
    return columns


def table_rows(stats: list[SplitStats]) -> list[tuple[str, list[str]]]:
    """Rows of Table 1 (one row per entity type, then totals and sizes), one column per split."""
    rows: list[tuple[str, list[str]]] = []
    for etype in table_types(t for s in stats for t in s.entities):
        rows.append((etype, [f"{s.entities.get(etype, 0):,}" for s in stats]))
    rows.append(("Total entities", [f"{s.total_entities:,}" for s in stats]))
    rows.append(("Posts", [f"{s.posts:,}" for s in stats]))
    rows.append(("Tokens", [f"{s.tokens:,}" for s in stats]))
    rows.append(("Tokens/post (min/mean/max)", [f"{s.min_tokens}/{s.mean_tokens:.1f}/{s.max_tokens}" for s in stats]))
    rows.append(("Posts without entity", [f"{s.posts_without_entities:,}" for s in stats]))
    if any(s.images is not None for s in stats):
        rows.append(("Images", ["-" if s.images is None else f"{s.images:,}" for s in stats]))
        rows.append(("Posts with images", ["-" if s.posts_with_images is None else f"{s.posts_with_images:,}" for s in stats]))
    rows.append(("Orphan I- repaired", [f"{s.repaired_orphans:,}" for s in stats]))
    return rows
