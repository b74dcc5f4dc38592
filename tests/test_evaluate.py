"""Evaluation: seqeval in conlleval and strict IOB2 modes, cross-checked by an independent count."""

from __future__ import annotations

import re
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from xlingual.cli import app
from xlingual.data.datasets import get_dataset
from xlingual.data.labels import ENTITY_TYPES, ordered_types, spans
from xlingual.data.sample import Sample
from xlingual.data.formats import read_samples, write_samples
from xlingual.errors import DataFormatError
from xlingual.evaluation.evaluate import evaluate_files, evaluate_run
from xlingual.evaluation.metrics import f1_from_counts, score, score_all_modes, sentence_counts

LABELS = ["O"] + [f"{p}-{t}" for t in ENTITY_TYPES for p in "BI"]



def strict_spans(labels: list[str]) -> set[tuple[int, int, str]]:
    """IOB2 strict chunks, written independently of seqeval: an entity must open with B-X."""
    found, start, etype = set(), None, None
    for i, label in enumerate(list(labels) + ["O"]):
        prefix, _, ltype = label.partition("-")
        if start is not None and not (prefix == "I" and ltype == etype):
            found.add((start, i, etype))
            start = etype = None
        if prefix == "B":
            start, etype = i, ltype
    return found


def reference_scores(gold, pred, chunker):
    tp = n_pred = n_gold = 0
    per_type = {t: [0, 0, 0] for t in ENTITY_TYPES}
    for g, p in zip(gold, pred):
        gs, ps = chunker(g), chunker(p)
        tp += len(gs & ps)
        n_pred += len(ps)
        n_gold += len(gs)
        for t in ENTITY_TYPES:
            per_type[t][0] += len({e for e in gs & ps if e[2] == t})
            per_type[t][1] += len({e for e in ps if e[2] == t})
            per_type[t][2] += len({e for e in gs if e[2] == t})

    def f1(a, b, c):
        p = a / b if b else 0.0
        r = a / c if c else 0.0
        return 100 * 2 * p * r / (p + r) if p + r else 0.0

    return f1(tp, n_pred, n_gold), tp, n_pred, n_gold, {t: f1(*v) for t, v in per_type.items() if v[2] or v[1]}


def conlleval_spans(labels):
    return {(s.start, s.end, s.type) for s in spans(labels)}


def random_sequences(seed: int, n: int = 300):
    rng = random.Random(seed)
    gold, pred = [], []
    for _ in range(n):
        length = rng.randint(1, 25)
        g = [rng.choice(LABELS) if rng.random() < 0.35 else "O" for _ in range(length)]
        # predictions: mostly the gold, with ill-formed I- tags and type swaps mixed in
        p = [label if rng.random() < 0.7 else rng.choice(LABELS) for label in g]
        gold.append(g)
        pred.append(p)
    return gold, pred


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("mode, chunker", [("conlleval", conlleval_spans), ("strict", strict_spans)])
def test_seqeval_agrees_with_an_independent_count(seed, mode, chunker):
    gold, pred = random_sequences(seed)
    ours = score(gold, pred, mode)
    f1, tp, n_pred, n_gold, per_type = reference_scores(gold, pred, chunker)
    assert (ours.true_positives, ours.predicted, ours.gold) == (tp, n_pred, n_gold)
    assert ours.f1 == pytest.approx(f1, abs=1e-6)
    for etype, value in per_type.items():
        assert ours.per_type_f1[etype] == pytest.approx(value, abs=1e-6)


def test_modes_differ_exactly_on_ill_formed_entities():
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    pred = [["B-PER", "I-PER", "O", "I-LOC"]]
    both = score_all_modes(gold, pred)
    assert both["conlleval"].f1 == pytest.approx(100.0)  # I-LOC after O opens an entity
    assert both["strict"].recall == pytest.approx(50.0) and both["strict"].precision == pytest.approx(100.0)


def test_sentence_counts_sum_to_the_corpus_score():
    gold, pred = random_sequences(5, 100)
    counts = sentence_counts(gold, pred)
    assert f1_from_counts(counts.sum(axis=0)) == pytest.approx(score(gold, pred).f1, abs=1e-6)


def test_misaligned_predictions_are_a_user_error():
    from xlingual.errors import DataValidationError

    with pytest.raises(DataValidationError, match="2 gold labels but 1 predicted"):
        score([["O", "O"]], [["O"]])


def test_evaluate_run_recomputes_from_saved_predictions(tmp_path):
    gold, pred = random_sequences(7, 40)
    folder = tmp_path / "run" / "predictions"
    for split in ("dev", "test"):
        samples = [Sample(str(i), [f"w{j}" for j in range(len(g))], p, [], "en", {"gold": g}) for i, (g, p) in enumerate(zip(gold, pred))]
        write_samples(folder / f"{split}.jsonl", samples, "jsonl")
    result = evaluate_run(tmp_path / "run")
    expected = score_all_modes(gold, pred)
    assert result["test"]["strict"]["f1"] == pytest.approx(expected["strict"].f1)  # orphans were kept, not repaired
    assert result["dev"]["conlleval"]["f1"] == pytest.approx(expected["conlleval"].f1)
    out = CliRunner().invoke(app, ["evaluate", "--run", str(tmp_path / "run"), "--json"])
    assert out.exit_code == 0 and json.loads(out.output)["test"]["conlleval"]["gold"] == expected["conlleval"].gold
    missing = CliRunner().invoke(app, ["evaluate", "--run", str(tmp_path)])
    assert missing.exit_code == 2 and "no saved predictions" in missing.output


class OrphanModel:
    """A stand-in model whose decoder emits an orphan ``I-PER`` on every post's first token."""

    def predict(self, samples, visual=None, batch_size=32):
        return [["I-PER"] + ["O"] * (len(s) - 1) for s in samples]


def test_run_scores_raw_predictions_and_stores_them_unrepaired(tmp_path):
    from xlingual.train.run import predict_and_write
    from xlingual.workspace import RunFolder

    samples = [Sample(f"p{i}", ["a", "b", "c"], ["B-PER", "O", "O"], [], "zh") for i in range(4)]
    scores = predict_and_write(OrphanModel(), samples, None, 8, RunFolder(tmp_path), "test", get_dataset("cmner"))
    assert scores["conlleval"]["f1"] == pytest.approx(100.0)  # conlleval opens an entity at the orphan
    assert scores["strict"]["f1"] == pytest.approx(0.0) and scores["strict"]["predicted"] == 0
    stored = read_samples(RunFolder(tmp_path).prediction("test", ".txt"), "cmner", bio="keep")
    assert all(s.labels[0] == "I-PER" for s in stored)
    jsonl = read_samples(RunFolder(tmp_path).prediction("test"), "jsonl", bio="keep")
    assert all(s.labels[0] == "I-PER" and s.meta["gold"][0] == "B-PER" for s in jsonl)


def test_gold_with_orphans_is_scored_as_written(tmp_path):
    """A gold orphan I- is no entity in strict mode; predicting it as B- is a false positive there."""
    gold = [["O", "I-LOC", "I-LOC", "O"]]
    pred = [["O", "B-LOC", "I-LOC", "O"]]
    both = score_all_modes(gold, pred)
    assert both["conlleval"].f1 == pytest.approx(100.0)
    assert (both["strict"].gold, both["strict"].predicted, both["strict"].true_positives) == (0, 1, 0)


# -- open label sets: any type name, checked against seqeval ------------------------

TYPE_NAMES = st.one_of(st.sampled_from(ENTITY_TYPES), st.sampled_from(["PRODUCT", "creative-work", "geo-loc", "corporation"]),
                       st.from_regex(r"[A-Za-z](?:[A-Za-z0-9_-]{0,8}[A-Za-z0-9_])?", fullmatch=True))
"""Entity type names as datasets write them: letters, digits, ``_`` and inner ``-`` (seqeval strips a type's outer hyphens)."""


@st.composite
def open_label_corpora(draw) -> tuple[list[list[str]], list[list[str]]]:
    """Gold and predicted BIO sequences over a few drawn types: ill-formed I- tags, type swaps and empty posts included."""
    types = draw(st.lists(TYPE_NAMES, min_size=1, max_size=5, unique=True))
    labels = st.one_of(st.just("O"), st.builds(lambda prefix, etype: f"{prefix}-{etype}", st.sampled_from("BI"), st.sampled_from(types)))
    gold = draw(st.lists(st.lists(labels, max_size=12), min_size=1, max_size=6))
    pred = [draw(st.lists(labels, min_size=len(g), max_size=len(g))) for g in gold]
    return gold, pred


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # seqeval averages over no entity at all
@settings(max_examples=200, deadline=None)
@given(corpus=open_label_corpora(), mode=st.sampled_from(["conlleval", "strict"]))
def test_scores_of_any_types_agree_with_seqeval(corpus, mode):
    """Micro and per-type F1 over arbitrary type names equal seqeval's (default mode = conlleval, strict IOB2),
    and the per-type scores list exactly the types seqeval finds, the canonical ones first, no phantom type."""
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    gold, pred = corpus
    options = {"mode": "strict", "scheme": IOB2} if mode == "strict" else {}
    theirs = classification_report(gold, pred, output_dict=True, zero_division=0, **options)
    found = {k: v for k, v in theirs.items() if not k.endswith(" avg")}
    ours = score(gold, pred, mode)
    assert list(ours.per_type_f1) == ordered_types(found)
    for etype, values in found.items():
        assert ours.per_type_f1[etype] == pytest.approx(100 * values["f1-score"], abs=1e-9)
    assert ours.gold == sum(v["support"] for v in found.values())
    if found:
        assert ours.f1 == pytest.approx(100 * theirs["micro avg"]["f1-score"], abs=1e-9)
        assert ours.precision == pytest.approx(100 * theirs["micro avg"]["precision"], abs=1e-9)
    else:
        assert (ours.f1, ours.predicted, ours.gold) == (0.0, 0, 0)


def test_conll_files_are_matched_by_position_and_a_differing_token_names_its_line(tmp_path):
    """CoNLL has no post ids and no headers: posts pair up in order, and a mismatch names the token's own line."""
    gold = tmp_path / "gold.conll"
    pred = tmp_path / "pred.conll"
    gold.write_text("Ann\tB-PER\nsays\tO\n\nthe\tO\nLouvre\tB-LOC\n", encoding="utf-8")
    pred.write_text("Ann\tB-PER\nsays\tO\n\nthe\tO\nLouvre\tO\n", encoding="utf-8")
    scores = evaluate_files(gold, pred, "conll")
    assert scores["conlleval"]["precision"] == 100.0 and scores["conlleval"]["recall"] == 50.0
    pred.write_text("Ann\tB-PER\nsays\tO\n\nthe\tO\nLouvres\tO\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=rf"^{re.escape(str(pred))}:5: token 'Louvres' .* {re.escape(str(gold))}:5 'Louvre'"):
        evaluate_files(gold, pred, "conll")
