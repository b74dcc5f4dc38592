"""``xl predict`` end to end: a saved tiny UMT labels Twitter and CMNER files in their own formats."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner
from umt_helpers import CHANNELS, REGIONS, build_umt, random_visual, single_threaded, tiny_encoder, train_steps

from xlingual.cli import app
from xlingual.data.datasets import load_split
from xlingual.data.formats import read_samples, write_samples
from xlingual.models import load_model

_one_thread = pytest.fixture(scope="module", autouse=True)(single_threaded)


@pytest.fixture(scope="module", params=["generated", pytest.param("real", marks=pytest.mark.real_data)])
def data_root(request):
    """Generated posts and images everywhere; the same checks again on the real files where they are."""
    if request.param == "real":
        return request.getfixturevalue("shared_data")
    return request.getfixturevalue("generated_data").root


@pytest.fixture(scope="module")
def posts(data_root):
    twitter = read_samples(data_root / "twitter2015" / "test.txt")[:12]
    cmner = [s for split in ("train", "dev", "test") for s in load_split(data_root, "cmner", split) if s.images][:4]
    assert len(cmner) == 4 and all(s.images for s in cmner), "the CMNER images belong to too few posts"
    return twitter, cmner


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, posts):
    twitter, cmner = posts
    root = tmp_path_factory.mktemp("predict")
    umt = build_umt(tiny_encoder(root / "bert", twitter + cmner), max_length=64)
    train_steps(umt, umt.encode(twitter, random_visual()), steps=3, lr=5e-3, batch_size=12)
    umt.save_pretrained(root / "model")
    return root / "model"


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_predict_twitter_file_writes_twitter_format(tmp_path, model_dir, posts):
    twitter, _ = posts
    source = tmp_path / "in.txt"
    write_samples(source, twitter, "twitter")
    result = run("predict", "--model", str(model_dir), "--input", str(source), "--output", str(tmp_path / "out.txt"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out.txt").read_text(encoding="utf-8").startswith("IMGID:")
    predicted = read_samples(tmp_path / "out.txt", "twitter", bio="keep")
    assert [(s.id, s.tokens) for s in predicted] == [(s.id, s.tokens) for s in twitter]
    expected = load_model(model_dir).predict(twitter)
    assert [s.labels for s in predicted] == expected


def test_predict_cmner_with_feature_cache_to_stdout(tmp_path, model_dir, posts, data_root, cmner_cache):
    from xlingual.features import FeatureCache, visual_lookup

    _, cmner = posts
    source = tmp_path / "in.txt"
    write_samples(source, cmner, "cmner")
    images = data_root / "cmner" / "images"
    result = run("predict", "-m", str(model_dir), "-i", str(source), "--features", str(cmner_cache), "--image-dir", str(images), "--images", "one", "--seed", "3")
    assert result.exit_code == 0, result.output
    out = tmp_path / "out.txt"
    out.write_text(result.stdout, encoding="utf-8")
    predicted = read_samples(out, "cmner", bio="keep")
    lookup = visual_lookup(FeatureCache.open(cmner_cache), mode="one", seed=3)
    model = load_model(model_dir)
    assert [s.labels for s in predicted] == model.predict(cmner, lookup)
    # The features reach the model: without them the emissions differ.
    batch_with = model.collate(model.encode(cmner, lookup))
    batch_without = model.collate(model.encode(cmner))
    model.eval()
    assert not np.allclose(model.emissions(batch_with)["emissions"].detach(), model.emissions(batch_without)["emissions"].detach())


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--model", "{tmp}/missing"], "not a model folder"),
        (["--images", "some"], "'some' is not one of 'all', 'one'"),
        (["--features", "{tmp}"], "not a feature cache"),
    ],
)
def test_user_errors_are_one_line_with_exit_2(tmp_path, model_dir, posts, extra, message):
    source = tmp_path / "in.txt"
    write_samples(source, posts[0][:2], "twitter")
    args = ["predict", "--model", str(model_dir), "--input", str(source)] + [a.replace("{tmp}", str(tmp_path)) for a in extra]
    result = run(*args)
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("error:") and message in result.output


@pytest.fixture
def cmner_cache(tmp_path, posts):
    from xlingual.features.cache import CacheProducer, CacheWriter

    _, cmner = posts
    producer = CacheProducer(backbone="resnet152", region_shape=(REGIONS, CHANNELS), weights_id="random-test", crop="clean", crop_seed=None, dtype="float32")
    writer = CacheWriter.open(tmp_path / "cache", producer, "random")
    rng = np.random.default_rng(1)
    for name in sorted({name for s in cmner for name in s.images}):
        writer.add(name, rng.standard_normal((REGIONS, CHANNELS)).astype(np.float32), f"test:{name}")
    writer.flush()
    return tmp_path / "cache"


@pytest.fixture
def seen_images(monkeypatch):
    """Records, per post id, whether the model's visual lookup found an image for it."""
    import xlingual.features

    seen: dict[str, bool] = {}
    real = xlingual.features.visual_lookup

    def spy(*args, **kwargs):
        lookup = real(*args, **kwargs)

        def recorded(sample):
            array, has_image = lookup(sample)
            seen[sample.id] = bool(has_image)
            return array, has_image

        return recorded

    monkeypatch.setattr(xlingual.features, "visual_lookup", spy)
    return seen


def test_evaluate_with_features_uses_the_cmner_posts_images(tmp_path, model_dir, posts, data_root, cmner_cache, seen_images):
    """Regression: xl evaluate --model --features once scored CMNER posts text-only without a word."""
    import json

    _, cmner = posts
    layout = tmp_path / "data" / "cmner"
    write_samples(layout / "text" / "test.txt", cmner, "cmner")
    (layout / "images").symlink_to(data_root / "cmner" / "images", target_is_directory=True)
    elsewhere = tmp_path / "posts.txt"
    write_samples(elsewhere, cmner, "cmner")
    base = ["evaluate", "--model", str(model_dir), "--features", str(cmner_cache), "--json"]
    # outside the data-directory layout and without --image-dir: refused, as xl predict refuses it
    refused = run(*base, "--data", str(elsewhere))
    assert refused.exit_code == 2 and "--image-dir" in refused.output and not seen_images
    # with --image-dir, and found from the layout: every post's images reach the model
    for extra in (["--data", str(elsewhere), "--image-dir", str(data_root / "cmner" / "images")], ["--data", str(layout / "text" / "test.txt")]):
        seen_images.clear()
        result = run(*base, *extra)
        assert result.exit_code == 0, result.output
        assert seen_images == {s.id: True for s in cmner}
        scores = json.loads(result.stdout)["data"]
        assert scores["conlleval"]["gold"] == sum(len(s.entities()) for s in cmner)
