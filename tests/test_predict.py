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



@pytest.mark.parametrize("named_format", [[], ["--input-format", "cmner"]], ids=["detected", "named"])
def test_predict_looks_up_which_dataset_a_file_is_once(tmp_path, model_dir, posts, data_root, cmner_cache, seen_images, monkeypatch,
                                                       named_format):
    """A split of a data directory: read by its dataset's rule and its images found in the dataset's folder, from one lookup."""
    from xlingual.stage_inputs import dataset_file
    from xlingual.workspace import DataDir

    _, cmner = posts
    layout = tmp_path / "data" / "cmner"
    write_samples(layout / "text" / "test.txt", cmner, "cmner")
    (layout / "images").symlink_to(data_root / "cmner" / "images", target_is_directory=True)
    source = layout / "text" / "test.txt"
    looks = []
    real = DataDir.dataset_of_file
    monkeypatch.setattr(DataDir, "dataset_of_file", lambda self, path: looks.append(path) or real(self, path))
    assert dataset_file(source) is not None
    one_lookup = len(looks)  # the data directories above the file that one lookup asks
    looks.clear()
    result = run("predict", "-m", str(model_dir), "-i", str(source), *named_format, "--features", str(cmner_cache), "-o", str(tmp_path / "out.txt"))
    assert result.exit_code == 0, result.output
    assert seen_images == {s.id: True for s in cmner}, "the images were found in the dataset's folder (no --image-dir)"
    assert [s.id for s in read_samples(tmp_path / "out.txt", "cmner", bio="keep")] == [s.id for s in cmner]
    assert len(looks) == one_lookup, f"{len(looks) // one_lookup} lookups of the file's dataset"


# -- new posts: raw text and token files, a run folder as the model ------------------------------------------------------

def make_run(root, model_dir, direction: str):
    """A run folder as 'xl train' leaves it, as far as xl predict reads it: model/ and the config.yaml naming the target dataset."""
    import shutil

    from xlingual.train.config import load_config, save_config

    run_dir = root / f"umt-{direction}"
    shutil.copytree(model_dir, run_dir / "model")
    save_config(load_config("tgt_only", "umt", direction), run_dir / "config.yaml")
    return run_dir


def unlabelled(samples, lang: str):
    from xlingual.data.sample import Sample

    return [Sample(s.id, list(s.tokens), ["O"] * len(s.tokens), lang=lang) for s in samples]


@pytest.mark.parametrize("direction, lang, fmt", [("zh-en", "en", "twitter"), ("en-zh", "zh", "cmner")])
def test_predict_run_labels_raw_posts_in_the_runs_language(tmp_path, model_dir, posts, direction, lang, fmt):
    """Raw text, one post per line (blank lines skipped), tokenised as the run's target dataset is: Twitter-style English, Chinese by character."""
    import json

    from xlingual.data.sample import Sample
    from xlingual.projection.tokenization import target_tokenizer

    twitter, cmner = posts
    lines = [" ".join(s.tokens) for s in twitter[:5]] if lang == "en" else ["".join(s.tokens) for s in cmner]
    raw = tmp_path / "raw.txt"
    raw.write_text(lines[0] + "\n\n" + "\n".join(lines[1:]) + "\n", encoding="utf-8")
    run_dir = make_run(tmp_path, model_dir, direction)
    out, jsonl = tmp_path / "out.txt", tmp_path / "out.jsonl"
    result = run("predict", str(run_dir), "--input", str(raw), "--output", str(out), "--jsonl", str(jsonl))
    assert result.exit_code == 0, result.output
    assert f"(raw, {lang})" in result.output
    tokenize = target_tokenizer(lang)
    expected = [Sample(f"line-{n}", tokenize(line), ["O"] * len(tokenize(line)), lang=lang)
                for n, line in zip([1, *range(3, len(lines) + 2)], lines)]
    if lang == "zh":
        assert [s.tokens for s in expected] == [[t for t in s.tokens] for s in cmner]  # CMNER's own tokens: one character each
    predicted = read_samples(out, fmt, bio="keep")
    assert [(s.id, s.tokens) for s in predicted] == [(s.id, s.tokens) for s in expected]
    assert [s.labels for s in predicted] == load_model(model_dir).predict(expected)
    records = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    assert [(r["id"], r["tokens"], r["labels"], r["lang"]) for r in records] == [(s.id, s.tokens, s.labels, lang) for s in predicted]
    assert [r["meta"]["text"] for r in records] == lines
    joiner = "" if lang == "zh" else " "
    for record, sample in zip(records, predicted):
        assert [(e["type"], e["start"], e["end"]) for e in record["meta"]["entities"]] == [(e.type, e.start, e.end) for e in sample.entities()]
        assert [e["text"] for e in record["meta"]["entities"]] == [joiner.join(sample.tokens[e.start:e.end]) for e in sample.entities()]


def test_predict_token_file_writes_conll_and_finds_images_by_post_id(tmp_path, model_dir, posts, seen_images):
    """One token per line, blank line between posts, no labels: detected, labelled, written as CoNLL; images named post-N."""
    from xlingual.features.cache import CacheProducer, CacheWriter

    _, cmner = posts
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("\n\n".join("\n".join(s.tokens) for s in cmner) + "\n", encoding="utf-8")
    images = tmp_path / "images"
    images.mkdir()
    producer = CacheProducer(backbone="resnet152", region_shape=(REGIONS, CHANNELS), weights_id="random-test", crop="clean", crop_seed=None, dtype="float32")
    writer = CacheWriter.open(tmp_path / "cache", producer, "random")
    for n in (1, 3):  # posts 2 and 4 have no picture
        (images / f"post-{n}.jpg").write_bytes(b"")
        writer.add(f"post-{n}.jpg", np.full((REGIONS, CHANNELS), n, dtype=np.float32), f"test:post-{n}")
    writer.flush()
    run_dir = make_run(tmp_path, model_dir, "en-zh")
    result = run("predict", str(run_dir), "-i", str(tokens), "--features", str(tmp_path / "cache"), "--image-dir", str(images), "-o", str(tmp_path / "out.conll"))
    assert result.exit_code == 0, result.output
    assert seen_images == {"post-1": True, "post-2": False, "post-3": True, "post-4": False}
    predicted = read_samples(tmp_path / "out.conll", "conll", bio="keep")
    assert [s.tokens for s in predicted] == [s.tokens for s in cmner]
    assert not (tmp_path / "out.conll").read_text(encoding="utf-8").startswith("WID:")


def test_bare_model_folder_needs_lang_for_raw_text_and_takes_it(tmp_path, model_dir):
    raw = tmp_path / "raw.txt"
    raw.write_text("Obama visits Paris today\n", encoding="utf-8")
    refused = run("predict", str(model_dir), "--input", str(raw))
    assert refused.exit_code == 2 and refused.output.count("\n") == 1 and "--lang" in refused.output
    labelled = run("predict", str(model_dir), "--input", str(raw), "--lang", "en")
    assert labelled.exit_code == 0, labelled.output
    assert labelled.stdout.splitlines()[:3] == ["IMGID:line-1", labelled.stdout.splitlines()[1], labelled.stdout.splitlines()[2]]
    assert [line.split("\t")[0] for line in labelled.stdout.splitlines()[1:]] == ["Obama", "visits", "Paris", "today"]


@pytest.mark.parametrize(
    "case, message",
    [
        ("empty run folder", "not a model folder"),
        ("run without model", "without a saved model"),
        ("run with broken model", "holds no config.json"),
        ("no model named", "name the model"),
        ("two models named", "two models named"),
        ("a language without tokeniser", "--tokenizer"),
        ("not a language", "--lang xx"),
        ("ambiguous input", "--input-format"),
        ("unknown input format", "--input-format"),
    ],
)
def test_new_post_errors_are_one_line_with_exit_2(tmp_path, model_dir, case, message):
    raw = tmp_path / "raw.txt"
    raw.write_text("Obama visits Paris\n", encoding="utf-8")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    args = ["predict", str(run_dir), "--input", str(raw)]
    if case == "run without model":
        (run_dir / "config.yaml").write_text("model_type: umt\n", encoding="utf-8")
    elif case == "run with broken model":
        (run_dir / "model").mkdir()
    elif case == "no model named":
        args = ["predict", "--input", str(raw)]
    elif case == "two models named":
        args += ["--model", str(model_dir)]
    elif case in ("a language without tokeniser", "not a language", "ambiguous input", "unknown input format"):
        args[1] = str(model_dir)
        args += {"a language without tokeniser": ["--lang", "ja"], "not a language": ["--lang", "xx"],
                 "ambiguous input": ["--lang", "en"], "unknown input format": ["--input-format", "words"]}[case]
        if case == "ambiguous input":
            raw.write_text("Obama\nvisits\nParis\n", encoding="utf-8")
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("error:") and message in result.output, result.output
    if case == "run with broken model":
        assert str(run_dir / "model") in result.output


def test_input_format_settles_what_detection_refuses(tmp_path, model_dir, posts):
    """One post's tokens without a blank line could be one-word posts: refused, then labelled as --input-format says."""
    twitter, _ = posts
    tokens = tmp_path / "one-post.txt"
    tokens.write_text("\n".join(twitter[0].tokens) + "\n", encoding="utf-8")
    assert len(twitter[0].tokens) > 1 and not any(" " in t for t in twitter[0].tokens)
    base = ["predict", str(model_dir), "--input", str(tokens), "--lang", "en"]
    assert run(*base).exit_code == 2
    as_tokens = run(*base, "--input-format", "tokens")
    as_raw = run(*base, "--input-format", "raw")
    assert as_tokens.exit_code == 0 and as_raw.exit_code == 0, as_tokens.output + as_raw.output
    one_post = read_samples_text(tmp_path, as_tokens.stdout, "conll")
    assert [s.tokens for s in one_post] == [twitter[0].tokens]
    assert len(read_samples_text(tmp_path, as_raw.stdout, "twitter")) == len(twitter[0].tokens)  # a post per line


def read_samples_text(folder, text: str, fmt: str):
    path = folder / f"read.{fmt}"
    path.write_text(text, encoding="utf-8")
    return read_samples(path, fmt, bio="keep")


def test_predict_reads_the_runs_config_once(tmp_path, model_dir, posts, monkeypatch):
    """The run's config.yaml says both the posts' language and the image seed: parsed once per xl predict, not per question."""
    import xlingual.train.config as train_config
    from xlingual.workspace import RunFolder

    twitter, _ = posts
    raw = tmp_path / "raw.txt"
    raw.write_text(" ".join(twitter[0].tokens) + "\n", encoding="utf-8")
    run_dir = make_run(tmp_path, model_dir, "zh-en")
    parsed: list[str] = []
    real_read = train_config.read_yaml
    monkeypatch.setattr(train_config, "read_yaml", lambda path: parsed.append(str(path)) or real_read(path))
    result = run("predict", str(run_dir), "--input", str(raw), "--output", str(tmp_path / "out.txt"))
    assert result.exit_code == 0, result.output
    assert parsed == [str(RunFolder(run_dir).config)]
