"""2M-NER end to end through ``xl train``: the four CMNER settings and ``joint``, with both feature caches, on tiny models.

The data directory is the packaged sample with drawn images, its Twitter2015
translated into Chinese by the sample glossary plug-in, a CLIP ViT cache from
a tiny CLIP vision model (5 tokens x 32) and a ResNet-152 cache with random
weights (the real 49 x 2048 grid), and a tiny BERT as the encoder: the same
commands and loading paths as a real run, at toy sizes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xlingual.cli import app
from xlingual.data.datasets import load_split
from xlingual.demo import write_synthetic_images
from xlingual.features.extract import extract_for_data_dir
from xlingual.projection.corpus import ProjectionSettings
from xlingual.stage_inputs import translate_source_dataset
from xlingual.testing.tiny_bert import build_tiny_bert
from xlingual.testing.tiny_clip import build_tiny_clip
from xlingual.translate import load_translator
from xlingual.workspace import DataDir, RunFolder

GLOSSARY = "glossary-en-zh"


@pytest.fixture(scope="module")
def setup(tmp_path_factory, sample_data_dir) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("mner2")
    data_dir = root / "data"
    shutil.copytree(sample_data_dir, data_dir)
    translator = load_translator("en", "zh", plugin="xlingual.translate.glossary:sample_en_zh")
    translate_source_dataset(data_dir, "twitter2015", translator, ProjectionSettings("en", "zh", model_name=GLOSSARY))
    write_synthetic_images(data_dir, per_dataset=1000)  # every train and test post has a picture
    clip = build_tiny_clip(root / "tiny-clip")
    extract_for_data_dir(data_dir, "clip-vit-b32", weights=str(clip), device="cpu", batch_size=8)
    extract_for_data_dir(data_dir, "resnet152", weights="random", device="cpu", batch_size=8)
    tokens = {t for name in ("cmner", "twitter2015") for split in ("train", "dev", "test")
              for s in load_split(data_dir, name, split, with_images=False) for t in s.tokens}
    tokens |= {t for s in load_split(data_dir, "cmner", "train", with_images=False) for t in s.tokens}
    translated = DataDir(data_dir).translation("twitter2015", "en", "zh", GLOSSARY)
    tokens |= {t for path in translated.glob("*.jsonl") if "failures" not in path.name for line in path.read_text(encoding="utf-8").splitlines()
               for t in json.loads(line)["tokens"]}
    encoder = build_tiny_bert(root / "tiny-bert", sorted(tokens))
    return data_dir, encoder


def _train(setting: str, data_dir: Path, encoder: Path, out: Path):
    args = ["train", "--config", setting, "--model", "2mner", "--direction", "en-zh", "--output", str(out), "--json"]
    for item in (f"data.data_dir={data_dir}", f"data.translation_model={GLOSSARY}", f"model.encoder={encoder}", "model.vit_tokens=5",
                 "model.visual_dim=32", "model.max_length=64", "epochs=1", "batch_size=8", "eval_batch_size=16", "lr=1e-3"):
        args += ["--set", item]
    return CliRunner().invoke(app, args)


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
