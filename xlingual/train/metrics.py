"""Entity-level NER scores, computed the way the papers compute them.

``conlleval`` mode is seqeval's default (an ``I-X`` after ``O`` starts an
entity), which is what UMT, ACN and the CMNER paper report; ``strict`` is
seqeval's IOB2 strict mode (such an ``I-X`` is not an entity). Both are
reported so a reader sees whether ill-formed predictions matter. Twitter's
OTHER and CMNER's MISC are one canonical type, MISC, before anything is
counted.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from xlingual.data.labels import ENTITY_TYPES, spans
from xlingual.errors import DataFormatError, DataValidationError


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


def _check_aligned(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> None:
    if len(gold) != len(pred):
        raise DataValidationError([DataFormatError(None, None, f"{len(gold)} gold sequences but {len(pred)} predicted")])
    for i, (g, p) in enumerate(zip(gold, pred)):
        if len(g) != len(p):
            raise DataValidationError([DataFormatError(None, None, f"sequence {i}: {len(g)} gold labels but {len(p)} predicted")])


def _prf(tp: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return 100 * p, 100 * r, 100 * f


def score(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], mode: str = "conlleval") -> Scores:
    """Entity-level scores with seqeval (``mode`` = ``conlleval`` or ``strict``)."""
    from seqeval.metrics import classification_report
    from seqeval.metrics.sequence_labeling import get_entities
    from seqeval.scheme import IOB2

    _check_aligned(gold, pred)
    gold_l = [list(s) for s in gold]
    pred_l = [list(s) for s in pred]
    strict = mode == "strict"
    if mode not in ("conlleval", "strict"):
        raise ValueError(f"unknown mode {mode}")
    kwargs = {"mode": "strict", "scheme": IOB2} if strict else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns about types with no gold entity
        report = classification_report(gold_l, pred_l, output_dict=True, zero_division=0, digits=6, **kwargs)
    micro = report.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0})
    per_type = {t: float(100 * report[t]["f1-score"]) for t in ENTITY_TYPES if t in report}
    if strict:
        from seqeval.metrics.v1 import Entities

        n_gold = sum(len(sent) for sent in Entities(gold_l, IOB2).entities)
        n_pred = sum(len(sent) for sent in Entities(pred_l, IOB2).entities)
    else:
        n_gold = len(get_entities(gold_l))
        n_pred = len(get_entities(pred_l))
    p, r, f = (float(100 * micro[k]) for k in ("precision", "recall", "f1-score"))
    tp = int(round(micro["recall"] * n_gold)) if n_gold else 0
    return Scores(precision=p, recall=r, f1=f, per_type_f1=per_type, true_positives=tp, predicted=n_pred, gold=n_gold)


def evaluate(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, Scores]:
    """Both modes at once: ``{"conlleval": Scores, "strict": Scores}``."""
    return {"conlleval": score(gold, pred, "conlleval"), "strict": score(gold, pred, "strict")}


def sentence_counts(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> np.ndarray:
    """Per sentence (true positives, predicted, gold) entity counts, conlleval-style.

    The paired bootstrap resamples sentences and recomputes micro-F1 from
    summed counts, which is exact and fast.
    """
    _check_aligned(gold, pred)
    rows = np.zeros((len(gold), 3), dtype=np.int64)
    for i, (g, p) in enumerate(zip(gold, pred)):
        gs = {(s.start, s.end, s.type) for s in spans(list(g))}
        ps = {(s.start, s.end, s.type) for s in spans(list(p))}
        rows[i] = (len(gs & ps), len(ps), len(gs))
    return rows


def f1_from_counts(counts: np.ndarray) -> float:
    tp, n_pred, n_gold = counts.sum(axis=0)
    return _prf(int(tp), int(n_pred), int(n_gold))[2]


__all__ = ["Scores", "evaluate", "f1_from_counts", "score", "sentence_counts"]
