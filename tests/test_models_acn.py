"""ACN: vocabularies, layers, masking, training, persistence (tiny configurations; generated posts, and the real data where it is)."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from seqeval.metrics import f1_score

from xlingual.data.datasets import load_split
from xlingual.data.labels import orphan_positions
from xlingual.data.sample import Sample
from xlingual.errors import ConfigError, DataFormatError, ModelNotFoundError
from xlingual.models import load_model
from xlingual.models.acn import ACN_LABELS, AcnModel
from xlingual.models.acn_layers import BiLstm
from xlingual.models.acn_text import NUMBER, PAD, UNK, URL, build_vocabularies, normalise_token

TINY = {"word_dim": 16, "char_dim": 8, "char_filters": 8, "char_out": 8, "hidden": 32, "max_length": 64, "max_word_len": 12, "seed": 7}


def regions_of(sample: Sample) -> tuple[np.ndarray, bool]:
    """Random but fixed (49, 512) 'VGG' regions per post, so a test's features never change between calls."""
    rng = np.random.default_rng(zlib.crc32(sample.id.encode()))
    return rng.standard_normal((49, 512)).astype(np.float32), True


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cmner(generated_data) -> list[Sample]:
    """Fifty CMNER-style posts (one character per token, every fifth longer than 70), read back from their file."""
    return load_split(generated_data.root, "cmner", "train")[:50]


@pytest.fixture(scope="module")
def twitter(generated_data) -> list[Sample]:
    return load_split(generated_data.root, "twitter2015", "train")[:50]


@pytest.fixture(scope="module")
def mixed(cmner: list[Sample], twitter: list[Sample]) -> list[Sample]:
    return cmner + twitter


def write_vec(path: Path, rows: dict[str, list[float]]) -> Path:
    dim = len(next(iter(rows.values())))
    lines = [f"{len(rows)} {dim}"] + [" ".join([word, *(f"{x:.6f}" for x in vector)]) for word, vector in rows.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def train_steps(model: AcnModel, items: list[dict], steps: int, lr: float = 1e-2, batch_size: int = 25) -> list[float]:
    torch.manual_seed(0)
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    losses = []
    for step in range(steps):
        start = (step * batch_size) % len(items)
        loss = model(model.collate(items[start : start + batch_size]))["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return losses


# ---------------------------------------------------------------- text side


@pytest.mark.parametrize(
    "token, expected",
    [("2nd", NUMBER), ("-3.5", NUMBER), (".5kg", NUMBER), ("http://t.co/x", URL), ("WWW.x.com", URL), ("#Paris", "paris"), ("#", "#"),
     ("@user_1", "user_1"), ("@", "@"), ("NBA", "nba"), ("中", "中"), ("7", NUMBER), ("a#b", "a#b")],
)
def test_normalisation_follows_the_reference_rules(token: str, expected: str) -> None:
    assert normalise_token(token) == expected


def test_one_vocabulary_covers_english_words_and_chinese_characters(mixed: list[Sample]) -> None:
    model = AcnModel.build(TINY, mixed)
    assert model.words.to_list()[:2] == [PAD, UNK] and model.chars.to_list()[:2] == [PAD, UNK]
    english = {normalise_token(t) for s in mixed if s.lang == "en" for t in s.tokens}
    chinese = {normalise_token(t) for s in mixed if s.lang == "zh" for t in s.tokens}
    assert english <= set(model.words.items) and chinese <= set(model.words.items)
    assert len(model.words) == 2 + len(english | chinese)
    words, _ = build_vocabularies([["b", "a", "a", "c", "b", "a"]])
    assert words.to_list() == [PAD, UNK, "a", "b", "c"]  # by frequency, ties in first-seen order
    assert words.id("unseen") == 1


def test_max_length_defaults_per_language(cmner: list[Sample], twitter: list[Sample]) -> None:
    config = {k: v for k, v in TINY.items() if k != "max_length"}
    assert AcnModel.build(config, twitter).config.max_length == 35
    assert AcnModel.build(config, cmner + twitter).config.max_length == 250


# ---------------------------------------------------------------- shapes, gates, masking


def test_attention_and_gate_shapes_match_the_specification(mixed: list[Sample]) -> None:
    model = AcnModel.build(TINY, mixed).eval()
    batch = model.collate(model.encode(mixed[:2] + mixed[50:52], regions_of))
    width = batch["word_ids"].shape[1]
    with torch.no_grad():
        out = model.compute(batch)
    assert out.emissions.shape == (4, width, 9)
    assert out.visual_attention.shape == (4, width, 49)
    assert out.textual_attention.shape == (4, width, width)
    assert out.fusion_gate.shape == (4, width, 1) and out.filtration_gate.shape == (4, width, 1)
    for gate in (out.fusion_gate, out.filtration_gate):
        assert bool(((gate > 0) & (gate < 1)).all())
    torch.testing.assert_close(out.visual_attention.sum(-1), torch.ones(4, width))
    torch.testing.assert_close(out.textual_attention.sum(-1), torch.ones(4, width))
    # Padding keys receive no textual attention when mask_padding is on.
    lengths = batch["lengths"]
    shortest = int(lengths.argmin())
    assert lengths[shortest] < width
    assert float(out.textual_attention[shortest, :, lengths[shortest]:].abs().max()) == 0.0


def test_bilstm_keeps_padding_out_like_a_packed_lstm() -> None:
    torch.manual_seed(0)
    ours = BiLstm(6, 5)
    packed_lstm = torch.nn.LSTM(6, 5, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for name, param in ours.forward_lstm.named_parameters():
            getattr(packed_lstm, name).copy_(param)
        for name, param in ours.backward_lstm.named_parameters():
            getattr(packed_lstm, f"{name}_reverse").copy_(param)
    x, lengths = torch.randn(3, 7, 6), torch.tensor([7, 2, 4])
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    expected = torch.nn.utils.rnn.pad_packed_sequence(packed_lstm(packed)[0], batch_first=True, total_length=7)[0]
    got = ours(x, lengths)
    for row, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(got[row, :n], expected[row, :n])
    # The reference mode reads padding first in the backward direction, so short posts change.
    quirky = ours(x, lengths, respect_lengths=False)
    torch.testing.assert_close(quirky[0], got[0])
    assert not torch.allclose(quirky[1, :2, 5:], got[1, :2, 5:])


def test_reference_mode_pads_to_max_length_and_attends_to_padding(mixed: list[Sample]) -> None:
    model = AcnModel.build({**TINY, "mask_padding": False}, mixed).eval()
    batch = model.collate(model.encode([mixed[0], mixed[50]], regions_of))
    assert batch["word_ids"].shape == (2, 64)
    with torch.no_grad():
        out = model.compute(batch)
    n = int(batch["lengths"].min())
    assert n < 64 and float(out.textual_attention[int(batch["lengths"].argmin()), :, n:].sum()) > 0


def test_padding_does_not_change_a_posts_predictions(mixed: list[Sample]) -> None:
    model = AcnModel.build(TINY, mixed).eval()
    items = model.encode(mixed, regions_of)
    short = min(range(len(items)), key=lambda i: len(items[i]["word_ids"]))
    longest = max(range(len(items)), key=lambda i: len(items[i]["word_ids"]))
    alone = model.collate([items[short]])
    padded = model.collate([items[longest], items[short]])
    n = len(items[short]["word_ids"])
    assert padded["word_ids"].shape[1] > n
    with torch.no_grad():
        torch.testing.assert_close(model.compute(alone).emissions[0, :n], model.compute(padded).emissions[1, :n], rtol=1e-5, atol=1e-5)
    assert model.decode(alone)[0] == model.decode(padded)[1]


def test_output_lengths_equal_token_counts_even_when_truncated(mixed: list[Sample]) -> None:
    model = AcnModel.build(TINY, mixed)
    long_post = next(s for s in mixed if len(s) > 64)
    posts = [long_post, *mixed[50:55]]
    predictions = model.predict(posts, regions_of, batch_size=4)
    assert [len(p) for p in predictions] == [len(s) for s in posts]
    assert set(predictions[0][64:]) == {"O"}
    assert all(label in ACN_LABELS[1:] for p in predictions for label in p)


def test_decoded_labels_keep_the_crfs_orphan_tags_as_produced(mixed: list[Sample]) -> None:
    model = AcnModel.build({**TINY, "use_image": False}, mixed).eval()
    i_per = ACN_LABELS.index("I-PER") - 1  # CRF state of I-PER
    with torch.no_grad():
        model.output.weight.zero_()
        model.output.bias.zero_()
        model.output.bias[i_per] = 10.0
        model.crf.transitions.zero_()
        model.crf.start_transitions.zero_()
    predictions = model.predict(mixed[50:53])
    for prediction in predictions:  # not repaired: strict IOB2 scoring must see what the model produced
        assert set(prediction) == {"I-PER"}
    assert orphan_positions(predictions[0]) == [0]


def test_empty_post_decodes_to_empty_list(mixed: list[Sample]) -> None:
    model = AcnModel.build(TINY, mixed)
    empty = Sample(id="e", tokens=[], labels=[], lang="en")
    assert model.predict([empty, mixed[60]], regions_of) [0] == []


# ---------------------------------------------------------------- variants and embeddings


def test_text_only_and_multimodal_variants_share_text_weights(mixed: list[Sample], tmp_path: Path) -> None:
    multimodal = AcnModel.build(TINY, mixed).eval()
    text_only = AcnModel.build({**TINY, "use_image": False}, mixed).eval()
    multi_state, text_state = multimodal.state_dict(), text_only.state_dict()
    assert set(text_state) < set(multi_state)
    assert not any(name.startswith(("visual_", "textual_", "fusion", "filtration")) for name in text_state)
    for name, tensor in text_state.items():  # same seed, same text weights
        torch.testing.assert_close(tensor, multi_state[name], msg=name)
    # A post without an image goes through exactly the text-only path of the same weights.
    multimodal.save_pretrained(tmp_path / "mm")
    reloaded_text_only = AcnModel.from_pretrained(tmp_path / "mm", use_image=False).eval()
    no_image = lambda sample: (np.zeros((49, 512), np.float32), False)  # noqa: E731
    with torch.no_grad():
        a = multimodal.compute(multimodal.collate(multimodal.encode(mixed[:3], no_image))).emissions
        b = reloaded_text_only.compute(reloaded_text_only.collate(reloaded_text_only.encode(mixed[:3]))).emissions
        c = multimodal.compute(multimodal.collate(multimodal.encode(mixed[:3], regions_of))).emissions
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)
    # And a text-only checkpoint starts a multimodal model with the same text weights.
    text_only.save_pretrained(tmp_path / "text")
    grown = AcnModel.from_pretrained(tmp_path / "text", use_image=True)
    assert grown.config.use_image and hasattr(grown, "fusion")
    torch.testing.assert_close(grown.lstm.forward_lstm.weight_ih_l0, text_only.lstm.forward_lstm.weight_ih_l0)


def test_vectors_file_fills_known_rows_and_reports_coverage(mixed: list[Sample], tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    known = {"rt": rng.standard_normal(12).tolist(), "的": rng.standard_normal(12).tolist(), NUMBER: rng.standard_normal(12).tolist()}
    vec = write_vec(tmp_path / "aligned.vec", {**known, "notinvocab": rng.standard_normal(12).tolist()})
    model = AcnModel.build({**TINY, "word_vectors": str(vec)}, mixed)
    assert model.config.word_dim == 12 and model.word_embedding.weight.shape == (len(model.words), 12)
    for word, vector in known.items():
        torch.testing.assert_close(model.word_embedding.weight[model.words.id(word)], torch.tensor(vector, dtype=torch.float32))
    assert model.embedding_coverage == pytest.approx(3 / len(model.words))
    other = model.word_embedding.weight[model.words.id(PAD)]
    assert float(other.abs().max()) <= 0.25
    # The folder alone rebuilds the model: the vectors file is not needed any more.
    model.save_pretrained(tmp_path / "model")
    vec.unlink()
    reloaded = load_model(tmp_path / "model")
    torch.testing.assert_close(reloaded.word_embedding.weight, model.word_embedding.weight)
    assert reloaded.embedding_coverage == model.embedding_coverage


def test_aligned_source_and_target_files_fill_one_vocabulary(mixed: list[Sample], tmp_path: Path) -> None:
    english = write_vec(tmp_path / "vectors-src.vec", {"rt": [1.0] * 4, "a": [2.0] * 4})
    chinese = write_vec(tmp_path / "vectors-tgt.vec", {"的": [3.0] * 4, "a": [9.0] * 4})
    model = AcnModel.build({**TINY, "word_vectors": [str(english), str(chinese)]}, mixed)
    rows = {word: model.word_embedding.weight[model.words.id(word)].tolist() for word in ("rt", "a", "的")}
    assert rows == {"rt": [1.0] * 4, "a": [9.0] * 4, "的": [3.0] * 4}  # the last file (target) wins for "a"
    assert model.embedding_coverage == pytest.approx(3 / len(model.words))
    narrow = write_vec(tmp_path / "narrow.vec", {"x": [1.0] * 3})
    with pytest.raises(ConfigError, match="different dimensions"):
        AcnModel.build({**TINY, "word_vectors": [str(english), str(narrow)]}, mixed)


@pytest.mark.parametrize("freeze", [True, False])
def test_frozen_embeddings_receive_no_gradient(mixed: list[Sample], tmp_path: Path, freeze: bool) -> None:
    vec = write_vec(tmp_path / "v.vec", {"rt": [0.1] * 8, "的": [0.2] * 8})
    model = AcnModel.build({**TINY, "word_vectors": str(vec), "freeze_embeddings": freeze}, mixed)
    model(model.collate(model.encode(mixed[45:55], regions_of)))["loss"].backward()
    grad = model.word_embedding.weight.grad
    if freeze:
        assert grad is None and not model.word_embedding.weight.requires_grad
    else:
        assert grad is not None and float(grad.abs().sum()) > 0
    assert float(model.char_cnn.embedding.weight.grad.abs().sum()) > 0
    assert float(model.char_cnn.embedding.weight.grad[0].abs().sum()) == 0  # the padding character is never trained
    assert float(model.visual_attention.key.weight.grad.abs().sum()) > 0


def test_without_vectors_the_embedding_is_trainable_uniform(mixed: list[Sample]) -> None:
    model = AcnModel.build(TINY, mixed)
    weight = model.word_embedding.weight
    assert weight.requires_grad and float(weight.detach().abs().max()) <= 0.25


# ---------------------------------------------------------------- training, persistence, determinism


def assert_loss_falls(samples: list[Sample]) -> None:
    model = AcnModel.build(TINY, samples)
    losses = train_steps(model, model.encode(samples, regions_of), steps=12)
    assert np.mean(losses[-2:]) < 0.5 * np.mean(losses[:2])


@pytest.mark.parametrize("dataset", ["cmner", "twitter"])
def test_loss_falls_on_generated_posts(dataset: str, request: pytest.FixtureRequest) -> None:
    assert_loss_falls(request.getfixturevalue(dataset))


@pytest.mark.parametrize("dataset", ["cmner", "twitter2015"])
def test_loss_falls_on_real_samples(dataset: str, shared_data: Path) -> None:
    assert_loss_falls(load_split(shared_data, dataset, "train")[:50])


def test_tiny_model_overfits_twenty_posts(cmner: list[Sample], twitter: list[Sample]) -> None:
    # CMNER posts cut to their first 60 characters, so every gold entity lies inside max_length.
    heads = [Sample(id=s.id, tokens=s.tokens[:60], labels=s.labels[:60], images=s.images, lang=s.lang) for s in cmner]
    posts = [s for s in twitter if s.entities()][:10] + [s for s in heads if s.entities()][:10]
    assert len(posts) == 20
    model = AcnModel.build({**TINY, "dropout": 0.0}, posts)
    train_steps(model, model.encode(posts, regions_of), steps=80, lr=2e-2, batch_size=20)
    predictions = model.predict(posts, regions_of)
    assert f1_score([s.labels for s in posts], predictions) >= 0.95


def test_save_and_load_give_identical_predictions(mixed: list[Sample], tmp_path: Path) -> None:
    model = AcnModel.build(TINY, mixed)
    train_steps(model, model.encode(mixed, regions_of), steps=3)
    model.save_pretrained(tmp_path / "acn")
    assert {p.name for p in (tmp_path / "acn").iterdir()} == {"config.json", "model.safetensors", "README.md"}
    reloaded = load_model(tmp_path / "acn")
    assert isinstance(reloaded, AcnModel) and reloaded.config == model.config
    assert reloaded.words.items == model.words.items and reloaded.chars.items == model.chars.items
    assert reloaded.predict(mixed, regions_of) == model.predict(mixed, regions_of)
    model.eval()
    batch = model.collate(model.encode(mixed[:8], regions_of))
    with torch.no_grad():
        torch.testing.assert_close(reloaded.compute(batch).emissions, model.compute(batch).emissions)


def test_building_and_training_are_deterministic_under_a_seed(mixed: list[Sample]) -> None:
    first, second = AcnModel.build(TINY, mixed), AcnModel.build(TINY, mixed)
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), name
    items = first.encode(mixed[:20], regions_of)
    assert train_steps(first, items, steps=3, batch_size=10) == train_steps(second, items, steps=3, batch_size=10)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    AcnModel.build(TINY, mixed)  # building leaves the caller's random stream alone
    assert torch.equal(torch.rand(3), expected)
    other_seed = AcnModel.build({**TINY, "seed": 8}, mixed)
    assert not torch.equal(other_seed.output.weight, AcnModel.build(TINY, mixed).output.weight)


# ---------------------------------------------------------------- user errors


def test_user_errors_are_one_line_xlingual_errors(mixed: list[Sample], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model.hiden"):
        AcnModel.build({**TINY, "hiden": 3}, mixed)
    with pytest.raises(ConfigError, match="model.hidden"):
        AcnModel.build({**TINY, "hidden": 31}, mixed)
    model = AcnModel.build(TINY, mixed)
    with pytest.raises(DataFormatError, match="B-OTHER"):
        model.encode([Sample(id="x", tokens=["a"], labels=["B-OTHER"])])
    with pytest.raises(ConfigError, match="visual_dim"):
        model.encode(mixed[:1], lambda s: (np.zeros((49, 2048), np.float32), True))
    with pytest.raises(ModelNotFoundError, match="not a model folder"):
        AcnModel.from_pretrained(tmp_path)
    model.save_pretrained(tmp_path / "m")
    with pytest.raises(ConfigError, match="model.hidden"):
        AcnModel.from_pretrained(tmp_path / "m", hidden=64)


def _pack_like_cudnn(lstm: torch.nn.LSTM) -> None:
    """Make the LSTM's parameters views of one flat buffer, as cuDNN does on a GPU."""
    parameters = list(lstm.parameters())
    flat = torch.cat([p.detach().reshape(-1) for p in parameters])
    offset = 0
    for parameter in parameters:
        parameter.data = flat[offset : offset + parameter.numel()].view_as(parameter)
        offset += parameter.numel()


def _shared_storage(state: dict[str, torch.Tensor]) -> list[str]:
    owners: dict[tuple[str, int], str] = {}
    shared = []
    for name, tensor in state.items():
        key = (str(tensor.device), tensor.untyped_storage().data_ptr())
        if key in owners:
            shared.append(f"{owners[key]} / {name}")
        owners[key] = name
    return shared


@pytest.mark.parametrize("use_image", [False, True])
def test_state_dict_has_no_shared_storage_even_with_cudnn_packed_lstm_weights(mixed: list[Sample], use_image: bool) -> None:
    """accelerate drops all but one tensor of a shared storage when checkpointing ("Removed shared tensor")."""
    from accelerate.utils.other import clean_state_dict_for_safetensors

    model = AcnModel.build({**TINY, "use_image": use_image}, mixed)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    _pack_like_cudnn(model.lstm.forward_lstm)
    _pack_like_cudnn(model.lstm.backward_lstm)
    assert model.lstm.forward_lstm.weight_ih_l0.untyped_storage().data_ptr() == model.lstm.forward_lstm.bias_hh_l0.untyped_storage().data_ptr()
    state = model.state_dict()
    assert _shared_storage(state) == []
    assert state.keys() == before.keys() and all(torch.equal(state[name], before[name]) for name in before)
    assert clean_state_dict_for_safetensors(dict(state)).keys() == state.keys()
    # The parameters themselves stay packed (training keeps the flat buffer).
    assert model.lstm.forward_lstm.weight_hh_l0.untyped_storage().nbytes() > model.lstm.forward_lstm.weight_hh_l0.nbytes


@pytest.mark.parametrize("mask_padding", [True, False])
def test_loss_and_decoding_equal_pytorch_crfs_on_a_real_batch(mixed: list[Sample], mask_padding: bool) -> None:
    """The vectorised CRF against pytorch-crf inside the model, with masks as ACN builds them (padded to max_length or not)."""
    from xlingual.models.crf import ReferenceCrf

    model = AcnModel.build({**TINY, "mask_padding": mask_padding}, mixed).eval()
    with torch.no_grad():
        model.crf.transitions.mul_(40)  # transitions that decide paths, as after training
    batch = model.collate(model.encode(mixed[:16], regions_of))
    loss, decoded = model(batch)["loss"], model.decode(batch)
    reference = ReferenceCrf(model.crf.num_tags)
    reference.load_state_dict(model.crf.state_dict())
    model.crf = reference
    assert torch.allclose(loss, model(batch)["loss"], rtol=1e-5)
    assert decoded == model.decode(batch)
