"""UMT-BERT-CRF on tiny encoders: labels, alignment, training, masks, freezing, save/load, variants."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from umt_helpers import REGIONS, CHANNELS, build_umt, micro_f1, random_visual, single_threaded, tiny_encoder, tiny_umt_config, train_steps
from xlingual.data.formats import read_samples
from xlingual.data.sample import Sample
from xlingual.errors import ConfigError, ModelNotFoundError
from xlingual.models import load_model
from xlingual.models.umt import VISUAL_BRANCH, UmtModel
from xlingual.models.umt_text import SPAN_LABELS, TYPED_LABELS, align, span_to_typed_matrix


_one_thread = pytest.fixture(scope="module", autouse=True)(single_threaded)


@pytest.fixture(scope="module")
def twitter50(generated_data) -> list[Sample]:
    """Fifty generated tweets (mentions, hashtags, URLs and rare words give several BERT pieces per token)."""
    return read_samples(generated_data.root / "twitter2015" / "train.txt")[:50]


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory, twitter50):
    return tiny_encoder(tmp_path_factory.mktemp("tiny-bert"), twitter50)


@pytest.fixture(scope="module")
def model(encoder_dir) -> UmtModel:
    return build_umt(encoder_dir)


def test_label_spaces_and_conversion_matrix_follow_the_reference():
    assert TYPED_LABELS.to_list() == ["<pad>", "O", "B-MISC", "I-MISC", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "X", "[CLS]", "[SEP]"]
    assert SPAN_LABELS.to_list() == ["<pad>", "O", "B", "I", "X", "[CLS]", "[SEP]"]
    matrix = span_to_typed_matrix()
    assert matrix.shape == (7, 13)
    assert torch.allclose(matrix.sum(dim=1), torch.ones(7))
    assert matrix[SPAN_LABELS.id("B"), TYPED_LABELS.id("B-LOC")] == 0.25
    assert matrix[SPAN_LABELS.id("B"), TYPED_LABELS.id("I-LOC")] == 0
    assert matrix[SPAN_LABELS.id("X"), TYPED_LABELS.id("X")] == 1


def test_alignment_labels_first_piece_and_cuts_at_max_length():
    pieces = [[7, 8, 9], [], [10], [11, 12]]
    labels = ["B-PER", "I-PER", "O", "B-LOC"]
    aligned = align(pieces, labels, max_length=7, cls_id=2, sep_id=3)
    assert aligned.input_ids == [2, 7, 8, 9, 10, 11, 3]  # L-2 = 5 pieces kept: the last token loses its 2nd piece
    assert [TYPED_LABELS.label(i) for i in aligned.typed_label_ids] == ["[CLS]", "B-PER", "X", "X", "O", "B-LOC", "[SEP]"]
    assert [SPAN_LABELS.label(i) for i in aligned.span_label_ids] == ["[CLS]", "B", "X", "X", "O", "B", "[SEP]"]
    assert aligned.token_positions == [1, -1, 4, 5]
    cut = align(pieces, labels, max_length=4, cls_id=2, sep_id=3)
    assert cut.input_ids == [2, 7, 8, 3] and cut.token_positions == [1, -1, -1, -1]


def assert_x_on_continuation_pieces(model: UmtModel, tweets: list[Sample]) -> None:
    items = model.encode(tweets)
    x = TYPED_LABELS.id("X")
    for sample, item in zip(tweets, items):
        assert len(item["token_positions"]) == len(sample)
        kept = [p for p in item["token_positions"] if p >= 0]
        assert kept == sorted(kept) and len(set(kept)) == len(kept)
        first_piece_labels = [TYPED_LABELS.label(item["typed_label_ids"][p]) for p in kept]
        assert first_piece_labels == [label for label, p in zip(sample.labels, item["token_positions"]) if p >= 0]
        others = set(range(1, len(item["input_ids"]) - 1)) - set(kept)
        assert all(item["typed_label_ids"][p] == x for p in others)
    assert any(TYPED_LABELS.id("X") in item["typed_label_ids"] for item in items)


def test_encode_tweets_puts_x_on_continuation_pieces(model, twitter50):
    assert_x_on_continuation_pieces(model, twitter50)


def test_encode_real_tweets_puts_x_on_continuation_pieces(tmp_path, shared_data):
    tweets = read_samples(shared_data / "twitter2015" / "train.txt")[:50]
    assert_x_on_continuation_pieces(build_umt(tiny_encoder(tmp_path, tweets)), tweets)


def assert_one_piece_per_character(folder, samples: list[Sample]) -> None:
    umt = build_umt(tiny_encoder(folder, samples), use_image=False, max_length=250)
    for sample, item in zip(samples, umt.encode(samples)):
        assert TYPED_LABELS.id("X") not in item["typed_label_ids"]
        kept = sum(p >= 0 for p in item["token_positions"])
        assert kept == min(len(sample), 248) - sum(not t.strip() for t in sample.tokens[:248])


def test_chinese_characters_are_one_piece_each(tmp_path, generated_data):
    samples = read_samples(generated_data.root / "cmner" / "text" / "dev.txt")[:5]
    samples.append(Sample(id="space", tokens=list("你 好"), labels=["O"] * 3, lang="zh"))  # a space gives no piece
    samples.append(Sample(id="long", tokens=list("北京欢迎你") * 60, labels=["O"] * 300, lang="zh"))  # cut at max_length
    assert_one_piece_per_character(tmp_path, samples)


def test_real_chinese_characters_are_one_piece_each(tmp_path, shared_data):
    assert_one_piece_per_character(tmp_path, read_samples(shared_data / "cmner" / "text" / "dev.txt")[:5])


def test_loss_falls_on_real_samples(encoder_dir, twitter50):
    umt = build_umt(encoder_dir, seed=1)
    items = umt.encode(twitter50, random_visual())
    losses = train_steps(umt, items, steps=8, lr=2e-3, batch_size=25)
    assert losses[-1] < 0.8 * losses[0]


def test_overfits_twenty_samples(encoder_dir, twitter50):
    samples = sorted((s for s in twitter50 if s.entities()), key=len)[:20]
    umt = build_umt(encoder_dir, seed=2)
    visual = random_visual()
    items = umt.encode(samples, visual)
    train_steps(umt, items, steps=60, lr=1e-2, batch_size=20)
    predictions = umt.predict(samples, visual)
    assert micro_f1([s.labels for s in samples], predictions) >= 0.95


def test_gate_and_attention_shapes_and_closed_gate_without_image(model, twitter50):
    samples = twitter50[:3]
    batch = model.collate(model.encode(samples, random_visual(missing=frozenset({samples[1].id}))))
    model.eval()
    with torch.no_grad():
        out = model.emissions(batch, return_attention=True)
    b, t = batch["input_ids"].shape
    hidden, heads = model.encoder.config.hidden_size, model.config.cross_heads
    assert out["gate"].shape == (b, t, hidden)
    assert out["attention_text_to_image"].shape == (b, heads, t, REGIONS)
    assert out["attention_image_to_text"].shape == (b, heads, REGIONS, t)
    assert out["attention_text_to_regions"].shape == (b, heads, t, REGIONS)
    assert out["emissions"].shape == (b, t, 13) and out["span_emissions"].shape == (b, t, 7)
    assert torch.all(out["gate"][1] == 0) and torch.all(out["gate"][0] > 0)
    # Text padding gets no attention from image regions.
    pad = ~batch["attention_mask"]
    assert torch.all(out["attention_image_to_text"].masked_select(pad[:, None, None, :].expand_as(out["attention_image_to_text"])) == 0)


def test_decode_is_per_token_and_padding_free(model, twitter50):
    model.eval()
    samples = sorted(twitter50[:8], key=len)  # very different lengths in one batch
    visual = random_visual()
    batched = model.predict(samples, visual, batch_size=8)
    alone = [model.predict([s], visual)[0] for s in samples]
    assert batched == alone
    assert [len(p) for p in batched] == [len(s) for s in samples]
    for labels in batched:  # BIO tags as decoded (orphan I- tags are kept for strict scoring)
        assert all(label == "O" or label[:2] in ("B-", "I-") for label in labels)


def test_truncated_tokens_are_predicted_o(encoder_dir, twitter50):
    umt = build_umt(encoder_dir, max_length=6)
    sample = max(twitter50, key=len)
    with torch.no_grad():
        labels = umt.predict([sample], random_visual())[0]
    assert len(labels) == len(sample)
    assert all(label == "O" for label in labels[5:])


def test_frozen_layers_get_no_gradient(encoder_dir, twitter50):
    umt = build_umt(encoder_dir, freeze_bottom_layers=1)
    loss = umt(umt.collate(umt.encode(twitter50[:4], random_visual())))["loss"]
    loss.backward()
    for name, parameter in umt.named_parameters():
        frozen = name.startswith(("encoder.embeddings.", "encoder.encoder.layer.0."))
        assert parameter.requires_grad is not frozen, name
        if frozen:
            assert parameter.grad is None, name
        else:
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    with pytest.raises(ConfigError, match="only 2 layers"):
        build_umt(encoder_dir, freeze_bottom_layers=3)


def test_save_load_gives_identical_predictions_without_the_original_encoder(tmp_path, twitter50):
    encoder = tiny_encoder(tmp_path / "encoder-src", twitter50)
    umt = build_umt(encoder, extra_linear=True)
    visual = random_visual()
    umt.eval()
    before = umt.predict(twitter50[:10], visual)
    with torch.no_grad():
        emissions_before = umt.emissions(umt.collate(umt.encode(twitter50[:4], visual)))["emissions"]
    umt.save_pretrained(tmp_path / "saved")
    shutil.rmtree(encoder)
    loaded = load_model(tmp_path / "saved")
    assert isinstance(loaded, UmtModel) and loaded.config == umt.config
    loaded.eval()
    assert loaded.predict(twitter50[:10], visual) == before
    with torch.no_grad():
        emissions_after = loaded.emissions(loaded.collate(loaded.encode(twitter50[:4], visual)))["emissions"]
    assert torch.equal(emissions_before, emissions_after)


def test_text_only_and_multimodal_share_text_weights(tmp_path, encoder_dir, twitter50):
    multimodal = build_umt(encoder_dir)
    text_only = build_umt(encoder_dir, use_image=False)
    mm_state, text_state = multimodal.state_dict(), text_only.state_dict()
    assert set(text_state) < set(mm_state)
    assert all(text_state[k].shape == mm_state[k].shape for k in text_state)
    assert {k.split(".")[0] for k in set(mm_state) - set(text_state)} == set(VISUAL_BRANCH)
    multimodal.save_pretrained(tmp_path / "mm")
    reloaded = UmtModel.from_pretrained(tmp_path / "mm", use_image=False)
    assert all(torch.equal(reloaded.state_dict()[k], mm_state[k]) for k in text_state)
    assert len(reloaded.predict(twitter50[:3])) == 3
    # The text-only variant reads the first H columns of the same head.
    hidden = multimodal.encoder.config.hidden_size
    assert reloaded.typed_head.weight.shape == (13, 2 * hidden)


def test_same_seed_same_model_and_loss(encoder_dir, twitter50):
    losses = []
    for _ in range(2):
        umt = build_umt(encoder_dir, seed=5)
        items = umt.encode(twitter50[:8], random_visual())
        torch.manual_seed(11)
        losses.append(train_steps(umt, items, steps=2, batch_size=8))
    assert losses[0] == losses[1]


def test_scrambled_regions_mix_channels_and_positions(model, twitter50):
    model.eval()
    items = model.encode(twitter50[:2], random_visual())
    batch = model.collate(items)
    with torch.no_grad():
        correct = model.emissions(batch)["emissions"]
        model.config.scrambled_regions = True
        try:
            scrambled = model.emissions(batch)["emissions"]
            manual = dict(batch, regions=batch["regions"].transpose(1, 2).reshape(batch["regions"].shape))
            model.config.scrambled_regions = False
            expected = model.emissions(manual)["emissions"]
        finally:
            model.config.scrambled_regions = False
    assert not torch.allclose(correct, scrambled)
    assert torch.allclose(scrambled, expected)


def test_loss_reduction_sum_scales_with_batch(model, twitter50):
    model.eval()
    batch = model.collate(model.encode(twitter50[:4], random_visual()))
    with torch.no_grad():
        mean = model(batch)["loss"]
        model.config.loss_reduction = "sum"
        try:
            total = model(batch)["loss"]
        finally:
            model.config.loss_reduction = "mean"
    assert torch.allclose(total, 4 * mean, rtol=1e-5)


def test_wrong_feature_shape_and_options_are_user_errors(model, encoder_dir, twitter50):
    with pytest.raises(ConfigError, match=r"\(4, 16\)"):
        model.encode(twitter50[:1], lambda s: (np.zeros((49, 2048), dtype=np.float32), True))
    with pytest.raises(ConfigError, match="model.freeze_layers"):
        UmtModel.build(tiny_umt_config(encoder_dir, freeze_layers=3), [])
    with pytest.raises(ConfigError, match="cross_heads"):
        UmtModel.build(tiny_umt_config(encoder_dir, cross_heads=12), [])


def test_missing_encoder_fails_fast_with_the_option_to_change(tmp_path):
    with pytest.raises(ModelNotFoundError, match=r"--set model.encoder=PATH"):
        UmtModel.build({"encoder": str(tmp_path / "no-such-bert")}, [])
    with pytest.raises(ModelNotFoundError, match="xlingual-test/not-a-cached-model"):
        UmtModel.build({"encoder": "xlingual-test/not-a-cached-model"}, [])


def test_multimodal_model_without_lookup_uses_zero_features(model, twitter50):
    items = model.encode(twitter50[:2])
    batch = model.collate(items)
    assert torch.all(batch["regions"] == 0) and not batch["has_image"].any()
    assert batch["regions"].shape == (2, REGIONS, CHANNELS)


def test_orphan_inside_tags_from_the_crf_are_kept_as_produced(encoder_dir, twitter50):
    umt = build_umt(encoder_dir, use_image=False)
    with torch.no_grad():
        umt.typed_head.bias[TYPED_LABELS.id("I-PER")] = 1000.0  # every piece now decodes as I-PER
    sample = twitter50[0]
    labels = umt.predict([sample])[0]
    kept = [p >= 0 for p in umt.encode([sample])[0]["token_positions"]]
    assert labels == ["I-PER" if is_kept else "O" for is_kept in kept]  # not repaired: strict scoring sees them


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_loss_and_decoding_equal_pytorch_crfs_on_a_real_batch(encoder_dir, twitter50, reduction):
    """Both CRFs (typed and span) against pytorch-crf, with UMT's own masks ([CLS] first, [SEP] last, padding)."""
    from xlingual.models.crf import ReferenceCrf

    model = build_umt(encoder_dir, loss_reduction=reduction).eval()
    with torch.no_grad():
        model.crf.transitions.mul_(40)
        model.span_crf.transitions.mul_(40)
    batch = model.collate(model.encode(twitter50[:16], random_visual()))
    out, decoded = model(batch), model.decode(batch)
    for name in ("crf", "span_crf"):
        reference = ReferenceCrf(getattr(model, name).num_tags)
        reference.load_state_dict(getattr(model, name).state_dict())
        setattr(model, name, reference)
    again = model(batch)
    for key in ("typed_loss", "span_loss", "loss"):
        assert torch.allclose(out[key], again[key], rtol=1e-5), key
    assert decoded == model.decode(batch)
