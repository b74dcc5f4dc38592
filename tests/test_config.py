"""Layered packaged configs, their validation and ``--set`` overrides.

``fixtures/train_configs.json`` is the ``config.yaml`` text a run stored for
every packaged model x direction x setting (and a few ``--set`` combinations)
when each of the 16 configs was still a flat file of its own; the layered
files must resolve to exactly those bytes.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from xlingual.cli import app
from xlingual.errors import ConfigError
from xlingual.train.config import (PAPER_SETTINGS, StageConfig, apply_overrides, config_from_dict, config_yaml, layer_files,
                                   load_config, packaged_config_names, packaged_values)
from xlingual.train.config import packaged
from xlingual.train.config.packaged import merge

from config_helpers import file_error

SNAPSHOT = json.loads((Path(__file__).parent / "fixtures" / "train_configs.json").read_text(encoding="utf-8"))


def _resolve(key: str) -> str:
    name, _, sets = key.partition(" --set ")
    model, direction, setting = name.split("-", 1)[0], name.split("-", 1)[1][:5], name.split("-", 1)[1][6:]
    return config_yaml(load_config(setting, model, direction, sets.split() if sets else []))


@pytest.mark.parametrize("key", sorted(SNAPSHOT))
def test_layered_configs_resolve_to_the_bytes_a_run_stored_before(key):
    assert _resolve(key) == SNAPSHOT[key]


def test_the_snapshot_covers_every_paper_config():
    paper = {f"{m}-{d}-{s}" for m in ("acn", "umt") for d in ("en-zh", "zh-en") for s in PAPER_SETTINGS}
    assert paper <= set(SNAPSHOT) and paper <= set(packaged_config_names())


def test_each_config_is_a_base_and_small_deltas():
    folder = packaged.configs_folder()
    assert [p.relative_to(folder).as_posix() for p in layer_files("umt", "zh-en", "src")] == [
        "models/umt.yaml", "directions/zh-en.yaml", "models/umt.zh-en.yaml", "settings/src.yaml"]
    deltas = [p for kind in ("directions", "settings") for p in (folder / kind).glob("*.yaml")] + list(folder.glob("models/*.*.yaml"))
    assert deltas and all(len(yaml.safe_load(p.read_text(encoding="utf-8"))) <= 3 for p in deltas)
    for path in folder.glob("models/*.*.yaml"):  # a model's direction delta names a packaged model and direction
        model, direction = path.name[:-5].split(".")
        assert model in packaged.model_types() and direction in packaged.directions(), path.name


@pytest.mark.parametrize("model", ["acn", "umt"])
def test_tgt_only_trains_the_target_from_scratch_with_the_pretraining_optimisation(model):
    for direction in ("en-zh", "zh-en"):
        src, only = load_config("src", model, direction), load_config("tgt_only", model, direction)
        assert only.target == src.pretrain  # UMT zh-en's 35 fine-tuning epochs do not apply
        assert only.pretrain == StageConfig()  # no pre-training stage: the unused section keeps the defaults


def test_a_new_setting_and_a_new_model_are_one_file_each(tmp_path, monkeypatch):
    folder = tmp_path / "configs"
    shutil.copytree(packaged.configs_folder(), folder)
    (folder / "settings" / "pooled.yaml").write_text("setting: pooled\ntarget:\n  epochs: 10\n", encoding="utf-8")
    (folder / "models" / "newmodel.yaml").write_text(
        "model_type: newmodel\nseed: 7\nbackbone: resnet152\nmodel:\n  hidden: 8\npretrain:\n  lr: 2.0e-05\n", encoding="utf-8")
    before_models, before_settings = packaged.model_types(), packaged.settings()
    monkeypatch.setattr(packaged, "configs_folder", lambda: folder)
    assert packaged.settings() == (*before_settings, "pooled") and packaged.settings()[:4] == PAPER_SETTINGS
    config = load_config("pooled", "newmodel", "zh-en", ["model.hidden=16"])
    assert (config.name, config.seed, config.model, config.target.epochs, config.pretrain.lr) == ("newmodel-zh-en-pooled", 7, {"hidden": 16}, 10, 2e-5)
    assert load_config("pooled", "umt", "en-zh").target.lr == pytest.approx(5e-5)
    assert len(packaged_config_names()) == (len(before_models) + 1) * 2 * (len(before_settings) + 1)


# -- merge rules and overrides -------------------------------------------------

def test_merge_rules():
    below = {"a": {"x": 1, "y": 2}, "b": {"x": 3}, "c": 4}
    assert merge(below, {"a": {"y": 5, "z": 6}, "c": None}) == {"a": {"x": 1, "y": 5, "z": 6}, "b": {"x": 3}, "c": None}
    assert merge(below, {"b": None}) == {"a": {"x": 1, "y": 2}, "c": 4}  # a section set to null goes back to the defaults
    assert merge(below, {"b": "a", "a": None}) == {"b": {"x": 1, "y": 2}, "c": 4}  # copied as it stood below
    with pytest.raises(ConfigError, match="b: 'c' is not a section to copy"):
        merge(below, {"b": "c"}, "settings/x.yaml")


keys = st.sampled_from(["a", "b", "c", "d"])
leaves = st.one_of(st.integers(-3, 3), st.booleans(), st.floats(allow_nan=False))  # no null, no text (a section name)
trees = st.recursive(leaves, lambda inner: st.dictionaries(keys, inner, max_size=3), max_leaves=8)
mappings = st.dictionaries(keys, trees, max_size=4)


def recursive_update(below, delta):
    """The oracle: mappings merge key by key, anything else replaces."""
    out = dict(below)
    for key, value in delta.items():
        out[key] = recursive_update(below[key], value) if isinstance(below.get(key), dict) and isinstance(value, dict) else value
    return out


def lookup(tree, path):
    for part in path:
        tree = tree[part]
    return tree


@given(mappings, mappings)
def test_a_delta_of_plain_values_is_a_recursive_update_that_changes_neither_input(below, delta):
    before = (json.dumps(below, sort_keys=True), json.dumps(delta, sort_keys=True))
    assert merge(below, delta) == recursive_update(below, delta)
    assert (json.dumps(below, sort_keys=True), json.dumps(delta, sort_keys=True)) == before


@given(st.lists(st.tuples(st.sampled_from(["lr", "epochs", "target.lr", "model.hidden", "data.max_samples", "seed"]),
                          st.integers(1, 99)), max_size=6))
def test_overrides_land_where_their_key_points_and_the_last_one_wins(pairs):
    values = packaged_values("acn", "en-zh", "src")
    result = apply_overrides(values, [f"{key}={value}" for key, value in pairs])
    assert values == packaged_values("acn", "en-zh", "src")  # the input is not changed
    expected: dict[str, int] = {}
    for key, value in pairs:
        for path in (["pretrain." + key, "target." + key] if key in ("lr", "epochs") else [key]):
            expected[path] = value
    for path, value in expected.items():
        assert lookup(result, path.split(".")) == value


# -- errors ----------------------------------------------------------------------

@pytest.mark.parametrize("overrides, message", [
    (["bogus=1"], "--set bogus=1: unknown key(s) bogus (known: model_type, "),
    (["target.bogus=1"], "--set target.bogus=1: target: unknown key(s) bogus (known: epochs, "),
    (["target.lr=abc"], "--set target.lr=abc: target.lr: 'abc' is not a number"),
    (["epochs=2.5"], "--set epochs=2.5: pretrain.epochs and target.epochs: '2.5' is not a whole number"),
    (["images=some"], "--set images=some: images: 'some' is not one of none, one, all"),
    (["optimizer=sgd"], "--set optimizer=sgd: pretrain.optimizer and target.optimizer: 'sgd' is not one of adam, adamw"),
    (["model=5"], "--set model=5: model: expected a mapping, got int"),
    (["data.build_missing=maybe"], "--set data.build_missing=maybe: data.build_missing: 'maybe' is not true or false"),
    (["seed=x", "images=some"], "--set seed=x: seed: 'x' is not a number (and 1 more error)"),
])
def test_errors_are_one_line_and_name_the_field_and_the_option(overrides, message):
    with pytest.raises(ConfigError) as err:
        load_config("src", "umt", "en-zh", overrides)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_errors_in_a_file_name_the_file_and_line(tmp_path):
    assert re.search(r"mine.yaml:4: pretrain: unknown key\(s\) speed .* \(and 1 more error\)$", file_error(tmp_path, "setting: src\npretrain:\n  lr: fast\n  speed: 3\n"))
    assert re.search(r"mine.yaml:3: pretrain.lr: 'fast' is not a number$", file_error(tmp_path, "setting: src\npretrain:\n  lr: fast\n"))
    assert re.match(r"--model bert: model_type: 'bert' is not one of acn, umt, 2mner$", file_error(tmp_path, "setting: src\n", model_type="bert"))
    with pytest.raises(ConfigError, match=r"^run/config.yaml: expected a mapping, got list$"):
        config_from_dict([1], where="run/config.yaml")


def test_a_mistake_in_a_packaged_file_names_that_file_and_line(tmp_path, monkeypatch):
    folder = tmp_path / "configs"
    shutil.copytree(packaged.configs_folder(), folder)
    (folder / "models" / "2mner.yaml").write_text("model_type: 2mner\nmodel:\n  hidden: 8\npretrain:\n  epoch: 3\n", encoding="utf-8")
    (folder / "settings" / "joint.yaml").write_text("setting: joint\ntarget: pretrain\n", encoding="utf-8")
    monkeypatch.setattr(packaged, "configs_folder", lambda: folder)
    with pytest.raises(ConfigError, match=r"^models/2mner.yaml:5: pretrain: unknown key\(s\) epoch "):
        load_config("src", "2mner", "en-zh")
    sources = packaged.resolve_packaged("2mner", "en-zh", "joint")[1]
    assert sources["pretrain.epoch"] == "models/2mner.yaml:5"
    assert sources["target"] == "settings/joint.yaml:2" and "target.epoch" not in sources  # the copy's origin is the copy


def test_an_unquoted_no_is_the_mixed_precision_off_switch():
    assert load_config("src", "acn", "en-zh", ["mixed_precision=no"]).mixed_precision == "no"


def test_the_cli_reports_an_unknown_key_in_one_line_with_status_2():
    result = CliRunner().invoke(app, ["train", "--config", "src", "--model", "acn", "--set", "taget.lr=1", "--dry-run"])
    assert result.exit_code == 2 and "unknown key(s) taget" in result.output and "Traceback" not in result.output


# -- bounds: finite numbers, no negative counts, no YAML aliases --------------------

NON_FINITE = ["nan", ".nan", "inf", "-inf", ".inf", "-.Inf", "NaN", "infinity"]
FLOAT_KEYS = ["lr", "target.lr", "max_grad_norm", "weight_decay", "warmup_ratio", "model.dropout", "model.hidden",
              "model.char_kernels=[2,{}]"]


@given(key=st.sampled_from(FLOAT_KEYS), value=st.sampled_from(NON_FINITE))
def test_a_non_finite_number_anywhere_is_a_one_line_error_naming_the_option(key, value):
    option = key.format(value) if "{}" in key else f"{key}={value}"
    with pytest.raises(ConfigError) as err:
        load_config("tgt_only", "acn", "en-zh", [option])
    assert str(err.value).startswith(f"--set {option}: ") and "finite number" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("option, message", [
    ("data.max_samples=-3", "data.max_samples: must be at least 0, not -3"),
    ("seed=-1", "seed: must be at least 0, not -1"),
    ("seed=4294967296", "seed: must be less than 4294967296"),
    ("max_steps=-1", "pretrain.max_steps and target.max_steps: must be at least 0"),
    ("save_every_steps=-5", "save_every_steps: must be at least 0"),
    ("eval_every_steps=-2", "eval_every_steps: must be at least 0"),
    ("max_grad_norm=-1", "max_grad_norm: must be at least 0"),
])
def test_negative_counts_and_seeds_are_one_line_errors(option, message):
    with pytest.raises(ConfigError, match=f"^--set {option}: .*{message}"):
        load_config("tgt_only", "acn", "en-zh", [option])


@pytest.mark.parametrize("option", ["data.max_samples=-3", "seed=-1", "model.dropout=nan", "lr=inf"])
def test_the_cli_reports_bad_numbers_in_one_line_even_when_training(option, tmp_path):
    result = CliRunner().invoke(app, ["train", "--config", "tgt_only", "--model", "acn", "--set", option, "--output", str(tmp_path / "run")])
    assert result.exit_code == 2 and f"--set {option}" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_finite_numbers_and_text_in_the_model_section_pass():
    config = load_config("tgt_only", "acn", "en-zh", ["model.dropout=0.1", "model.word_vectors=data/x.vec", "lr=1e-4"])
    assert config.model["dropout"] == 0.1 and config.model["word_vectors"] == "data/x.vec"


BILLION_LAUGHS = "model_type: acn\nmodel:\n  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"  {name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n" for previous, name in zip("abcdefghi", "bcdefghij"))


def test_a_yaml_alias_bomb_is_refused_at_its_first_alias_naming_the_file_and_line(tmp_path):
    """Refused while parsing, before anything expands (unbounded, the expansion takes minutes and gigabytes)."""
    path = tmp_path / "bomb.yaml"
    path.write_text(BILLION_LAUGHS, encoding="utf-8")
    result = CliRunner().invoke(app, ["train", "--config", str(path), "--dry-run"])
    assert result.exit_code == 2 and f"{path}:4: " in result.output and "alias *a is not allowed" in result.output
    with pytest.raises(ConfigError, match=r"--set model.x=\[&a \[1\], \*a\]: alias \*a is not allowed"):
        load_config("tgt_only", "acn", "en-zh", ["model.x=[&a [1], *a]"])
    anchors_only = tmp_path / "anchor.yaml"
    anchors_only.write_text("model_type: &m acn\nseed: 3\n", encoding="utf-8")  # an anchor alone expands nothing
    assert load_config(anchors_only).seed == 3


# -- one parse per config file version -------------------------------------------

def _count_parses(monkeypatch) -> "Counter[Path]":
    """Every parse of a config file from now on, by path (the per-version cache starts empty)."""
    from collections import Counter

    from xlingual.train.config import files

    parses: Counter[Path] = Counter()
    parse = files.parse_config_file

    def counting(path):
        parses[Path(path)] += 1
        return parse(path)

    files._parsed_version.cache_clear()
    monkeypatch.setattr(files, "parse_config_file", counting)
    return parses


@pytest.mark.parametrize("model, direction, setting", [("acn", "zh-en", "src_tgt"), ("umt", "en-zh", "tgt"), ("2mner", "en-zh", "joint")])
def test_a_run_parses_each_config_file_once(model, direction, setting, monkeypatch):
    from xlingual.train.config.stages import check_setting, setting_plan

    parses = _count_parses(monkeypatch)
    result = CliRunner().invoke(app, ["train", "--config", setting, "--model", model, "--direction", direction, "--dry-run"])
    assert result.exit_code == 0, result.output
    config = load_config(setting, model, direction)  # what a run resolves, checks and reads its stage plan from
    assert check_setting(config.setting) == setting_plan(config.setting) == setting_plan(config.setting)
    assert set(parses) == set(layer_files(model, direction, setting))
    assert all(count == 1 for count in parses.values()), parses


def test_an_edited_setting_file_is_read_again(tmp_path, monkeypatch):
    import os

    from xlingual.train.config.stages import setting_plan

    folder = tmp_path / "mine"
    (folder / "settings").mkdir(parents=True)
    monkeypatch.setenv(packaged.USER_CONFIGS_ENV, str(folder))
    path = folder / "settings" / "pooled.yaml"
    path.write_text("stages:\n  target: {train: [target], dev: [target]}\n", encoding="utf-8")
    assert setting_plan("pooled").stages[0].train == ("target",)
    path.write_text("stages:\n  target: {train: [source, target], dev: [target]}\n", encoding="utf-8")  # a new size
    assert setting_plan("pooled").stages[0].train == ("source", "target")
    before = path.stat().st_mtime_ns
    path.write_text("stages:\n  target: {train: [target, source], dev: [target]}\n", encoding="utf-8")  # same size, later
    os.utime(path, ns=(before + 10**9, before + 10**9))
    assert setting_plan("pooled").stages[0].train == ("target", "source")
    assert load_config("pooled", "acn", source=["twitter2017"], target="cmner").setting == "pooled"


def test_what_a_caller_does_to_a_read_config_does_not_reach_the_next_reader():
    from xlingual.train.config.files import read_config_file

    path = packaged.config_file("settings", "src_tgt")
    first = read_config_file(path)
    expected = copy.deepcopy(first.values), dict(first.lines)
    first.values.clear()
    first.lines.clear()
    packaged.resolve_packaged("acn", "en-zh", "src_tgt")  # drops the stages from the mapping it merges
    again = read_config_file(path)
    assert (again.values, again.lines) == expected and "stages" in again.values


def test_a_key_written_twice_in_a_config_is_refused_at_its_second_line(tmp_path):
    """Configs are read as every file is (xlingual.safe_yaml): YAML would keep the last value silently."""
    message = file_error(tmp_path, "setting: src\npretrain:\n  lr: 0.1\n  epochs: 2\n  lr: 0.2\n")
    assert re.match(r".*mine\.yaml:5: not valid YAML \(key 'lr' is written twice\)$", message)
