"""Fail before training, not hours in: every input is checked before a run or a grid creates anything.

``missing_inputs`` lists all a run needs that is not there (split files,
translations, feature caches, word vectors, pre-trained weights), each with
the command that makes it; ``xl experiment --dry-run`` prints them for every
cell, ``xl experiment`` refuses to start while one is missing, and a run that
fails before training began leaves no folder behind.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from xlingual.lock import LOCK_NAME
from xlingual.cli import app
from xlingual.errors import ConfigError
from xlingual.stage_inputs import Missing
from xlingual.train.config import load_config
from xlingual.train.inputs import check_inputs, missing_inputs
from xlingual.workspace import DataDir

TINY_ACN = [
    "model.word_dim=8", "model.char_dim=4", "model.char_filters=2", "model.char_kernels=[2]", "model.char_out=4",
    "model.hidden=8", "epochs=1", "batch_size=4",
]
INPUTS = ("translation", "features", "word_vectors", "target_test")
"""The inputs the property test removes: one of each kind a run finds through its own function."""


def full_data_dir(sample_data_dir: Path, root: Path) -> tuple[Path, Path]:
    """A data directory where an ACN src_tgt en->zh run with images has every input (contents are not read); and its vectors file."""
    shutil.copytree(sample_data_dir, root)
    layout = DataDir(root)
    translation = layout.translation("twitter2015", "en", "zh", "mt")
    translation.mkdir(parents=True)
    for name in ("train.txt", "valid.txt", "test.txt"):
        (translation / name).write_text("", encoding="utf-8")
    layout.features("vgg16").mkdir(parents=True)
    vectors = root / "vectors.vec"
    vectors.write_text("1 2\nx 0.1 0.2\n", encoding="utf-8")
    return root, vectors


def remove(root: Path, vectors: Path, name: str) -> None:
    layout = DataDir(root)
    if name == "translation":
        shutil.rmtree(layout.translation("twitter2015", "en", "zh", "mt"))
    elif name == "features":
        layout.features("vgg16").rmdir()
    elif name == "word_vectors":
        vectors.unlink()
    else:
        layout.split_file("cmner", "test").unlink()


def config_for(root: Path, vectors: Path, setting: str = "tgt", *extra: str):
    return load_config(setting, "acn", "en-zh", [*TINY_ACN, f"data.data_dir={root}", f"model.word_vectors={vectors}", *extra])


def kind_of(item: Missing, root: Path, vectors: Path) -> str:
    layout = DataDir(root)
    if "translated" in item.what:
        return "translation"
    if str(layout.features("vgg16")) in item.what:
        return "features"
    if str(vectors) in item.what:
        return "word_vectors"
    assert str(layout.split_file("cmner", "test")) in item.what, item
    return "target_test"


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(removed=st.sets(st.sampled_from(INPUTS)))
def test_the_check_lists_exactly_the_inputs_that_are_missing_each_with_its_command(removed, sample_data_dir, tmp_path_factory):
    root, vectors = full_data_dir(sample_data_dir, tmp_path_factory.mktemp("check") / "data")
    for name in removed:
        remove(root, vectors, name)
    config = config_for(root, vectors)
    before = sorted(root.rglob("*"))
    missing = missing_inputs(config)
    assert sorted(kind_of(item, root, vectors) for item in missing) == sorted(removed)
    assert all(item.command and item.error and not item.built for item in missing)
    assert sorted(root.rglob("*")) == before  # nothing built, nothing written
    if removed:
        with pytest.raises(ConfigError) as caught:
            check_inputs(config)
        message = str(caught.value)
        assert "\n" not in message
        assert all((item.command in message) if len(missing) > 1 else (message == item.error) for item in missing)
    else:
        assert check_inputs(config) == []


def test_the_check_creates_and_builds_nothing_and_build_missing_says_what_the_run_makes(sample_data_dir, tmp_path):
    root, vectors = full_data_dir(sample_data_dir, tmp_path / "data")
    remove(root, vectors, "translation")
    remove(root, vectors, "features")
    before = sorted(root.rglob("*"))
    config = config_for(root, vectors, "tgt", "data.build_missing=true")
    made = check_inputs(config)
    assert sorted(kind_of(item, root, vectors) for item in made) == ["features", "translation"]
    assert all(item.built for item in made)
    assert sorted(root.rglob("*")) == before


def test_pretrained_weights_are_checked_in_the_local_cache_or_folder(sample_data_dir, tmp_path):
    encoder = tmp_path / "encoder"
    sets = ["images=none", f"data.data_dir={sample_data_dir}"]
    (missing,) = missing_inputs(load_config("tgt_only", "umt", "en-zh", [*sets, f"model.encoder={encoder}"]))
    assert "model.encoder" in missing.what and missing.command == "--set model.encoder=PATH" and not missing.built
    encoder.mkdir()
    (encoder / "config.json").write_text("{}", encoding="utf-8")
    assert missing_inputs(load_config("tgt_only", "umt", "en-zh", [*sets, f"model.encoder={encoder}"])) == []
    # a hub id that is not in the (test session's empty) cache, with the hub off
    (missing,) = missing_inputs(load_config("tgt_only", "2mner", "en-zh", [*sets, "model.encoder=someone/no-such-model"]))
    assert missing.command == "hf download someone/no-such-model" and not missing.built


def _grid(root: Path, output: Path, *extra: str) -> list[str]:
    args = ["experiment", "--direction", "en-zh", "--models", "acn", "--configs", "tgt_only,tgt", "--seeds", "2", "--output", str(output),
            "--data-dir", str(root)]
    return [*args, *[a for s in [*TINY_ACN, "model.word_vectors=null", *extra] for a in ("--set", s)]]


def test_experiment_dry_run_lists_every_run_and_all_missing_inputs_with_their_commands_and_trains_nothing(sample_data_dir, tmp_path):
    root, vectors = full_data_dir(sample_data_dir, tmp_path / "data")
    remove(root, vectors, "translation")
    remove(root, vectors, "features")
    output = tmp_path / "runs"
    result = CliRunner().invoke(app, [*_grid(root, output), "--dry-run"])
    assert result.exit_code == 2, result.output
    for setting in ("tgt_only", "tgt"):
        for seed in (444, 445):
            assert f"{output / f'acn-en-zh-{setting}-seed{seed}'}" in result.output
    assert f"xl translate --dataset twitter2015 --tgt zh --data-dir {root}" in result.output
    assert f"xl features extract --data-dir {root} --backbone vgg16" in result.output
    assert "nothing was trained" in result.output.strip().splitlines()[-1]
    assert not output.exists()

    # the real command refuses at once, naming both, before the first (complete) cell trains
    result = CliRunner().invoke(app, _grid(root, output))
    assert result.exit_code == 2, result.output
    last = result.output.strip().splitlines()[-1]
    assert "2 inputs are missing" in last and "xl translate" in last and "xl features extract" in last, last
    assert not output.exists()


def test_experiment_dry_run_passes_when_every_input_is_there_or_made_by_the_runs(sample_data_dir, tmp_path):
    root, vectors = full_data_dir(sample_data_dir, tmp_path / "data")
    remove(root, vectors, "features")
    output = tmp_path / "runs"
    result = CliRunner().invoke(app, [*_grid(root, output, "data.translation_model=mt"), "--build-missing", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "made by the runs themselves" in result.output and "vgg16" in result.output
    assert "every input is there" in result.output
    assert not output.exists() and not DataDir(root).features("vgg16").exists()


# -- nothing that looks like a run unless it is one --------------------------------------

def _tiny_run(sample_data_dir: Path, *extra: str):
    return load_config("tgt_only", "acn", "en-zh", [*TINY_ACN, "images=none", "model.word_vectors=null", f"data.data_dir={sample_data_dir}",
                                                     "data.max_samples=8", *extra])


def test_a_run_missing_an_input_creates_no_folder(sample_data_dir, tmp_path):
    from xlingual.train.run import train_run

    config = _tiny_run(sample_data_dir, "model.word_vectors=/no/such/vectors.vec")
    with pytest.raises(ConfigError, match="model.word_vectors: /no/such/vectors.vec does not exist"):
        train_run(config, tmp_path / "runs" / "one")
    assert not (tmp_path / "runs" / "one").exists()


class _RefusingModel:
    @staticmethod
    def build(config, samples):
        raise ConfigError("model.hidden: refused by the model at build time")


def test_a_run_that_fails_before_training_began_leaves_no_folder_and_keeps_a_folder_that_was_there(sample_data_dir, tmp_path, monkeypatch):
    from xlingual.train import run as run_module

    monkeypatch.setattr(run_module, "model_class", lambda model_type: _RefusingModel)
    config = _tiny_run(sample_data_dir)
    fresh = tmp_path / "runs" / "fresh"
    left_while_locked: list[list[str]] = []
    real_remove = run_module._remove_unstarted

    def remove(run_dir):
        real_remove(run_dir)
        left_while_locked.append(sorted(p.name for p in run_dir.iterdir()))

    monkeypatch.setattr(run_module, "_remove_unstarted", remove)
    with pytest.raises(ConfigError, match="refused by the model"):
        run_module.train_run(config, fresh)
    assert not fresh.exists()
    # the run's files go at once, the lock file only with the lock: no second process can lock a folder this one still holds
    assert left_while_locked == [[LOCK_NAME]]

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("kept", encoding="utf-8")
    with pytest.raises(ConfigError, match="refused by the model"):
        run_module.train_run(config, mine)
    assert (mine / "notes.txt").read_text(encoding="utf-8") == "kept"  # a folder that existed before is never removed
    empty = tmp_path / "made-by-the-user"
    empty.mkdir()
    with pytest.raises(ConfigError, match="refused by the model"):
        run_module.train_run(config, empty)
    assert empty.is_dir()  # not even when it was empty


def test_a_run_that_began_training_keeps_its_folder(sample_data_dir, tmp_path, monkeypatch):
    from xlingual.train import run as run_module
    from xlingual.train.engine import StageTrainer

    def fail_in_training(self, *args, **kwargs):
        raise RuntimeError("failed while training")

    monkeypatch.setattr(StageTrainer, "train", fail_in_training)
    run_dir = tmp_path / "runs" / "began"
    with pytest.raises(RuntimeError, match="failed while training"):
        run_module.train_run(_tiny_run(sample_data_dir), run_dir)
    assert (run_dir / "run.log").is_file() and (run_dir / "config.yaml").is_file()
