"""UMT's text side: the two label spaces and word-piece alignment (docs/models.md, UMT).

The typed labels are the model's labels (``O``, B-/I- of the canonical types
in the order of the original code, then any other type's pair, as the run's
data gives them) plus padding and the pseudo-labels; the span labels are
fixed, whatever the types.

Every token is split into word pieces (:mod:`xlingual.models.wordpieces`); its FIRST piece carries the token's
label and the rest carry the pseudo-label ``X``. ``[CLS]`` and ``[SEP]`` have
labels of their own and sit inside the CRF mask, so the CRF learns to emit
them. The span (auxiliary) labels are the first letter of the typed ones.
A token with zero pieces (e.g. U+00A0) has no position; tokens beyond the
length limit are cut. Both get ``O`` back when predictions are mapped to
tokens (``token_positions`` is -1 for them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from xlingual.data.labels import CANONICAL_LABELS, entity_type
from xlingual.models.vocab import Vocabulary

PAD, CONTINUATION, CLS, SEP = "<pad>", "X", "[CLS]", "[SEP]"

ORIGINAL_ORDER: tuple[str, ...] = ("O", "B-MISC", "I-MISC", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
"""The canonical labels in the order of the original code, which fixes the rows of a canonical model's typed head."""


def typed_vocabulary(label_names: Sequence[str]) -> Vocabulary:
    """The typed labels of a model with ``label_names``: padding, the canonical nine in the original order, other types' labels as given, then ``X``, ``[CLS]``, ``[SEP]``."""
    canonical = set(CANONICAL_LABELS)
    if not canonical <= set(label_names):
        raise ValueError(f"UMT's labels must include the canonical nine, got {list(label_names)}")
    return Vocabulary([PAD, *ORIGINAL_ORDER, *(label for label in label_names if label not in canonical), CONTINUATION, CLS, SEP], pad=PAD)


TYPED_LABELS = typed_vocabulary(CANONICAL_LABELS)
"""The 13 typed labels of a model of the canonical labels, in the order of the original code (index 0 is padding)."""

SPAN_LABELS = Vocabulary([PAD, "O", "B", "I", CONTINUATION, CLS, SEP], pad=PAD)
"""The 7 span labels of the auxiliary entity-span-detection task."""

PSEUDO_LABELS = frozenset({PAD, CONTINUATION, CLS, SEP})


def span_label(typed: str) -> str:
    """``B-PER`` -> ``B``; ``O``, ``X``, ``[CLS]``, ``[SEP]`` and padding map to themselves."""
    return typed[0] if typed[:2] in ("B-", "I-") else typed


def span_to_typed_matrix(typed: Vocabulary = TYPED_LABELS) -> torch.Tensor:
    """The fixed (7, typed) conversion W_tr: a span score is spread evenly over the entity types (13 typed labels: 1/4 each)."""
    matrix = torch.zeros(len(SPAN_LABELS), len(typed))
    for label in (PAD, "O", CONTINUATION, CLS, SEP):
        matrix[SPAN_LABELS.id(label), typed.id(label)] = 1.0
    types = sorted({t for label in typed.to_list() if (t := entity_type(label)) is not None})
    for prefix in ("B", "I"):
        for etype in types:
            matrix[SPAN_LABELS.id(prefix), typed.id(f"{prefix}-{etype}")] = 1.0 / len(types)
    return matrix


@dataclass
class AlignedText:
    """One post as word pieces: ids with [CLS]/[SEP], labels per piece, each token's first piece."""

    input_ids: list[int]
    typed_label_ids: list[int]
    span_label_ids: list[int]
    token_positions: list[int]
    """Position of each original token's first piece, or -1 (no pieces, or cut by truncation)."""


def align(pieces: Sequence[Sequence[int]], labels: Sequence[str], max_length: int, cls_id: int, sep_id: int,
          typed_labels: Vocabulary = TYPED_LABELS) -> AlignedText:
    """Lay out one post's pieces as ``[CLS] pieces… [SEP]``, at most ``max_length`` positions; label ids in ``typed_labels``."""
    budget = max_length - 2
    input_ids, typed = [cls_id], [CLS]
    positions: list[int] = []
    for token_pieces, label in zip(pieces, labels):
        if not token_pieces or len(input_ids) - 1 >= budget:
            positions.append(-1)
            continue
        positions.append(len(input_ids))
        kept = list(token_pieces[: budget - (len(input_ids) - 1)])
        input_ids.extend(kept)
        typed.extend([label] + [CONTINUATION] * (len(kept) - 1))
    input_ids.append(sep_id)
    typed.append(SEP)
    return AlignedText(
        input_ids=input_ids,
        typed_label_ids=typed_labels.ids(typed),
        span_label_ids=SPAN_LABELS.ids([span_label(label) for label in typed]),
        token_positions=positions,
    )


__all__ = [
    "AlignedText", "ORIGINAL_ORDER", "PSEUDO_LABELS", "SPAN_LABELS", "TYPED_LABELS", "align",
    "span_label", "span_to_typed_matrix", "typed_vocabulary",
]
