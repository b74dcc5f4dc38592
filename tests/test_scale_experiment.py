"""``xl experiment --ray`` on the shared local Ray runtime: the sequential grid's run folders, a failed run reported, finished runs skipped."""

from __future__ import annotations

import json
from pathlib import Path

from ray_support import data_dir_with_a_broken_translation, needs_ray, shared_ray
from typer.testing import CliRunner

from xlingual.cli import app

pytestmark = needs_ray

TINY_ACN = [
    "images=none", "model.word_vectors=null", "model.word_dim=8", "model.char_dim=4", "model.char_filters=2",
    "model.char_kernels=[2]", "model.char_out=4", "model.hidden=8", "epochs=1", "batch_size=4",
]


def files_of(run_dir: Path) -> set[str]:
    return {str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file()}


def test_grid_runs_as_tasks_into_the_sequential_folders_and_a_failed_run_does_not_stop_the_others(sample_data_dir, tmp_path, one_torch_thread) -> None:
    """tgt reads a translated corpus that does not parse, so it fails; the two tgt_only seeds train."""
    from xlingual.train.experiment import run_experiment

    shared_ray()
    data_dir, broken = data_dir_with_a_broken_translation(sample_data_dir, tmp_path / "data")
    overrides = [*TINY_ACN, f"data.data_dir={data_dir}"]
    sequential = run_experiment("en-zh", "acn", "tgt_only", 2, tmp_path / "seq", overrides)
    args = ["experiment", "--direction", "en-zh", "--models", "acn", "--configs", "tgt_only,tgt", "--seeds", "2",
            "--output", str(tmp_path / "ray"), *[a for o in overrides for a in ("--set", o)], "--ray"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    last = result.output.strip().splitlines()[-1]
    assert "2 of 4 runs failed" in last and f"acn-en-zh-tgt-img_none-seed444: {broken}:1: no TAB" in last, last
    for run in sequential.results:
        twin = tmp_path / "ray" / run.run_dir.name
        assert files_of(twin) == files_of(run.run_dir)
        metrics = json.loads((twin / "metrics.json").read_text())
        assert metrics["test"] == run.metrics["test"] and metrics["dev"] == run.metrics["dev"]
        assert json.loads((twin / "environment.json").read_text())["command"] == json.loads((run.run_dir / "environment.json").read_text())["command"]
    assert not list((tmp_path / "ray").glob("acn-en-zh-tgt-img_none-seed*/metrics.json"))

    again = CliRunner().invoke(app, [*args[:6], "tgt_only", *args[7:]])
    assert again.exit_code == 0, again.output
    assert again.output.count("skipped (done)") == 2
