"""faiss search gives what the torch fallback gives, up to float rounding; alignment results do not depend on the backend."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import xlingual.embeddings.similarity as similarity
from xlingual.embeddings.align import AlignOptions, align_embeddings
from xlingual.embeddings.dictionary import Dictionary
from xlingual.embeddings.evaluate import word_translation_scores
from xlingual.embeddings.similarity import mean_topk_similarity, search_backend, topk_scores, unit_rows, use_search_backend

pytest.importorskip("faiss")


@settings(max_examples=40, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31 - 1), n_q=st.integers(1, 200), n_k=st.integers(1, 300), d=st.integers(1, 48),
       k=st.integers(1, 12), csls=st.booleans(), duplicates=st.booleans())
def test_faiss_and_torch_return_the_same_top_k(seed: int, n_q: int, n_k: int, d: int, k: int, csls: bool, duplicates: bool) -> None:
    """Same scores within 1e-5; where the neighbours differ, they are ties (the exact scores of both lists agree)."""
    generator = torch.Generator().manual_seed(seed)
    queries = unit_rows(torch.randn(n_q, d, generator=generator))
    keys = unit_rows(torch.randn(n_k, d, generator=generator))
    if duplicates:  # exact ties: the same key several times
        keys = torch.cat([keys, keys[: n_k // 2]])
    key_penalty = torch.rand(keys.shape[0], generator=generator) if csls else None
    query_penalty = torch.rand(n_q, generator=generator) if csls else None
    with use_search_backend("faiss"):
        f_values, f_ids = topk_scores(queries, keys, k, key_penalty, query_penalty)
    with use_search_backend("torch"):
        t_values, t_ids = topk_scores(queries, keys, k, key_penalty, query_penalty)
    assert f_values.shape == t_values.shape == (n_q, min(k, keys.shape[0])) and f_ids.dtype == torch.long
    torch.testing.assert_close(f_values, t_values, atol=1e-5, rtol=0)

    def exact(ids: torch.Tensor) -> torch.Tensor:
        scores = (queries.double()[:, None, :] * keys.double()[ids]).sum(-1)
        if csls:
            scores = 2 * scores - key_penalty.double()[ids] - query_penalty.double()[:, None]
        return scores

    torch.testing.assert_close(exact(f_ids), exact(t_ids), atol=1e-5, rtol=0)


def _rotated(n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    src = rng.normal(size=(n, d)) * np.geomspace(2.0, 0.5, d)
    rotation, _ = np.linalg.qr(rng.normal(size=(d, d)))
    tgt = src @ rotation.T + 0.05 * rng.normal(size=(n, d))
    return unit_rows(torch.from_numpy(src).float()), unit_rows(torch.from_numpy(tgt).float())


def test_alignment_and_evaluation_do_not_depend_on_the_backend() -> None:
    src, tgt = _rotated(2000, 24, 0)
    seed = Dictionary(torch.stack([torch.arange(30)] * 2, dim=1))
    test = Dictionary(torch.stack([torch.arange(1500, 2000)] * 2, dim=1))
    outcomes = {}
    for backend in ("faiss", "torch"):
        with use_search_backend(backend):
            result = align_embeddings(src, tgt, seed, AlignOptions(refinement=3, dico_max_rank=1500))
            outcomes[backend] = result, word_translation_scores(src @ result.mapping.T, tgt, test).precision
    (f, f_scores), (t, t_scores) = outcomes["faiss"], outcomes["torch"]
    torch.testing.assert_close(f.mapping, t.mapping, atol=1e-5, rtol=0)
    assert f.criterion == pytest.approx(t.criterion, abs=1e-5) and f.suspect == t.suspect == 0
    assert [h.get("pairs") for h in f.history] == [h.get("pairs") for h in t.history]
    assert f_scores == t_scores and f_scores["csls.p@1"] > 90


def test_without_faiss_the_search_falls_back_to_torch(monkeypatch) -> None:
    monkeypatch.setattr(similarity, "_faiss", lambda: None)
    monkeypatch.setattr(similarity, "_chosen", None)
    assert search_backend() == "torch"
    values = mean_topk_similarity(unit_rows(torch.eye(3)), unit_rows(torch.eye(3)), k=1)
    assert values.tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="faiss is not installed"):
        with use_search_backend("faiss"):
            pass


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="XLINGUAL_SEARCH"):
        with use_search_backend("annoy"):
            pass
