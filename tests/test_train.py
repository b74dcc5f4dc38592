"""Training: configs, the four settings end to end on tiny models, resume, run folders, CLI."""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from typer.testing import CliRunner

from resume_helpers import Interrupt, stop_at, timeless
from xlingual.cli import app
from xlingual.data.datasets import DATASETS
from xlingual.workspace import DataDir, RunFolder
from xlingual.data.formats import format_for_lang, read_samples, write_samples
from xlingual.data.sample import Sample
from xlingual.errors import ConfigError
from xlingual.evaluation.evaluate import evaluate_run
from xlingual.train.config import MODEL_TYPES, PAPER_SETTINGS, SETTINGS, apply_overrides, config_yaml, load_config, packaged_config_names
from xlingual.train.batching import EpochShuffleSampler
from xlingual.embeddings.vectors import merge_vector_files
from xlingual.train.plugins import DevEvaluation, TrainerPlugin
from xlingual.train.run import train_run

TINY_ACN = [
    "images=none", "model.word_vectors=null", "model.word_dim=8", "model.char_dim=4", "model.char_filters=2",
    "model.char_kernels=[2]", "model.char_out=4", "model.hidden=8", "epochs=1", "batch_size=4",
]


def fake_translate(sample: Sample, tgt: str) -> Sample:
    """A word-by-word stand-in for MT: every English word becomes one CJK character, every character one word."""
    tokens: list[str] = []
    labels: list[str] = []
    for token, label in zip(sample.tokens, sample.labels):
        if tgt == "zh":
            tokens.append(chr(0x4E00 + sum(map(ord, token)) % 2000))
        else:
            tokens.append(f"w{ord(token[0]) % 500}")
        labels.append(label)
    return Sample(sample.id, tokens, labels, list(sample.images), tgt, {"source_id": sample.id})


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, sample_data_dir) -> Path:
    """The shipped sample data plus a fake en->zh and zh->en translation in the data-dir layout."""
    root = tmp_path_factory.mktemp("data") / "data"
    shutil.copytree(sample_data_dir, root)
    for dataset, src, tgt in (("twitter2015", "en", "zh"), ("cmner", "zh", "en")):
        spec = DATASETS[dataset]
        out = DataDir(root).translation(dataset, src, tgt, "fake-mt")
        for split, name in spec.split_files.items():
            samples = read_samples(DataDir(root).split_file(dataset, split), spec.format)
            write_samples(out / name, [fake_translate(s, tgt) for s in samples], format_for_lang(tgt))
    return root



def tiny(data_dir: Path, *extra: str) -> list[str]:
    return [*TINY_ACN, f"data.data_dir={data_dir}", *extra]


# -- configs ------------------------------------------------------------------

def test_every_packaged_config_loads_and_names_itself():
    names = packaged_config_names()
    assert len(names) == len(MODEL_TYPES) * 2 * len(SETTINGS) and set(PAPER_SETTINGS) | {"joint", "joint_tgt"} <= set(SETTINGS)
    for name in names:
        model, direction, setting = name.split("-", 1)[0], "-".join(name.split("-")[1:3]), name.split("-", 3)[3]
        config = load_config(setting, model, direction)
        assert (config.model_type, config.direction, config.setting, config.name) == (model, direction, setting, name)
    umt = load_config("src_tgt", "umt", "en-zh")
    assert umt.model["freeze_bottom_layers"] == 3 and umt.target.lr == pytest.approx(5e-5)
    acn = load_config("src", "acn", "zh-en")
    assert acn.source_dataset == "cmner" and acn.target_dataset == "twitter2015"
    assert acn.pretrain.lr == pytest.approx(1e-3) and acn.target.lr == pytest.approx(1e-4)


def test_overrides_reach_both_stages_nested_sections_and_lists():
    config = load_config("src_tgt", "acn", "en-zh", ["lr=3e-5", "target.epochs=7", "model.hidden=64", "model.char_kernels=[2,3]", "images=one"])
    assert config.pretrain.lr == pytest.approx(3e-5) and config.target.lr == pytest.approx(3e-5)
    assert config.target.epochs == 7 and config.pretrain.epochs == 24
    assert config.model["hidden"] == 64 and config.model["char_kernels"] == [2, 3] and config.images == "one"
    assert apply_overrides({"a": 1}, ["b.c=x"]) == {"a": 1, "b": {"c": "x"}}


@pytest.mark.parametrize("override, message", [
    (["bogus=1"], "unknown key(s) bogus"),
    (["target.lr=abc"], "lr: 'abc' is not a number"),
    (["setting=mixed"], "setting: 'mixed' is not one of"),
    (["target.epochs=0"], "must be positive"),
    (["noequals"], "expected key=value"),
])
def test_bad_overrides_are_config_errors(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config("tgt_only", "acn", "en-zh", override)


def test_yaml_file_config_and_its_errors(tmp_path):
    path = tmp_path / "mine.yaml"
    values = yaml.safe_load(config_yaml(load_config("tgt", "acn", "en-zh")))
    values["seed"] = 7
    path.write_text(yaml.safe_dump(values))
    assert load_config(path).seed == 7
    assert load_config(path, direction="zh-en").direction == "zh-en"
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: 1\nmodel: [1,\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+: not valid YAML"):
        load_config(bad)
    # the design card's `xl train --config src_tgt`: a setting alone is the paper's headline run
    headline = load_config("src_tgt")
    assert (headline.model_type, headline.direction, headline.setting) == ("umt", "en-zh", "src_tgt")
    assert load_config("src", model_type="acn").direction == "en-zh"
    with pytest.raises(ConfigError, match="--model: 'bert'"):
        load_config("src", model_type="bert")


def test_shuffle_depends_only_on_seed_and_epoch():
    a, b = EpochShuffleSampler(50, 3), EpochShuffleSampler(50, 3)
    a.set_epoch(2)
    b.set_epoch(2)
    assert list(a) == list(b) and sorted(a) == list(range(50))
    b.set_epoch(3)
    assert list(a) != list(b)


def test_merged_vectors_keep_both_languages_and_prefer_the_later_file(tmp_path):
    (tmp_path / "en.vec").write_text("2 2\nhello 1 0\n@ 0 1\n")
    (tmp_path / "zh.vec").write_text("2 2\n你 0.5 0.5\n@ 1 1\n")
    merged = merge_vector_files([tmp_path / "en.vec", tmp_path / "zh.vec"], tmp_path / "m.vec").read_text().splitlines()
    assert merged[0] == "3 2" and "@ 1 1" in merged and "hello 1 0" in merged and "你 0.5 0.5" in merged


# -- the four settings end to end ------------------------------------------------

@pytest.mark.parametrize("setting", PAPER_SETTINGS)
def test_each_setting_trains_end_to_end_through_the_cli(setting, data_dir, tmp_path):
    run_dir = tmp_path / setting
    args = ["train", "--config", setting, "--model", "acn", "--direction", "en-zh", "--output", str(run_dir), "--json"]
    for item in tiny(data_dir):
        args += ["--set", item]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["setting"] == setting and metrics["target_dataset"] == "cmner"
    stages = metrics["stages"]
    assert list(stages) == (["target"] if setting == "tgt_only" else ["pretrain", "target"])
    if setting != "tgt_only":
        assert (run_dir / "pretrain-model" / "config.json").is_file()
        described = stages["pretrain"]["data"]
        assert ("twitter2015 (en)" in described) == (setting in ("src", "src_tgt"))
        assert ("fake-mt" in described) == (setting in ("tgt", "src_tgt"))
        pre_train = len(read_samples(data_dir / "twitter2015" / "train.txt"))
        assert stages["pretrain"]["train_samples"] == pre_train * (2 if setting == "src_tgt" else 1)
    # the run folder holds everything a reader needs
    for name in ("config.yaml", "environment.json", "run.log", "model/config.json", "model/model.safetensors",
                 "predictions/test.txt", "predictions/dev.jsonl"):
        assert (run_dir / name).is_file(), name
    env = json.loads((run_dir / "environment.json").read_text())
    assert env["seed"] == 444
    assert env["versions"]["torch"] is not None
    assert env["versions"]["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert "dev F1" in (run_dir / "run.log").read_text()
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["model"]["hidden"] == 8 and saved["data"]["data_dir"] == str(data_dir)
    # predictions in the target dataset's own format, one per test post
    predicted = read_samples(run_dir / "predictions" / "test.txt", "cmner", bio="keep")
    gold = read_samples(data_dir / "cmner" / "text" / "test.txt")
    assert [s.tokens for s in predicted] == [s.tokens for s in gold]
    assert metrics["test"]["conlleval"]["gold"] == sum(len(s.entities()) for s in gold)


@pytest.mark.parametrize("setting", ["joint", "joint_tgt"])
def test_joint_trains_one_model_on_both_datasets_and_scores_both_test_sets(setting, data_dir, tmp_path):
    run_dir = tmp_path / setting
    result = train_run(load_config(setting, "acn", "en-zh", tiny(data_dir, "epochs=2")), run_dir)
    metrics = result.metrics
    stage = metrics["stages"]["target"]
    assert list(metrics["stages"]) == ["target"] and not (run_dir / "pretrain-model").exists()
    sizes = {name: len(read_samples(DataDir(data_dir).split_file(name, split))) for name in ("cmner", "twitter2015") for split in ("train",)}
    translated = sizes["twitter2015"] if setting == "joint_tgt" else 0
    assert stage["train_samples"] == sizes["cmner"] + sizes["twitter2015"] + translated
    assert stage["dev_samples"] == sum(len(read_samples(DataDir(data_dir).split_file(n, "dev"))) for n in ("cmner", "twitter2015")), "selected on both dev sets"
    assert ("fake-mt" in stage["data"]) == (setting == "joint_tgt")
    assert set(metrics["tests"]) == {"cmner", "twitter2015"} and metrics["tests"]["cmner"] == metrics["test"]
    assert metrics["test_macro_f1"] == pytest.approx((metrics["tests"]["cmner"]["conlleval"]["f1"] + metrics["tests"]["twitter2015"]["conlleval"]["f1"]) / 2)
    english = read_samples(RunFolder(run_dir).prediction("test.twitter2015", ".txt"), "twitter", bio="keep")
    assert [s.tokens for s in english] == [s.tokens for s in read_samples(DataDir(data_dir).split_file("twitter2015", "test"))]
    rescored = evaluate_run(run_dir, splits=("test.twitter2015",))["test.twitter2015"]
    assert rescored == metrics["tests"]["twitter2015"]


def test_every_run_is_also_scored_on_the_other_language_but_trains_without_it(data_dir, tmp_path):
    """tgt_only sees no English post in training, yet its metrics hold the Twitter2015 test score (zero-shot)."""
    config = load_config("tgt_only", "acn", "en-zh", tiny(data_dir, "epochs=1"))
    with_other = train_run(config, tmp_path / "a").metrics
    assert set(with_other["tests"]) == {"cmner", "twitter2015"}
    assert with_other["stages"]["target"]["train_samples"] == len(read_samples(DataDir(data_dir).split_file("cmner", "train")))
    alone = tmp_path / "cmner-only"
    shutil.copytree(data_dir, alone)
    DataDir(alone).split_file("twitter2015", "test").unlink()
    without = train_run(load_config("tgt_only", "acn", "en-zh", tiny(alone, "epochs=1")), tmp_path / "b").metrics
    assert set(without["tests"]) == {"cmner"} and "test_macro_f1" not in without
    weights = [load_file(str(RunFolder(tmp_path / run).model / "model.safetensors")) for run in ("a", "b")]
    assert weights[0].keys() == weights[1].keys() and all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert without["test"] == with_other["test"]


def test_zh_en_direction_evaluates_on_twitter(data_dir, tmp_path):
    config = load_config("tgt", "acn", "zh-en", tiny(data_dir, "epochs=1"))
    result = train_run(config, tmp_path / "run")
    assert result.metrics["target_dataset"] == "twitter2015"
    assert "cmner.zh-en.fake-mt" in result.metrics["stages"]["pretrain"]["data"]
    assert (tmp_path / "run" / "predictions" / "test.txt").read_text().startswith("IMGID:")


def test_training_lowers_the_loss_and_records_it(data_dir, tmp_path):
    """Not a smoke test only: the engine really optimises (mean train loss per epoch falls)."""
    config = load_config("tgt_only", "acn", "en-zh", tiny(data_dir, "epochs=8", "patience=null", "lr=1e-2", "batch_size=3"))
    history = train_run(config, tmp_path / "fit").metrics["stages"]["target"]["history"]
    losses = [h["train_loss"] for h in history]
    assert len(losses) == 8 and losses[-1] < 0.75 * losses[0]
    assert sum(h["improved"] for h in history) >= 1


# -- resume -----------------------------------------------------------------

def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "model" / "model.safetensors"))


@pytest.mark.parametrize("stage, stop_step, save_every", [("pretrain", 4, None), ("target", 5, 2)])
def test_resume_reaches_the_same_result_as_an_uninterrupted_run(data_dir, tmp_path, stage, stop_step, save_every):
    """6 posts per split, batch 2: 3 steps per epoch; checkpoints at epoch ends (+ every 2 steps in the second case)."""
    overrides = tiny(data_dir, "epochs=2", "batch_size=2", "model.dropout=0.5", "patience=null", "data.max_samples=6")
    if save_every:
        overrides.append(f"save_every_steps={save_every}")
    config = load_config("src", "acn", "en-zh", overrides)
    reference = train_run(config, tmp_path / "whole")

    with pytest.raises(Interrupt):
        train_run(config, tmp_path / "cut", hooks=[stop_at(stop_step, stage)])
    assert not (tmp_path / "cut" / "metrics.json").exists()
    with pytest.raises(ConfigError, match="pass --resume"):
        train_run(config, tmp_path / "cut")
    resumed = train_run(config, tmp_path / "cut", resume=True)
    assert f"resuming stage {stage}" in (tmp_path / "cut" / "run.log").read_text()

    assert resumed.metrics["test"] == reference.metrics["test"]
    for stage_name in ("pretrain", "target"):
        assert timeless(resumed.metrics["stages"][stage_name]["history"]) == timeless(reference.metrics["stages"][stage_name]["history"])
    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "cut")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # a finished run is kept as is
    again = train_run(config, tmp_path / "cut", resume=True)
    assert again.skipped and again.metrics == resumed.metrics


def test_resume_refuses_a_different_config(data_dir, tmp_path):
    config = load_config("tgt_only", "acn", "en-zh", tiny(data_dir, "epochs=1"))
    with pytest.raises(Interrupt):
        train_run(config, tmp_path / "r", hooks=[stop_at(1, "target")])
    other = load_config("tgt_only", "acn", "en-zh", tiny(data_dir, "epochs=2"))
    with pytest.raises(ConfigError, match="saved config differs"):
        train_run(other, tmp_path / "r", resume=True)


# -- missing inputs say how to build them ---------------------------------------

def test_missing_inputs_name_the_command_that_builds_them(sample_data_dir, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(sample_data_dir, root)
    runner = CliRunner()
    base = ["train", "--model", "acn", "--direction", "en-zh", "--data-dir", str(root), "--output", str(tmp_path / "x")]
    result = runner.invoke(app, [*base, "--config", "tgt", "--set", "images=none", "--set", "model.word_vectors=null"])
    assert result.exit_code == 2 and "xl translate --dataset twitter2015 --tgt zh" in result.output
    result = runner.invoke(app, [*base, "--config", "tgt_only", "--set", "model.word_vectors=null"])
    assert result.exit_code == 2 and "xl features extract" in result.output
    result = runner.invoke(app, [*base, "--config", "tgt_only", "--set", "images=none"])
    assert result.exit_code == 2 and "xl embeddings" in result.output and "Traceback" not in result.output


def test_aligned_vectors_are_found_and_merged_for_cross_lingual_runs(data_dir, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(data_dir, root)
    aligned = root / "embeddings" / "aligned.en-zh"
    aligned.mkdir(parents=True)
    en = {t for s in read_samples(root / "twitter2015" / "train.txt") for t in s.tokens}
    zh = {t for s in read_samples(root / "cmner" / "text" / "train.txt") for t in s.tokens}
    (aligned / "vectors-src.vec").write_text(f"{len(en)} 4\n" + "".join(f"{w} 0.1 0.2 0.3 0.4\n" for w in en if " " not in w))
    (aligned / "vectors-tgt.vec").write_text(f"{len(zh)} 4\n" + "".join(f"{w} 0.4 0.3 0.2 0.1\n" for w in zh if " " not in w))
    overrides = [o for o in tiny(root, "epochs=1") if not o.startswith(("model.word_vectors", "model.word_dim"))]
    result = train_run(load_config("src_tgt", "acn", "en-zh", overrides), tmp_path / "run")
    merged = (tmp_path / "run" / "word_vectors.vec").read_text().splitlines()
    assert merged[0].split()[1] == "4" and len(merged) > len(zh)
    assert result.metrics["setting"] == "src_tgt"


def test_training_on_vectors_of_a_failed_alignment_says_so(tmp_path, caplog):
    """The failure check's verdict reaches the run that uses the vectors, not only the align command."""
    from xlingual.stage_inputs import aligned_vector_files

    aligned = tmp_path / "data" / "embeddings" / "aligned.zh-en"  # the other direction is found too
    aligned.mkdir(parents=True)
    for name in ("vectors-src.vec", "vectors-tgt.vec"):
        (aligned / name).write_text("1 2\nx 0.1 0.2\n", encoding="utf-8")
    config = load_config("src_tgt", "acn", "en-zh", [f"data.data_dir={tmp_path / 'data'}"])
    for suspect, expected in ((0, False), (2, True)):
        (aligned / "alignment.json").write_text(json.dumps({"suspect": suspect, "suspect_reasons": ["criterion at the random baseline"]}))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="xlingual.embeddings.paths"):
            files = aligned_vector_files(config.data.data_dir, config.source_lang, config.target_lang, target_only=False)
        assert files == [aligned / "vectors-tgt.vec", aligned / "vectors-src.vec"]  # en is the zh-en folder's target side
        assert any("LOOKED FAILED" in r.getMessage() and "random baseline" in r.getMessage() for r in caplog.records) is expected


@pytest.mark.parametrize("name", packaged_config_names())
def test_paper_configs_run_every_epoch_and_keep_the_best_dev_checkpoint(name):
    """The reference code has no early stopping (docs/training.md, "Which defaults follow which reference"): patience must be off."""
    model_type, src, tgt, setting = name.split("-")
    direction = f"{src}-{tgt}"
    config = load_config(setting, model_type, direction)
    for stage in (config.pretrain, config.target):
        assert stage.patience is None
    assert config.target.epochs >= (8 if model_type == "2mner" else 24)  # 2M-NER's reference trains 8 epochs, the CMNER code 24


def test_2mner_configs_follow_its_reference_and_read_two_feature_caches():
    config = load_config("joint", "2mner", "en-zh")
    stage = config.target
    assert (config.seed, stage.lr, stage.batch_size, stage.epochs, stage.optimizer, stage.schedule, stage.warmup_ratio) == (19, 5e-5, 32, 8, "adam", "linear", 0.0)
    assert config.feature_backbones == ("clip-vit-b32", "resnet152") and load_config("src", "acn", "en-zh").feature_backbones == ("vgg16",)


def test_dry_run_prints_the_resolved_config_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["train", "--config", "src_tgt", "--model", "acn", "--direction", "zh-en", "--set", "target.lr=1e-4", "--dry-run"])
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.stdout)
    assert printed["model_type"] == "acn" and printed["direction"] == "zh-en" and printed["setting"] == "src_tgt"
    assert printed["target"]["lr"] == pytest.approx(1e-4)
    assert printed["pretrain"]["patience"] is None and printed["target"]["patience"] is None  # no early stopping
    assert printed["target"]["epochs"] == 24
    assert list(tmp_path.iterdir()) == []  # no run folder, no config written
    # the printed YAML is a config: it loads back to the same resolved values
    path = tmp_path.parent / f"{tmp_path.name}-dry.yaml"
    path.write_text(result.stdout, encoding="utf-8")
    assert load_config(path).to_dict() == load_config("src_tgt", "acn", "zh-en", ["target.lr=1e-4"]).to_dict()


@pytest.mark.parametrize("value, expected", [("5", 5), ("0", None), ("null", None)])
def test_early_stopping_stays_a_switch(value, expected):
    config = load_config("tgt_only", "umt", "en-zh", [f"patience={value}"])
    assert config.target.patience == expected


def test_negative_patience_is_a_one_line_error():
    result = CliRunner().invoke(app, ["train", "--config", "tgt_only", "--set", "patience=-1", "--dry-run"])
    assert result.exit_code == 2 and "patience" in result.output and "Traceback" not in result.output


# -- resume is all or nothing; a run folder holds one run ----------------------------

def _interrupted(data_dir: Path, folder: Path, *extra: str):
    """A tiny src run (3 steps per epoch) stopped at target step 2, with its checkpoint of target epoch 0 saved."""
    config = load_config("src", "acn", "en-zh", tiny(data_dir, "epochs=2", "batch_size=2", "model.dropout=0.5", "data.max_samples=6", *extra))
    with pytest.raises(Interrupt):
        train_run(config, folder, hooks=[stop_at(4, "target")])
    return config


def test_resume_without_the_rng_state_refuses_unless_partial(data_dir, tmp_path):
    config = _interrupted(data_dir, tmp_path / "cut")
    state = tmp_path / "cut" / "state" / "target"
    (state / "random_states_0.pkl").unlink()
    with pytest.raises(ConfigError, match=r"state/target: the saved training state is incomplete \(missing: random_states_0.pkl\).*--resume-partial"):
        train_run(config, tmp_path / "cut", resume=True)
    assert not (tmp_path / "cut" / "metrics.json").exists()
    args = ["train", "--config", "src", "--model", "acn", "--direction", "en-zh", "--output", str(tmp_path / "cut"), "--json"]
    for item in tiny(data_dir, "epochs=2", "batch_size=2", "model.dropout=0.5", "data.max_samples=6"):
        args += ["--set", item]
    refused = CliRunner().invoke(app, [*args, "--resume"])
    assert refused.exit_code == 2 and "missing: random_states_0.pkl" in refused.output and "Traceback" not in refused.output
    resumed = CliRunner().invoke(app, [*args, "--resume-partial"])
    assert resumed.exit_code == 0, resumed.output
    assert "results will differ" in (tmp_path / "cut" / "run.log").read_text()
    assert json.loads((tmp_path / "cut" / "metrics.json").read_text())["stages"]["target"]["steps"] == 6


def test_missing_optimizer_and_scheduler_are_listed_and_a_partial_resume_goes_on(data_dir, tmp_path):
    config = _interrupted(data_dir, tmp_path / "cut")
    state = tmp_path / "cut" / "state" / "target"
    for name in ("optimizer.bin", "scheduler.bin"):
        (state / name).unlink()
    with pytest.raises(ConfigError, match=r"missing: optimizer.bin, scheduler.bin\)"):
        train_run(config, tmp_path / "cut", resume=True)
    result = train_run(config, tmp_path / "cut", resume=True, partial=True)
    assert result.metrics["stages"]["target"]["steps"] == 6


@pytest.mark.parametrize("damage, message", [
    (lambda s: (s / "loop_state.json").write_text("{not json"), r"loop_state.json: not a readable loop state"),
    (lambda s: (s / "loop_state.json").write_text('{"stage": "target", "bogus": 1}'), r"loop_state.json: not a readable loop state"),
    (lambda s: (s / "loop_state.json").unlink(), r"cannot resume without loop_state.json"),
    (lambda s: (s / "optimizer.bin").write_bytes((s / "optimizer.bin").read_bytes()[:50]), r"state/target: the saved training state cannot be read"),
    (lambda s: (s / "model.safetensors").write_bytes(b"\x00" * 12), r"state/target: the saved training state cannot be read"),
])
def test_a_damaged_training_state_is_a_one_line_error(data_dir, tmp_path, damage, message):
    config = _interrupted(data_dir, tmp_path / "cut")
    damage(tmp_path / "cut" / "state" / "target")
    with pytest.raises(ConfigError, match=message) as err:
        train_run(config, tmp_path / "cut", resume=True)
    assert "\n" not in str(err.value)


def test_resume_refuses_a_folder_that_mixes_two_runs(data_dir, tmp_path):
    """Files of another run (another config) in the folder: the state, the environment or the metrics."""
    mine = _interrupted(data_dir, tmp_path / "mine")
    _interrupted(data_dir, tmp_path / "other", "seed=7")
    foreign_state = tmp_path / "other" / "state" / "target" / "loop_state.json"
    for name, source, message in (("state/target/loop_state.json", foreign_state, "saved training state belongs to another run"),
                                  ("environment.json", tmp_path / "other" / "environment.json", "environment.json: written by another run")):
        mixed = tmp_path / f"mixed-{name.replace('/', '-')}"
        shutil.copytree(tmp_path / "mine", mixed)
        shutil.copy(source, mixed / name)
        with pytest.raises(ConfigError, match=message):
            train_run(mine, mixed, resume=True)
    finished = train_run(mine, tmp_path / "mine", resume=True)
    assert finished.metrics["run_id"] == json.loads((tmp_path / "mine" / "environment.json").read_text())["run_id"]
    other = load_config("src", "acn", "en-zh", tiny(data_dir, "epochs=2", "batch_size=2", "model.dropout=0.5", "data.max_samples=6", "seed=7"))
    train_run(other, tmp_path / "other", resume=True)
    shutil.copy(tmp_path / "other" / "metrics.json", tmp_path / "mine" / "metrics.json")
    with pytest.raises(ConfigError, match="metrics.json: written by another run"):
        train_run(mine, tmp_path / "mine", resume=True)


# -- a NaN loss fails the run ----------------------------------------------------------

def _nan_loss_from_step(monkeypatch, step: int) -> None:
    """The model's loss turns NaN at training forward ``step`` (a planted fault: lr=inf and NaN inputs are refused earlier)."""
    from xlingual.models.acn import AcnModel

    forward, calls = AcnModel.forward, []

    def poisoned(self, batch, *args, **kwargs):
        out = forward(self, batch, *args, **kwargs)
        if self.training and out.get("loss") is not None:
            calls.append(1)
            if len(calls) >= step:
                out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(AcnModel, "forward", poisoned)


def test_a_nan_loss_stops_the_run_and_marks_it_failed(data_dir, tmp_path, monkeypatch):
    from xlingual.errors import TrainingDivergedError

    _nan_loss_from_step(monkeypatch, 3)
    args = ["train", "--config", "tgt_only", "--model", "acn", "--direction", "en-zh", "--output", str(tmp_path / "run")]
    for item in tiny(data_dir, "epochs=3", "batch_size=2", "data.max_samples=6"):
        args += ["--set", item]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert re.search(r"error: step 3: loss is nan \(stage target, lr [^)]+\)", result.output), result.output
    folder = RunFolder(tmp_path / "run")
    assert not folder.finished and not folder.metrics.exists()  # xl report reads only finished runs
    failure = json.loads(folder.failure.read_text())
    assert failure["stage"] == "target" and failure["error"].startswith("step 3: loss is nan")
    history = json.loads((folder.state / "target" / "loop_state.json").read_text())["history"] if (folder.state / "target").exists() else []
    assert all(h["train_loss"] is None or math.isfinite(h["train_loss"]) for h in history)  # nothing after the NaN was kept
    config = load_config("tgt_only", "acn", "en-zh", tiny(data_dir, "epochs=3", "batch_size=2", "data.max_samples=6"))
    for resume in (False, True):
        with pytest.raises(ConfigError, match="this run failed .*step 3: loss is nan.*never resumed"):
            train_run(config, tmp_path / "run", resume=resume)
    with pytest.raises(TrainingDivergedError):
        train_run(config, tmp_path / "again")


# -- the caller's plugins and the model card ---------------------------------------------------

class EpochEnds(TrainerPlugin):
    """Counts the events a run calls it at; at each epoch end notes how many dev evaluations the stage has recorded."""

    requires = (DevEvaluation,)

    def __init__(self) -> None:
        self.stages: list[str] = []
        self.steps: dict[str, int] = {}
        self.evaluations_seen: dict[str, list[int]] = {}
        self.closed = 0

    def stage_start(self, run) -> None:
        self.stages.append(run.name)
        self.steps[run.name], self.evaluations_seen[run.name] = 0, []

    def after_step(self, run) -> None:
        self.steps[run.name] += 1

    def epoch_end(self, run) -> None:
        self.evaluations_seen[run.name].append(len(run.loop.history))

    def close(self, run) -> None:
        self.closed += 1


def test_a_plugin_passed_to_train_run_is_called_in_every_stage_after_dev_evaluation(data_dir, tmp_path):
    config = load_config("src", "acn", "en-zh", tiny(data_dir, "epochs=2", "data.max_samples=8"))
    counter = EpochEnds()
    metrics = train_run(config, tmp_path / "run", plugins=[counter]).metrics
    assert counter.stages == ["pretrain", "target"] and counter.closed == 2
    for stage in ("pretrain", "target"):
        assert counter.steps[stage] == metrics["stages"][stage]["steps"] > 0
        assert counter.evaluations_seen[stage] == [1, 2]  # each epoch's evaluation was recorded before the plugin ran


def test_a_plugin_that_needs_a_missing_one_is_refused_before_training(data_dir, tmp_path):
    class NeedsCounter(TrainerPlugin):
        requires = (EpochEnds,)

    config = load_config("tgt_only", "acn", "en-zh", tiny(data_dir))
    with pytest.raises(ConfigError, match="^plugins: NeedsCounter requires EpochEnds before it, but EpochEnds is not among them"):
        train_run(config, tmp_path / "run", plugins=[NeedsCounter()])
    assert not RunFolder(tmp_path / "run").state.exists()


def test_model_folders_carry_a_card_that_identical_runs_write_identically(data_dir, tmp_path):
    config = load_config("src", "acn", "en-zh", tiny(data_dir, "epochs=2", "seed=3", "data.max_samples=8"))
    first, second = train_run(config, tmp_path / "a"), train_run(config, tmp_path / "b")
    for model in ("model", "pretrain-model"):
        card = (tmp_path / "a" / model / "README.md").read_text(encoding="utf-8")
        assert card == (tmp_path / "b" / model / "README.md").read_text(encoding="utf-8")
        assert 'datasets: ["twitter2015", "cmner"]' in card and 'language: ["en", "zh"]' in card
        assert "| Model type | acn |" in card and "| Seed | 3 |" in card and "| Setting | src |" in card
        assert str(tmp_path) not in card
    target = first.metrics["stages"]["target"]
    card = (tmp_path / "a" / "model" / "README.md").read_text(encoding="utf-8")
    assert f"| Selected at | epoch {target['best_epoch']}, step {target['best_step']} |" in card
    assert f"| dev F1 (conlleval) | {target['best_dev_f1']:.2f} |" in card
    for dataset, scores in first.metrics["tests"].items():
        assert f"| {dataset} test F1 (conlleval) | {scores['conlleval']['f1']:.2f} |" in card
    pretrain = (tmp_path / "a" / "pretrain-model" / "README.md").read_text(encoding="utf-8")
    assert "| Stage | pretrain |" in pretrain and "| Trained on | twitter2015 (en) |" in pretrain and "test F1" not in pretrain
    assert second.metrics["test"] == first.metrics["test"]


# -- interrupts: SIGINT and SIGTERM end alike and say how to resume ------------------------

def test_the_interrupt_message_gives_the_exact_resume_command(data_dir, tmp_path, monkeypatch):
    import xlingual.train.run as run_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "train_run", interrupted)
    args = ["train", "--config", "tgt_only", "--model", "acn", "--output", str(tmp_path / "my run"), "--set", "epochs=2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 130
    assert result.output.strip().endswith("to resume, run: xl train --config tgt_only --model acn --output "
                                          f"'{tmp_path / 'my run'}' --set epochs=2 --resume")
    again = CliRunner().invoke(app, [*args, "--resume"])
    assert again.output.strip().endswith("--set epochs=2 --resume") and "--resume --resume" not in again.output


SLOW_AFTER_FIRST_CHECKPOINT = """
import sys, time
import xlingual.train.plugins as plugins
save = plugins.Checkpointing.epoch_boundary
def save_then_wait(self, run):
    save(self, run)
    print("checkpoint", flush=True)
    time.sleep(120)
plugins.Checkpointing.epoch_boundary = save_then_wait
from xlingual.cli import app
sys.argv[0] = "xl"
app()
"""


def test_a_second_train_is_refused_and_sigterm_ends_the_first_like_an_interrupt_with_its_resume_command(data_dir, tmp_path):
    """The first run waits after its first checkpoint (so the signal lands mid-run on any machine); the resume is a plain xl train."""
    import os
    import shlex
    import signal
    import subprocess
    import sys

    run_dir = tmp_path / "run"
    sets = [a for item in tiny(data_dir, "epochs=3", "batch_size=2", "data.max_samples=6") for a in ("--set", item)]
    args = ["train", "--config", "tgt_only", "--model", "acn", "--output", str(run_dir), *sets]
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, "-c", SLOW_AFTER_FIRST_CHECKPOINT, *args], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "checkpoint"
    # a second xl train into the same folder while the first one runs: another seed, or the same run resumed
    for second in ([*args, "--set", "seed=7"], [*args, "--resume"]):
        refused = CliRunner().invoke(app, second)
        assert refused.exit_code == 2 and "Traceback" not in refused.output
        assert re.search(rf"error: {re.escape(str(run_dir))} is in use by process {process.pid} \(started [^)]+\)$", refused.output.strip())
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["seed"] == 444  # nothing of the refused runs was written
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted: finished work is saved; to resume, run: xl train ") and "Traceback" not in stderr
    command = shlex.split(last.split("to resume, run: ", 1)[1])
    assert command[0] == "xl" and command[1:-1] == args and command[-1] == "--resume"
    assert not (run_dir / ".xl.lock").exists() and not (run_dir / "metrics.json").exists()
    resumed = subprocess.run([sys.executable, "-m", "xlingual", *command[1:]], env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming stage target at epoch 1" in (run_dir / "run.log").read_text()
    assert json.loads((run_dir / "metrics.json").read_text())["stages"]["target"]["epochs_run"] == 3
