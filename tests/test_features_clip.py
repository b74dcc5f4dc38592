"""2M-NER's image inputs: CLIP ViT-B/32 tokens cached like the CNN grids, and ResNet-152's pooled vector from its grid.

The CLIP model is a tiny one built here (hidden 32, 2 layers, 32-pixel patches
on 64-pixel images: 5 tokens) and saved with ``save_pretrained``, so it is
loaded through the path a hub id takes; ``random`` runs the full-size
architecture.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

import xlingual.features.extract as extract_module
from extraction_helpers import ForwardCounter, interrupt_at_batch
from xlingual.cli import app
from xlingual.data.formats import write_samples
from xlingual.data.sample import Sample
from xlingual.errors import ConfigError, ModelNotFoundError
from xlingual.features import (
    ClipPreprocessing, FeatureCache, extract_features, extract_for_datasets, pooled_lookup, pooled_vector,
    preprocess_image, visual_lookup,
)
from xlingual.testing.synthetic import write_images
from xlingual.testing.tiny_bert import build_tiny_bert
from xlingual.testing.tiny_clip import build_tiny_clip, tiny_clip_tokens

CLIP = "clip-vit-b32"
TINY_SHAPE = (tiny_clip_tokens(), 32)
# 2M-NER's dataset names images after IMGIDs like these (MMNERD: product-title posts and Twitter2017 posts).
NAMES = ["03433732---81KcMoDB8YL._SR500,500_.jpg", "16_05_02_503.jpg", "O_3538.jpg", "00008413---CL-EX.jpg?ext=.jpg", "tall.jpg"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("models") / "tiny-clip")


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = write_images(tmp_path_factory.mktemp("images"), NAMES[:-1])
    write_images(folder / "tall", ["tall.jpg"], seed=1, size=(48, 120))
    (folder / "tall" / "tall.jpg").rename(folder / "tall.jpg")
    return folder


@pytest.fixture(scope="module")
def clip_cache(tmp_path_factory, tiny_clip: Path, images: Path):
    cache_dir = tmp_path_factory.mktemp("features") / CLIP
    counter = ForwardCounter()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(extract_module, "load_backbone", counter)
        report = extract_features(images, NAMES + NAMES[:2], cache_dir, backbone=CLIP, weights=str(tiny_clip), batch_size=2, dtype="float32")
    return cache_dir, report, counter


def hub_path_tokens(folder: Path, image_files: list[Path], full: bool = False) -> np.ndarray:
    """What the 2M-NER reference computes: the processor's pixels through the vision model, last_hidden_state."""
    from transformers import CLIPModel, CLIPVisionModel
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    processor = CLIPImageProcessorPil.from_pretrained(folder)
    pixels = processor(images=[Image.open(path).convert("RGB") for path in image_files], return_tensors="pt")["pixel_values"]
    model = CLIPModel.from_pretrained(folder).vision_model if full else CLIPVisionModel.from_pretrained(folder)
    with torch.no_grad():
        return model.eval()(pixel_values=pixels).last_hidden_state.numpy()


def test_every_image_once_with_all_tokens(clip_cache) -> None:
    cache_dir, report, counter = clip_cache
    assert (report.named, report.extracted, report.cached, report.failed) == (5, 5, 0, {})
    assert counter.loads == 1 and counter.images == 5 == report.extracted
    cache = FeatureCache.open(cache_dir)
    assert cache.backbone == CLIP and cache.region_shape == TINY_SHAPE and cache.producer.weights_id.startswith("folder:sha256=")
    assert sorted(cache.names()) == sorted(NAMES)


def test_tokens_equal_the_hub_loading_path(clip_cache, tiny_clip: Path, images: Path) -> None:
    """Same numbers as CLIPImageProcessor + CLIPVisionModel.from_pretrained: the preprocessing and all tokens (CLS first)."""
    cache = FeatureCache.open(clip_cache[0])
    expected = hub_path_tokens(tiny_clip, [images / name for name in NAMES])
    assert expected.shape == (len(NAMES), *TINY_SHAPE)
    for name, tokens in zip(NAMES, expected):
        np.testing.assert_allclose(cache.get(name), tokens, rtol=1e-4, atol=1e-5)
    assert not np.allclose(cache.get(NAMES[0])[0], cache.get(NAMES[0])[1])


def test_a_whole_clip_model_folder_gives_its_vision_tower(tmp_path: Path, images: Path) -> None:
    """openai/clip-vit-base-patch32 is a whole CLIPModel checkpoint; its vision tower is what is read."""
    folder = build_tiny_clip(tmp_path / "full", full=True, seed=2)
    extract_features(images, NAMES[:2], tmp_path / "c", backbone=CLIP, weights=str(folder), batch_size=2, dtype="float32")
    cache = FeatureCache.open(tmp_path / "c")
    for name, tokens in zip(NAMES[:2], hub_path_tokens(folder, [images / n for n in NAMES[:2]], full=True)):
        np.testing.assert_allclose(cache.get(name), tokens, rtol=1e-4, atol=1e-5)


def test_second_run_computes_nothing_and_a_rerun_gives_the_same_keys_and_values(clip_cache, tiny_clip: Path, images: Path, tmp_path: Path, monkeypatch) -> None:
    counter = ForwardCounter()
    monkeypatch.setattr(extract_module, "load_backbone", counter)
    report = extract_features(images, NAMES, clip_cache[0], backbone=CLIP, weights=str(tiny_clip), dtype="float32")
    assert (report.extracted, report.cached, report.forward_batches, counter.loads) == (0, 5, 0, 0)

    extract_features(images, NAMES, tmp_path / "again", backbone=CLIP, weights=str(tiny_clip), batch_size=3, dtype="float32")
    first, again = FeatureCache.open(clip_cache[0]), FeatureCache.open(tmp_path / "again")
    assert first.names() == again.names()
    for name in NAMES:  # batch size does not change an image's tokens
        np.testing.assert_allclose(again.get(name), first.get(name), rtol=1e-4, atol=1e-5)


def test_resume_after_interruption(tiny_clip: Path, images: Path, clip_cache, tmp_path: Path, monkeypatch) -> None:
    real_regions_of = interrupt_at_batch(monkeypatch, 2)
    options = dict(backbone=CLIP, weights=str(tiny_clip), batch_size=2, shard_size=2, dtype="float32")
    with pytest.raises(KeyboardInterrupt):
        extract_features(images, NAMES, tmp_path / "c", **options)
    assert len(FeatureCache.open(tmp_path / "c")) == 2
    monkeypatch.setattr(extract_module, "regions_of", real_regions_of)
    counter = ForwardCounter()
    monkeypatch.setattr(extract_module, "load_backbone", counter)
    report = extract_features(images, NAMES, tmp_path / "c", **options)
    assert (report.cached, report.extracted, counter.images) == (2, 3, 3)
    resumed, whole = FeatureCache.open(tmp_path / "c"), FeatureCache.open(clip_cache[0])
    for name in NAMES:
        np.testing.assert_allclose(resumed.get(name), whole.get(name), rtol=1e-4, atol=1e-5)


def test_missing_and_broken_images_as_for_the_cnns(tiny_clip: Path, images: Path, tmp_path: Path) -> None:
    """A post whose image is missing or unreadable is reported and gets zero tokens with has_image False, never dropped."""
    folder = tmp_path / "images"
    folder.mkdir()
    for name in NAMES[:2]:
        (folder / name).write_bytes((images / name).read_bytes())
    (folder / "17_06_4705.jpg").write_text("not a picture")
    posts = [Sample(id=name[:-4], tokens=["Apple", "pie"], labels=["B-ORG", "O"], lang="en") for name in NAMES[:2]]
    posts += [Sample(id="17_06_4705", tokens=["x"], labels=["O"], lang="en"), Sample(id="O_9999", tokens=["y"], labels=["O"], lang="en")]
    text = tmp_path / "test.txt"
    write_samples(text, posts, "twitter")
    report = extract_for_datasets(folder, [text], tmp_path / "c", backbone=CLIP, weights=str(tiny_clip), dtype="float32")
    assert (report.named, report.extracted) == (3, 2) and list(report.failed) == ["17_06_4705.jpg"]
    assert report.samples == 4 and report.samples_without_image == 2
    lookup = visual_lookup(FeatureCache.open(tmp_path / "c"))
    for post, has in zip(posts, (True, True, False, False)):
        sample = Sample(post.id, post.tokens, post.labels, images=[f"{post.id}.jpg"], lang="en")
        array, has_image = lookup(sample)
        assert array.shape == TINY_SHAPE and has_image is has and bool(array.any()) is has


def test_random_weights_are_a_full_size_vit_b32(images: Path, tmp_path: Path, tiny_clip: Path) -> None:
    report = extract_features(images, NAMES[:1], tmp_path / "c", backbone=CLIP, weights="random", seed=3)
    assert report.extracted == 1 and report.failed == {}
    cache = FeatureCache.open(tmp_path / "c")
    assert cache.region_shape == (50, 768) and cache.producer.weights_id == "random:seed=3"
    tokens = cache.get(NAMES[0])
    assert tokens.shape == (50, 768) and np.isfinite(tokens).all() and tokens.std() > 0
    for other in ({"weights": "random", "seed": 4}, {"weights": str(tiny_clip)}):
        with pytest.raises(ConfigError, match="never mixed"):
            extract_features(images, NAMES[:1], tmp_path / "c", backbone=CLIP, **other)


def test_other_weights_in_a_folder_are_recorded_as_other_weights(tmp_path: Path, tiny_clip: Path, images: Path) -> None:
    from xlingual.features.backbones import weights_identity

    other = build_tiny_clip(tmp_path / "other", seed=1)
    assert weights_identity(CLIP, str(other), 0) != weights_identity(CLIP, str(tiny_clip), 0)
    assert weights_identity(CLIP, "default", 0) == "hub:openai/clip-vit-base-patch32"
    extract_features(images, NAMES[:1], tmp_path / "c", backbone=CLIP, weights=str(tiny_clip))
    with pytest.raises(ConfigError, match="never mixed"):
        extract_features(images, NAMES[:1], tmp_path / "c", backbone=CLIP, weights=str(other))


def test_unusable_weights_fail_in_one_line(tmp_path: Path, images: Path) -> None:
    (tmp_path / "model.pth").write_bytes(b"x")
    with pytest.raises(ConfigError, match="a file; the CLIP backbone takes"):
        extract_features(images, NAMES[:1], tmp_path / "a", backbone=CLIP, weights=str(tmp_path / "model.pth"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        extract_features(images, NAMES[:1], tmp_path / "b", backbone=CLIP, weights=str(tmp_path / "empty"))
    for weights in ("default", "someone/no-such-clip"):  # offline in the tests, and nothing in the HF cache
        with pytest.raises(ModelNotFoundError) as info:
            extract_features(images, NAMES[:1], tmp_path / "c", backbone=CLIP, weights=weights)
        message = str(info.value)
        assert "\n" not in message and "not in the local Hugging Face cache and the hub is offline" in message and "--weights random" in message
    damaged = build_tiny_clip(tmp_path / "damaged")
    (damaged / "model.safetensors").write_bytes(b"\0" * 64)
    with pytest.raises(ModelNotFoundError, match="cannot load the CLIP vision model"):
        extract_features(images, NAMES[:1], tmp_path / "e", backbone=CLIP, weights=str(damaged))
    with pytest.raises(ModelNotFoundError, match="a 'bert' model, not CLIP"):  # never a CLIP with random gaps
        extract_features(images, NAMES[:1], tmp_path / "f", backbone=CLIP, weights=str(build_tiny_bert(tmp_path / "bert", ["x"])))
    partial = build_tiny_clip(tmp_path / "partial")
    from safetensors.numpy import load_file, save_file

    tensors = load_file(partial / "model.safetensors")
    dropped = sorted(name for name in tensors if "post_layernorm" in name)
    save_file({k: v for k, v in tensors.items() if k not in dropped}, partial / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelNotFoundError, match="2 weights of the CLIP vision model are not in the checkpoint"):
        extract_features(images, NAMES[:1], tmp_path / "g", backbone=CLIP, weights=str(partial))
    mismatched = build_tiny_clip(tmp_path / "mismatched")
    settings_file = mismatched / "preprocessor_config.json"
    settings_file.write_text(json.dumps({**json.loads(settings_file.read_text()), "crop_size": {"height": 32, "width": 32}}))
    with pytest.raises(ModelNotFoundError, match=r"makes \(32, 32\) inputs but the model takes 64x64"):
        extract_features(images, NAMES[:1], tmp_path / "d", backbone=CLIP, weights=str(mismatched))


def test_a_folder_without_preprocessing_settings_gets_clips_defaults_at_its_size(tmp_path: Path, images: Path, tiny_clip: Path, clip_cache) -> None:
    bare = build_tiny_clip(tmp_path / "bare", with_preprocessor=False)
    extract_features(images, NAMES[:2], tmp_path / "c", backbone=CLIP, weights=str(bare), dtype="float32")
    bare_cache, cache = FeatureCache.open(tmp_path / "c"), FeatureCache.open(clip_cache[0])
    for name in NAMES[:2]:  # same seed, same weights; the saved settings are CLIP's defaults at 64 pixels
        np.testing.assert_allclose(bare_cache.get(name), cache.get(name), rtol=1e-4, atol=1e-5)


def test_the_hub_models_settings_file_format_reads_as_clips_defaults() -> None:
    """openai/clip-vit-base-patch32 ships the old feature-extractor format: ints for size and crop_size."""
    old = {"crop_size": 224, "do_center_crop": True, "do_normalize": True, "do_resize": True,
           "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": [0.48145466, 0.4578275, 0.40821073],
           "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "size": 224}
    assert ClipPreprocessing.from_config(old, "x") == ClipPreprocessing()
    with pytest.raises(ModelNotFoundError, match="x: crop_size"):
        ClipPreprocessing.from_config({**old, "crop_size": "big"}, "x")


@settings(max_examples=30, deadline=None)
@given(
    width=st.integers(1, 300), height=st.integers(1, 300), edge=st.sampled_from([32, 64, 224]),
    seed=st.integers(0, 2**16),
)
def test_preprocessing_equals_clips_image_processor(width: int, height: int, edge: int, seed: int) -> None:
    """Any image size and aspect: the same (3, S, S) array as transformers' CLIPImageProcessorPil."""
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    rgb = Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))
    ours = ClipPreprocessing(shortest_edge=edge, crop=(edge, edge))(rgb)
    theirs = CLIPImageProcessorPil(size={"shortest_edge": edge}, crop_size={"height": edge, "width": edge})(images=rgb)["pixel_values"][0]
    assert ours.shape == (3, edge, edge) == np.asarray(theirs).shape
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_faithful_drops_alpha_as_the_reference_and_clean_composites_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((80, 80, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = np.where(np.arange(80)[None, :] < 40, 0, 255)  # left half transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    steps = ClipPreprocessing(shortest_edge=64, crop=(64, 64))
    clean = preprocess_image(tmp_path / "a.png", CLIP, "clean", clip=steps)
    faithful = preprocess_image(tmp_path / "a.png", CLIP, "faithful", clip=steps)
    white = (1.0 - np.array(steps.mean)) / np.array(steps.std)
    np.testing.assert_allclose(clean[:, 32, 0], white, atol=1e-5)  # transparent over white
    np.testing.assert_allclose(faithful, steps(Image.open(tmp_path / "a.png").convert("RGB")), atol=0)
    assert not np.allclose(clean, faithful)


def test_cli_extracts_and_describes_clip_tokens(tiny_clip: Path, images: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["features", "extract", "--images", str(images), "--backbone", CLIP, "--weights", str(tiny_clip), "--out", str(tmp_path / "c"), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["extracted"] == len(NAMES)
    assert json.loads(runner.invoke(app, args).stdout)["cached"] == len(NAMES)
    described = json.loads(runner.invoke(app, ["features", "info", str(tmp_path / "c"), "--json"]).stdout)
    assert described["backbone"] == CLIP and described["region_shape"] == list(TINY_SHAPE)
    refused = runner.invoke(app, [*args[:-3], "--weights", str(tmp_path / "nowhere.pth"), "--out", str(tmp_path / "d")])
    assert refused.exit_code == 2 and re.search(r"^error: --weights \S+nowhere.pth: \S+nowhere.pth: model folder not found;", refused.stderr), refused.output


# ---------------------------------------------------------------- ResNet-152's pooled vector


def test_resnet_pooled_vector_is_torchvisions_average_pool(images: Path, tmp_path: Path) -> None:
    """The mean of the cached 7x7 grid equals torchvision's avgpool output of the same ResNet-152 on the same input."""
    from torchvision.models import resnet152

    torch.manual_seed(0)
    net = resnet152(weights=None).eval()
    torch.save(net.state_dict(), tmp_path / "resnet152.pth")
    names = NAMES[:2]
    extract_features(images, names, tmp_path / "c", backbone="resnet152", weights=str(tmp_path / "resnet152.pth"), batch_size=2, dtype="float32")
    (tmp_path / "resnet152.pth").unlink()
    net.fc = torch.nn.Identity()  # the classifier's input is the flattened average pool
    with torch.no_grad():
        pooled = net(torch.from_numpy(np.stack([preprocess_image(images / n, "resnet152") for n in names]))).numpy()
    cache = FeatureCache.open(tmp_path / "c")
    for name, expected in zip(names, pooled):
        got = pooled_vector(cache.get(name))
        assert got.shape == (2048,)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    assert not np.allclose(pooled[0], pooled[1], rtol=1e-3)

    lookup = pooled_lookup(cache)
    both, has_image = lookup(Sample(id="p", tokens=["x"], labels=["O"], images=names, lang="en"))
    assert has_image and both.shape == (2048,)
    np.testing.assert_allclose(both, pooled.mean(axis=0), rtol=1e-5, atol=1e-5 * np.abs(pooled).max())
    none, has_image = lookup(Sample(id="q", tokens=["x"], labels=["O"], images=["gone.jpg"], lang="en"))
    assert not has_image and none.shape == (2048,) and not none.any()


def test_pooled_lookup_refuses_a_token_cache(clip_cache) -> None:
    with pytest.raises(ConfigError, match="holds tokens, not a CNN grid"):
        pooled_lookup(FeatureCache.open(clip_cache[0]))


def test_loading_and_rebuilding_a_vision_model_choose_its_class_in_one_place(tiny_clip: Path, tmp_path: Path, monkeypatch) -> None:
    """load_clip (hub folder or random) and the rebuild of a saved fine-tuned ViT (vision_model_from_config) ask
    vision_model_class, so a checkpoint is always rebuilt as the class it was loaded as, with the same weights' names."""
    from xlingual.features import clip as clip_module
    from xlingual.features.clip import load_clip, load_clip_config, vision_model_from_config
    from xlingual.testing.tiny_clip import build_tiny_vit

    asked: list[str] = []
    choose = clip_module.vision_model_class
    monkeypatch.setattr(clip_module, "vision_model_class", lambda config: asked.append(config.model_type) or choose(config))
    for weights, kind in ((str(tiny_clip), "clip_vision_model"), (str(build_tiny_vit(tmp_path / "vit")), "vit"), ("random", "clip_vision_model")):
        asked.clear()
        loaded = load_clip(weights).vision
        rebuilt = vision_model_from_config(load_clip_config(weights))
        assert asked == [kind, kind]
        assert type(loaded) is type(rebuilt) is choose(load_clip_config(weights))[0]
        assert loaded.state_dict().keys() == rebuilt.state_dict().keys()
        assert not any("pooler" in key for key in loaded.state_dict()) or kind != "vit"
