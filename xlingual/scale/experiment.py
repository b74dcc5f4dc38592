"""``xl experiment --ray``: every run of the grid a Ray task (one GPU each, or one CPU where the cluster has none).

The grid is planned as in the sequential command
(:func:`xlingual.train.experiment.plan_grid`: same configs, same run folders)
and each run is :func:`~xlingual.train.run.train_run` with ``resume=True`` in a
task, so a finished run is skipped and an interrupted one continues from its
checkpoint. A run that fails is reported with its error; the others go on.
The output folder must be on a file system every node sees.
"""

from __future__ import annotations

from pathlib import Path

from xlingual.scale.runtime import RaySettings, import_ray, run_as_tasks
from xlingual.train.config import TrainConfig
from xlingual.train.experiment import DatasetPair, GridOutcome, plan_grid
from xlingual.train.run import RunResult


def _train(run: tuple[TrainConfig, Path]) -> RunResult:
    from xlingual.train.run import train_run

    config, run_dir = run
    return train_run(config, run_dir, resume=True)


def run_experiment_on_ray(direction: str | None, models: str, settings: str, seeds: int, output: str | Path,
                          overrides: list[str] | None, ray: RaySettings, pairs: list[DatasetPair] | None = None) -> GridOutcome:
    """The grid of :func:`~xlingual.train.experiment.run_experiment`, its runs as Ray tasks; see the module docstring.

    Called by ``run_experiment(..., ray=...)``, the entry point for both ways of running the grid.
    """
    import_ray()
    runs = plan_grid(direction, models, settings, seeds, output, overrides, pairs)
    outcome = run_as_tasks(ray, _train, [(config.run_name, (config, run_dir)) for config, run_dir in runs], desc="grid runs")
    names = [config.run_name for config, _ in runs]
    return GridOutcome([outcome.results[n] for n in names if n in outcome.results],
                       {n: outcome.failures[n] for n in names if n in outcome.failures}, outcome.seconds)
