"""The ``--ray`` commands through their library entry points, on the in-process fake of ``tests/fake_ray.py``.

What is checked here is the choice and the runtime's life, not Ray itself
(``test_scale_{translate,features,experiment}.py`` run the same commands on a real local runtime): each
command starts Ray at most once, ``xl features extract --ray`` over a data
directory shares one runtime among its datasets, the outputs and messages are
those of the one-process command, and nothing imports ``ray`` without ``--ray``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fake_ray import FakeRay
from ray_support import data_dir_with_a_broken_translation
from typer.testing import CliRunner

from xlingual.cli import app
from xlingual.data.formats import write_samples
from xlingual.data.sample import Sample
from xlingual.testing.synthetic import generated_tweets, write_images

runner = CliRunner()

TINY_ACN = [
    "images=none", "model.word_vectors=null", "model.word_dim=8", "model.char_dim=4", "model.char_filters=2",
    "model.char_kernels=[2]", "model.char_out=4", "model.hidden=8", "epochs=1", "batch_size=4",
]


@pytest.fixture()
def fake_ray(monkeypatch: pytest.MonkeyPatch) -> FakeRay:
    fake = FakeRay()
    monkeypatch.setitem(sys.modules, "ray", fake)
    return fake


@pytest.fixture()
def two_datasets(tmp_path: Path) -> Path:
    """A data directory where CMNER and Twitter2015 each have a dev split and an image folder (2 + 1 images, 2 posts without)."""
    data = tmp_path / "data"
    weibo = [Sample(id=post, tokens=list("北京"), labels=["B-LOC", "I-LOC"], lang="zh") for post in ("L4x7aaJ4n", "L5SRzy4Ez", "Lnoimage00")]
    write_samples(data / "cmner" / "text" / "dev.txt", weibo, "cmner")
    write_images(data / "cmner" / "images", ["L4x7aaJ4n_00gv0wr.jpg", "L5SRzy4Ez_u0dfta3.jpg"])
    tweets = generated_tweets(2)
    write_samples(data / "twitter2015" / "valid.txt", tweets, "twitter")
    write_images(data / "twitter2015" / "images", [f"{tweets[0].id}.jpg"], seed=1)
    return data


def test_features_over_a_data_dir_start_one_runtime_for_all_datasets(fake_ray, two_datasets, one_torch_thread) -> None:
    args = ["features", "extract", "--data-dir", str(two_datasets), "--weights", "random", "--device", "cpu", "--batch-size", "2", "--json", "--ray"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["named"], summary["extracted"], summary["samples"], summary["samples_without_image"]) == (3, 3, 5, 2)
    assert (fake_ray.inits, fake_ray.shutdowns, fake_ray.up) == (1, 1, False)
    assert fake_ray.actors == 2  # one pool per dataset, on the same runtime

    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["cached"] == 3
    assert fake_ray.inits == 1, "nothing to extract, yet Ray was started"


def test_experiment_gives_one_outcome_either_way_and_the_same_failure_line(fake_ray, sample_data_dir, tmp_path, one_torch_thread) -> None:
    """One process trains tgt_only; with --ray it is skipped as done, tgt fails (its translation does not parse) and is reported in the table and last line."""
    from xlingual.scale.experiment import run_experiment as run_anywhere
    from xlingual.scale.runtime import RaySettings
    from xlingual.train.experiment import GridOutcome, run_experiment

    data_dir, broken = data_dir_with_a_broken_translation(sample_data_dir, tmp_path / "data")
    overrides = [*TINY_ACN, f"data.data_dir={data_dir}"]
    sequential = run_experiment("en-zh", "acn", "tgt_only", 1, tmp_path, overrides)
    assert isinstance(sequential, GridOutcome) and not sequential.failures
    assert len(sequential.results) == 1 and not sequential.results[0].skipped
    assert fake_ray.inits == 0

    on_ray = run_anywhere("en-zh", "acn", "tgt_only,tgt", 1, tmp_path, overrides, ray=RaySettings())
    assert [r.run_dir.name for r in on_ray.results] == [sequential.results[0].run_dir.name] and on_ray.results[0].skipped
    assert on_ray.results[0].metrics["test"] == sequential.results[0].metrics["test"]
    assert list(on_ray.failures) == ["acn-en-zh-tgt-img_none-seed444"]
    assert (fake_ray.inits, fake_ray.shutdowns) == (1, 1)

    args = ["experiment", "--direction", "en-zh", "--models", "acn", "--configs", "tgt_only,tgt", "--seeds", "1",
            "--output", str(tmp_path), *[a for o in overrides for a in ("--set", o)], "--ray"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "skipped (done)" in result.output and "failed:" in result.output  # the table; its cells wrap the error
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("error: 1 of 2 runs failed; the others are kept, run the same command again to redo these. "
                           f"acn-en-zh-tgt-img_none-seed444: {broken}:1: no TAB"), last
    assert (fake_ray.inits, fake_ray.shutdowns, fake_ray.up) == (2, 2, False)


def test_translate_with_and_without_ray_writes_the_same_files(fake_ray, sample_data_dir, tmp_path) -> None:
    base = ["translate", "--src", "en", "--tgt", "zh", "--data-dir", str(sample_data_dir), "--translator", "xlingual.translate.glossary:sample_en_zh"]
    one = runner.invoke(app, [*base, "--output", str(tmp_path / "one")])
    assert one.exit_code == 0, one.output
    assert fake_ray.inits == 0
    sharded = runner.invoke(app, [*base, "--output", str(tmp_path / "ray"), "--ray", "--shard-size", "8"])
    assert sharded.exit_code == 0, sharded.output
    assert (fake_ray.inits, fake_ray.shutdowns, fake_ray.up) == (1, 1, False)
    for name in ("train.txt", "train.jsonl", "valid.txt", "test.txt", "preview.html"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "ray" / name).read_bytes(), name
    assert len(list((tmp_path / "ray" / ".cache" / "shards").glob("*.json"))) == 5  # 18/6/6 posts in shards of 8


def test_no_command_imports_ray_without_the_option(sample_data_dir, tmp_path) -> None:
    code = f"""
import sys
from typer.testing import CliRunner
from xlingual.cli import app
for args in (["experiment", "--help"], ["features", "extract", "--help"],
             ["translate", "--src", "en", "--tgt", "zh", "--data-dir", {str(sample_data_dir)!r}, "--output", {str(tmp_path / "t")!r},
              "--translator", "xlingual.translate.glossary:sample_en_zh", "--json"]):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (args, result.output)
print("ray" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.splitlines()[-1] == "False"
