"""xlingual.embeddings: vector files, ACN matrices, Procrustes/CSLS alignment, evaluation, fastText training, CLI."""

from __future__ import annotations

from pathlib import Path

import json
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from xlingual.cli import app
from xlingual.embeddings import TrainOptions, Vectors, build_embedding_matrix, load_vectors, save_vectors, train_vectors
from xlingual.embeddings.align import AlignOptions, align_embeddings
from xlingual.embeddings.adversarial import AdversarialOptions
from xlingual.embeddings.dictionary import Dictionary
from xlingual.embeddings.evaluate import word_translation_scores
from xlingual.embeddings.paths import find_aligned_pair
from xlingual.workspace import AlignedPaths
from xlingual.embeddings.similarity import topk_scores
from xlingual.errors import ConfigError, DataFormatError

runner = CliRunner()


def _rotated_pair(n: int = 1500, d: int = 24, noise: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    src = rng.normal(size=(n, d)).astype(np.float32)
    rotation, _ = np.linalg.qr(rng.normal(size=(d, d)))
    tgt = (src @ rotation.T + noise * rng.normal(size=(n, d))).astype(np.float32)
    return src, tgt, rotation


def _identity_dictionary(rows: range) -> Dictionary:
    index = torch.tensor(list(rows))
    return Dictionary(torch.stack([index, index], dim=1))


# --- files ---------------------------------------------------------------------------------

def test_save_and_load_round_trip_keeps_words_and_values(tmp_path):
    words = ["the", "\u00a0", "北京", "x"]
    matrix = np.random.default_rng(1).normal(size=(4, 5)).astype(np.float32)
    path = save_vectors(tmp_path / "v.vec", Vectors(words, matrix))
    assert path.read_text(encoding="utf-8").splitlines()[0] == "4 5"
    loaded = load_vectors(path)
    assert loaded.words == words and loaded.dim == 5
    np.testing.assert_allclose(loaded.matrix, matrix, rtol=1e-5, atol=1e-6)
    assert load_vectors(path, max_vocab=2).words == ["the", "\u00a0"]


def test_load_accepts_files_without_header(tmp_path):
    path = tmp_path / "nohead.vec"
    path.write_text("a 1 2 3\nb 4 5 6\n", encoding="utf-8")
    vectors = load_vectors(path)
    assert vectors.words == ["a", "b"] and vectors.matrix[1].tolist() == [4, 5, 6]


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("3 3\na 1 2 3\nb 1 2\nc 1 2 3\n", 3, "expected 3 values"),
        ("3 x\na 1 2 3\n", 1, "bad header"),
        ("2 3\na 1 2 3\nb 1 two 3\n", 3, "non-numeric value 'two'"),
        ("lonely\n", 1, "bad header"),
    ],
)
def test_malformed_vectors_name_the_line(tmp_path, text, line, message):
    path = tmp_path / "bad.vec"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataFormatError) as info:
        load_vectors(path)
    assert info.value.line == line and message in str(info.value)


def test_cli_malformed_vectors_exit_2_with_line_number(tmp_path):
    bad = tmp_path / "bad.vec"
    bad.write_text("2 3\na 1 2 3\nb 1 2\n", encoding="utf-8")
    good = save_vectors(tmp_path / "good.vec", Vectors(["a"], np.ones((1, 3), np.float32)))
    dico = tmp_path / "d.txt"
    dico.write_text("a a\n", encoding="utf-8")
    result = runner.invoke(app, ["embeddings", "evaluate", "--src-emb", str(bad), "--tgt-emb", str(good), "--dico", str(dico)])
    assert result.exit_code == 2
    assert f"{bad}:3: expected 3 values after the word, found 2" in result.output
    assert "Traceback" not in result.output


# --- ACN matrix ----------------------------------------------------------------------------

def test_embedding_matrix_copies_known_words_and_draws_unknown_ones():
    vectors = Vectors(["obama", "Paris"], np.array([[1, 2], [3, 4]], np.float32))
    vocab = ["[pad]", "[unk]", "obama", "Obama", "paris", "Paris"]
    built = build_embedding_matrix(vocab, vectors, seed=3)
    assert (built.found, built.missing) == (3, 3) and built.coverage == pytest.approx(0.5)
    assert built.matrix[3].tolist() == [1, 2]  # lower-cased fallback
    assert built.matrix[5].tolist() == [3, 4]
    assert built.matrix[4].tolist() != [3, 4]  # exact lookup only: 'paris' is not 'Paris'
    assert np.all(np.abs(built.matrix[[0, 1, 4]]) <= 0.25)
    np.testing.assert_array_equal(built.matrix, build_embedding_matrix(vocab, vectors, seed=3).matrix)


# --- search, alignment ---------------------------------------------------------------------

def _at(degrees: list[float]) -> torch.Tensor:
    radians = torch.tensor(degrees) * torch.pi / 180
    return torch.stack([radians.cos(), radians.sin()], dim=1)


def test_csls_picks_the_right_neighbour_where_nn_picks_the_hub():
    # Query 0 (0 deg) translates to target 1 (-25 deg); target 0 (20 deg) is a hub near queries 1-3 (30-50 deg).
    queries = _at([0, 30, 40, 50])
    keys = _at([20, -25])
    _, nn_top = topk_scores(queries[:1], keys, 1)
    scores = word_translation_scores(queries, keys, Dictionary(torch.tensor([[0, 1]])), knn=2)
    assert nn_top[0, 0].item() == 0  # NN picks the hub
    assert scores.precision["nn.p@1"] == 0.0 and scores.precision["csls.p@1"] == 100.0


def test_procrustes_recovers_a_hidden_rotation_exactly():
    src, tgt, rotation = _rotated_pair()
    src_t, tgt_t = torch.from_numpy(src), torch.from_numpy(tgt)
    test = _identity_dictionary(range(1000, 1500))
    before = word_translation_scores(src_t, tgt_t, test).precision["nn.p@1"]
    result = align_embeddings(src_t, tgt_t, _identity_dictionary(range(0, 50)), AlignOptions(refinement=0))
    np.testing.assert_allclose(result.mapping.numpy(), rotation, atol=1e-4)
    after = word_translation_scores(src_t @ result.mapping.T, tgt_t, test).precision
    assert before < 2.0
    assert after["nn.p@1"] == 100.0 and after["csls.p@1"] == 100.0


def test_refinement_turns_a_tiny_noisy_seed_into_a_good_mapping():
    src, tgt, _ = _rotated_pair(noise=0.05, seed=1)
    src_t, tgt_t = torch.from_numpy(src), torch.from_numpy(tgt)
    seed = Dictionary(torch.tensor([[i, i] for i in range(30)] + [[i, i + 1] for i in range(30, 40)]))  # 10 wrong pairs
    test = _identity_dictionary(range(1000, 1500))
    unrefined = align_embeddings(src_t, tgt_t, seed, AlignOptions(refinement=0, normalize=""))
    refined = align_embeddings(src_t, tgt_t, seed, AlignOptions(refinement=3, normalize=""))
    p_unrefined = word_translation_scores(src_t @ unrefined.mapping.T, tgt_t, test).precision["csls.p@1"]
    p_refined = word_translation_scores(src_t @ refined.mapping.T, tgt_t, test).precision["csls.p@1"]
    assert p_refined == 100.0 and p_refined > p_unrefined
    assert [h["step"] for h in refined.history][-3:] == ["refinement 1", "refinement 2", "refinement 3"]


def test_unsupervised_alignment_of_unrelated_spaces_is_flagged_as_suspect(caplog):
    rng = np.random.default_rng(5)
    src = torch.from_numpy(rng.normal(size=(400, 8)).astype(np.float32))
    tgt = torch.from_numpy(rng.normal(size=(400, 8)).astype(np.float32))
    options = AlignOptions(refinement=1, dico_max_rank=400, restarts=2,
                           adversarial=AdversarialOptions(epochs=1, epoch_size=32 * 20, dis_hidden=32, most_frequent=400))
    with caplog.at_level("WARNING"):
        result = align_embeddings(src, tgt, None, options)
    assert result.method == "unsupervised" and result.suspect > 0
    assert "ALIGNMENT LOOKS FAILED" in caplog.text
    assert abs(float(torch.linalg.det(result.mapping.double()))) == pytest.approx(1.0, abs=0.05)


def test_align_writes_the_documented_files_and_evaluate_reads_them(tmp_path):
    src, tgt, _ = _rotated_pair(n=600, d=12, noise=0.01, seed=2)
    words = [f"w{i}" for i in range(600)]
    src_path = save_vectors(tmp_path / "a.vec", Vectors(words, src))
    tgt_path = save_vectors(tmp_path / "b.vec", Vectors(words, tgt))
    out = tmp_path / "data" / "embeddings" / "aligned.en-zh"
    result = runner.invoke(app, ["embeddings", "align", "--src-emb", str(src_path), "--tgt-emb", str(tgt_path),
                                 "--src-lang", "en", "--tgt-lang", "zh", "--data-dir", str(tmp_path / "data"), "--dico", "identical", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["method"] == "supervised" and not summary["suspect"]
    paths = AlignedPaths(out)
    assert paths.mapping.is_file() and json.loads(paths.summary.read_text())["seed_pairs"] == 600
    assert find_aligned_pair(tmp_path / "data", "en", "zh") == {"en": paths.src_vectors, "zh": paths.tgt_vectors}
    assert find_aligned_pair(tmp_path / "data", "zh", "en") == {"en": paths.src_vectors, "zh": paths.tgt_vectors}
    assert find_aligned_pair(tmp_path / "data", "en", "fr") is None
    dico = tmp_path / "test.txt"
    dico.write_text("".join(f"w{i} w{i}\n" for i in range(300, 400)) + "unknown w1\n", encoding="utf-8")
    result = runner.invoke(app, ["embeddings", "evaluate", "--src-emb", str(paths.src_vectors), "--tgt-emb", str(paths.tgt_vectors),
                                 "--dico", str(dico), "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout.strip().splitlines()[-1])
    assert scores["csls.p@1"] == 100.0 and scores["queries"] == 100 and scores["skipped_pairs"] == 1
    aligned = load_vectors(paths.src_vectors)
    built = build_embedding_matrix(["[pad]", "w3"], aligned)
    assert built.found == 1 and built.matrix.shape == (2, 12)


def test_align_without_out_or_languages_is_an_option_error(tmp_path):
    vec = save_vectors(tmp_path / "a.vec", Vectors(["a"], np.ones((1, 2), np.float32)))
    result = runner.invoke(app, ["embeddings", "align", "--src-emb", str(vec), "--tgt-emb", str(vec)])
    assert result.exit_code == 2 and "--out" in result.output


# --- fastText on CMNER-style characters (generated, and the real train file where it is) ----------------

@pytest.fixture(scope="module", params=["generated", pytest.param("real", marks=pytest.mark.real_data)])
def char_corpus(request, tmp_path_factory) -> tuple[Path, str, str, set[str]]:
    """A CMNER train file, two characters that (almost) only occur together in it, and the company they keep.

    On the real file each must be among the other's five nearest neighbours; on the
    generated one (words drawn by topic) the five nearest neighbours of each must be
    characters of its topic's words.
    """
    if request.param == "real":
        # 旅游 (travel) is among the corpus' most frequent bigrams; the two characters rarely occur apart.
        return request.getfixturevalue("shared_data") / "cmner" / "text" / "train.txt", "旅", "游", {"旅", "游"}
    from xlingual.data.formats import write_samples
    from xlingual.testing.synthetic import generated_weibo_posts

    path = tmp_path_factory.mktemp("corpus") / "train.txt"
    write_samples(path, generated_weibo_posts(2000, seed=11), "cmner")
    travel = set("旅游 酒店 景点 机票 海边 风景 拍照 假期".replace(" ", ""))  # the generator's travel topic
    return path, "旅", "游", travel


@pytest.fixture(scope="module")
def cmner_char_vectors(char_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("ft") / "cmner.zh.vec"
    train_vectors([char_corpus[0]], out, "zh", options=TrainOptions(dim=50, epoch=5, window=2))
    return out


def test_fasttext_on_cmner_characters_puts_co_occurring_characters_together(cmner_char_vectors, char_corpus):
    vectors = load_vectors(cmner_char_vectors)
    assert all(len(w) == 1 for w in vectors.words) and "</s>" not in vectors
    unit = vectors.matrix / np.linalg.norm(vectors.matrix, axis=1, keepdims=True)

    def neighbours(char: str, k: int = 5) -> list[str]:
        scores = unit @ unit[vectors.index()[char]]
        return [vectors.words[i] for i in np.argsort(-scores)[1:k + 1]]

    _, first, second, company = char_corpus
    if company == {first, second}:
        assert second in neighbours(first)
        assert first in neighbours(second)
    else:
        assert set(neighbours(first)) <= company, neighbours(first)
        assert set(neighbours(second)) <= company, neighbours(second)


def test_training_again_with_the_same_corpus_is_skipped(cmner_char_vectors, char_corpus):
    stamp = cmner_char_vectors.stat().st_mtime_ns
    train_vectors([char_corpus[0]], cmner_char_vectors, "zh", options=TrainOptions(dim=50, epoch=5, window=2))
    assert cmner_char_vectors.stat().st_mtime_ns == stamp


def test_sub_sampling_is_relaxed_on_tiny_corpora_only() -> None:
    from xlingual.embeddings.train import effective_sampling

    assert effective_sampling(1e-4, 118) == pytest.approx(10 / 118)
    assert effective_sampling(1e-4, 332_649) == 1e-4


def test_tiny_corpus_trains_without_nan(tmp_path, sample_data_dir) -> None:
    from xlingual.embeddings import TrainOptions, load_vectors, train_vectors

    options = TrainOptions(dim=8, epoch=5, min_count=1, threads=1)
    out = train_vectors([sample_data_dir / "cmner" / "text" / "train.txt"], tmp_path / "zh.vec", "zh", options=options)
    vectors = load_vectors(out)
    assert len(vectors.words) > 50 and np.isfinite(vectors.matrix).all()


def test_training_survives_a_dirty_heap(tmp_path, sample_data_dir) -> None:
    """fastText reads uninitialised memory; in a process whose heap holds garbage it reports NaN.

    Training runs in a child process, so the caller's heap cannot matter.
    """
    import ctypes

    from xlingual.embeddings import TrainOptions, load_vectors, train_vectors

    garbage = [ctypes.create_string_buffer(b"\xff" * n) for n in (64, 256, 1024, 4096, 16384, 65536) * 200]
    del garbage
    options = TrainOptions(dim=16, epoch=5, min_count=1, threads=1)
    out = train_vectors([sample_data_dir / "cmner" / "text" / "train.txt"], tmp_path / "zh.vec", "zh", options=options)
    assert np.isfinite(load_vectors(out).matrix).all()


def _zipfian_clustered_pair(n: int = 3000, d: int = 16, clusters: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two vocabularies that are one hidden rotation apart, with structure an adversary can lock onto.

    Why not an isotropic Gaussian cloud: it is rotation-invariant, so every
    rotation fools the discriminator equally and none is identifiable. Real
    embeddings have a decaying spectrum and topical clusters of unequal size;
    here cluster centres have geometrically decaying scales per axis (distinct
    variances pin the rotation down to sign flips), Zipf-sized clusters with
    their own anisotropic spread break the remaining symmetries. Rows are in
    frequency order; the target's order is the source rank jittered
    multiplicatively, as translations have similar but not equal frequencies.
    Returns source, target and, for every source row, its translation's target row.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, d)) * np.geomspace(3.0, 0.3, d)
    sizes = 1.0 / np.arange(1, clusters + 1)
    assign = rng.choice(clusters, size=n, p=sizes / sizes.sum())
    spread = rng.uniform(0.2, 0.5, size=(clusters, d))
    src = centres[assign] + rng.normal(size=(n, d)) * spread[assign]
    rotation, _ = np.linalg.qr(rng.normal(size=(d, d)))
    order = np.argsort(np.arange(n) * np.exp(0.3 * rng.normal(size=n)), kind="stable")
    tgt = src[order] @ rotation.T + 0.02 * rng.normal(size=(n, d))
    translation = np.empty(n, dtype=np.int64)
    translation[order] = np.arange(n)
    return src.astype(np.float32), tgt.astype(np.float32), translation


def test_unsupervised_restarts_pick_a_recovering_run_or_say_that_none_recovered():
    """Adversarial training + refinement with restarts, selected by the unsupervised criterion, no dictionary.

    Whether one adversarial run lands near the hidden rotation depends on the
    CPU's floating point (the same seed recovered it on one machine and ended
    at criterion ~0.86 with P@1 ~0 on another), so the test pins no trajectory.
    It asserts what holds for every run: MUSE's criterion keeps the best
    restart; when any restart recovered the rotation the chosen mapping did
    too and is not suspect; when the chosen mapping did not, the failure check
    says so. Chance P@1 is 1/1500; recovery is P@1 > 90.
    """
    from xlingual.embeddings.normalize import DEFAULT_NORMALIZE, normalize_embeddings

    src, tgt, translation = _zipfian_clustered_pair(n=1500, d=12)
    src_t = normalize_embeddings(torch.from_numpy(src), DEFAULT_NORMALIZE)
    tgt_t = normalize_embeddings(torch.from_numpy(tgt), DEFAULT_NORMALIZE)
    queries = torch.arange(750)
    test = Dictionary(torch.stack([queries, torch.from_numpy(translation)[queries]], dim=1))
    adversarial = AdversarialOptions(epochs=2, epoch_size=32_000, batch_size=128, most_frequent=1000, dis_hidden=64,
                                     dis_steps=2, map_lr=0.5, seed=0)
    result = align_embeddings(src_t, tgt_t, None, AlignOptions(refinement=5, dico_max_rank=1500, adversarial=adversarial, restarts=2))

    def p_at_1(mapping: torch.Tensor) -> float:
        return word_translation_scores(src_t @ mapping.T, tgt_t, test).precision["csls.p@1"]

    assert [c.seed for c in result.candidates] == [0, 1]
    assert result.criterion == max(c.criterion for c in result.candidates)
    chosen = p_at_1(result.mapping)
    if max(p_at_1(c.mapping) for c in result.candidates) > 90.0:
        assert chosen > 90.0 and result.suspect == 0
    if chosen < 50.0:
        assert result.suspect > 0, result.check


@settings(max_examples=5, deadline=None, derandomize=True)
@given(good=st.lists(st.booleans(), min_size=1, max_size=5), seed=st.integers(0, 2**31 - 1))
def test_the_best_of_n_restarts_recovers_the_rotation_whenever_one_restart_lands_near_it(good: list[bool], seed: int) -> None:
    """Restarts whose adversarial stage ends near the rotation (a small random rotation away) or anywhere: refinement
    and MUSE's criterion must pick a recovering one whenever there is one, and flag the run when there is none."""
    import xlingual.embeddings.align as align_module
    from xlingual.embeddings.adversarial import AdversarialResult
    from xlingual.embeddings.check import random_rotation

    src, tgt, translation = _zipfian_clustered_pair(n=1000, d=12, seed=seed % 1000)
    src_t, tgt_t = torch.from_numpy(src), torch.from_numpy(tgt)
    src_t, tgt_t = src_t / src_t.norm(dim=1, keepdim=True), tgt_t / tgt_t.norm(dim=1, keepdim=True)
    pairs = torch.stack([torch.arange(1000), torch.from_numpy(translation)], dim=1)
    from xlingual.embeddings.procrustes import procrustes

    truth = procrustes(src_t, tgt_t, pairs)
    generator = torch.Generator().manual_seed(seed)

    def fake_adversarial(src_, tgt_, options):
        if good[options.seed]:
            skew = torch.randn(12, 12, generator=generator) * 0.02
            return AdversarialResult(torch.linalg.matrix_exp(skew - skew.T) @ truth, 0.0, 0.0, [])
        return AdversarialResult(random_rotation(12, 10_000 + seed + options.seed, torch.device("cpu")), 0.0, 0.0, [])

    original = align_module.adversarial_mapping
    align_module.adversarial_mapping = fake_adversarial
    try:
        result = align_embeddings(src_t, tgt_t, None, AlignOptions(normalize="", refinement=3, dico_max_rank=1000, restarts=len(good)))
    finally:
        align_module.adversarial_mapping = original
    test = Dictionary(pairs[:500])
    p1 = word_translation_scores(src_t @ result.mapping.T, tgt_t, test).precision["csls.p@1"]
    if any(good):
        assert p1 > 90.0 and result.suspect == 0, result.check
    else:
        assert p1 < 50.0 and result.suspect > 0, result.check


def test_restarts_keep_the_adversarial_run_with_the_best_criterion(monkeypatch) -> None:
    """A failed adversarial run (seed 0 here) is outvoted by a good one (seed 1) through MUSE's criterion alone."""
    import xlingual.embeddings.align as align_module
    from xlingual.embeddings.adversarial import AdversarialResult

    generator = torch.Generator().manual_seed(0)
    src = torch.nn.functional.normalize(torch.randn(400, 8, generator=generator), dim=1)
    rotation, _ = torch.linalg.qr(torch.randn(8, 8, generator=generator))
    tgt = src @ rotation.T
    wrong, _ = torch.linalg.qr(torch.randn(8, 8, generator=generator))
    seeds = []

    def fake_adversarial(src_, tgt_, options):
        seeds.append(options.seed)
        return AdversarialResult(wrong if options.seed == 0 else rotation, 0.0, 0.0, [])

    monkeypatch.setattr(align_module, "adversarial_mapping", fake_adversarial)
    one = align_module.align_embeddings(src, tgt, options=AlignOptions(normalize="", refinement=0, restarts=1))
    three = align_module.align_embeddings(src, tgt, options=AlignOptions(normalize="", refinement=0, restarts=3))
    assert seeds == [0, 0, 1, 2]
    assert torch.allclose(three.mapping, rotation) and not torch.allclose(one.mapping, rotation)
    assert three.criterion > one.criterion


@pytest.mark.parametrize("lang, unit, expected", [
    ("en", "auto", "word"), ("de", "auto", "word"), ("fr", "auto", "word"), ("zh", "auto", "char"), ("ja", "auto", "char"),
    ("th", "auto", "char"), ("zh", "word", "word"), ("de", "word", "word"), ("ja", "char", "char"),
])
def test_any_iso_language_trains_on_its_natural_unit(lang, unit, expected) -> None:
    from xlingual.embeddings.train import resolve_unit

    assert resolve_unit(lang, unit) == expected


def test_words_split_on_whitespace_and_characters_one_by_one() -> None:
    from xlingual.embeddings.train import tokenize_text

    assert tokenize_text("Die Brücke  bei Köln", "de", "word") == ["Die", "Brücke", "bei", "Köln"]
    assert tokenize_text("東京 タワー", "ja", "char") == list("東京タワー")


@pytest.mark.parametrize("lang, unit, message", [
    ("eng", "auto", "--lang eng: 'eng' is not an ISO 639-1"), ("de", "char", "--unit char is for languages written without spaces"),
    ("ja", "word", "--unit word for ja"), ("de", "bpe", "--unit must be one of"),
])
def test_a_language_or_unit_that_cannot_be_trained_is_one_line(lang, unit, message) -> None:
    from xlingual.embeddings.train import resolve_unit

    with pytest.raises(ConfigError, match=re.escape(message)):
        resolve_unit(lang, unit)


def test_german_vectors_train_from_a_raw_corpus(tmp_path) -> None:
    """ACN's word vectors for a German target: fastText on German words, one line per post."""
    corpus = tmp_path / "de.txt"
    words = ["Berlin", "München", "Köln", "Merkel", "Bayern", "Dortmund", "heute", "morgen", "spielt", "gegen", "in", "und"]
    rng = np.random.default_rng(0)
    corpus.write_text("\n".join(" ".join(rng.choice(words, size=8)) for _ in range(300)) + "\n", encoding="utf-8")
    out = train_vectors([corpus], tmp_path / "fasttext.de.vec", "de", options=TrainOptions(dim=16, epoch=3, min_count=1))
    vectors = load_vectors(out)
    assert {w.lower() for w in words} <= set(vectors.words) and np.isfinite(vectors.matrix).all()
