"""Label vocabularies shared by the models: string labels <-> ids, with padding at id 0."""

from __future__ import annotations

from collections.abc import Sequence


class LabelVocab:
    """A fixed, ordered label inventory; index 0 is the padding label.

    Models save it (``to_list``) with their weights, so a checkpoint always
    decodes with the labels it was trained with.
    """

    def __init__(self, labels: Sequence[str]) -> None:
        if len(set(labels)) != len(labels):
            raise ValueError("duplicate labels in vocabulary")
        self.labels = list(labels)
        self.index = {label: i for i, label in enumerate(self.labels)}

    def __len__(self) -> int:
        return len(self.labels)

    def __contains__(self, label: str) -> bool:
        return label in self.index

    def id(self, label: str) -> int:
        return self.index[label]

    def ids(self, labels: Sequence[str]) -> list[int]:
        return [self.index[label] for label in labels]

    def label(self, index: int) -> str:
        return self.labels[index]

    def to_list(self) -> list[str]:
        return list(self.labels)
