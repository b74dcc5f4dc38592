"""Runs that name their datasets, settings declared as data, multi-dataset joint runs, grids of dataset pairs.

The data directory is the packaged sample plus generated Twitter2017 and
MMNERD splits (Twitter format, as the real files), with Twitter2017 translated
into Chinese and CMNER into English through the real translation and
projection code (a word-by-word fake translator stands in for MT).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings as hypothesis_settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from projection_fakes import FakeTranslator
from xlingual.cli import app
from xlingual.data.datasets import DATASETS, load_split
from xlingual.data.formats import write_samples
from xlingual.errors import ConfigError
from xlingual.projection.corpus import ProjectionSettings
from xlingual.stage_inputs import find_translation, translate_source_dataset
from xlingual.testing.synthetic import generated_tweets
from xlingual.train.config import config_from_dict, config_yaml, load_config
from xlingual.train.config.packaged import USER_CONFIGS_ENV
from xlingual.train.config.stages import setting_plan
from xlingual.train.experiment import parse_pairs, plan_grid
from xlingual.train.run import train_run
from xlingual.workspace import DataDir, RunFolder

TINY_ACN = ["images=none", "model.word_vectors=null", "model.word_dim=8", "model.char_dim=4", "model.char_filters=2",
            "model.char_kernels=[2]", "model.char_out=4", "model.hidden=8", "epochs=1", "batch_size=4"]
MT = "fake-mt"
WIDE = {"COLUMNS": "200"}
"""The CLI's tables are not cut to a narrow terminal's width, so a test can read every row."""


def write_generated_twitter_dataset(data_dir: Path, dataset: str, seed: int, sizes=(24, 8, 8)) -> None:
    """Generated English posts as ``dataset``'s three split files (ids unique per dataset and split)."""
    for offset, (split, n) in enumerate(zip(("train", "dev", "test"), sizes)):
        posts = generated_tweets(n, seed=seed * 10 + offset, id_start=100000 * seed + 1000 * offset)
        write_samples(DataDir(data_dir).split_file(dataset, split), posts, "twitter")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, sample_data_dir) -> Path:
    root = tmp_path_factory.mktemp("datasets") / "data"
    shutil.copytree(sample_data_dir, root)
    write_generated_twitter_dataset(root, "twitter2017", seed=1)
    write_generated_twitter_dataset(root, "mmnerd", seed=2)
    for dataset, src, tgt in (("twitter2017", "en", "zh"), ("cmner", "zh", "en")):
        translate_source_dataset(root, dataset, FakeTranslator(tgt), ProjectionSettings(src, tgt, model_name=MT))
    return root


def tiny(data_dir: Path, *extra: str) -> list[str]:
    return [*TINY_ACN, f"data.data_dir={data_dir}", f"data.translation_model={MT}", *extra]


def _sets(items: list[str]) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


def _split_sizes(data_dir: Path, dataset: str) -> dict[str, int]:
    return {split: len(load_split(data_dir, dataset, split, with_images=False)) for split in ("train", "dev", "test")}


# -- named datasets end to end -----------------------------------------------------

@pytest.mark.parametrize("source, target", [("twitter2017", "cmner"), ("cmner", "twitter2017")])
def test_src_tgt_trains_on_the_named_datasets_and_the_run_names_them(source, target, data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default run folder is runs/<run name>
    result = CliRunner().invoke(app, ["train", "--config", "src_tgt", "--model", "acn", "--source", source, "--target", target,
                                      *_sets(tiny(data_dir))], env=WIDE)
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / f"acn-{source}-{target}-src_tgt-img_none-seed444"
    saved = yaml.safe_load(RunFolder(run_dir).config.read_text(encoding="utf-8"))
    assert saved["datasets"] == {"source": [source], "target": target} and saved["direction"] is None
    assert saved["name"] == f"acn-{source}-{target}-src_tgt"
    metrics = json.loads(RunFolder(run_dir).metrics.read_text(encoding="utf-8"))
    assert metrics["run"] == run_dir.name and metrics["target_dataset"] == target and metrics["source_datasets"] == [source]
    translation = find_translation(data_dir, source, DATASETS[target].lang, MT)
    assert translation.name == f"{source}.{DATASETS[source].lang}-{DATASETS[target].lang}.{MT}"
    pre, fine = metrics["stages"]["pretrain"], metrics["stages"]["target"]
    assert pre["data"] == f"{source} ({DATASETS[source].lang}) + {translation.name} ({DATASETS[target].lang})"
    assert pre["train_samples"] == _split_sizes(data_dir, source)["train"] + len(list((translation / "train.jsonl").open()))
    assert fine["data"] == f"{target} ({DATASETS[target].lang})" and fine["train_samples"] == _split_sizes(data_dir, target)["train"]
    assert set(metrics["tests"]) == {source, target} and metrics["test_samples"] == _split_sizes(data_dir, target)["test"]
    assert f"test {source}" in result.output  # the CLI prints every test set the run was scored on


def test_a_paper_pair_named_by_datasets_takes_the_directions_deltas_and_keeps_its_dataset_names():
    named = load_config("src", "umt", source=["cmner"], target="twitter2015")
    shorthand = load_config("src", "umt", "zh-en")
    assert named.target.epochs == shorthand.target.epochs == 35  # models/umt.zh-en.yaml applies to the same pair
    differs = {key for key, value in named.to_dict().items() if shorthand.to_dict().get(key) != value}
    assert differs == {"direction", "datasets", "name"} and named.run_name == "umt-cmner-twitter2015-src-seed460"
    assert "datasets" not in shorthand.to_dict() and shorthand.run_name == "umt-zh-en-src-seed460"


@pytest.mark.parametrize("kwargs, message", [
    ({"source": ["cmner"]}, "--source cmner: name the target dataset too"),
    ({"source": ["nope"], "target": "cmner"}, "--source nope: unknown dataset 'nope'"),
    ({"target": "nope"}, "--target nope: unknown dataset 'nope'"),
    ({"source": ["cmner"], "target": "cmner"}, "--source cmner: named twice"),
    ({"target": "cmner", "direction": "en-zh"}, "--direction en-zh and --target cmner: give one"),
    ({"target": "cmner"}, "setting 'src' trains on source data: name the source dataset(s) with --source"),
])
def test_bad_dataset_options_are_one_line_errors(kwargs, message):
    with pytest.raises(ConfigError) as err:
        load_config("src", "acn", **kwargs)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_the_cli_refuses_an_unknown_dataset_with_status_2():
    result = CliRunner().invoke(app, ["train", "--config", "src", "--model", "acn", "--source", "twitter2071", "--target", "cmner", "--dry-run"])
    assert result.exit_code == 2 and "unknown dataset 'twitter2071'" in result.output and "Traceback" not in result.output


names = st.lists(st.sampled_from(sorted(DATASETS)), min_size=1, max_size=4, unique=True)


@given(names, st.sampled_from(["tgt_only", "src", "tgt", "src_tgt", "joint", "joint_tgt"]), st.sampled_from(["acn", "umt", "2mner"]))
@hypothesis_settings(max_examples=60, deadline=None)
def test_a_named_config_stores_what_it_trains_on_and_reads_back_the_same(datasets, setting, model):
    *sources, target = datasets
    if not sources and setting != "tgt_only":
        with pytest.raises(ConfigError, match="name the source dataset"):
            load_config(setting, model, source=sources, target=target)
        return
    config = load_config(setting, model, source=sources, target=target)
    stored = yaml.safe_load(config_yaml(config))
    assert stored["datasets"] == {"source": sources, "target": target} and stored["direction"] is None
    assert config_from_dict(stored) == config  # a saved run config resolves to the run's config
    assert (config.source_datasets, config.target_dataset) == (tuple(sources), target)
    assert config.run_name == f"{model}-{'+'.join(sources) + '-' if sources else ''}{target}-{setting}-seed{config.seed}"


# -- settings are data ------------------------------------------------------------

POOLED = """\
# pooled: one stage on the target and the translated sources together, selected on the target's dev set.
stages:
  target:
    train: [translation, target]
    dev: [target]
target: pretrain
pretrain: null
"""


@pytest.fixture
def user_configs(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "my-configs"
    (folder / "settings").mkdir(parents=True)
    monkeypatch.setenv(USER_CONFIGS_ENV, str(folder))
    return folder


def test_a_setting_added_as_one_yaml_file_trains(user_configs, data_dir, tmp_path):
    (user_configs / "settings" / "pooled.yaml").write_text(POOLED, encoding="utf-8")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "--config", "pooled", "--model", "acn", "--source", "twitter2017", "--target", "cmner",
                                      "--output", str(out), "--json", *_sets(tiny(data_dir))])
    assert result.exit_code == 0, result.output
    metrics = json.loads(RunFolder(out).metrics.read_text(encoding="utf-8"))
    translation = find_translation(data_dir, "twitter2017", "zh", MT)
    translated = len((translation / "train.jsonl").read_text(encoding="utf-8").splitlines())
    assert list(metrics["stages"]) == ["target"] and metrics["setting"] == "pooled"
    stage = metrics["stages"]["target"]
    assert stage["data"] == f"{translation.name} (zh) + cmner (zh)"
    assert stage["train_samples"] == translated + _split_sizes(data_dir, "cmner")["train"]
    assert stage["dev_samples"] == _split_sizes(data_dir, "cmner")["dev"]  # selected on the target's dev set only
    assert load_config("pooled", "acn", source=["twitter2017"], target="cmner").target == load_config("src", "acn", "en-zh").pretrain


def test_the_packaged_settings_declare_what_the_paper_trains_on():
    plans = {name: [(stage.name, stage.train, stage.dev) for stage in setting_plan(name).stages]
             for name in ("tgt_only", "src", "tgt", "src_tgt", "joint", "joint_tgt")}
    assert plans["tgt_only"] == [("target", ("target",), ("target",))]
    assert plans["src_tgt"] == [("pretrain", ("source", "translation"), ("source", "translation")), ("target", ("target",), ("target",))]
    assert plans["joint_tgt"] == [("target", ("target", "source", "translation"), ("target", "source"))]


@pytest.mark.parametrize("stages, message", [
    ("stages:\n  pretrain:\n    train: [source, sorce]\n    dev: [source]\n  target: {train: [target], dev: [target]}\n",
     r"mine.yaml:3: stages.pretrain.train: unknown part 'sorce' \(parts: source, target, translation\)$"),
    ("stages:\n  warmup: {train: [source], dev: [source]}\n  target: {train: [target], dev: [target]}\n",
     r"mine.yaml:2: stages.warmup: unknown stage 'warmup' \(stages: pretrain, target\)$"),
    ("stages:\n  pretrain: {train: [source], dev: [source]}\n", r"mine.yaml:1: stages: no 'target' stage"),
    ("stages:\n  target:\n    train: [target]\n", r"mine.yaml:2: stages.target: dev: list the parts it reads"),
    ("stages:\n  target:\n    train: [target, target]\n    dev: [target]\n", r"mine.yaml:3: stages.target.train: a part is listed twice$"),
    ("stages:\n  target:\n    train: [target]\n    dev: [target]\n    test: [source]\n", r"mine.yaml:5: stages.target.test: unknown key 'test'"),
])
def test_a_mistake_in_a_setting_declaration_is_one_line_naming_the_file_and_line(stages, message, user_configs):
    (user_configs / "settings" / "mine.yaml").write_text(stages, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as err:
        load_config("mine", "acn", source=["twitter2017"], target="cmner")
    assert "\n" not in str(err.value)
    result = CliRunner().invoke(app, ["train", "--config", "mine", "--model", "acn", "--source", "twitter2017", "--target", "cmner", "--dry-run"])
    assert result.exit_code == 2 and "mine.yaml:" in result.output and "Traceback" not in result.output


def test_a_setting_file_that_declares_no_stages_fails_before_training_naming_it(user_configs, data_dir, tmp_path):
    (user_configs / "settings" / "bare.yaml").write_text("target:\n  epochs: 3\n", encoding="utf-8")
    config = load_config("bare", "acn", "en-zh", tiny(data_dir))
    with pytest.raises(ConfigError, match=r"bare.yaml: setting 'bare' declares no 'stages'"):
        train_run(config, tmp_path / "run")


def test_a_user_setting_file_shadows_a_packaged_one(user_configs):
    (user_configs / "settings" / "src.yaml").write_text("stages:\n  target: {train: [source, target], dev: [target]}\n", encoding="utf-8")
    assert [(s.name, s.train) for s in setting_plan("src").stages] == [("target", ("source", "target"))]


# -- multi-dataset joint ----------------------------------------------------------------

def test_joint_takes_any_number_of_sources_selects_on_every_dev_set_and_scores_every_test_set(data_dir, tmp_path):
    out = tmp_path / "joint"
    result = CliRunner().invoke(app, ["train", "--config", "joint", "--model", "acn", "--source", "mmnerd", "--source", "twitter2015",
                                      "--target", "cmner", "--output", str(out), *_sets(tiny(data_dir))], env=WIDE)
    assert result.exit_code == 0, result.output
    metrics = json.loads(RunFolder(out).metrics.read_text(encoding="utf-8"))
    sizes = {name: _split_sizes(data_dir, name) for name in ("cmner", "mmnerd", "twitter2015")}
    stage = metrics["stages"]["target"]
    assert stage["data"] == "cmner (zh) + mmnerd (en) + twitter2015 (en)"
    assert stage["train_samples"] == sum(s["train"] for s in sizes.values())
    assert stage["dev_samples"] == sum(s["dev"] for s in sizes.values())
    assert set(metrics["tests"]) == set(sizes) and metrics["source_datasets"] == ["mmnerd", "twitter2015"]
    for name in ("mmnerd", "twitter2015"):
        predicted = RunFolder(out).prediction(f"test.{name}", ".jsonl").read_text(encoding="utf-8").splitlines()
        assert len(predicted) == sizes[name]["test"]
        assert f"test {name}" in result.output
    f1s = [t["conlleval"]["f1"] for t in metrics["tests"].values()]
    assert metrics["test_macro_f1"] == pytest.approx(sum(f1s) / 3)


# -- grids of pairs -----------------------------------------------------------------------

def test_an_experiment_grid_lists_dataset_pairs(tmp_path):
    pairs = parse_pairs("twitter2017:cmner, cmner:twitter2017,mmnerd+twitter2015:cmner")
    assert pairs == [(("twitter2017",), "cmner"), (("cmner",), "twitter2017"), (("mmnerd", "twitter2015"), "cmner")]
    runs = plan_grid(None, "acn", "tgt_only,joint", 2, tmp_path, pairs=pairs)
    names = [run_dir.name for _, run_dir in runs]
    assert len(names) == len(set(names)) == 3 * 2 * 2
    assert "acn-twitter2017-cmner-tgt_only-seed444" in names and "acn-mmnerd+twitter2015-cmner-joint-seed445" in names
    for bad in ("twitter2017", "a:b:c", "twitter2017:cmner,twitter2017:cmner"):
        with pytest.raises(ConfigError, match="--pairs"):
            parse_pairs(bad)
    with pytest.raises(ConfigError, match="give --direction"):
        plan_grid("en-zh", "acn", "tgt_only", 1, tmp_path, pairs=pairs)


def test_acn_word_vectors_auto_needs_one_source_language(data_dir, tmp_path):
    """``auto`` reads one aligned pair: sources in two languages, or none, are refused in one line; other values are not asked."""
    for sources, target, message in ((["cmner", "twitter2015"], "twitter2017", "the sources are in zh, en"), ([], "mmnerd", "names no pair")):
        config = load_config("joint" if sources else "tgt_only", "acn", source=sources, target=target,
                             overrides=[*tiny(data_dir), "model.word_vectors=auto"])
        with pytest.raises(ConfigError, match=message):
            train_run(config, tmp_path / f"auto-{target}")
    mixed = load_config("joint", "acn", source=["cmner", "twitter2015"], target="twitter2017", overrides=tiny(data_dir))
    assert set(train_run(mixed, tmp_path / "null").metrics["tests"]) == {"cmner", "twitter2015", "twitter2017"}


parts = st.lists(st.sampled_from(["source", "target", "translation", "Source", "sorce", "", "test"]), min_size=0, max_size=4)


@given(parts, parts, st.booleans())
@hypothesis_settings(max_examples=80, deadline=None)
def test_any_declaration_either_parses_to_its_lists_or_is_one_line_naming_the_file_line(train, dev, with_pretrain):
    import tempfile

    from xlingual.train.config import key_lines
    from xlingual.train.config.stages import PARTS, parse_plan

    stages = {"target": {"train": ["target"], "dev": ["target"]}}
    if with_pretrain:
        stages = {"pretrain": {"train": train, "dev": dev}, **stages}
    else:
        stages["target"] = {"train": train, "dev": dev}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mine.yaml"
        path.write_text(yaml.safe_dump({"stages": stages}, sort_keys=False), encoding="utf-8")
        text = path.read_text(encoding="utf-8").splitlines()
        valid = all(lst and set(lst) <= set(PARTS) and len(set(lst)) == len(lst) for lst in (train, dev))
        if valid:
            plan = parse_plan("mine", stages, "mine.yaml", key_lines(path))
            assert [(s.train, s.dev) for s in plan.stages][0] == (tuple(train), tuple(dev))
            return
        with pytest.raises(ConfigError) as err:
            parse_plan("mine", stages, "mine.yaml", key_lines(path))
    message = str(err.value)
    assert "\n" not in message and message.startswith("mine.yaml:")
    line = int(message.split(":")[1])
    stage = "pretrain" if with_pretrain else "target"
    assert text[line - 1].strip().startswith(("train:", "dev:", f"{stage}:")), (message, text)
