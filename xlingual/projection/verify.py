"""Verifying that a marked or read-back part of a translation is exactly its entity's translation.

The ``markers`` strategy and ``--entity-context`` read entity strings out of a
translated sentence, where MT may have moved a marker pair onto a neighbouring
word, widened it over one, narrowed it, or given two entities the same
rendering. A part is accepted only when it equals the entity's stand-alone
translation after normalisation (:func:`canonical`), and only when that leaves
no doubt about which entity, and which occurrence, it is. Anything else is a
rejection with a named reason, so a sample is left out rather than emitted with
a label that may be wrong.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from xlingual.projection.placeholders import normalise

#: reasons a marked part is rejected (each is also a failure reason in the report)
MARKER_REASONS: tuple[str, ...] = ("markers_moved", "markers_widened", "markers_narrowed", "markers_tied", "markers_unmatched")


class Rejected(Exception):
    """A translation that cannot be trusted: ``reason`` is the code counted in the report."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def canonical(text: str) -> str:
    """The form two renderings of one entity are compared in: NFKC, CJK brackets folded, case folded, no whitespace."""
    return "".join(normalise(text).text.casefold().split())


def agrees(part: str, translation: str) -> bool:
    """Whether ``part`` read from a sentence is the entity's stand-alone ``translation`` (after normalisation)."""
    return bool(canonical(part)) and canonical(part) == canonical(translation)


def _misplacement(key: str, targets: set[str]) -> str:
    """Name what happened to a marked part that is no entity's translation."""
    if any(t and t in key for t in targets):
        return "markers_widened"
    if any(key in t for t in targets):
        return "markers_narrowed"
    return "markers_moved"


def _contains(haystack: list[str], needle: list[str]) -> bool:
    width = len(needle)
    return width > 0 and any(haystack[i:i + width] == needle for i in range(len(haystack) - width + 1))


def match_marked(contents: list[str], entities: list[tuple[str, str]], unmarked: list[str], tokenize: Callable[[str], list[str]]) -> list[int]:
    """For each marked part, the index of its entity in ``entities`` (``(type, stand-alone translation)`` pairs).

    ``unmarked`` holds the stretches of the translation outside the marks,
    compared token by token (``tokenize``: the target language's tokeniser). The
    match is accepted only when every part is some entity's translation
    (else ``markers_moved`` / ``markers_widened`` / ``markers_narrowed``), the
    parts and entities pair up one to one (``markers_unmatched``), entities that
    translate alike share a type, and no verified string also appears
    unmarked (both ``markers_tied``: which entity or which occurrence is meant
    cannot be told). Entities with the same translation and type are
    interchangeable and are assigned in order.
    """
    keys = [canonical(c) for c in contents]
    by_key: dict[str, list[int]] = defaultdict(list)
    for index, (_, text) in enumerate(entities):
        by_key[canonical(text)].append(index)
    for content, key in zip(contents, keys):
        if key not in by_key:
            expected = ", ".join(repr(text) for _, text in entities)
            raise Rejected(_misplacement(key, set(by_key)), f"marked part {content.strip()!r} is none of the entity translations ({expected})")
    for key, indices in by_key.items():
        if keys.count(key) != len(indices):
            raise Rejected("markers_unmatched", f"{keys.count(key)} marked part(s) read {entities[indices[0]][1]!r} for {len(indices)} entit(y/ies)")
        types = sorted({entities[i][0] for i in indices})
        if len(types) > 1:
            raise Rejected("markers_tied", f"entities of types {types} all translate as {entities[indices[0]][1]!r}")
    outside = [[canonical(t) for t in tokenize(stretch)] for stretch in unmarked if stretch.strip()]
    outside = [[t for t in tokens if t] for tokens in outside]
    for key, indices in by_key.items():
        if not outside:
            break
        needle = [t for t in (canonical(t) for t in tokenize(entities[indices[0]][1])) if t]
        if any(_contains(tokens, needle) for tokens in outside):
            raise Rejected("markers_tied", f"{entities[indices[0]][1]!r} is marked and also appears unmarked; which occurrence is the entity is unknown")
    queues = {key: list(indices) for key, indices in by_key.items()}
    return [queues[key].pop(0) for key in keys]
