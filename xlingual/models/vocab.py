"""One vocabulary class for everything a model looks up by id: words, characters, labels.

In the spirit of flair's ``Dictionary``: an ordered list of strings, with an
optional padding entry (always id 0, so zero-filled batches are padding) and
an optional unknown entry (what unseen strings map to). Word and character
vocabularies have both; label vocabularies have padding only, so an unknown
label is an error (``KeyError``) instead of silently becoming another label.
Models save ``to_list()`` in their ``config.json`` and rebuild from it, so a
checkpoint always decodes with the vocabulary it was trained with.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence


class Vocabulary:
    """Strings <-> ids, in a fixed order; ``pad`` (if any) is id 0, ``unk`` (if any) right after it."""

    def __init__(self, items: Sequence[str], *, pad: str | None = None, unk: str | None = None) -> None:
        specials = [s for s in (pad, unk) if s is not None]
        if list(items[: len(specials)]) != specials:
            raise ValueError(f"a vocabulary must start with {', '.join(specials)}")
        if len(set(items)) != len(items):
            raise ValueError("duplicate entries in vocabulary")
        self.items = list(items)
        self.index = {item: i for i, item in enumerate(self.items)}
        self.pad = pad
        self.unk = unk
        self.unk_id = None if unk is None else self.index[unk]

    @classmethod
    def from_counts(cls, counts: Counter[str], max_size: int | None = None, *, pad: str | None = None, unk: str | None = None) -> "Vocabulary":
        """Specials first, then most frequent first; ties keep first-seen order (Counter is insertion-ordered), so builds are reproducible.

        ``max_size`` counts the specials.
        """
        specials = [s for s in (pad, unk) if s is not None]
        ranked = [item for item, _ in counts.most_common() if item not in specials]
        if max_size is not None:
            ranked = ranked[: max(0, max_size - len(specials))]
        return cls([*specials, *ranked], pad=pad, unk=unk)

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, item: str) -> bool:
        return item in self.index

    def id(self, item: str) -> int:
        """The id of ``item``; unseen items are ``unk`` when the vocabulary has one, else a ``KeyError``."""
        if self.unk_id is None:
            return self.index[item]
        return self.index.get(item, self.unk_id)

    def ids(self, items: Sequence[str]) -> list[int]:
        return [self.id(item) for item in items]

    def item(self, index: int) -> str:
        return self.items[index]

    label = item
    """Labels read better as ``labels.label(i)``."""

    def to_list(self) -> list[str]:
        """The saved form: the items in id order (specials included)."""
        return list(self.items)


__all__ = ["Vocabulary"]
