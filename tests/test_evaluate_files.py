"""``xl evaluate --gold --pred``: two dataset files scored like conlleval.pl and in strict IOB2 mode.

The expected numbers come from a port of conlleval.pl's chunk logic written
here from its documented rules (a token-by-token state machine, not the
span sets the product uses), on real test files whose labels are perturbed
with a fixed seed: entities dropped, shifted, retyped, and ``B-`` turned into
orphan ``I-`` tags.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from xlingual.cli import app
from xlingual.data.formats import read_samples, write_samples
from xlingual.data.labels import ENTITY_TYPES
from xlingual.evaluation.evaluate import evaluate_files
from xlingual.evaluation.metrics import score_all_modes

# -- an independent conlleval.pl ---------------------------------------------


def _split(tag: str) -> tuple[str, str]:
    return (tag, "") if tag == "O" else (tag[0], tag[2:])


def _end_of_chunk(prev_tag: str, tag: str, prev_type: str, etype: str) -> bool:
    if (prev_tag, tag) in {("B", "B"), ("B", "O"), ("I", "B"), ("I", "O")}:
        return True
    return prev_tag != "O" and prev_type != etype


def _start_of_chunk(prev_tag: str, tag: str, prev_type: str, etype: str) -> bool:
    if (prev_tag, tag) in {("B", "B"), ("I", "B"), ("O", "B"), ("O", "I")}:
        return True
    return tag != "O" and prev_type != etype


def conlleval(gold: list[list[str]], pred: list[list[str]]) -> tuple[float, dict[str, float], tuple[int, int, int]]:
    """Overall FB1, FB1 per type and (correct, guessed, gold) chunk counts, as conlleval.pl computes them."""
    correct_chunks: dict[str, int] = {}
    found_guessed: dict[str, int] = {}
    found_correct: dict[str, int] = {}
    in_correct = False
    last_c = last_g = "O"
    last_ct = last_gt = ""
    # a sentence boundary is read as an "O O" line, which closes every open chunk
    stream = [pair for g, p in zip(gold, pred) for pair in [*zip(g, p), ("O", "O")]]
    for correct_label, guessed_label in stream:
        c, ct = _split(correct_label)
        g, gt = _split(guessed_label)
        if in_correct:
            c_end, g_end = _end_of_chunk(last_c, c, last_ct, ct), _end_of_chunk(last_g, g, last_gt, gt)
            if c_end and g_end and last_gt == last_ct:
                in_correct = False
                correct_chunks[last_ct] = correct_chunks.get(last_ct, 0) + 1
            elif c_end != g_end or gt != ct:
                in_correct = False
        c_start, g_start = _start_of_chunk(last_c, c, last_ct, ct), _start_of_chunk(last_g, g, last_gt, gt)
        if c_start and g_start and gt == ct:
            in_correct = True
        if c_start:
            found_correct[ct] = found_correct.get(ct, 0) + 1
        if g_start:
            found_guessed[gt] = found_guessed.get(gt, 0) + 1
        last_c, last_g, last_ct, last_gt = c, g, ct, gt
    if in_correct:
        correct_chunks[last_ct] = correct_chunks.get(last_ct, 0) + 1

    def fb1(n_correct: int, n_guessed: int, n_gold: int) -> float:
        precision = 100 * n_correct / n_guessed if n_guessed else 0.0
        recall = 100 * n_correct / n_gold if n_gold else 0.0
        return 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    types = set(found_guessed) | set(found_correct)
    per_type = {t: fb1(correct_chunks.get(t, 0), found_guessed.get(t, 0), found_correct.get(t, 0)) for t in types}
    totals = (sum(correct_chunks.values()), sum(found_guessed.values()), sum(found_correct.values()))
    return fb1(*totals), per_type, totals


def strict_iob2(gold: list[list[str]], pred: list[list[str]]) -> tuple[float, tuple[int, int, int]]:
    """Strict IOB2 micro-F1 by a second route: seqeval's strict-mode entities."""
    from seqeval.metrics.v1 import Entities
    from seqeval.scheme import IOB2

    g = {e.to_tuple() for sent in Entities(gold, IOB2).entities for e in sent}
    p = {e.to_tuple() for sent in Entities(pred, IOB2).entities for e in sent}
    tp = len(g & p)
    precision = tp / len(p) if p else 0.0
    recall = tp / len(g) if g else 0.0
    f1 = 200 * precision * recall / (precision + recall) if precision + recall else 0.0
    return f1, (tp, len(p), len(g))


# -- perturbed real files ----------------------------------------------------


def perturb(labels: list[str], rng: random.Random) -> list[str]:
    """Drop, shift or retype whole entities, or turn their B- into an orphan I-."""
    out = list(labels)
    i = 0
    while i < len(out):
        if not out[i].startswith("B-"):
            i += 1
            continue
        etype, end = out[i][2:], i + 1
        while end < len(out) and out[end] == f"I-{etype}":
            end += 1
        action = rng.random()
        if action < 0.1:  # drop
            out[i:end] = ["O"] * (end - i)
        elif action < 0.2 and end < len(out) and out[end] == "O":  # shift right by one token
            out[i:end + 1] = ["O", f"B-{etype}"] + [f"I-{etype}"] * (end - i - 1)
        elif action < 0.3:  # retype
            other = rng.choice([t for t in ENTITY_TYPES if t != etype])
            out[i:end] = [f"B-{other}"] + [f"I-{other}"] * (end - i - 1)
        elif action < 0.4:  # orphan I-
            out[i] = f"I-{etype}"
        elif action < 0.45 and end - i > 1:  # cut the tail off
            out[end - 1] = "O"
        i = end + 1
    return out


def gold_test_file(source: str, fmt: str, request: pytest.FixtureRequest, folder: Path) -> Path:
    """The real test split, or 400 generated posts in the same format (enough entities for the orphans to cost)."""
    if source == "real":
        data = request.getfixturevalue("shared_data")
        return data / "cmner" / "text" / "test.txt" if fmt == "cmner" else data / "twitter2015" / "test.txt"
    from xlingual.testing.synthetic import generated_tweets, generated_weibo_posts

    posts = generated_weibo_posts(400, seed=4) if fmt == "cmner" else generated_tweets(400, seed=4)
    write_samples(folder / "gold.txt", posts, fmt)
    return folder / "gold.txt"


@pytest.mark.parametrize("source", ["generated", pytest.param("real", marks=pytest.mark.real_data)])
@pytest.mark.parametrize("fmt", ["cmner", "twitter"], ids=["cmner", "twitter2015"])
def test_scores_match_conlleval_and_strict_iob2_on_perturbed_real_files(fmt, source, tmp_path, request):
    gold_path = gold_test_file(source, fmt, request, tmp_path)
    gold = read_samples(gold_path, fmt, bio="keep")
    rng = random.Random(20261127)
    predicted = [s.__class__(s.id, s.tokens, perturb(s.labels, rng), s.images, s.lang, s.meta) for s in gold]
    pred_path = tmp_path / "pred.txt"
    write_samples(pred_path, predicted, fmt)
    result = CliRunner().invoke(app, ["evaluate", "--gold", str(gold_path), "--pred", str(pred_path), "--json"])
    assert result.exit_code == 0, result.output
    ours = json.loads(result.stdout)
    gold_labels, pred_labels = [s.labels for s in gold], [s.labels for s in predicted]
    f1, per_type, (tp, n_pred, n_gold) = conlleval(gold_labels, pred_labels)
    assert ours["conlleval"]["f1"] == pytest.approx(f1, abs=0.01)
    assert (ours["conlleval"]["true_positives"], ours["conlleval"]["predicted"], ours["conlleval"]["gold"]) == (tp, n_pred, n_gold)
    assert ours["conlleval"]["per_type_f1"] == pytest.approx(per_type, abs=0.01)
    strict_f1, strict_counts = strict_iob2(gold_labels, pred_labels)
    assert ours["strict"]["f1"] == pytest.approx(strict_f1, abs=0.01)
    assert (ours["strict"]["true_positives"], ours["strict"]["predicted"], ours["strict"]["gold"]) == strict_counts
    assert ours["strict"]["f1"] < ours["conlleval"]["f1"] - 0.5  # the orphans cost entities in strict mode only
    assert set(ours) == {"conlleval", "strict"}
    assert set(ours["strict"]) == {"precision", "recall", "f1", "per_type_f1", "true_positives", "predicted", "gold"}


LABELS = ["O"] * 4 + [f"{p}-{t}" for t in ENTITY_TYPES for p in "BI"]
sequences = st.lists(st.lists(st.sampled_from(LABELS), min_size=1, max_size=12), min_size=1, max_size=8)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), gold=sequences)
def test_conlleval_mode_is_conlleval_pl_on_any_label_sequences(data, gold):
    pred = [data.draw(st.lists(st.sampled_from(LABELS), min_size=len(g), max_size=len(g))) for g in gold]
    ours = score_all_modes(gold, pred)
    f1, per_type, counts = conlleval(gold, pred)
    assert (ours["conlleval"].true_positives, ours["conlleval"].predicted, ours["conlleval"].gold) == counts
    assert ours["conlleval"].f1 == pytest.approx(f1, abs=1e-9)
    assert ours["conlleval"].per_type_f1 == pytest.approx(per_type, abs=1e-9)
    strict_f1, strict_counts = strict_iob2(gold, pred)
    assert (ours["strict"].true_positives, ours["strict"].predicted, ours["strict"].gold) == strict_counts
    assert ours["strict"].f1 == pytest.approx(strict_f1, abs=1e-9)


# -- mismatched files ----------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


GOLD = "WID:1\n我\tB-PER\n们\tI-PER\n\nWID:2\n好\tO\n"


@pytest.mark.parametrize(
    "pred, where, message",
    [
        ("WID:1\n我\tB-PER\n们\tI-PER\n\nWID:3\n好\tO\n", "pred.txt:5:", "post '3' where"),
        ("WID:1\n我\tB-PER\n他\tI-PER\n\nWID:2\n好\tO\n", "pred.txt:3:", "token '他'"),
        ("WID:1\n我\tB-PER\n\nWID:2\n好\tO\n", "pred.txt:1:", "has 1 tokens"),
        ("WID:1\n我\tB-PER\n们\tI-PER\n", "gold.txt:5:", "post '2' has no counterpart"),
    ],
)
def test_different_posts_or_tokens_exit_2_naming_file_and_line(tmp_path, pred, where, message):
    gold_path = write(tmp_path / "gold.txt", GOLD)
    pred_path = write(tmp_path / "pred.txt", pred)
    result = CliRunner().invoke(app, ["evaluate", "--gold", str(gold_path), "--pred", str(pred_path)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert where in result.output and message in result.output


def test_files_are_read_without_bio_repair_and_formats_may_differ(tmp_path):
    gold_path = write(tmp_path / "gold.txt", GOLD)
    pred_path = tmp_path / "pred.jsonl"
    pred = read_samples(gold_path, "cmner", bio="keep")
    pred[0].labels = ["I-PER", "I-PER"]  # an orphan: conlleval still finds the entity, strict IOB2 does not
    write_samples(pred_path, pred, "jsonl")
    scores = evaluate_files(gold_path, pred_path)
    assert scores["conlleval"]["f1"] == pytest.approx(100.0)
    assert scores["strict"]["predicted"] == 0 and scores["strict"]["f1"] == pytest.approx(0.0)
