"""The one record that flows through every stage of the pipeline."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from xlingual.data.labels import Span, spans


@dataclass
class Sample:
    """One annotated post.

    ``labels`` are BIO strings in the canonical schema (types PER, LOC, ORG,
    MISC) for the built-in datasets, or of a dataset's own types (an open
    label set, e.g. ``B-PRODUCT``): format quirks such as Twitter's ``OTHER``
    never reach a ``Sample``.
    ``images`` holds file names (not paths) inside the dataset's image folder,
    so a translated copy of a post keeps pointing at the same pictures.
    ``meta`` carries provenance added by later stages (source id, raw
    translation, projection strategy); it must stay JSON-serialisable.
    """

    id: str
    tokens: list[str]
    labels: list[str]
    images: list[str] = field(default_factory=list)
    lang: str = "en"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.tokens) != len(self.labels):
            raise ValueError(f"sample {self.id}: {len(self.tokens)} tokens but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def text(self) -> str:
        """The post as one string: characters joined directly for Chinese, tokens with spaces otherwise."""
        return ("" if self.lang == "zh" else " ").join(self.tokens)

    def entities(self) -> list[Span]:
        """Entity spans, counted conlleval-style (see :func:`xlingual.data.labels.spans`)."""
        return spans(self.labels)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> "Sample":
        return cls(
            id=str(obj["id"]),
            tokens=list(obj["tokens"]),
            labels=list(obj["labels"]),
            images=list(obj.get("images", [])),
            lang=str(obj.get("lang", "en")),
            meta=dict(obj.get("meta", {})),
        )
