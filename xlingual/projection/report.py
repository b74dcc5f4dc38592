"""The numbers a user needs to trust a projected corpus, gathered from projection results.

Besides how many samples survived, the report shows entities per type before
and after, because filtering can skew the label distribution (long or
multi-entity posts fail more often), and MT calls made versus cache hits.
``failures_by_reason`` counts each left-out sample once (its last attempt);
``rejections_by_reason`` counts every rejected attempt of every strategy, so
a translation rejected by one strategy and saved by the next still shows
(a moved marker, a placeholder MT dropped). ``untranslated`` counts, per
type, the projected entities whose target text is still the source's
(:mod:`xlingual.projection.untranslated`): a glossary or MT that passes names
through projects them all, and only this count shows it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from xlingual.data.labels import count_entities, table_types
from xlingual.projection.project import ProjectionResult
from xlingual.projection.untranslated import untranslated


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass
class ProjectionReport:
    """Counts of one projected file (or the sum of several)."""

    samples_in: int = 0
    samples_out: int = 0
    entities_before: Counter = field(default_factory=Counter)
    entities_after: Counter = field(default_factory=Counter)
    by_strategy: Counter = field(default_factory=Counter)
    failures_by_reason: Counter = field(default_factory=Counter)
    rejections_by_reason: Counter = field(default_factory=Counter)
    mt: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    untranslated: Counter = field(default_factory=Counter)

    @classmethod
    def from_results(cls, results: list[ProjectionResult]) -> "ProjectionReport":
        report = cls(samples_in=len(results), samples_out=sum(r.ok for r in results))
        report.entities_before = count_entities([r.source.labels for r in results])
        report.entities_after = count_entities([r.sample.labels for r in results if r.sample is not None])
        report.by_strategy = Counter(r.strategy for r in results if r.ok)
        report.failures_by_reason = Counter(r.failure for r in results if not r.ok)
        report.rejections_by_reason = Counter(a.reason for r in results for a in r.attempts if a.reason is not None)
        report.untranslated = count_untranslated(results)
        return report

    def add(self, other: "ProjectionReport") -> None:
        self.samples_in += other.samples_in
        self.samples_out += other.samples_out
        self.seconds += other.seconds
        for mine, theirs in ((self.entities_before, other.entities_before), (self.entities_after, other.entities_after),
                             (self.by_strategy, other.by_strategy), (self.failures_by_reason, other.failures_by_reason),
                             (self.rejections_by_reason, other.rejections_by_reason), (self.mt, other.mt),
                             (self.untranslated, other.untranslated)):
            mine.update(theirs)

    def to_dict(self) -> dict[str, Any]:
        types = table_types(set(self.entities_before) | set(self.entities_after))
        total_before = sum(self.entities_before.values())
        total_after = sum(self.entities_after.values())
        return {
            "samples_in": self.samples_in,
            "samples_out": self.samples_out,
            "samples_failed": self.samples_in - self.samples_out,
            "projection_rate": _rate(self.samples_out, self.samples_in),
            "entities": {
                t: {
                    "before": self.entities_before.get(t, 0),
                    "after": self.entities_after.get(t, 0),
                    "projection_rate": _rate(self.entities_after.get(t, 0), self.entities_before.get(t, 0)),
                    "share_before": _rate(self.entities_before.get(t, 0), total_before),
                    "share_after": _rate(self.entities_after.get(t, 0), total_after),
                    "untranslated": self.untranslated.get(t, 0),
                }
                for t in types
            },
            "entities_total": {"before": total_before, "after": total_after, "projection_rate": _rate(total_after, total_before),
                               "untranslated": sum(self.untranslated.values()),
                               "untranslated_rate": _rate(sum(self.untranslated.values()), total_after)},
            "success_by_strategy": dict(sorted(self.by_strategy.items())),
            "failures_by_reason": dict(sorted(self.failures_by_reason.items())),
            "rejections_by_reason": dict(sorted(self.rejections_by_reason.items())),
            "mt": dict(sorted(self.mt.items())),
            "seconds": round(self.seconds, 3),
            "sentences_per_s": round(self.samples_in / self.seconds, 3) if self.seconds > 0 else None,
        }


def count_untranslated(results: list[ProjectionResult]) -> Counter:
    """Projected entities per type whose target text is still the source's, from each projected sample's ``meta["entities"]``."""
    counts: Counter = Counter()
    for result in results:
        if result.sample is None:
            continue
        meta = result.sample.meta or {}
        src_lang = meta.get("source_lang", result.source.lang)
        for entity in meta.get("entities", []):
            if untranslated(entity.get("source", ""), entity.get("target", ""), src_lang, result.sample.lang):
                counts[entity.get("type") or ""] += 1
    return counts
