"""Feature extraction and the cache with random-weight backbones.

The images are generated stand-ins laid out like the 25 real CMNER images (six
posts, the largest with nine); the real-data layer at the end runs the real ones.
"""

from __future__ import annotations

import os
import random
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch

import xlingual.features.extract as extract_module
from extraction_helpers import ForwardCounter, interrupt_at_batch
from xlingual.data.sample import Sample
from xlingual.errors import ConfigError, ImageError
from xlingual.features import BACKBONES, FeatureCache, extract_features, extract_for_datasets, load_backbone, visual_lookup
from xlingual.features.cache import SHARD_PATTERN
from xlingual.features.extract import regions_of
from xlingual.features.preprocess import preprocess_image


@pytest.fixture(scope="module")
def cmner_images(generated_data) -> Path:
    return generated_data.cmner_images


@pytest.fixture(scope="module")
def image_names(cmner_images: Path) -> list[str]:
    names = sorted(p.name for p in cmner_images.glob("*.jpg"))
    assert len(names) == 25
    return names


@pytest.fixture(scope="module")
def posts(image_names: list[str]) -> dict[str, list[str]]:
    by_post: dict[str, list[str]] = defaultdict(list)
    for name in image_names:
        by_post[name.split("_")[0]].append(name)
    assert len(by_post) == 6
    return dict(by_post)


@pytest.fixture(scope="module")
def vgg_cache(tmp_path_factory, cmner_images: Path, image_names: list[str]) -> tuple[Path, object]:
    """All 25 images through random VGG16 once (names repeated, to check each is read once)."""
    cache_dir = tmp_path_factory.mktemp("features") / "vgg16"
    counter = ForwardCounter()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(extract_module, "load_backbone", counter)
        report = extract_features(cmner_images, image_names + image_names[:5], cache_dir, backbone="vgg16", weights="random", batch_size=16)
    return cache_dir, (report, counter)


def test_first_run_extracts_every_named_image_once(vgg_cache) -> None:
    _, (report, counter) = vgg_cache
    assert report.named == 25 and report.extracted == 25 and report.cached == 0 and report.failed == {}
    assert counter.images == 25 and counter.forwards == 2 == report.forward_batches


def test_cache_describes_itself(vgg_cache, image_names: list[str]) -> None:
    cache = FeatureCache.open(vgg_cache[0])
    assert cache.backbone == "vgg16" and cache.region_shape == (49, 512) == BACKBONES["vgg16"].region_shape
    assert cache.weights == "random" and cache.crop == "clean"
    assert len(cache) == 25 and image_names[0] in cache and "nope.jpg" not in cache
    feature = cache.get(image_names[0])
    assert feature.shape == (49, 512) and feature.dtype == np.float32
    assert np.isfinite(feature).all() and feature.std() > 0
    assert cache.get("nope.jpg") is None


def test_second_run_does_no_cnn_work(vgg_cache, cmner_images: Path, image_names: list[str], monkeypatch) -> None:
    counter = ForwardCounter()
    monkeypatch.setattr(extract_module, "load_backbone", counter)
    report = extract_features(cmner_images, image_names, vgg_cache[0], backbone="vgg16", weights="random")
    assert (report.extracted, report.cached, report.forward_batches) == (0, 25, 0)
    assert counter.loads == 0 and counter.forwards == 0


def test_cached_features_equal_a_direct_forward_in_region_order(vgg_cache, cmner_images: Path, image_names: list[str]) -> None:
    name = image_names[3]
    model = load_backbone("vgg16", "random", seed=0)
    with torch.no_grad():
        grid = model(torch.from_numpy(preprocess_image(cmner_images / name, "vgg16"))[None])[0]  # (512, 7, 7)
    cached = FeatureCache.open(vgg_cache[0]).get(name)
    for row, col in [(0, 0), (0, 6), (3, 2), (6, 0), (6, 6)]:
        np.testing.assert_allclose(cached[7 * row + col], grid[:, row, col].numpy(), rtol=2e-2, atol=2e-3)


def test_region_index_is_seven_times_row_plus_col() -> None:
    grid = torch.zeros(1, 3, 7, 7)
    for row in range(7):
        for col in range(7):
            grid[0, :, row, col] = torch.tensor([row, col, 100 * row + col])
    regions = regions_of(torch.nn.Identity(), grid)[0]
    assert regions.shape == (49, 3)
    for r in range(49):
        assert regions[r].tolist() == [r // 7, r % 7, 100 * (r // 7) + r % 7]


def test_post_feature_is_the_mean_of_its_images(vgg_cache, posts: dict[str, list[str]]) -> None:
    cache = FeatureCache.open(vgg_cache[0])
    biggest = max(posts.values(), key=len)
    assert len(biggest) == 9
    feature = cache.post_feature(biggest)
    expected = np.mean([cache.get(name) for name in biggest], axis=0)
    assert feature.has_image and feature.n_images == 9 and feature.array.dtype == np.float32
    np.testing.assert_allclose(feature.array, expected, rtol=1e-6, atol=1e-6)
    assert not np.allclose(feature.array, cache.get(biggest[0]))
    single = cache.post_feature(biggest[:1])
    np.testing.assert_array_equal(single.array, cache.get(biggest[0]))


def test_post_without_usable_image_gets_zeros_and_flag(vgg_cache) -> None:
    cache = FeatureCache.open(vgg_cache[0])
    for names in ([], ["missing_a.jpg", "missing_b.jpg"]):
        feature = cache.post_feature(names)
        assert not feature.has_image and feature.n_images == 0
        assert feature.array.shape == (49, 512) and not feature.array.any()


def test_one_image_mode_picks_a_member_with_the_rng(vgg_cache, posts: dict[str, list[str]]) -> None:
    cache = FeatureCache.open(vgg_cache[0])
    names = max(posts.values(), key=len)
    picks = set()
    for seed in range(12):
        feature = cache.post_feature(names, mode="one", rng=random.Random(seed))
        assert feature.n_images == 1 and feature.has_image
        match = [n for n in names if np.array_equal(cache.get(n), feature.array)]
        assert match
        picks.add(match[0])
    assert len(picks) > 1
    with pytest.raises(ConfigError):
        cache.post_feature(names, mode="first")


def test_visual_lookup_matches_the_models_contract(vgg_cache, posts: dict[str, list[str]]) -> None:
    cache = FeatureCache.open(vgg_cache[0])
    samples = [Sample(id=post, tokens=["a"], labels=["O"], images=names, lang="zh") for post, names in posts.items()]
    samples.append(Sample(id="no_image", tokens=["b"], labels=["O"], images=[], lang="zh"))
    mean_lookup = visual_lookup(cache, "all")
    array, has_image = mean_lookup(samples[0])
    np.testing.assert_array_equal(array, cache.post_feature(samples[0].images).array)
    assert has_image is True
    array, has_image = mean_lookup(samples[-1])
    assert has_image is False and not array.any()

    big = max(samples, key=lambda s: len(s.images))
    first = [visual_lookup(cache, "one", seed=1)(s)[0] for s in samples]
    again = [visual_lookup(cache, "one", seed=1)(s)[0] for s in reversed(samples)][::-1]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    chosen = {visual_lookup(cache, "one", seed=s)(big)[0].tobytes() for s in range(10)}
    assert len(chosen) > 1


def test_other_weights_or_crop_are_refused_in_the_same_folder(vgg_cache, cmner_images: Path, image_names: list[str]) -> None:
    for options in ({"weights": "random", "seed": 1}, {"weights": "random", "crop": "faithful"}, {"weights": "random", "dtype": "float32"}):
        with pytest.raises(ConfigError, match="never mixed"):
            extract_features(cmner_images, image_names[:1], vgg_cache[0], backbone="vgg16", **options)


def test_default_weights_unreachable_fail_fast_naming_alternatives(tmp_path: Path, cmner_images: Path, image_names: list[str]) -> None:
    from xlingual.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError) as info:
        extract_features(cmner_images, image_names[:1], tmp_path / "c", backbone="resnet152", weights="default")
    message = str(info.value)
    assert "\n" not in message and "--weights PATH" in message and "--weights random" in message
    # the empty cache left behind does not block a later run with other weights
    assert not any(SHARD_PATTERN.match(p.name) for p in (tmp_path / "c").iterdir())


def test_weights_from_a_local_state_dict(tmp_path: Path, cmner_images: Path, image_names: list[str], monkeypatch) -> None:
    """A user's .pth goes through the same path as torchvision's file; a tiny ResNet keeps the file small."""
    from dataclasses import replace

    from torchvision.models.resnet import BasicBlock, ResNet

    from xlingual.errors import ModelNotFoundError

    def tiny() -> torch.nn.Module:
        return ResNet(BasicBlock, [1, 1, 1, 1], num_classes=3)

    monkeypatch.setitem(BACKBONES, "resnet152", replace(BACKBONES["resnet152"], channels=512, build_full=tiny))
    torch.manual_seed(3)
    trained = tiny().eval()
    state_path = tmp_path / "tiny.pth"
    torch.save(trained.state_dict(), state_path)
    report = extract_features(cmner_images, image_names[:2], tmp_path / "c", backbone="resnet152", weights=str(state_path), batch_size=2)
    assert report.extracted == 2
    cache = FeatureCache.open(tmp_path / "c")
    assert cache.weights == str(state_path) and cache.producer.weights_id.startswith("file:sha256=")
    body = torch.nn.Sequential(*list(trained.children())[:-2])
    with torch.no_grad():
        grid = body(torch.from_numpy(preprocess_image(cmner_images / image_names[1], "resnet152"))[None])[0]
    np.testing.assert_allclose(cache.get(image_names[1]), grid.flatten(1).T.numpy(), rtol=2e-2, atol=2e-3)

    torch.save({"not": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ModelNotFoundError, match="not a torchvision resnet152 state dict"):
        load_backbone("resnet152", str(tmp_path / "bad.pth"))
    (tmp_path / "text.pth").write_text("hello")
    with pytest.raises(ModelNotFoundError, match="cannot read"):
        load_backbone("resnet152", str(tmp_path / "text.pth"))


def test_resume_after_interruption_keeps_finished_batches(tmp_path: Path, cmner_images: Path, image_names: list[str], vgg_cache, monkeypatch) -> None:
    names = image_names[:4]
    cache_dir = tmp_path / "resume"
    real_regions_of = interrupt_at_batch(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        extract_features(cmner_images, names, cache_dir, backbone="vgg16", weights="random", batch_size=2, shard_size=2)
    assert len(FeatureCache.open(cache_dir)) == 2
    # a hard kill in the middle of a shard write leaves only a temporary file, which is ignored
    (cache_dir / ".shard-000099.safetensors.abc.tmp").write_bytes(b"half a shard")
    monkeypatch.setattr(extract_module, "regions_of", real_regions_of)
    counter = ForwardCounter()
    monkeypatch.setattr(extract_module, "load_backbone", counter)
    report = extract_features(cmner_images, names, cache_dir, backbone="vgg16", weights="random", batch_size=2, shard_size=2)
    assert (report.cached, report.extracted, counter.images) == (2, 2, 2)
    resumed, uninterrupted = FeatureCache.open(cache_dir), FeatureCache.open(vgg_cache[0])
    assert len(resumed) == 4
    for name in names:  # same seed, same weights: resuming changes nothing
        np.testing.assert_allclose(resumed.get(name), uninterrupted.get(name), rtol=1e-2, atol=1e-3)


def test_a_replaced_image_is_extracted_again(tmp_path: Path, cmner_images: Path, image_names: list[str]) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    name = image_names[0]
    shutil.copy(cmner_images / name, folder / name)
    extract_features(folder, [name], tmp_path / "c", backbone="vgg16", weights="random", batch_size=1)
    before = FeatureCache.open(tmp_path / "c").get(name)
    os.utime(folder / name, ns=(1, 1))  # same bytes, other time (e.g. a copied folder): hashed, still cached
    report = extract_features(folder, [name], tmp_path / "c", backbone="vgg16", weights="random", batch_size=1)
    assert report.cached == 1 and report.extracted == 0
    shutil.copy(cmner_images / image_names[-1], folder / name)
    report = extract_features(folder, [name], tmp_path / "c", backbone="vgg16", weights="random", batch_size=1)
    assert report.extracted == 1 and report.cached == 0
    after = FeatureCache.open(tmp_path / "c").get(name)
    assert not np.allclose(before, after)


def test_resnet152_grid_is_49_by_2048(tmp_path: Path, cmner_images: Path, image_names: list[str]) -> None:
    report = extract_features(cmner_images, image_names[:1], tmp_path / "r", backbone="resnet152", weights="random", batch_size=2)
    assert report.extracted == 1 and report.forward_batches == 1 and report.failed == {}
    cache = FeatureCache.open(tmp_path / "r")
    assert cache.backbone == "resnet152" and cache.region_shape == (49, 2048)
    feature = cache.get(image_names[0])
    assert feature.shape == (49, 2048) and np.isfinite(feature).all() and feature.std() > 0
    post = cache.post_feature(image_names[:3])  # only the cached one counts
    assert post.n_images == 1 and post.array.shape == (49, 2048)


def test_dataset_files_name_each_posts_images(generated_data, vgg_cache, cmner_images: Path) -> None:
    train = generated_data.root / "cmner" / "text" / "train.txt"
    report = extract_for_datasets(cmner_images, [train], vgg_cache[0], backbone="vgg16", weights="random")
    assert report.named == 25 and report.cached == 25 and report.extracted == 0
    assert report.samples > 6 and report.samples_without_image == report.samples - 6


def test_bad_options_are_config_errors(tmp_path: Path, cmner_images: Path) -> None:
    with pytest.raises(ConfigError, match="unknown backbone"):
        extract_features(cmner_images, [], tmp_path / "c", backbone="vgg19", weights="random")
    with pytest.raises(ConfigError, match="--crop"):
        extract_features(cmner_images, [], tmp_path / "c", weights="random", crop="random")
    with pytest.raises(ConfigError, match="no such file"):
        extract_features(cmner_images, [], tmp_path / "c", weights="missing.pth")
    with pytest.raises(ImageError, match="does not exist"):
        extract_features(tmp_path / "nowhere", [], tmp_path / "c", weights="random")
    with pytest.raises(ImageError, match="not a feature cache"):
        FeatureCache.open(tmp_path)


def test_a_complete_default_weights_cache_needs_no_weights_file(tmp_path: Path, cmner_images: Path, image_names: list[str]) -> None:
    """A cache moved to an offline machine is used as is; the weights are only needed for missing images."""
    from xlingual.errors import ModelNotFoundError
    from xlingual.features.cache import CacheWriter, file_fingerprint
    from xlingual.features.extract import _producer

    writer = CacheWriter.open(tmp_path / "c", _producer("vgg16", "default", "clean", 0, "float16"), "default")
    for name in image_names[:2]:
        writer.add(name, np.ones((49, 512), dtype=np.float32), file_fingerprint(cmner_images / name))
    writer.flush()
    report = extract_features(cmner_images, image_names[:2], tmp_path / "c", backbone="vgg16", weights="default")
    assert (report.cached, report.extracted, report.failed) == (2, 0, {})
    with pytest.raises(ModelNotFoundError, match="--weights random"):
        extract_features(cmner_images, image_names[:3], tmp_path / "c", backbone="vgg16", weights="default")


# ---------------------------------------------------------------- real-data layer


def test_real_cmner_images_are_extracted_for_the_posts_of_the_real_train_file(shared_data: Path, tmp_path: Path, monkeypatch) -> None:
    """The 25 real JPEGs decode and go through a CNN (a tiny ResNet: the big ones are checked above); the real train file names all of them, on six posts."""
    from dataclasses import replace

    from torchvision.models.resnet import BasicBlock, ResNet

    monkeypatch.setitem(BACKBONES, "resnet152", replace(BACKBONES["resnet152"], channels=512, build_full=lambda: ResNet(BasicBlock, [1, 1, 1, 1])))
    images = shared_data / "cmner" / "images"
    assert len(list(images.glob("*.jpg"))) == 25
    train = shared_data / "cmner" / "text" / "train.txt"
    report = extract_for_datasets(images, [train], tmp_path / "c", backbone="resnet152", weights="random", batch_size=25)
    assert (report.named, report.extracted, report.cached, report.failed) == (25, 25, 0, {})
    assert report.samples > 6 and report.samples_without_image == report.samples - 6
    cache = FeatureCache.open(tmp_path / "c")
    features = [cache.get(p.name) for p in sorted(images.glob("*.jpg"))]
    assert all(f.shape == (49, 512) and np.isfinite(f).all() and f.std() > 0 for f in features)


@pytest.mark.parametrize("damage", ["producer", "weights", "region_shape", "not_utf8"])
def test_a_damaged_cache_description_is_one_line_naming_the_file(vgg_cache, tmp_path, damage) -> None:
    import json

    from xlingual.features.cache import META_FILE

    cache_dir = tmp_path / "copy"
    shutil.copytree(vgg_cache[0], cache_dir)
    meta_path = cache_dir / META_FILE
    if damage == "not_utf8":
        meta_path.write_bytes(b"\x80\x04garbled")
    else:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if damage == "region_shape":
            del meta["producer"]["region_shape"]
        else:
            del meta[damage]
        meta_path.write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(ImageError) as caught:
        FeatureCache.open(cache_dir)
    message = str(caught.value)
    assert message.startswith(f"{meta_path}: ") and "\n" not in message, message
    if damage != "not_utf8":
        assert damage in message


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_cache_with_non_finite_features_is_refused_naming_the_shard(vgg_cache, tmp_path: Path, bad: float) -> None:
    """NaN features would train NaN losses to the end: reading one is an error that names the file to delete."""
    from safetensors import safe_open
    from safetensors.numpy import save_file

    folder = tmp_path / "cache"
    shutil.copytree(vgg_cache[0], folder)
    shard = next(p for p in sorted(folder.iterdir()) if SHARD_PATTERN.match(p.name))
    with safe_open(str(shard), framework="np") as handle:
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        metadata = handle.metadata()
    poisoned = sorted(tensors)[0]
    tensors[poisoned] = tensors[poisoned].copy()
    tensors[poisoned][3, 5] = bad
    save_file(tensors, str(shard), metadata=metadata)
    cache = FeatureCache.open(folder)
    healthy = sorted(tensors)[1]
    assert np.isfinite(cache.get(healthy)).all()
    with pytest.raises(ImageError, match=f"^{shard}: the features of {poisoned} hold NaN or infinite values"):
        cache.get(poisoned)
    with pytest.raises(ImageError, match=str(shard)):
        cache.post_feature([healthy, poisoned])


def test_opening_a_writer_reads_the_cache_description_once_and_sees_what_a_reader_sees(vgg_cache, tmp_path: Path, monkeypatch) -> None:
    """A new cache is described without being read back; an existing one is read once, as FeatureCache.open reads it;
    an empty cache re-described for other options is read once and then holds the new description."""
    from xlingual.features import cache as cache_module
    from xlingual.features.cache import CacheProducer, CacheWriter

    reads: list[Path] = []
    read_meta = cache_module._read_meta
    monkeypatch.setattr(cache_module, "_read_meta", lambda folder: reads.append(folder) or read_meta(folder))

    def described(cache: FeatureCache) -> tuple:
        return cache.producer, cache.weights, len(cache), sorted(cache._location)

    stored = FeatureCache.open(vgg_cache[0])
    reads.clear()
    writer = CacheWriter.open(vgg_cache[0], stored.producer, stored.weights)
    assert len(reads) == 1 and described(writer.cache) == described(stored)

    producer = CacheProducer("vgg16", (49, 512), "random:seed=1", "clean", None, "float16")
    reads.clear()
    fresh = CacheWriter.open(tmp_path / "new", producer, "random")
    assert reads == [] and described(fresh.cache) == described(FeatureCache.open(tmp_path / "new"))

    other = CacheProducer("vgg16", (49, 512), "random:seed=2", "clean", None, "float32")
    reads.clear()
    redescribed = CacheWriter.open(tmp_path / "new", other, "random")
    assert len(reads) == 1 and redescribed.cache.producer == other
    assert described(redescribed.cache) == described(FeatureCache.open(tmp_path / "new"))
