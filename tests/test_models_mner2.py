"""2M-NER on a tiny BERT with random tiny visual inputs: loss, alignment, ablations, masking, save/load.

Visual inputs are tiny stand-ins for the real caches: 5 "ViT tokens" of 32
channels (CLIP ViT-B/32: 50 x 768) and a ResNet grid of 49 x 16 (ResNet-152:
49 x 2048), pooled to its mean vector as the feature side's ``pooled_vector`` does.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from umt_helpers import single_threaded
from xlingual.data.labels import CANONICAL_LABELS
from xlingual.data.sample import Sample
from xlingual.errors import ConfigError, DataFormatError
from xlingual.features.lookup import pooled_vector
from xlingual.models import MODEL_CLASSES, load_model, model_class
from xlingual.models.contrastive import nt_xent, retrieval_accuracy
from xlingual.models.mner2 import Mner2Config, Mner2Model, paired_lookup
from xlingual.testing.tiny_bert import build_tiny_bert

VIT_TOKENS, VIT_DIM, GRID, RESNET_DIM = 5, 32, 49, 16
TYPES = ["O", "B-PER", "B-LOC", "B-ORG", "B-MISC", "I-MISC"]

_one_thread = pytest.fixture(scope="module", autouse=True)(single_threaded)


def toy_posts(count: int) -> list[Sample]:
    """Posts of three distinct words each, labels varying between posts (one label pattern for all would
    teach the CRF that every post is the same, which works against the alignment)."""
    return [
        Sample(id=f"p{i}", tokens=[f"a{i}q", f"b{i}r", f"c{i}s"], labels=[TYPES[(i + k) % 5] for k in range(3)], images=[f"p{i}.jpg"])
        for i in range(count)
    ]


def random_features(seed: int = 0, missing: frozenset[str] = frozenset()):
    """A paired lookup: fixed random CLIP tokens and ResNet grid per post id; image-less ids get garbage and False."""

    def arrays(sample: Sample, salt: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([seed, salt, zlib.crc32(sample.id.encode())])
        return rng.standard_normal((VIT_TOKENS, VIT_DIM)).astype(np.float32), rng.standard_normal((GRID, RESNET_DIM)).astype(np.float32)

    def vit(sample: Sample) -> tuple[np.ndarray, bool]:
        return arrays(sample, 1)[0], sample.id not in missing

    def resnet(sample: Sample) -> tuple[np.ndarray, bool]:
        return pooled_vector(arrays(sample, 2)[1]), sample.id not in missing

    return paired_lookup(vit, resnet)


@pytest.fixture(scope="module")
def posts() -> list[Sample]:
    extra = Sample(id="long", tokens=["Anna", "visits", "New", "York", "\u00a0", "today"], labels=["B-PER", "O", "B-LOC", "I-LOC", "O", "O"])
    return toy_posts(16) + [extra]


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory, posts):
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), [t for s in posts for t in s.tokens])


def config(encoder_dir, **overrides) -> dict:
    values = {"encoder": str(encoder_dir), "vit_tokens": VIT_TOKENS, "visual_dim": VIT_DIM, "resnet_dim": RESNET_DIM}
    values.update(overrides)
    return values


def build(encoder_dir, seed: int = 0, **overrides) -> Mner2Model:
    torch.manual_seed(seed)
    return Mner2Model.build(config(encoder_dir, **overrides))


def batch_of(model: Mner2Model, samples, visual=None) -> dict[str, torch.Tensor]:
    return model.collate(model.encode(samples, visual if visual is not None else random_features()))


# ---------------------------------------------------------------------- the contrastive loss


def reference_nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float = 0.5) -> float:
    """NT-Xent written out anchor by anchor, for comparison."""
    z = torch.nn.functional.normalize(torch.cat([a, b]).double(), dim=1)
    n, total = a.shape[0], 0.0
    for i in range(2 * n):
        partner = (i + n) % (2 * n)
        sims = [float(z[i] @ z[k]) / temperature for k in range(2 * n) if k != i]
        total += -(float(z[i] @ z[partner]) / temperature - math.log(sum(math.exp(s) for s in sims)))
    return total / (2 * n)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 7), st.integers(1, 6), st.integers(0, 2**31 - 1), st.data())
def test_nt_xent_is_simclr_over_the_valid_pairs_only(n, dim, seed, data):
    generator = torch.Generator().manual_seed(seed)
    a, b = torch.randn(n, dim, generator=generator), torch.randn(n, dim, generator=generator)
    valid = torch.tensor(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    loss = nt_xent(a, b, valid)
    assert loss.item() >= -1e-6  # the positive is in its own denominator
    kept = valid.nonzero().squeeze(1)
    expected = reference_nt_xent(a[kept], b[kept]) if len(kept) else 0.0
    assert loss.item() == pytest.approx(expected, abs=1e-4)
    # What an image-less post's slots hold does not matter: no fake zero image enters the loss.
    scrambled = torch.where(valid[:, None], b, torch.randn(n, dim, generator=generator) * 100)
    assert nt_xent(a, scrambled, valid).item() == pytest.approx(loss.item(), abs=1e-5)


def test_nt_xent_without_negatives_is_zero_with_finite_gradients():
    a, b = torch.randn(3, 4, requires_grad=True), torch.randn(3, 4, requires_grad=True)
    for valid in ([False, False, False], [False, True, False]):
        loss = nt_xent(a, b, torch.tensor(valid))
        loss.backward()
        assert loss.item() == pytest.approx(0.0, abs=1e-6)
        assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()


def test_retrieval_accuracy_counts_own_image_first():
    text = torch.eye(4)
    assert retrieval_accuracy(text, torch.eye(4)) == 1.0
    assert retrieval_accuracy(text, torch.eye(4)[[1, 0, 2, 3]]) == 0.5
    assert retrieval_accuracy(text, torch.eye(4)[[1, 0, 2, 3]], torch.tensor([False, False, True, True])) == 1.0


# ---------------------------------------------------------------------- training


def test_contrastive_training_aligns_matched_pairs_well_above_chance(encoder_dir):
    """For several seeds: both NT-Xent terms end well below log(2n - 1) (the value when every view is alike,
    i.e. collapse) and text -> image retrieval over the 16 training pairs reaches at least 4x chance.

    alpha = 0 trains the contrastive terms alone, so the test measures the alignment mechanism; with the
    default alpha = 0.8 the CRF term dominates this toy set (see docs/models.md, 2M-NER).
    """
    samples = toy_posts(16)
    chance, collapse = 1 / len(samples), math.log(2 * len(samples) - 1)
    accuracies = []
    for seed in range(3):
        model = build(encoder_dir, seed, alpha=0.0)
        batch = batch_of(model, samples, random_features(seed))
        before = _retrieval(model, batch)
        history = _train_steps(model, batch, 150, lambda out: (out["cl_vit"].item(), out["cl_resnet"].item()))
        after = _retrieval(model, batch)
        for term in (0, 1):
            assert np.mean([h[term] for h in history[-5:]]) < min(np.mean([h[term] for h in history[:5]]), collapse) - 0.5
        assert min(after) >= 4 * chance, (seed, before, after)
        accuracies.extend(after)
    assert np.mean(accuracies) >= 8 * chance


def _train_steps(model: Mner2Model, batch, steps: int, record):
    """``steps`` Adam steps (lr 1e-3) on one batch; ``record(outputs)`` of each step, in order."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    history = []
    for _ in range(steps):
        out = model(batch)
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        history.append(record(out))
    return history


def _retrieval(model: Mner2Model, batch) -> tuple[float, float]:
    model.eval()
    with torch.no_grad():
        out = model.compute(batch)
    return retrieval_accuracy(out.text_view, out.vit_view), retrieval_accuracy(out.text_view, out.resnet_view)


def test_default_loss_trains_the_tagger(encoder_dir, posts):
    model = build(encoder_dir)
    batch = batch_of(model, posts)
    losses = _train_steps(model, batch, 60, lambda out: out["crf_loss"].item())
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    predicted = model.predict(posts, random_features())
    gold = [s.labels for s in posts]
    assert sum(p == g for ps, gs in zip(predicted, gold) for p, g in zip(ps, gs)) / sum(map(len, gold)) > 0.8


def test_loss_is_the_weighted_sum_of_its_terms(encoder_dir, posts):
    model = build(encoder_dir, alpha=0.7).eval()
    out = model(batch_of(model, posts))
    expected = 2 * (0.7 * out["crf_loss"] + 0.3 * (out["cl_vit"] + out["cl_resnet"]))
    assert out["loss"].item() == pytest.approx(expected.item(), rel=1e-6)


# ---------------------------------------------------------------------- ablations


ABLATIONS = {
    "full": ({}, {"vit_attention", "resnet_attention", "resnet_proj", "fuse", "text_head", "vit_head", "resnet_head"}, {"cl_vit", "cl_resnet"}),
    "no_contrastive": ({"contrastive": False}, {"vit_attention", "resnet_attention", "resnet_proj", "fuse"}, set()),
    "vit_only": ({"use_resnet": False}, {"vit_attention", "fuse", "text_head", "vit_head"}, {"cl_vit"}),
    "resnet_only": ({"use_vit": False}, {"resnet_attention", "resnet_proj", "fuse", "text_head", "resnet_head"}, {"cl_resnet"}),
    "text_only": ({"use_image": False}, set(), set()),
}


@pytest.mark.parametrize("name", list(ABLATIONS))
def test_each_ablation_changes_parameters_loss_terms_and_inputs_used(encoder_dir, posts, name):
    overrides, modules, terms = ABLATIONS[name]
    model = build(encoder_dir, **overrides)
    optional = {"vit_attention", "resnet_attention", "resnet_proj", "fuse", "text_head", "vit_head", "resnet_head"}
    assert {n for n, _ in model.named_children()} & optional == modules
    assert (model.encoder.pooler is not None) == bool(terms)  # the pooled [CLS] is only the contrastive text view
    batch = batch_of(model, posts)
    out = model(batch)
    assert {k for k in out if k.startswith("cl_")} == terms
    out["loss"].backward()
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not unused, f"{name}: parameters without gradient {unused[:3]}"
    # Exactly the inputs of the active branches move the emissions.
    model.eval()
    base = model(batch)["emissions"]
    for key, active in (("vit", "vit_attention" in modules), ("resnet", "resnet_attention" in modules)):
        if key not in batch:
            assert not active
            continue
        changed = dict(batch, **{key: batch[key] + torch.randn_like(batch[key])})
        assert active == (not torch.allclose(model(changed)["emissions"], base, atol=1e-6)), key


def test_one_seed_gives_every_ablation_the_same_text_weights(encoder_dir):
    """An ablation then differs from the full model by its visual branch only, not by another text initialisation."""
    reference = build(encoder_dir, seed=7, use_image=False).state_dict()
    for overrides, _, _ in ABLATIONS.values():
        state = build(encoder_dir, seed=7, **overrides).state_dict()
        assert all(torch.equal(state[k], v) for k, v in reference.items()), overrides


def test_text_only_is_encoder_then_classifier(encoder_dir, posts):
    model = build(encoder_dir, use_image=False).eval()
    batch = batch_of(model, posts)
    assert not {"vit", "resnet", "has_image"} & set(batch)
    states = model.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"].long()).last_hidden_state
    first = states[0, batch["word_positions"][0]]
    assert torch.allclose(model(batch)["emissions"][0], model.classifier(first), atol=1e-5)
    assert model(batch)["loss"].item() == pytest.approx(2 * 0.8 * model(batch)["crf_loss"].item(), rel=1e-6)


def test_config_rejects_no_branch_and_unknown_keys(encoder_dir):
    with pytest.raises(ConfigError, match="use_image=false"):
        Mner2Config.from_dict({"use_vit": False, "use_resnet": False})
    with pytest.raises(ConfigError, match="model.alhpa"):
        Mner2Config.from_dict({"alhpa": 0.5})
    with pytest.raises(ConfigError, match="model.visual_dim == the encoder"):
        build(encoder_dir, faithful_query_bug=True, visual_dim=24)


# ---------------------------------------------------------------------- posts without images


def test_image_less_posts_do_not_depend_on_their_visual_input(encoder_dir, posts):
    model = build(encoder_dir).eval()
    missing = frozenset({"p1", "p5", "long"})
    batch = batch_of(model, posts, random_features(0, missing))
    assert batch["has_image"].tolist() == [s.id not in missing for s in posts]
    rows = torch.tensor([s.id in missing for s in posts])
    replaced = dict(batch)
    for key in ("vit", "resnet"):
        noise = torch.randn_like(batch[key]) * 10
        replaced[key] = torch.where(rows.view(-1, *[1] * (batch[key].dim() - 1)), noise, batch[key])
    zeroed = dict(batch, vit=batch["vit"] * ~rows[:, None, None], resnet=batch["resnet"] * ~rows[:, None])
    out, noisy, zero = model(batch), model(replaced), model(zeroed)
    for other in (noisy, zero):
        for key in ("emissions", "cl_vit", "cl_resnet", "loss"):
            assert torch.allclose(out[key], other[key], atol=1e-5), key
    # ... while a post with an image does depend on it.
    flipped = dict(batch, vit=torch.where(rows[:, None, None], batch["vit"], batch["vit"] + 1))
    assert not torch.allclose(model(flipped)["emissions"][~rows], out["emissions"][~rows], atol=1e-4)


def test_no_visual_lookup_means_every_post_is_image_less(encoder_dir, posts):
    model = build(encoder_dir).eval()
    batch = model.collate(model.encode(posts, None))
    assert not batch["has_image"].any()
    assert model(batch)["cl_vit"].item() == 0.0 and len(model.predict(posts)) == len(posts)


# ---------------------------------------------------------------------- departures from the reference


def test_faithful_query_bug_has_no_query_layer(encoder_dir):
    """The flawed block's computation is checked against the reference in test_models_2mner_reference.py; here: no dead weights."""
    state = build(encoder_dir, faithful_query_bug=True).state_dict()
    assert "vit_attention.query.weight" not in state and "vit_attention.key.weight" in state
    assert "vit_attention.query.weight" in build(encoder_dir).state_dict()


def test_faithful_word_offset_reads_the_piece_before_each_word(encoder_dir, posts):
    fixed = build(encoder_dir, use_image=False).eval()
    offset = build(encoder_dir, use_image=False, faithful_word_offset=True).eval()
    batch = batch_of(fixed, posts)
    states = fixed.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"].long()).last_hidden_state
    row = len(posts) - 1  # "long": several pieces per word
    expected = fixed.classifier(states[row, batch["word_positions"][row] - 1])
    assert torch.allclose(offset(batch)["emissions"][row], expected, atol=1e-5)
    assert torch.allclose(offset(batch)["emissions"][row, 0], fixed.classifier(states[row, 0]), atol=1e-5)  # [CLS]


# ---------------------------------------------------------------------- data, decoding, save/load


def test_encoding_words_pieces_and_truncation(encoder_dir, posts):
    model = build(encoder_dir)
    item = model.encode([posts[-1]], None)[0]
    tokenizer = model.tokenizer
    assert item["input_ids"][0] == tokenizer.cls_token_id and item["input_ids"][-1] == tokenizer.sep_token_id
    assert len(item["word_positions"]) == len(posts[-1].tokens)
    assert item["input_ids"][item["word_positions"][4]] == tokenizer.unk_token_id  # U+00A0 has no pieces
    assert [CANONICAL_LABELS[i] for i in item["label_ids"]] == posts[-1].labels
    short = build(encoder_dir, max_length=5)
    cut = short.encode([posts[-1]], None)[0]
    assert len(cut["input_ids"]) <= 5 and 0 < len(cut["word_positions"]) < len(posts[-1].tokens)
    predicted = short.predict([posts[-1]])[0]
    assert len(predicted) == len(posts[-1].tokens) and predicted[len(cut["word_positions"]):] == ["O"] * (len(predicted) - len(cut["word_positions"]))


def test_empty_post_and_bad_labels(encoder_dir):
    model = build(encoder_dir)
    assert model.predict([Sample(id="e", tokens=[], labels=[])], random_features()) == [[]]
    with pytest.raises(DataFormatError, match="not canonical"):
        model.encode([Sample(id="x", tokens=["a1q"], labels=["B-OTHER"])])


def test_visual_shapes_are_checked(encoder_dir, posts):
    model = build(encoder_dir)
    with pytest.raises(ConfigError, match="vit features of shape"):
        model.encode(posts[:1], lambda s: ({"vit": np.zeros((4, VIT_DIM)), "resnet": np.zeros(RESNET_DIM)}, True))
    with pytest.raises(ConfigError, match="pooled_lookup of a resnet152 cache"):
        model.encode(posts[:1], lambda s: ({"vit": np.zeros((VIT_TOKENS, VIT_DIM)), "resnet": np.zeros((GRID, RESNET_DIM))}, True))
    with pytest.raises(ConfigError, match="paired_lookup"):
        model.encode(posts[:1], lambda s: (np.zeros((GRID, RESNET_DIM)), True))


def test_paired_lookup_needs_both_images_and_keeps_tokens_as_returned(encoder_dir, posts):
    tokens = np.lib.stride_tricks.as_strided(np.zeros(1, dtype=np.float16), (VIT_TOKENS, VIT_DIM), (0, 0))
    lookup = paired_lookup(lambda s: (tokens, True), lambda s: (np.ones(RESNET_DIM, dtype=np.float32), s.id != "p0"))
    items = build(encoder_dir).encode(posts[:2], lookup)
    assert [item["has_image"] for item in items] == [False, True] and items[0]["vit"] is None and items[0]["resnet"] is None
    assert items[1]["vit"] is tokens  # no float32 copy per post before collation


def test_registered_and_save_load_round_trip_gives_equal_predictions(encoder_dir, posts, tmp_path):
    assert MODEL_CLASSES["2mner"] and model_class("2mner") is Mner2Model
    model = build(encoder_dir, seed=3).eval()
    visual = random_features(1, frozenset({"p2"}))
    model.save_pretrained(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert isinstance(loaded, Mner2Model) and loaded.config == model.config and not loaded.training
    assert loaded.predict(posts, visual) == model.predict(posts, visual)
    batch = batch_of(model, posts, visual)
    assert torch.allclose(loaded(batch)["loss"], model(batch)["loss"], atol=1e-5)


def test_checkpoints_move_between_ablations(encoder_dir, posts, tmp_path, caplog):
    full = build(encoder_dir).eval()
    full.save_pretrained(tmp_path / "full")
    vit_only = Mner2Model.from_pretrained(tmp_path / "full", use_resnet=False)
    assert torch.equal(vit_only.vit_attention.key.weight, full.vit_attention.key.weight)
    text_only = Mner2Model.from_pretrained(tmp_path / "full", use_image=False)
    assert torch.equal(text_only.classifier.weight, full.classifier.weight) and text_only.encoder.pooler is None
    text_only.save_pretrained(tmp_path / "text")
    with caplog.at_level("WARNING"):
        grown = Mner2Model.from_pretrained(tmp_path / "text", use_image=True)
    assert "encoder.pooler, fuse, resnet_attention" in caplog.text and "start from their initialisation" in caplog.text
    assert grown.encoder.pooler is not None
    assert len(grown.predict(posts, random_features())) == len(posts)


def dev_posts(count: int) -> list[Sample]:
    """Posts that are not in the training set: the training words recombined across posts, each keeping its label."""
    train = toy_posts(count)
    return [Sample(id=f"d{i}", tokens=[train[(i + k) % count].tokens[k] for k in range(3)],
                   labels=[train[(i + k) % count].labels[k] for k in range(3)], images=[f"d{i}.jpg"]) for i in range(0, count, 2)]


def test_trains_through_the_engine_selecting_on_dev(encoder_dir, posts, tmp_path):
    """The packaged 2M-NER config (2mner.yaml: Adam, linear schedule, no warm-up, no clipping) runs 2M-NER through the engine,
    at toy sizes, selecting on a dev set of other posts: the best-model folder holds the epoch with the best dev F1."""
    from xlingual.train.config import load_config
    from xlingual.train.engine import StageTrainer, evaluate_model

    config = load_config("tgt_only", "2mner", "en-zh", ["epochs=6", "batch_size=8", "lr=1e-3", "patience=null"])
    stage = config.target
    assert config.model_type == "2mner" and config.seed == 19
    assert (stage.optimizer, stage.schedule, stage.warmup_ratio, stage.weight_decay, stage.max_grad_norm) == ("adam", "linear", 0.0, 0.0, None)
    dev = dev_posts(16)
    assert not {tuple(s.tokens) for s in dev} & {tuple(s.tokens) for s in posts} and not {s.id for s in dev} & {s.id for s in posts}
    visual = random_features(0, frozenset({"p3", "long", "d2"}))
    model = build(encoder_dir)
    loop = StageTrainer(config, stage, "target", tmp_path / "run", tmp_path / "best").train(model, posts, dev, visual)
    assert loop.finished and len(loop.history) == 6
    dev_f1 = [h["dev_f1"] for h in loop.history]
    assert loop.best_dev_f1 == pytest.approx(max(dev_f1), abs=1e-4) and loop.best_dev_f1 > 0
    best = load_model(tmp_path / "best")
    assert isinstance(best, Mner2Model)
    assert evaluate_model(best, dev, visual, 8)[0].f1 == pytest.approx(loop.best_dev_f1)  # the folder holds the model selected on dev
