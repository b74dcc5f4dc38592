"""Label schemas, the canonical tag set, open label sets and BIO handling.

The built-in datasets share one canonical type inventory, PER/LOC/ORG/MISC, so
a model trained on mixed English and Chinese data sees one label set. A
*schema* says how a file spells its types: Twitter2015/2017 call MISC
``OTHER``; a declared dataset may map its own types into the canonical ones
(``person: PER``) or keep them as they are (an *open* schema: ``B-PRODUCT``
stays ``B-PRODUCT``). Mapping happens only in readers and writers.

Any ``B-X``/``I-X`` is then a label. Two conventions, both here, order such
types wherever they appear: :func:`label_inventory` (a model's labels: the
nine canonical ones first, in their fixed order, then each other type's pair,
sorted) and :func:`ordered_types` / :func:`table_types` (columns of per-type
tables: canonical types first, then the others sorted).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol


@dataclass(frozen=True)
class Span:
    """An entity: tokens ``start`` (inclusive) to ``end`` (exclusive) of type ``type``."""

    start: int
    end: int
    type: str


ENTITY_TYPES: tuple[str, ...] = ("PER", "LOC", "ORG", "MISC")
"""The canonical entity types, in the order the paper's tables use."""

CANONICAL_LABELS: tuple[str, ...] = ("O",) + tuple(f"{p}-{t}" for t in ENTITY_TYPES for p in ("B", "I"))

OPEN_TYPE_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,49}")
"""What an entity type of an open label set may be called: WNUT-17's ``creative-work``, ``PRODUCT``, ``Org.Sub``;
nothing that could break a TAB-separated line, a table or a file name."""


def entity_type(label: str) -> str | None:
    """The type of a ``B-X`` or ``I-X`` label (``X`` may hold hyphens: ``B-creative-work``); ``None`` for anything else."""
    prefix, sep, etype = label.partition("-")
    return etype if sep and prefix in ("B", "I") and etype else None


def ordered_types(types: Iterable[str]) -> list[str]:
    """``types`` without repeats, the canonical ones first in their table order, then the others sorted (by code point)."""
    present = set(types)
    return [t for t in ENTITY_TYPES if t in present] + sorted(present - set(ENTITY_TYPES))


def table_types(seen: Iterable[str]) -> list[str]:
    """The columns of a per-type table over data whose entities have the types ``seen``.

    Data in the canonical schema (any canonical type seen, or none at all)
    keeps the four canonical columns, zeros included, so tables of the
    built-in datasets stay alike whichever split lacks a type; other types
    seen follow, sorted. Data with none of the canonical types (WNUT-17) lists
    only its own types: no phantom PER/LOC/ORG/MISC columns of zeros.
    """
    seen = set(seen)
    if not seen or seen & set(ENTITY_TYPES):
        seen |= set(ENTITY_TYPES)
    return ordered_types(seen)


def inventory_of(labels: Iterable[str]) -> list[str]:
    """The label list a model needs for ``labels``: :data:`CANONICAL_LABELS`, then ``B-X``, ``I-X`` of each other type, sorted.

    Only well-formed ``B-``/``I-`` labels contribute a type; anything else
    (``E-PER``, ``X``) is left for the model's encoding to reject, naming the
    sample. Labels whose types are all canonical give exactly
    :data:`CANONICAL_LABELS`, in its order, whichever types occur: models
    trained on the built-ins keep their shapes and weights.
    """
    extra = {etype for label in labels if (etype := entity_type(label)) is not None} - set(ENTITY_TYPES)
    return [*CANONICAL_LABELS, *(f"{p}-{t}" for t in sorted(extra) for p in ("B", "I"))]


class Labelled(Protocol):
    """Anything with a BIO label per token, e.g. a :class:`~xlingual.data.sample.Sample` (sample.py builds on this module, not the reverse)."""

    @property
    def labels(self) -> Sequence[str]: ...


def label_inventory(samples: Iterable[Labelled]) -> list[str]:
    """A model's labels for the samples it will see (see :func:`inventory_of`)."""
    return inventory_of(label for sample in samples for label in sample.labels)


@dataclass(frozen=True)
class LabelSchema:
    """How one file format names the canonical entity types."""

    name: str
    file_to_canonical: dict[str, str]
    read_aliases: dict[str, str] = field(default_factory=dict)
    """Other spellings accepted when reading (Twitter2017 writes ``MISC`` where Twitter2015 writes ``OTHER``)."""
    open: bool = False
    """Any ``B-X``/``I-X`` with X matching :data:`OPEN_TYPE_PATTERN` is read and written as it is."""
    one_spelling_per_type: bool = True
    """A file may not mix two spellings of one type (``OTHER`` and ``MISC``); a label map that sends several of a
    file's types to one canonical type (``person: PER``, ``musician: PER``) sets this off."""

    @property
    def entity_types(self) -> tuple[str, ...] | None:
        """The types a sample read with this schema can carry, in first-declared order; None for an open schema."""
        return None if self.open else tuple(dict.fromkeys(self.file_to_canonical.values()))

    def describe(self) -> str:
        """The labels this schema reads, for error messages."""
        if self.open:
            return f"O, B-TYPE or I-TYPE with TYPE matching {OPEN_TYPE_PATTERN.pattern}"
        return ", ".join(self.file_labels)

    @functools.cached_property
    def canonical_to_file(self) -> dict[str, str]:
        """How a canonical type is written: the first file type mapped to it (a file's own spelling overrides this)."""
        found: dict[str, str] = {}
        for name, canonical in self.file_to_canonical.items():
            found.setdefault(canonical, name)
        return found

    @property
    def file_labels(self) -> tuple[str, ...]:
        return ("O",) + tuple(f"{p}-{t}" for t in self.file_to_canonical for p in ("B", "I"))

    def to_canonical(self, label: str) -> str | None:
        """Canonical label for a label as written in a file; ``None`` if the schema has no such label."""
        if label == "O":
            return "O"
        prefix, sep, etype = label.partition("-")
        if self.open:
            return label if sep and prefix in ("B", "I") and OPEN_TYPE_PATTERN.fullmatch(etype) else None
        canonical = self.file_to_canonical.get(etype) or self.read_aliases.get(etype)
        if not sep or prefix not in ("B", "I") or canonical is None:
            return None
        return f"{prefix}-{canonical}"

    def to_file(self, label: str, spelling: dict[str, str] | None = None) -> str:
        """The label as this schema writes it; ``label`` must be canonical.

        ``spelling`` overrides the file name of a type (``{"MISC": "MISC"}`` writes Twitter2017 style). A
        canonical type the schema has no name for (a label map naming only ``person: PER``, predictions of a
        model that also learnt LOC from another dataset) is written under its canonical name.
        """
        if label == "O" or self.open:
            return label
        prefix, _, etype = label.partition("-")
        name = (spelling or {}).get(etype) or self.canonical_to_file.get(etype, etype)
        return f"{prefix}-{name}"


TWITTER_SCHEMA = LabelSchema("twitter", {"PER": "PER", "LOC": "LOC", "ORG": "ORG", "OTHER": "MISC"}, read_aliases={"MISC": "MISC"})
CMNER_SCHEMA = LabelSchema("cmner", {"PER": "PER", "LOC": "LOC", "ORG": "ORG", "MISC": "MISC"})
CANONICAL_SCHEMA = LabelSchema("canonical", {t: t for t in ENTITY_TYPES})
SCHEMAS: dict[str, LabelSchema] = {s.name: s for s in (TWITTER_SCHEMA, CMNER_SCHEMA, CANONICAL_SCHEMA)}
OPEN_SCHEMA = LabelSchema("open", {}, open=True)


def mapped_schema(name: str, mapping: dict[str, str]) -> LabelSchema:
    """A dataset's own types mapped into the canonical ones (``{"person": "PER", "product": "MISC"}``).

    Several file types may map to one canonical type; such a file is written
    back with the first of them the file used.
    """
    unknown = sorted(set(mapping.values()) - set(ENTITY_TYPES))
    if unknown:
        raise ValueError(f"'{unknown[0]}' is not a canonical type ({', '.join(ENTITY_TYPES)})")
    return LabelSchema(name, dict(mapping), one_spelling_per_type=len(set(mapping.values())) == len(mapping))


class BioPolicy(str, Enum):
    """What to do with an ``I-X`` that follows ``O`` or a different type (an "orphan").

    ``repair`` rewrites it to ``B-X`` (the entity count is unchanged: conlleval
    and seqeval's default mode already start an entity there); ``reject``
    raises; ``keep`` leaves it as written, which byte-exact round trips need.
    """

    repair = "repair"
    reject = "reject"
    keep = "keep"


def orphan_positions(labels: list[str]) -> list[int]:
    """Indices of ``I-X`` tags not preceded by ``B-X`` or ``I-X``."""
    found = []
    prev_type = None
    for i, label in enumerate(labels):
        if label.startswith("I-"):
            if prev_type != label[2:]:
                found.append(i)
            prev_type = label[2:]
        elif label.startswith("B-"):
            prev_type = label[2:]
        else:
            prev_type = None
    return found


def repair_bio(labels: list[str]) -> tuple[list[str], int]:
    """``labels`` with every orphan ``I-X`` turned into ``B-X``, and how many were repaired."""
    fixed = list(labels)
    positions = orphan_positions(labels)
    for i in positions:
        fixed[i] = "B-" + labels[i][2:]
    return fixed, len(positions)


def spans(labels: list[str]) -> list[Span]:
    """Entity spans, conlleval-style: an ``I-X`` after ``O`` or another type starts a new entity.

    This is seqeval's default mode and what the published UMT/CMNER numbers count.
    """
    found: list[Span] = []
    start: int | None = None
    etype: str | None = None
    for i, label in enumerate(list(labels) + ["O"]):
        prefix, _, ltype = label.partition("-")
        continues = prefix == "I" and ltype == etype
        if start is not None and not continues:
            found.append(Span(start, i, etype or ""))
            start, etype = None, None
        if prefix in ("B", "I") and not continues:
            start, etype = i, ltype
    return found


def count_entities(label_sequences: list[list[str]]) -> Counter[str]:
    """Entities per type over many sequences (conlleval-style)."""
    counts: Counter[str] = Counter()
    for labels in label_sequences:
        counts.update(span.type for span in spans(labels))
    return counts


def labels_from_spans(length: int, entity_spans: list[Span]) -> list[str]:
    """BIO labels of a sequence of ``length`` tokens holding ``entity_spans`` (non-overlapping)."""
    labels = ["O"] * length
    for span in entity_spans:
        labels[span.start] = f"B-{span.type}"
        for i in range(span.start + 1, span.end):
            labels[i] = f"I-{span.type}"
    return labels
