"""The base's one visual path (``visual_inputs``) gives every model the batches its own code used to build.

ACN and UMT read one ``regions`` array per post, 2M-NER one array per active
branch (``vit``, ``resnet``) from a mapping. Before the base knew named
inputs, 2M-NER re-implemented the rules in its own ``_regions`` and
``collate``; the functions marked "reference" below are copies of those two
implementations as they stood (the base's ``_regions`` / ``_collate_regions``
and 2M-NER's overrides), kept here as the independent definition of the
batches and the error messages the shared path must reproduce.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xlingual.data.sample import Sample
from xlingual.errors import ConfigError
from xlingual.models import MnerModel, model_class
from xlingual.models.base import VisualInput
from xlingual.testing.synthetic import generated_tweets
from xlingual.testing.tiny_bert import build_tiny_bert

pytestmark = pytest.mark.usefixtures("one_torch_thread")

POSTS = generated_tweets(8, seed=11)
CHANNELS, REGIONS, VIT_TOKENS, VIT_DIM, RESNET_DIM = 16, 4, 3, 8, 6
VARIANTS = ["acn", "umt", "2mner", "2mner-vit", "2mner-resnet"]
"""ACN (any number of regions), UMT (a fixed number), 2M-NER with both branches and with each alone."""


# ---------------------------------------------------------------------- reference: the code before the shared path


def reference_regions(model: MnerModel, sample: Sample, visual: Callable | None) -> tuple[np.ndarray | None, bool]:
    """The base's ``_regions`` (ACN, UMT) as it stood."""
    if visual is None:
        return None, False
    regions, has_image = visual(sample)
    regions = np.asarray(regions)
    count = model._expected_regions()
    if regions.ndim != 2 or regions.shape[1] != model.config.visual_dim or (count is not None and regions.shape[0] != count):
        expected = f"({'regions' if count is None else count}, {model.config.visual_dim})"
        raise ConfigError(f"model.visual_dim: sample {sample.id} has image features of shape {tuple(regions.shape)}, "
                          f"{model.model_type.upper()} expects {expected}; {model.region_hint}")
    return (regions, True) if has_image else (None, False)


def reference_collate_regions(model: MnerModel, items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """The base's ``_collate_regions`` (ACN, UMT) as it stood; items carry the reference's ``regions``."""
    shapes = {tuple(item["regions"].shape) for item in items if item["regions"] is not None}
    if len(shapes) > 1:
        raise ConfigError(f"model.visual_dim: posts in one batch have visual features of different shapes {sorted(shapes)}")
    shape = shapes.pop() if shapes else (model._expected_regions() or 1, model.config.visual_dim)
    regions = np.zeros((len(items), *shape), dtype=np.float32)
    for row, item in enumerate(items):
        if item["regions"] is not None:
            regions[row] = item["regions"]
    has_image = torch.tensor([bool(item["has_image"]) for item in items], dtype=torch.bool)
    return {"regions": torch.from_numpy(regions), "has_image": has_image}


def reference_mner2_shapes(model: MnerModel) -> dict[str, tuple[int, ...]]:
    shapes = {"vit": (model.config.vit_tokens, model.config.visual_dim), "resnet": (model.config.resnet_dim,)}
    return {name: shapes[name] for name in model.config.branches}


def reference_mner2_regions(model: MnerModel, sample: Sample, visual: Callable | None) -> tuple[dict[str, np.ndarray] | None, bool]:
    """2M-NER's ``_regions`` override as it stood."""
    if visual is None:
        return None, False
    features, has_image = visual(sample)
    if not isinstance(features, Mapping):
        raise ConfigError(f"sample {sample.id}: image features are one array of shape {np.shape(features)}; {model.region_hint}")
    if not has_image:
        return None, False
    out: dict[str, np.ndarray] = {}
    for name, shape in reference_mner2_shapes(model).items():
        array = np.asarray(features[name])
        if array.shape != shape:
            option, source = (("model.vit_tokens / model.visual_dim", "visual_lookup of a clip-vit-b32 cache") if name == "vit"
                              else ("model.resnet_dim", "pooled_lookup of a resnet152 cache"))
            raise ConfigError(f"{option}: sample {sample.id} has {name} features of shape {array.shape}, 2M-NER expects {shape} ({source})")
        out[name] = array
    return out, True


def reference_mner2_collate(model: MnerModel, items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """The visual half of 2M-NER's ``collate`` override as it stood."""
    batch = {}
    for name, shape in reference_mner2_shapes(model).items():
        array = np.zeros((len(items), *shape), dtype=np.float32)
        for row, item in enumerate(items):
            if item["regions"] is not None:
                array[row] = item["regions"][name]
        batch[name] = torch.from_numpy(array)
    batch["has_image"] = torch.tensor([bool(item["has_image"]) for item in items], dtype=torch.bool)
    return batch


def reference_batch(model: MnerModel, samples: Sequence[Sample], visual: Callable | None) -> dict[str, torch.Tensor]:
    """What ``model.collate(model.encode(samples, visual))`` returned before the shared path."""
    mner2 = model.model_type == "2mner"
    regions_of, collate_visual = (reference_mner2_regions, reference_mner2_collate) if mner2 else (reference_regions, reference_collate_regions)
    items = [{"regions": regions, "has_image": has_image} for regions, has_image in (regions_of(model, s, visual) for s in samples)]
    return {**model._collate_text(model._encode_text(samples)), **collate_visual(model, items)}


# ---------------------------------------------------------------------- models and lookups


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, MnerModel]:
    encoder = str(build_tiny_bert(tmp_path_factory.mktemp("enc") / "tiny-bert", [t for s in POSTS for t in s.tokens]))
    mner2 = {"encoder": encoder, "vit_tokens": VIT_TOKENS, "visual_dim": VIT_DIM, "resnet_dim": RESNET_DIM, "max_length": 40}
    configs = {
        "acn": ("acn", {"word_dim": 8, "char_dim": 4, "char_filters": 4, "char_out": 4, "hidden": 8, "max_length": 30,
                        "max_word_len": 8, "visual_dim": CHANNELS, "seed": 5}),
        "umt": ("umt", {"encoder": encoder, "cross_heads": 2, "visual_dim": CHANNELS, "num_visual_regions": REGIONS, "max_length": 40}),
        "2mner": ("2mner", mner2),
        "2mner-vit": ("2mner", {**mner2, "use_resnet": False}),
        "2mner-resnet": ("2mner", {**mner2, "use_vit": False}),
    }
    torch.manual_seed(0)
    return {name: model_class(kind).build(config, POSTS) for name, (kind, config) in configs.items()}


def lookup_for(model: MnerModel, has_image: Sequence[bool], dtype: Any, seed: int, regions: int) -> Callable:
    """Random features of the right shapes per post (image-less posts get noise too); 2M-NER's carry both branches, as ``paired_lookup``'s do."""
    flags = {post.id: flag for post, flag in zip(POSTS, has_image)}
    count = model._expected_regions() or regions

    def lookup(sample: Sample) -> tuple[Any, bool]:
        rng = np.random.default_rng([seed, zlib.crc32(sample.id.encode())])
        if model.model_type == "2mner":
            features: Any = {"vit": rng.standard_normal((VIT_TOKENS, VIT_DIM)).astype(dtype), "resnet": rng.standard_normal(RESNET_DIM).astype(dtype)}
        else:
            features = (rng.standard_normal((count, CHANNELS)) * 100).astype(dtype)
        return features, flags[sample.id]

    return lookup


def assert_same_batch(batch: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert batch.keys() == expected.keys()
    for key in expected:
        assert batch[key].dtype == expected[key].dtype and torch.equal(batch[key], expected[key]), key


# ---------------------------------------------------------------------- batches


@pytest.mark.parametrize("variant", VARIANTS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(has_image=st.lists(st.booleans(), min_size=1, max_size=len(POSTS)),
       dtype=st.sampled_from([np.float16, np.float32, np.float64]), seed=st.integers(0, 2**32 - 1), regions=st.integers(1, 6))
def test_batches_are_the_ones_the_earlier_code_built(models, variant: str, has_image: list[bool], dtype: Any, seed: int, regions: int) -> None:
    model = models[variant]
    samples = POSTS[: len(has_image)]
    visual = lookup_for(model, has_image, dtype, seed, regions)
    batch = model.collate(model.encode(samples, visual))
    assert_same_batch(batch, reference_batch(model, samples, visual))
    # What the rules say, independently of both implementations.
    assert batch["has_image"].tolist() == has_image
    for spec in model.visual_inputs():
        assert not batch[spec.name][~batch["has_image"]].any()  # image-less posts: zeros, whatever the lookup gave
        assert batch[spec.name].dtype == torch.float32


@pytest.mark.parametrize("variant", VARIANTS)
def test_without_a_lookup_every_post_is_imageless_with_zero_inputs(models, variant: str) -> None:
    model = models[variant]
    batch = model.collate(model.encode(POSTS[:3], None))
    assert_same_batch(batch, reference_batch(model, POSTS[:3], None))
    shapes = {"acn": {"regions": (1, CHANNELS)}, "umt": {"regions": (REGIONS, CHANNELS)},
              "2mner": {"vit": (VIT_TOKENS, VIT_DIM), "resnet": (RESNET_DIM,)},
              "2mner-vit": {"vit": (VIT_TOKENS, VIT_DIM)}, "2mner-resnet": {"resnet": (RESNET_DIM,)}}[variant]
    assert {name: tuple(batch[name].shape[1:]) for name in shapes} == shapes and not batch["has_image"].any()
    assert [key for key in batch if key in {"regions", "vit", "resnet"}] == list(shapes)


@pytest.mark.parametrize("variant", VARIANTS)
def test_text_only_models_collate_no_visual_keys(models, variant: str, tmp_path: Path) -> None:
    model = models[variant]
    model.save_pretrained(tmp_path / "m")
    text_only = type(model).from_pretrained(tmp_path / "m", use_image=False)
    visual = lookup_for(model, [True] * 3, np.float32, 0, 2)
    batch = text_only.collate(text_only.encode(POSTS[:3], visual))
    assert batch.keys() == text_only._collate_text(text_only._encode_text(POSTS[:3])).keys()


@pytest.mark.parametrize("variant", ["acn", "2mner"])
def test_memory_mapped_features_stay_on_disk_until_collation(models, variant: str, tmp_path: Path) -> None:
    model = models[variant]
    shape = (5, CHANNELS) if variant == "acn" else (VIT_TOKENS, VIT_DIM)
    path = tmp_path / "features.f16"
    np.memmap(path, dtype=np.float16, mode="w+", shape=shape)[:] = np.arange(np.prod(shape)).reshape(shape)
    mapped = np.memmap(path, dtype=np.float16, mode="r", shape=shape)
    features: Any = mapped if variant == "acn" else {"vit": mapped, "resnet": np.ones(RESNET_DIM, dtype=np.float32)}
    items = model.encode(POSTS[:1], lambda sample: (features, True))
    name = "regions" if variant == "acn" else "vit"
    assert np.shares_memory(items[0][name], mapped)
    assert torch.equal(model.collate(items)[name][0], torch.from_numpy(np.asarray(mapped, dtype=np.float32)))


# ---------------------------------------------------------------------- errors


def raised(call: Callable[[], Any]) -> str:
    with pytest.raises(ConfigError) as info:
        call()
    return str(info.value)


@pytest.mark.parametrize(("variant", "shape"), [
    ("acn", (5, CHANNELS + 1)), ("acn", (CHANNELS,)), ("acn", (2, 5, CHANNELS)),
    ("umt", (REGIONS + 1, CHANNELS)), ("umt", (REGIONS, CHANNELS - 1)),
])
@pytest.mark.parametrize("has_image", [True, False])
def test_region_shape_errors_are_the_earlier_ones(models, variant: str, shape: tuple[int, ...], has_image: bool) -> None:
    """ACN's and UMT's one-line error, word for word, for a post with or without an image (a wrong cache fails on any post)."""
    model = models[variant]

    def lookup(sample: Sample) -> tuple[np.ndarray, bool]:
        return np.zeros(shape, dtype=np.float32), has_image

    message = raised(lambda: model.encode(POSTS[:2], lookup))
    assert message == raised(lambda: reference_regions(model, POSTS[0], lookup))
    assert message.startswith("model.visual_dim: sample ") and str(shape) in message


def test_posts_of_one_batch_with_different_region_counts_are_refused(models) -> None:
    model = models["acn"]
    counts = {post.id: 2 + i % 2 for i, post in enumerate(POSTS)}
    items = model.encode(POSTS[:3], lambda sample: (np.zeros((counts[sample.id], CHANNELS), dtype=np.float32), True))
    assert model.collate(items[::2])["regions"].shape == (2, 2, CHANNELS)  # one count per batch is fine
    message = raised(lambda: model.collate(items))
    assert message.startswith("model.visual_dim: posts in one batch have ") and f"[(2, {CHANNELS}), (3, {CHANNELS})]" in message


@pytest.mark.parametrize(("variant", "bad", "option"), [
    ("2mner", {"vit": (VIT_TOKENS + 1, VIT_DIM)}, "model.vit_tokens / model.visual_dim"),
    ("2mner", {"resnet": (49, RESNET_DIM)}, "model.resnet_dim"),
    ("2mner-vit", {"vit": (VIT_TOKENS, VIT_DIM + 1)}, "model.vit_tokens / model.visual_dim"),
    ("2mner-resnet", {"resnet": (RESNET_DIM + 1,)}, "model.resnet_dim"),
])
def test_mner2_shape_errors_name_the_option_the_input_and_both_shapes(models, variant: str, bad: dict, option: str) -> None:
    model = models[variant]
    features = {"vit": np.zeros((VIT_TOKENS, VIT_DIM), dtype=np.float32), "resnet": np.zeros(RESNET_DIM, dtype=np.float32)}
    features.update({name: np.zeros(shape, dtype=np.float32) for name, shape in bad.items()})
    (name, shape), = bad.items()
    expected = {"vit": (VIT_TOKENS, VIT_DIM), "resnet": (RESNET_DIM,)}[name]
    message = raised(lambda: model.encode(POSTS[:1], lambda sample: (features, True)))
    old = raised(lambda: reference_mner2_regions(model, POSTS[0], lambda sample: (features, True)))
    assert message.split(":")[0] == old.split(":")[0] == option
    assert f"has {name} features of shape {shape}, " in message and f"expects {expected}" in message
    # A wrong cache now fails on an image-less post too (the earlier override checked only posts with an image).
    assert raised(lambda: model.encode(POSTS[:1], lambda sample: (features, False))) == message


@pytest.mark.parametrize("variant", ["2mner", "2mner-vit"])
def test_mner2_needs_a_mapping_and_each_active_branch(models, variant: str) -> None:
    model = models[variant]
    array = np.zeros((49, RESNET_DIM), dtype=np.float32)
    message = raised(lambda: model.encode(POSTS[:1], lambda sample: (array, True)))
    assert message == raised(lambda: reference_mner2_regions(model, POSTS[0], lambda sample: (array, True)))
    # A mapping without an active branch's array: one line naming it (the earlier override raised a KeyError).
    partial = {"resnet": np.zeros(RESNET_DIM, dtype=np.float32)}
    message = raised(lambda: model.encode(POSTS[:1], lambda sample: (partial, True)))
    assert message.startswith(f"sample {POSTS[0].id}: image features have no 'vit' array (got resnet)")


def test_a_single_input_model_reads_no_mapping(models) -> None:
    """ACN given 2M-NER's paired features: a one-line error, as before (the mapping is not an array of regions)."""
    features = {"vit": np.zeros((VIT_TOKENS, VIT_DIM)), "resnet": np.zeros(RESNET_DIM)}
    message = raised(lambda: models["acn"].encode(POSTS[:1], lambda sample: (features, True)))
    assert message == raised(lambda: reference_regions(models["acn"], POSTS[0], lambda sample: (features, True)))


def test_visual_input_shapes_as_errors_show_them() -> None:
    spec = VisualInput("regions", ("regions", 512), option="model.visual_dim", hint="")
    assert spec.expected() == "(regions, 512)" and spec.empty_shape() == (1, 512) and spec.called == "regions"
    assert spec.matches((7, 512)) and not spec.matches((7, 511)) and not spec.matches((512,))
    vector = VisualInput("resnet", (2048,), option="model.resnet_dim", hint="", label="ResNet")
    assert vector.expected() == str((2048,)) and vector.called == "ResNet" and not vector.matches((1, 2048))
