"""``xl experiment``'s entry point, and its ``--ray`` path: every run of the grid a Ray task (one GPU each, or one CPU where the cluster has none).

The grid is planned as in the sequential command
(:func:`xlingual.train.experiment.plan_grid`: same configs, same run folders)
and each run is :func:`~xlingual.train.run.train_run` with ``resume=True`` in a
task (:class:`RayTasks`, the stage's
:data:`~xlingual.train.experiment.GridRunner` for Ray), so a finished run is
skipped and an interrupted one continues from its checkpoint. A run that fails
is reported with its error; the others go on. The output folder must be on a
file system every node sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from pathlib import Path

from xlingual.scale.runtime import RaySettings, import_ray, ray_session, run_as_tasks
from xlingual.train.config import TrainConfig
from xlingual.train.experiment import DatasetPair, GridOutcome, GridRunner, run_experiment as run_grid, run_in_order
from xlingual.train.plan import Plan, run_plan

if TYPE_CHECKING:
    from xlingual.train.run import RunResult


def _train(run: tuple[TrainConfig, Path]) -> RunResult:
    from xlingual.train.run import train_run

    config, run_dir = run
    return train_run(config, run_dir, resume=True)


@dataclass(frozen=True)
class RayTasks:
    """A :data:`~xlingual.train.experiment.GridRunner`: each run a Ray task; see the module docstring."""

    settings: RaySettings

    def __call__(self, runs: list[tuple[TrainConfig, Path]]) -> GridOutcome:
        outcome = run_as_tasks(self.settings, _train, [(config.run_name, (config, run_dir)) for config, run_dir in runs], desc="grid runs")
        names = [config.run_name for config, _ in runs]
        return GridOutcome([outcome.results[n] for n in names if n in outcome.results],
                           {n: outcome.failures[n] for n in names if n in outcome.failures}, outcome.seconds)


def grid_runner(ray: RaySettings | None) -> GridRunner:
    """One run after another here, or with ``ray`` each run a Ray task (Ray imported first: without it, one line saying how to install it)."""
    if ray is None:
        return run_in_order
    import_ray()
    return RayTasks(ray)


def run_experiment(direction: str | None, models: str, settings: str, seeds: int, output: str | Path,
                   overrides: list[str] | None = None, ray: RaySettings | None = None,
                   pairs: list[DatasetPair] | None = None) -> GridOutcome:
    """``xl experiment``: :func:`xlingual.train.experiment.run_experiment` one run after another, or with ``ray`` each run a Ray task."""
    with ray_session(ray):  # a named cluster is reached first: a wrong address is named before the grid is checked or planned
        return run_grid(direction, models, settings, seeds, output, overrides, grid_runner(ray), pairs)


def run_experiment_plan(plan: Plan, output: str | Path | None = None, overrides: list[str] | None = None,
                        ray: RaySettings | None = None) -> GridOutcome:
    """``xl experiment --plan``: :func:`xlingual.train.plan.run_plan` one run after another, or with ``ray`` each run a Ray task."""
    with ray_session(ray):
        return run_plan(plan, output, overrides or [], grid_runner(ray))
