"""2M-NER end to end through ``xl train``: the four CMNER settings and ``joint``, with both feature caches, on tiny models;
MMNERD, its own dataset, as a target and as one of a joint run's three datasets.

The data directory is the packaged sample with drawn images, generated MMNERD
splits (Twitter format, as the real files) with drawn images, its Twitter2015
translated into Chinese by the sample glossary plug-in, a CLIP ViT cache from
a tiny CLIP vision model (5 tokens x 32) and a ResNet-152 cache with random
weights (the real 49 x 2048 grid), and a tiny BERT as the encoder: the same
commands and loading paths as a real run, at toy sizes.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from xlingual.cli import app
from xlingual.data.datasets import load_split
from xlingual.demo import write_synthetic_images
from xlingual.features import pooled_lookup, visual_lookup
from xlingual.features.cache import FeatureCache
from xlingual.features.extract import extract_for_data_dir
from xlingual.models import load_model
from xlingual.models.mner2 import Mner2Model, paired_lookup
from xlingual.projection.corpus import ProjectionSettings
from xlingual.stage_inputs import translate_source_dataset
from xlingual.testing.synthetic import generated_tweets, write_images
from xlingual.data.formats import write_samples
from xlingual.testing.tiny_bert import build_tiny_bert
from xlingual.testing.tiny_clip import build_tiny_clip
from xlingual.translate import load_translator
from xlingual.workspace import DataDir, RunFolder

GLOSSARY = "glossary-en-zh"
TINY_2MNER = ["model.vit_tokens=5", "model.visual_dim=32", "model.max_length=64", "epochs=1", "batch_size=8", "eval_batch_size=16", "lr=1e-3"]


def write_generated_mmnerd(data_dir: Path) -> None:
    """Generated English posts as MMNERD's splits, each post with a drawn ``<id>.jpg`` (MMNERD's image naming)."""
    layout = DataDir(data_dir)
    for offset, (split, n) in enumerate((("train", 16), ("dev", 6), ("test", 6))):
        posts = generated_tweets(n, seed=40 + offset, id_start=900000 + 1000 * offset)
        write_samples(layout.split_file("mmnerd", split), posts, "twitter")
        write_images(layout.images_dir("mmnerd"), [f"{post.id}.jpg" for post in posts], seed=offset)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, sample_data_dir) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("mner2")
    data_dir = root / "data"
    shutil.copytree(sample_data_dir, data_dir)
    translator = load_translator("en", "zh", plugin="xlingual.translate.glossary:sample_en_zh")
    translate_source_dataset(data_dir, "twitter2015", translator, ProjectionSettings("en", "zh", model_name=GLOSSARY))
    write_synthetic_images(data_dir, per_dataset=1000)  # every train and test post has a picture
    write_generated_mmnerd(data_dir)
    clip = build_tiny_clip(root / "tiny-clip")
    extract_for_data_dir(data_dir, "clip-vit-b32", weights=str(clip), device="cpu", batch_size=8)
    extract_for_data_dir(data_dir, "resnet152", weights="random", device="cpu", batch_size=8)
    tokens = {t for name in ("cmner", "twitter2015", "mmnerd") for split in ("train", "dev", "test")
              for s in load_split(data_dir, name, split, with_images=False) for t in s.tokens}
    tokens |= {t for s in load_split(data_dir, "cmner", "train", with_images=False) for t in s.tokens}
    translated = DataDir(data_dir).translation("twitter2015", "en", "zh", GLOSSARY)
    tokens |= {t for path in translated.glob("*.jsonl") if "failures" not in path.name for line in path.read_text(encoding="utf-8").splitlines()
               for t in json.loads(line)["tokens"]}
    encoder = build_tiny_bert(root / "tiny-bert", sorted(tokens))
    return data_dir, encoder


def _train(setting: str, data_dir: Path, encoder: Path, out: Path, datasets: tuple[str, ...] = ("--direction", "en-zh"),
           extra: tuple[str, ...] = (), as_json: bool = True):
    args = ["train", "--config", setting, "--model", "2mner", *datasets, "--output", str(out), *(["--json"] if as_json else [])]
    for item in (f"data.data_dir={data_dir}", f"data.translation_model={GLOSSARY}", f"model.encoder={encoder}", *TINY_2MNER, *extra):
        args += ["--set", item]
    return CliRunner().invoke(app, args, env={"COLUMNS": "200"})


@pytest.mark.parametrize("setting", ["joint", "tgt_only", "src", "tgt", "src_tgt"])
def test_2mner_trains_end_to_end_in_every_setting(setting, setup, tmp_path):
    data_dir, encoder = setup
    out = tmp_path / setting
    result = _train(setting, data_dir, encoder, out)
    assert result.exit_code == 0, result.output
    metrics = json.loads(RunFolder(out).metrics.read_text(encoding="utf-8"))
    assert metrics["model_type"] == "2mner" and metrics["setting"] == setting
    assert list(metrics["stages"]) == (["target"] if setting in ("joint", "tgt_only") else ["pretrain", "target"])
    assert set(metrics["tests"]) == {"cmner", "twitter2015"}
    saved = json.loads((RunFolder(out).model / "config.json").read_text(encoding="utf-8"))
    assert saved["model_type"] == "2mner" and saved["config"]["use_image"] is True
    for split in ("test", "test.twitter2015"):
        assert RunFolder(out).prediction(split, ".jsonl").is_file()


def test_a_trained_2mner_predicts_with_both_caches_and_refuses_one(setup, tmp_path):
    data_dir, encoder = setup
    out = tmp_path / "run"
    assert _train("tgt_only", data_dir, encoder, out).exit_code == 0
    layout = DataDir(data_dir)
    test_file = layout.split_file("cmner", "test")
    both = ["predict", "--model", str(RunFolder(out).model), "--input", str(test_file), "--device", "cpu",
            "--features", str(layout.features("clip-vit-b32")), "--features", str(layout.features("resnet152"))]
    result = CliRunner().invoke(app, [*both, "--output", str(tmp_path / "pred.txt")])
    assert result.exit_code == 0, result.output
    predicted = load_split(data_dir, "cmner", "test", with_images=False)
    assert len((tmp_path / "pred.txt").read_text(encoding="utf-8").split("WID:")) - 1 == len(predicted)
    one = CliRunner().invoke(app, both[:-2] + ["--output", str(tmp_path / "pred1.txt")])
    assert one.exit_code == 2 and "clip-vit-b32 and a resnet152" in one.output
    scored = CliRunner().invoke(app, ["evaluate", "--model", str(RunFolder(out).model), "--data", str(test_file), "--json",
                                      "--features", str(layout.features("clip-vit-b32")), "--features", str(layout.features("resnet152"))])
    assert scored.exit_code == 0, scored.output
    test_scores = json.loads(RunFolder(out).metrics.read_text(encoding="utf-8"))["test"]
    assert json.loads(scored.output)["data"]["conlleval"]["f1"] == pytest.approx(test_scores["conlleval"]["f1"])


# -- MMNERD ------------------------------------------------------------------------------

def _metrics(out: Path) -> dict:
    return json.loads(RunFolder(out).metrics.read_text(encoding="utf-8"))


def test_2mner_trains_on_mmnerd_alone(setup, tmp_path):
    data_dir, encoder = setup
    out = tmp_path / "mmnerd"
    result = _train("tgt_only", data_dir, encoder, out, ("--target", "mmnerd"))
    assert result.exit_code == 0, result.output
    metrics = _metrics(out)
    assert metrics["target_dataset"] == "mmnerd" and metrics["source_datasets"] == [] and set(metrics["tests"]) == {"mmnerd"}
    assert metrics["stages"]["target"]["data"] == "mmnerd (en)"
    assert metrics["test_samples"] == len(load_split(data_dir, "mmnerd", "test", with_images=False))


def test_2mner_joint_on_mmnerd_twitter2015_and_cmner_reports_three_test_sets(setup, tmp_path):
    data_dir, encoder = setup
    out = tmp_path / "joint3"
    result = _train("joint", data_dir, encoder, out, ("--source", "mmnerd", "--source", "twitter2015", "--target", "cmner"), as_json=False)
    assert result.exit_code == 0, result.output
    metrics = _metrics(out)
    sizes = {name: {split: len(load_split(data_dir, name, split, with_images=False)) for split in ("train", "dev", "test")}
             for name in ("cmner", "mmnerd", "twitter2015")}
    assert set(metrics["tests"]) == set(sizes) and metrics["stages"]["target"]["train_samples"] == sum(s["train"] for s in sizes.values())
    for name in ("mmnerd", "twitter2015"):
        assert len(RunFolder(out).prediction(f"test.{name}", ".jsonl").read_text(encoding="utf-8").splitlines()) == sizes[name]["test"]
        assert f"test {name}" in result.output  # the CLI prints all three test sets
    assert out.name in result.output and "2mner-mmnerd+twitter2015-cmner-joint" in RunFolder(out).config.read_text(encoding="utf-8")


def test_2mner_joint_on_the_real_mmnerd_text(setup, shared_data, tmp_path):
    """The real MMNERD English splits (first posts of each), with drawn images, in a three-dataset joint run."""
    data_dir, encoder = setup
    real = tmp_path / "data"
    shutil.copytree(data_dir, real, ignore=shutil.ignore_patterns("mmnerd"))
    layout = DataDir(real)
    for split in ("train", "dev", "test"):
        target = layout.split_file("mmnerd", split)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(DataDir(shared_data).split_file("mmnerd", split))
    limit = 12  # posts per split: ResNet-152 features of a few dozen drawn images cost most of the test
    first = {split: load_split(real, "mmnerd", split, with_images=False)[:limit] for split in ("train", "dev", "test")}
    write_images(layout.images_dir("mmnerd"), sorted({f"{s.id}.jpg" for posts in first.values() for s in posts}), seed=7)
    for backbone, weights in (("clip-vit-b32", str(data_dir.parent / "tiny-clip")), ("resnet152", "random")):  # added to the caches
        extract_for_data_dir(real, backbone, datasets=["mmnerd"], weights=weights, device="cpu", batch_size=8)
    out = tmp_path / "run"
    result = _train("joint", real, encoder, out, ("--source", "mmnerd", "--source", "twitter2015", "--target", "cmner"),
                    extra=(f"data.max_samples={limit}",))
    assert result.exit_code == 0, result.output
    metrics = _metrics(out)
    assert set(metrics["tests"]) == {"cmner", "mmnerd", "twitter2015"}
    predicted = [json.loads(line) for line in RunFolder(out).prediction("test.mmnerd", ".jsonl").read_text(encoding="utf-8").splitlines()]
    assert [p["id"] for p in predicted] == [s.id for s in first["test"]]  # the real posts, scored against their own labels
    assert [p["meta"]["gold"] for p in predicted] == [s.labels for s in load_split(real, "mmnerd", "test", bio="keep")[:limit]]


def test_2mner_cli_training_lowers_the_loss_it_reports_and_the_one_its_model_computes(setup, tmp_path):
    """What the model computed through ``xl train``, not only exit codes: the epochs' training loss falls, and the
    saved model's CRF loss on the training posts (recomputed here from the model folder and both caches) is well
    below that of the same architecture at its initialisation."""
    data_dir, encoder = setup
    out = tmp_path / "run"
    result = _train("tgt_only", data_dir, encoder, out, extra=("epochs=8", "lr=3e-3"))
    assert result.exit_code == 0, result.output
    losses = [epoch["train_loss"] for epoch in _metrics(out)["stages"]["target"]["history"]]
    assert len(losses) == 8 and all(math.isfinite(x) for x in losses)
    assert np.mean(losses[-2:]) < 0.7 * losses[0], losses
    layout = DataDir(data_dir)
    visual = paired_lookup(visual_lookup(FeatureCache.open(layout.features("clip-vit-b32"))),
                           pooled_lookup(FeatureCache.open(layout.features("resnet152"))))
    posts = load_split(data_dir, "cmner", "train")
    trained = load_model(RunFolder(out).model).eval()
    torch.manual_seed(0)
    initial = Mner2Model.build({**trained.config.to_dict(), "encoder": str(encoder)}, posts).eval()
    assert initial.label_names == trained.label_names

    def crf_loss(model: Mner2Model) -> float:
        with torch.no_grad():
            return float(model(model.collate(model.encode(posts, visual)))["crf_loss"])

    assert crf_loss(trained) < 0.7 * crf_loss(initial), (crf_loss(trained), crf_loss(initial))
