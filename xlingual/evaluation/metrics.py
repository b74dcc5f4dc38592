"""Entity-level NER scores, computed the way the papers compute them, and the one F1 formula.

Two chunkings of a label sequence, applied to gold and prediction alike and
to the labels exactly as given (nothing is repaired first, so the two modes
can differ):

* ``conlleval`` — conlleval.pl's chunk rules (seqeval's default mode, which
  UMT, ACN and the CMNER paper report): an ``I-X`` after ``O`` or after
  another type opens an entity;
* ``strict`` — IOB2 strict (seqeval's ``mode="strict", scheme=IOB2``): an
  entity is ``B-X`` followed by ``I-X``…; an ``I-X`` that follows neither
  ``B-X`` nor ``I-X`` belongs to no entity.

An entity counts as found when a predicted chunk has the same start, end and
type as a gold chunk. Twitter's OTHER and CMNER's MISC are one canonical type,
MISC, before anything is counted (the readers map them). Any other type (a
dataset's own, e.g. PRODUCT) is counted the same way; per-type scores list
exactly the types found in gold or prediction, the canonical ones first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from xlingual.data.labels import ordered_types, spans
from xlingual.errors import DataFormatError, DataValidationError

MODES: tuple[str, ...] = ("conlleval", "strict")

Chunk = tuple[int, int, str]
"""(start, end exclusive, type) of one entity."""


@dataclass
class Scores:
    """Micro P/R/F1 (in percent) over all types plus F1 per type, and the counts behind them."""

    precision: float
    recall: float
    f1: float
    per_type_f1: dict[str, float] = field(default_factory=dict)
    true_positives: int = 0
    predicted: int = 0
    gold: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def prf(tp: Any, n_pred: Any, n_gold: Any) -> tuple[Any, Any, Any]:
    """Precision, recall and F1 in percent from entity counts; 0 where a denominator is 0.

    The only place the formula is written: scalar counts give floats, arrays
    of counts (the bootstrap's resamples) give arrays of the same shape.
    """
    tp, n_pred, n_gold = (np.asarray(x, dtype=np.float64) for x in (tp, n_pred, n_gold))
    p = np.divide(tp, n_pred, out=np.zeros(np.broadcast(tp, n_pred).shape), where=n_pred > 0)
    r = np.divide(tp, n_gold, out=np.zeros(np.broadcast(tp, n_gold).shape), where=n_gold > 0)
    f = np.divide(2 * p * r, p + r, out=np.zeros(np.broadcast(p, r).shape), where=(p + r) > 0)
    if f.ndim == 0:
        return 100 * float(p), 100 * float(r), 100 * float(f)
    return 100 * p, 100 * r, 100 * f


def f1_from_counts(counts: np.ndarray) -> Any:
    """Micro-F1 (percent) from ``(..., 3)`` arrays of (true positives, predicted, gold) counts."""
    counts = np.asarray(counts)
    return prf(counts[..., 0], counts[..., 1], counts[..., 2])[2]


def strict_chunks(labels: Sequence[str]) -> list[Chunk]:
    """IOB2 strict entities: ``B-X`` then ``I-X``…; orphan ``I-`` tags open nothing."""
    found: list[Chunk] = []
    start: int | None = None
    etype = ""
    for i, label in enumerate(list(labels) + ["O"]):
        prefix, _, ltype = label.partition("-")
        if start is not None and not (prefix == "I" and ltype == etype):
            found.append((start, i, etype))
            start = None
        if prefix == "B":
            start, etype = i, ltype
    return found


def chunks(labels: Sequence[str], mode: str = "conlleval") -> list[Chunk]:
    """The entities of one label sequence under ``mode`` (see the module docstring)."""
    if mode == "conlleval":
        return [(s.start, s.end, s.type) for s in spans(list(labels))]
    if mode == "strict":
        return strict_chunks(labels)
    raise ValueError(f"unknown scoring mode '{mode}' (choose from {', '.join(MODES)})")


def _check_aligned(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> None:
    if len(gold) != len(pred):
        raise DataValidationError([DataFormatError(None, None, f"{len(gold)} gold sequences but {len(pred)} predicted")])
    for i, (g, p) in enumerate(zip(gold, pred)):
        if len(g) != len(p):
            raise DataValidationError([DataFormatError(None, None, f"sequence {i}: {len(g)} gold labels but {len(p)} predicted")])


def score(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], mode: str = "conlleval") -> Scores:
    """Entity-level micro scores and F1 per type (types seen in gold or prediction, as conlleval lists them)."""
    if mode not in MODES:
        raise ValueError(f"unknown scoring mode '{mode}' (choose from {', '.join(MODES)})")
    _check_aligned(gold, pred)
    correct: Counter[str] = Counter()
    found_pred: Counter[str] = Counter()
    found_gold: Counter[str] = Counter()
    for g, p in zip(gold, pred):
        gold_chunks, pred_chunks = set(chunks(g, mode)), set(chunks(p, mode))
        correct.update(c[2] for c in gold_chunks & pred_chunks)
        found_pred.update(c[2] for c in pred_chunks)
        found_gold.update(c[2] for c in gold_chunks)
    tp, n_pred, n_gold = sum(correct.values()), sum(found_pred.values()), sum(found_gold.values())
    p, r, f = prf(tp, n_pred, n_gold)
    per_type = {t: prf(correct[t], found_pred[t], found_gold[t])[2] for t in ordered_types([*found_pred, *found_gold])}
    return Scores(precision=p, recall=r, f1=f, per_type_f1=per_type, true_positives=tp, predicted=n_pred, gold=n_gold)


def score_all_modes(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, Scores]:
    """Both modes at once: ``{"conlleval": Scores, "strict": Scores}``."""
    return {mode: score(gold, pred, mode) for mode in MODES}


def sentence_counts(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], mode: str = "conlleval") -> np.ndarray:
    """Per sentence (true positives, predicted, gold) entity counts.

    The paired bootstrap resamples sentences and recomputes micro-F1 from
    summed counts, which is exact and fast.
    """
    _check_aligned(gold, pred)
    rows = np.zeros((len(gold), 3), dtype=np.int64)
    for i, (g, p) in enumerate(zip(gold, pred)):
        gs, ps = set(chunks(g, mode)), set(chunks(p, mode))
        rows[i] = (len(gs & ps), len(ps), len(gs))
    return rows


__all__ = ["MODES", "Scores", "chunks", "score_all_modes", "f1_from_counts", "prf", "score", "sentence_counts", "strict_chunks"]
