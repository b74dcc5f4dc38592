"""The alignment failure check: it fires on failed alignments and stays quiet on real ones.

Properties over many draws (hypothesis), never one seed's training trajectory:
whatever the CPU or thread count, unrelated spaces are flagged, a recovered
rotation is not, and a flagged run says so in the log, the CLI and alignment.json.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_embeddings import _zipfian_clustered_pair  # imported here, not inside a @given test (hypothesis: nested_given)
from typer.testing import CliRunner

from xlingual.cli import app
from xlingual.embeddings import Vectors, save_vectors
from xlingual.embeddings.adversarial import AdversarialOptions
from xlingual.embeddings.align import AlignOptions, align_embeddings
from xlingual.embeddings.check import check_alignment, random_rotation
from xlingual.embeddings.dictionary import Dictionary
from xlingual.embeddings.normalize import DEFAULT_NORMALIZE, normalize_embeddings
from xlingual.embeddings.paths import find_aligned_pair
from xlingual.workspace import DataDir

runner = CliRunner()
PROPERTY = settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def _anisotropic(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """Gaussian rows with a decaying spectrum, like real embeddings (and unlike a rotation-invariant cloud)."""
    return (rng.normal(size=(n, d)) * np.geomspace(2.0, 0.5, d)).astype(np.float32)


def _normalized(matrix: np.ndarray) -> torch.Tensor:
    return normalize_embeddings(torch.from_numpy(matrix), DEFAULT_NORMALIZE)


@PROPERTY
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(300, 800), d=st.integers(8, 32))
def test_unrelated_spaces_are_always_flagged(seed: int, n: int, d: int) -> None:
    """Two independent vocabularies aligned through a garbage seed dictionary: refinement finds *something*; the check must see it is nothing."""
    rng = np.random.default_rng(seed)
    src, tgt = _normalized(_anisotropic(rng, n, d)), _normalized(_anisotropic(rng, n, d))
    garbage = Dictionary(torch.from_numpy(np.stack([rng.permutation(n)[:50], rng.permutation(n)[:50]], axis=1)))
    result = align_embeddings(src, tgt, garbage, AlignOptions(refinement=3, dico_max_rank=n))
    assert result.suspect > 0, result.check


@PROPERTY
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(300, 800), d=st.integers(8, 32), noise=st.floats(0.0, 0.05))
def test_a_recovered_rotation_is_never_flagged(seed: int, n: int, d: int, noise: float) -> None:
    rng = np.random.default_rng(seed)
    src = _anisotropic(rng, n, d)
    rotation = random_rotation(d, seed, torch.device("cpu")).numpy()
    tgt = (src @ rotation.T + noise * rng.normal(size=(n, d))).astype(np.float32)
    seed_pairs = Dictionary(torch.stack([torch.arange(40)] * 2, dim=1))
    result = align_embeddings(_normalized(src), _normalized(tgt), seed_pairs, AlignOptions(refinement=3, dico_max_rank=n))
    assert result.suspect == 0, result.check
    assert result.check is not None and result.check.mutual_rate > 0.5


def _clustered_pair(seed: int) -> tuple[torch.Tensor, torch.Tensor]:

    src, tgt, _ = _zipfian_clustered_pair(n=1500, d=12, seed=seed)
    return _normalized(src), _normalized(tgt)


@settings(max_examples=2, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31 - 1))
def test_a_run_with_adversarial_training_disabled_is_flagged(seed: int) -> None:
    """Zero adversarial epochs leave the identity mapping, which refinement carries to a local optimum, not the rotation."""
    src, tgt = _clustered_pair(seed)
    options = AlignOptions(refinement=5, dico_max_rank=1500, restarts=1, adversarial=AdversarialOptions(epochs=0))
    result = align_embeddings(src, tgt, None, options)
    assert result.method == "unsupervised" and result.suspect > 0, result.check


def test_the_check_passes_the_true_rotation_and_fails_a_wrong_one() -> None:
    """The same clustered data: the hidden rotation itself passes; a random rotation refined like it does not."""

    src, tgt, translation = _zipfian_clustered_pair(n=1500, d=12, seed=3)
    src_t, tgt_t = _normalized(src), _normalized(tgt)
    pairs = Dictionary(torch.stack([torch.arange(1500), torch.from_numpy(translation)], dim=1)[:200])
    good = align_embeddings(src_t, tgt_t, pairs, AlignOptions(refinement=2, dico_max_rank=1500))
    assert good.suspect == 0, good.check
    wrong = random_rotation(12, 99, torch.device("cpu"))
    bad = check_alignment(src_t, tgt_t, wrong, good.initial_criterion, good.initial_criterion, 2, 1500)
    assert bad.suspect >= 2 and bad.mutual_rate < good.check.mutual_rate / 2


def test_a_failed_alignment_is_loud_in_the_log_the_cli_and_alignment_json(tmp_path) -> None:
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(400)]
    src = save_vectors(tmp_path / "a.vec", Vectors(words, _anisotropic(rng, 400, 8)))
    tgt = save_vectors(tmp_path / "b.vec", Vectors(words, _anisotropic(rng, 400, 8)))
    data = tmp_path / "data"
    result = runner.invoke(app, ["embeddings", "align", "--src-emb", str(src), "--tgt-emb", str(tgt), "--src-lang", "en",
                                 "--tgt-lang", "zh", "--data-dir", str(data), "--adv-epochs", "1", "--adv-epoch-size", "64",
                                 "--adv-most-frequent", "400", "--restarts", "2", "--refinement", "2", "--dico-max-rank", "400", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["suspect"] > 0 and summary["suspect_reasons"]
    assert "ALIGNMENT LOOKS FAILED" in result.stderr
    paths = DataDir(data).aligned("en", "zh")
    written = json.loads(paths.summary.read_text())
    assert written["suspect"] == summary["suspect"] and written["check"]["baseline_mutual_rate"] > 0
    assert [r["seed"] for r in written["restarts"]] == [0, 1]
    heard: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: heard.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("xlingual.embeddings.paths").addHandler(handler)
    try:
        assert find_aligned_pair(data, "zh", "en") == {"en": paths.src_vectors, "zh": paths.tgt_vectors}
    finally:
        logging.getLogger("xlingual.embeddings.paths").removeHandler(handler)
    assert any("LOOKED FAILED" in message for message in heard)


def test_restarts_are_the_default_for_unsupervised_alignment() -> None:
    assert AlignOptions().restarts >= 3
    result = runner.invoke(app, ["embeddings", "align", "--help"])
    assert "[default: 5]" in result.output.replace("\n", " ") or "default: 5" in result.output


def test_restarts_below_one_are_an_option_error(tmp_path) -> None:
    vec = save_vectors(tmp_path / "a.vec", Vectors(["a", "b"], np.eye(2, dtype=np.float32)))
    result = runner.invoke(app, ["embeddings", "align", "--src-emb", str(vec), "--tgt-emb", str(vec), "--out", str(tmp_path / "o"), "--restarts", "0"])
    assert result.exit_code == 2 and "--restarts" in result.output and "Traceback" not in result.output
