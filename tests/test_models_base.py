"""What every registered model inherits from MnerModel, tested once and for each model in MODEL_CLASSES.

A new model gets these tests by registering and adding one line to ``TINY``
(its smallest config); ``test_every_registered_model_has_a_tiny_config`` fails
until it does.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xlingual.data.labels import CANONICAL_LABELS
from xlingual.data.sample import Sample
from xlingual.errors import ConfigError, ModelNotFoundError
from xlingual.models import MODEL_CLASSES, MnerModel, load_model, model_class, model_config_class
from xlingual.models.serialization import CONFIG_NAME
from xlingual.models.vocab import Vocabulary
from xlingual.testing.synthetic import generated_tweets, generated_weibo_posts
from xlingual.testing.tiny_bert import build_tiny_bert

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SAMPLES = generated_tweets(12, seed=3) + generated_weibo_posts(6, seed=3)


def _tiny_umt(workdir: Path) -> dict[str, Any]:
    encoder = build_tiny_bert(workdir / "tiny-bert", [t for s in SAMPLES for t in s.tokens])
    return {"encoder": str(encoder), "cross_heads": 2, "visual_dim": 16, "num_visual_regions": 4, "max_length": 40}


def _tiny_2mner(workdir: Path) -> dict[str, Any]:
    encoder = build_tiny_bert(workdir / "tiny-bert", [t for s in SAMPLES for t in s.tokens])
    return {"encoder": str(encoder), "vit_tokens": 4, "visual_dim": 32, "resnet_dim": 16, "max_length": 40}


TINY: dict[str, Callable[[Path], dict[str, Any]]] = {
    "acn": lambda _: {"word_dim": 8, "char_dim": 4, "char_filters": 4, "char_out": 4, "hidden": 8, "max_length": 30,
                      "max_word_len": 8, "visual_dim": 16, "seed": 5},
    "umt": _tiny_umt,
    "2mner": _tiny_2mner,
}
"""The smallest config of each registered model (a folder for any files it needs)."""

MODELS = sorted(MODEL_CLASSES)
SAVED_EXTRAS = {"acn": ["labels", "words", "chars", "embedding_coverage"], "umt": ["typed_labels", "span_labels"]}
"""The ``config.json`` extras each model wrote before the base existed: folders saved then must still load."""


def fixed_visual(model: MnerModel, imageless: frozenset[str] = frozenset(), scale: float = 1.0) -> Callable[[Sample], tuple[Any, bool]]:
    """Random but fixed inputs per post id (each of ``visual_inputs()``, 5 along a free axis); posts in ``imageless`` get ``scale``-sized noise and ``has_image`` False.

    A model with named visual inputs (2M-NER) gets a dict of such arrays, any other its one array.
    """
    shapes = {spec.name: tuple(5 if isinstance(size, str) else size for size in spec.shape) for spec in model.visual_inputs()}

    def lookup(sample: Sample) -> tuple[Any, bool]:
        rng = np.random.default_rng(zlib.crc32(sample.id.encode()))
        arrays = {name: rng.standard_normal(shape).astype(np.float32) * (scale if sample.id in imageless else 1.0) for name, shape in shapes.items()}
        features = arrays if model.named_visual_inputs else next(iter(arrays.values()))
        return features, sample.id not in imageless

    return lookup


@pytest.fixture(scope="module", params=MODELS)
def built(request, tmp_path_factory) -> tuple[str, dict[str, Any], MnerModel]:
    """(model type, tiny config, a model given a few training steps so its weights are not the initial ones)."""
    return _build_trained(request.param, tmp_path_factory)


@pytest.fixture(scope="module", params=sorted(SAVED_EXTRAS))
def built_before_the_base(request, tmp_path_factory) -> tuple[str, dict[str, Any], MnerModel]:
    """As ``built``, for the models that had saved folders before the base existed."""
    return _build_trained(request.param, tmp_path_factory)


def _build_trained(model_type: str, tmp_path_factory) -> tuple[str, dict[str, Any], MnerModel]:
    config = TINY[model_type](tmp_path_factory.mktemp(model_type))
    torch.manual_seed(0)
    model = model_class(model_type).build(config, SAMPLES)
    items = model.encode(SAMPLES, fixed_visual(model))
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for start in range(0, len(items), 6):
        loss = model(model.collate(items[start : start + 6]))["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model_type, config, model


def text_state(model: MnerModel) -> dict[str, torch.Tensor]:
    prefixes = tuple(f"{name}." for name in model.visual_modules)
    return {k: v for k, v in model.state_dict().items() if not k.startswith(prefixes)}


def assert_same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_every_registered_model_has_a_tiny_config() -> None:
    assert set(TINY) == set(MODEL_CLASSES)


def test_each_model_class_reads_the_config_class_the_config_loader_checks() -> None:
    """One list of options per model: the class that builds the model and the one a training config is checked by."""
    for model_type in MODEL_CLASSES:
        assert model_class(model_type).config_class is model_config_class(model_type)


def test_config_round_trips_and_rejects_unknown_keys(built) -> None:
    model_type, _, model = built
    config_class = model_class(model_type).config_class
    assert config_class.from_dict(model.config.to_dict()) == model.config
    assert json.loads(json.dumps(model.config.to_dict())) == model.config.to_dict()
    with pytest.raises(ConfigError, match=r"^model\.no_such_option: unknown option"):
        config_class.from_dict({**model.config.to_dict(), "no_such_option": 1})


def test_save_and_load_round_trip_in_eval_mode(built, tmp_path: Path) -> None:
    _, _, model = built
    model.train()
    model.save_pretrained(tmp_path / "m")
    reloaded = load_model(tmp_path / "m")
    assert type(reloaded) is type(model) and reloaded.config == model.config
    assert not reloaded.training and not any(m.training for m in reloaded.modules())
    assert_same_tensors(reloaded.state_dict(), model.state_dict())
    assert [p.requires_grad for p in reloaded.parameters()] == [p.requires_grad for p in model.parameters()]
    visual = fixed_visual(model, imageless=frozenset(s.id for s in SAMPLES[::3]))
    assert reloaded.predict(SAMPLES, visual) == model.predict(SAMPLES, visual)
    assert model.training  # predict restores the mode it found


def test_folders_in_the_earlier_layout_still_load(built_before_the_base, tmp_path: Path) -> None:
    model_type, _, model = built_before_the_base
    model.save_pretrained(tmp_path / "m")
    saved = json.loads((tmp_path / "m" / CONFIG_NAME).read_text())
    assert set(saved) == {"model_type", "config", "extras"} and set(saved["extras"]) == set(SAVED_EXTRAS[model_type])
    earlier = {"model_type": model_type, "config": model.config.to_dict(), "extras": {k: saved["extras"][k] for k in SAVED_EXTRAS[model_type]}}
    (tmp_path / "m" / CONFIG_NAME).write_text(json.dumps(earlier, indent=1))
    reloaded = load_model(tmp_path / "m")
    assert_same_tensors(reloaded.state_dict(), model.state_dict())
    assert reloaded.predict(SAMPLES, fixed_visual(model)) == model.predict(SAMPLES, fixed_visual(model))


def test_wrong_model_type_and_missing_folder_are_model_not_found(built, tmp_path: Path) -> None:
    model_type, _, model = built
    model.save_pretrained(tmp_path / "m")
    for other in MODELS:
        if other != model_type:
            with pytest.raises(ModelNotFoundError, match=f"holds a '{model_type}' model"):
                model_class(other).from_pretrained(tmp_path / "m")
    saved = json.loads((tmp_path / "m" / CONFIG_NAME).read_text())
    (tmp_path / "m" / CONFIG_NAME).write_text(json.dumps({**saved, "model_type": "not-a-model"}))
    with pytest.raises(ModelNotFoundError, match="'not-a-model' model"):
        type(model).from_pretrained(tmp_path / "m")
    with pytest.raises(ModelNotFoundError, match="not a model folder"):
        type(model).from_pretrained(tmp_path / "absent")


def test_changed_label_map_is_refused(built, tmp_path: Path) -> None:
    _, _, model = built
    if not model.label_maps():
        pytest.skip("this model saves no label map")
    model.save_pretrained(tmp_path / "m")
    saved = json.loads((tmp_path / "m" / CONFIG_NAME).read_text())
    key = next(iter(model.label_maps()))
    saved["extras"][key] = list(reversed(saved["extras"][key]))
    (tmp_path / "m" / CONFIG_NAME).write_text(json.dumps(saved))
    with pytest.raises(ModelNotFoundError, match=f"saved {key}"):
        load_model(tmp_path / "m")


def test_multimodal_checkpoint_loads_text_only_and_back(built, tmp_path: Path) -> None:
    _, _, model = built
    assert model.config.use_image and model.visual_modules
    model.save_pretrained(tmp_path / "multimodal")
    text_only = type(model).from_pretrained(tmp_path / "multimodal", use_image=False)
    assert not text_only.config.use_image and not text_only.training
    assert_same_tensors(text_only.state_dict(), text_state(model))
    text_only.save_pretrained(tmp_path / "text")
    again = type(model).from_pretrained(tmp_path / "text", use_image=True)
    assert again.config.use_image and not again.training
    assert_same_tensors(text_state(again), text_state(model))
    assert set(again.state_dict()) == set(model.state_dict())
    # The text-only variant predicts from text alone: images change nothing.
    assert text_only.predict(SAMPLES, fixed_visual(model)) == text_only.predict(SAMPLES)


def test_mismatched_weights_are_refused(built, tmp_path: Path) -> None:
    _, _, model = built
    model.save_pretrained(tmp_path / "m")
    from safetensors.torch import load_file, save_file

    weights = load_file(str(tmp_path / "m" / "model.safetensors"))
    text_name = next(iter(text_state(model)))
    weights[f"{text_name}.extra"] = weights.pop(text_name)
    save_file(weights, str(tmp_path / "m" / "model.safetensors"))
    with pytest.raises(ModelNotFoundError, match="weights do not match"):
        load_model(tmp_path / "m")


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scale=st.sampled_from([0.0, 1e-3, 1.0, 1e3]), imageless_every=st.integers(1, 4))
def test_an_imageless_post_gets_no_visual_signal(built, scale: float, imageless_every: int) -> None:
    """Whatever regions the lookup returns for a post without an image, its prediction is the one for zero regions."""
    _, _, model = built
    model.eval()
    imageless = frozenset(s.id for s in SAMPLES[::imageless_every])
    with torch.no_grad():
        zero = model(model.collate(model.encode(SAMPLES, fixed_visual(model, imageless, 0.0))))["emissions"]
        noisy = model(model.collate(model.encode(SAMPLES, fixed_visual(model, imageless, scale))))["emissions"]
    rows = [i for i, s in enumerate(SAMPLES) if s.id in imageless]
    assert torch.equal(zero[rows], noisy[rows])


def test_decoding_gives_one_canonical_label_per_token_and_o_past_truncation(built) -> None:
    _, config, model = built
    long_post = Sample(id="long", tokens=["Paris"] * 300, labels=["B-LOC"] * 300, lang="en")
    labels = model.predict([*SAMPLES, long_post], fixed_visual(model))
    assert [len(x) for x in labels] == [len(s.tokens) for s in [*SAMPLES, long_post]]
    assert all(label in CANONICAL_LABELS for post in labels for label in post)
    assert set(labels[-1][config["max_length"] :]) == {"O"}


def test_vocabulary_specials_unknowns_and_saved_form() -> None:
    words = Vocabulary(["[pad]", "[unk]", "a", "b"], pad="[pad]", unk="[unk]")
    assert words.ids(["b", "zzz"]) == [3, 1] and words.to_list() == ["[pad]", "[unk]", "a", "b"]
    labels = Vocabulary(["<pad>", "O", "B-PER"], pad="<pad>")
    assert labels.label(2) == "B-PER"
    with pytest.raises(KeyError):
        labels.id("B-XYZ")
    with pytest.raises(ValueError, match="must start with"):
        Vocabulary(["a", "[pad]"], pad="[pad]")
    with pytest.raises(ValueError, match="duplicate"):
        Vocabulary(["a", "a"])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=3), max_size=40), st.one_of(st.none(), st.integers(0, 12)))
def test_vocabulary_from_counts_ranks_by_frequency_within_size(tokens: list[str], max_size: int | None) -> None:
    from collections import Counter

    counts = Counter(tokens)
    vocab = Vocabulary.from_counts(counts, max_size, pad="[pad]", unk="[unk]")
    kept = vocab.to_list()[2:]
    assert vocab.to_list()[:2] == ["[pad]", "[unk]"]
    assert max_size is None or len(vocab) <= max(2, max_size)
    assert all(counts[a] >= counts[b] for a, b in zip(kept, kept[1:]))
    assert all(vocab.id(t) == (vocab.index[t] if t in vocab else 1) for t in tokens)


def test_load_model_refuses_unknown_types_and_reshaped_weights(built, tmp_path: Path) -> None:
    _, _, model = built
    model.save_pretrained(tmp_path / "m")
    path = tmp_path / "m" / CONFIG_NAME
    saved = json.loads(path.read_text())
    path.write_text(json.dumps({k: v for k, v in saved.items() if k != "model_type"}))
    with pytest.raises(ModelNotFoundError, match="'None' model"):
        load_model(tmp_path / "m")
    path.write_text(json.dumps(saved))
    fixed = sorted(type(model).config_class.fixed_on_load)
    with pytest.raises(ConfigError, match=f"model.{fixed[0]}: cannot be changed"):
        type(model).from_pretrained(tmp_path / "m", **{fixed[0]: None})
    # A config edited by hand to another visual_dim: the weights no longer fit.
    path.write_text(json.dumps({**saved, "config": {**saved["config"], "visual_dim": saved["config"]["visual_dim"] + 1}}))
    with pytest.raises(ModelNotFoundError, match="weights do not match"):
        load_model(tmp_path / "m")


def test_identical_tensors_give_identical_weight_files_with_the_umask(built, tmp_path: Path) -> None:
    """The header order of safetensors is a hash map's: without sorting, saves of the same model differed in bytes."""
    import hashlib
    import os

    from xlingual.io import current_umask
    from xlingual.models.serialization import WEIGHTS_NAME

    _, _, model = built
    digests = set()
    for attempt in range(8):
        model.save_pretrained(tmp_path / f"m{attempt}")
        digests.add(hashlib.sha256((tmp_path / f"m{attempt}" / WEIGHTS_NAME).read_bytes()).hexdigest())
    assert len(digests) == 1
    mode = os.stat(tmp_path / "m0" / WEIGHTS_NAME).st_mode & 0o777
    assert mode == 0o666 & ~current_umask()
    assert_same_tensors(load_model(tmp_path / "m0").state_dict(), model.state_dict())
    from safetensors import safe_open

    with safe_open(str(tmp_path / "m0" / WEIGHTS_NAME), framework="pt") as handle:
        assert handle.metadata() == {"format": "pt", "model_type": model.model_type}


@pytest.mark.parametrize("damage, message", [
    (lambda m: (m / CONFIG_NAME).write_text('{"model_type": "acn", "config": '), "config.json: not readable JSON"),
    (lambda m: (m / CONFIG_NAME).write_text('{"model_type": "acn"}'), "config.json: not a model config"),
    (lambda m: (m / "model.safetensors").write_bytes((m / "model.safetensors").read_bytes()[:200]), "model.safetensors: unreadable weights"),
])
def test_a_damaged_model_folder_is_a_one_line_error(built, tmp_path: Path, damage, message) -> None:
    _, _, model = built
    model.save_pretrained(tmp_path / "m")
    damage(tmp_path / "m")
    with pytest.raises(ModelNotFoundError, match=message) as err:
        load_model(tmp_path / "m")
    assert "\n" not in str(err.value)
