"""The experiment grid: models x settings x seeds for one direction, or for each of several dataset pairs, resumable.

Each cell is an ordinary run folder (``<model>-<direction>-<setting>-seed<N>``,
``<model>-<source>-<target>-<setting>-seed<N>`` for a pair)
trained with ``resume=True``: a finished cell is skipped, an interrupted one
continues from its checkpoint, so re-running the same command after a crash
or a pre-emption only does the missing work. A :data:`GridRunner` trains the
planned runs: one after the other by default, as Ray tasks with the one
:mod:`xlingual.scale.experiment` provides; either way the caller gets one
:class:`GridOutcome`.
"""

from __future__ import annotations

import difflib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from typing import TYPE_CHECKING

from xlingual.errors import ConfigError, XlingualError, failure_summary
from xlingual.stage_inputs import Missing, missing_summary
from xlingual.train.config import TrainConfig, load_config
from xlingual.train.config.packaged import model_types, settings as known_settings
from xlingual.workspace import RunFolder

if TYPE_CHECKING:
    from xlingual.train.run import RunResult

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GridCell:
    model_type: str
    setting: str
    seed_index: int


def parse_list(text: str, allowed: tuple[str, ...], option: str) -> list[str]:
    """``acn,umt`` or ``all`` -> a checked list; the error names each element that is not a choice (and the choice it is closest to)."""
    values = list(allowed) if text.strip() == "all" else [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        raise ConfigError(f"{option}: '{text}' must be 'all' or a comma-separated list of {', '.join(allowed)}")
    bad = list(dict.fromkeys(v for v in values if v not in allowed))
    if bad:
        named = ", ".join(f"'{v}'" + (f" (did you mean '{close[0]}'?)" if (close := difflib.get_close_matches(v, allowed, n=1)) else "")
                          for v in bad)
        raise ConfigError(f"{option}: {named} {'is not one of' if len(bad) == 1 else 'are not among'} {', '.join(allowed)} "
                          "(give 'all' or a comma-separated list)")
    return values


def grid(models: list[str], settings: list[str], seeds: int) -> list[GridCell]:
    return [GridCell(m, s, i) for m in models for s in settings for i in range(seeds)]


DatasetPair = tuple[tuple[str, ...], str]
"""Source datasets and target dataset of one run."""


def parse_pair(item: str) -> DatasetPair:
    """``mmnerd+twitter2015:cmner`` -> (("mmnerd", "twitter2015"), "cmner"); ValueError for text that is not ``SOURCE:TARGET``."""
    source, sep, target = item.strip().partition(":")
    sources = tuple(name.strip() for name in source.split("+") if name.strip())
    if not sep or not target.strip() or ":" in target:
        raise ValueError(f"'{item.strip()}' is not SOURCE:TARGET (e.g. twitter2017:cmner, mmnerd+twitter2015:cmner)")
    return sources, target.strip()


def parse_pairs(text: str) -> list[DatasetPair]:
    """``twitter2017:cmner,mmnerd+twitter2015:cmner`` -> [(("twitter2017",), "cmner"), (("mmnerd", "twitter2015"), "cmner")].

    A pair is ``SOURCE:TARGET``; several sources are joined by ``+``, and a
    pair with no source (``:mmnerd``) suits target-only settings. Dataset names
    are checked when the cells' configs are resolved.
    """
    try:
        pairs = [parse_pair(item) for item in text.split(",")]
    except ValueError as err:
        raise ConfigError(f"--pairs: {err}") from None
    if len(set(pairs)) != len(pairs):
        raise ConfigError(f"--pairs: '{text}' lists a pair twice")
    return pairs


GridTarget = tuple[str | None, DatasetPair | None]
"""What one part of a grid trains on: a direction (the paper's pairs) or a dataset pair, the other None."""


def plan_grid(direction: str | None, models: str, settings: str, seeds: int, output: str | Path,
              overrides: list[str] | None = None, pairs: list[DatasetPair] | None = None) -> list[tuple[TrainConfig, Path]]:
    """Every cell's config and run folder, in grid order (pair by pair); seeds are the config's seed, +1, +2, ...

    The grid covers one ``direction`` or each of ``pairs`` (datasets named as
    in ``xl train --source/--target``), never both.
    """
    if seeds < 1:
        raise ConfigError("--seeds: must be at least 1")
    if (direction is None) == (pairs is None):
        raise ConfigError("give --direction (the paper's pairs) or --pairs SOURCE:TARGET,... (one of them)")
    cells = grid(parse_list(models, model_types(), "--models"), parse_list(settings, known_settings(), "--configs"), seeds)
    targets: list[GridTarget] = [(direction, None)] if pairs is None else [(None, pair) for pair in pairs]
    return plan_cells(cells, targets, output, overrides)


def plan_cells(cells: list[GridCell], targets: list[GridTarget], output: str | Path, overrides: list[str] | None = None,
               override_origins: list[str] | None = None) -> list[tuple[TrainConfig, Path]]:
    """The config and run folder of each cell for each target, target by target; each cell's seed is the config's + its index.

    ``override_origins`` says, per override, what gave it (``plan.yaml:7``) where
    that is not a ``--set`` option, so a bad value's error names it.
    """
    runs = []
    for direction, pair in targets:
        for cell in cells:
            config = load_config(cell.setting, cell.model_type, direction, overrides, source=pair[0] if pair else None,
                                 target=pair[1] if pair else None, override_origins=override_origins)
            config.seed += cell.seed_index
            runs.append((config, Path(output) / config.run_name))
    return runs


@dataclass
class GridOutcome:
    """Finished runs (trained now or earlier) in grid order, and the failed ones by run name with their error.

    One process stops at the first run that raises, so ``failures`` is filled
    only under Ray, where a failed run does not stop the others.
    """

    results: list["RunResult"] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def raise_for_failures(self) -> None:
        """The one-line error of a grid some of whose runs failed (after the caller has shown the table)."""
        if self.failures:
            raise XlingualError(failure_summary("runs", len(self.results) + len(self.failures), self.failures,
                                                "the others are kept, run the same command again to redo these"))


@dataclass
class CellCheck:
    """One cell of a grid before it runs: its config, run folder, state, and the inputs it needs that are not there."""

    config: TrainConfig
    run_dir: Path
    state: str
    """``finished`` (skipped), ``unfinished`` (resumed), ``failed`` (refused: train it into another folder) or ``new``."""
    missing: list[Missing] = field(default_factory=list)


@dataclass
class GridCheck:
    """Every cell of a grid and what each lacks: what ``xl experiment --dry-run`` prints and every grid checks first."""

    cells: list[CellCheck]

    def missing(self) -> dict[Missing, list[str]]:
        """Each missing input once, with the runs that need it, in grid order."""
        needed: dict[Missing, list[str]] = {}
        for cell in self.cells:
            for item in cell.missing:
                needed.setdefault(item, []).append(cell.config.run_name)
        return needed

    def blocking(self) -> list[Missing]:
        """The missing inputs no run makes itself: the grid cannot start while one is missing."""
        return [item for item in self.missing() if not item.built]

    def raise_for_missing(self) -> None:
        blocking = self.blocking()
        if blocking:
            raise ConfigError(f"the grid cannot start, nothing was trained: {missing_summary(blocking)}")


def check_grid(runs: list[tuple[TrainConfig, Path]]) -> GridCheck:
    """The state and missing inputs of every planned cell; reads nothing but file names, creates nothing.

    A finished cell needs nothing (it is skipped); every other cell's inputs
    are checked as the run itself checks them
    (:func:`xlingual.train.inputs.missing_inputs`).
    """
    from xlingual.train.inputs import missing_inputs

    cells = []
    for config, run_dir in runs:
        state = run_state(run_dir)
        cells.append(CellCheck(config, run_dir, state, [] if state == "finished" else missing_inputs(config)))
    return GridCheck(cells)


def run_state(run_dir: str | Path) -> str:
    """What a grid does with a run folder: ``finished``, ``unfinished``, ``failed`` or ``new`` (see :class:`CellCheck`)."""
    folder = RunFolder(run_dir)
    return ("failed" if folder.failure.is_file() else "finished" if folder.finished
            else "unfinished" if folder.state.is_dir() else "new")


def check_experiment(direction: str | None, models: str, settings: str, seeds: int, output: str | Path,
                     overrides: list[str] | None = None, pairs: list[DatasetPair] | None = None) -> GridCheck:
    """:func:`check_grid` of the grid :func:`run_experiment` would run (``xl experiment --dry-run``)."""
    return check_grid(plan_grid(direction, models, settings, seeds, output, overrides, pairs))


GridRunner = Callable[[list[tuple[TrainConfig, Path]]], GridOutcome]
"""Trains a grid's planned runs (config, run folder), each with ``resume=True``, and says how each went.

:func:`run_in_order` runs them here; :class:`xlingual.scale.experiment.RayTasks` as Ray tasks.
"""


def run_in_order(runs: list[tuple[TrainConfig, Path]]) -> GridOutcome:
    """The default :data:`GridRunner`: one run after the other in this process, stopping at the first that raises."""
    from xlingual.train.run import train_run  # torch: only when a run trains (a dry-run imports none)

    started = time.perf_counter()
    outcome = GridOutcome()
    for number, (config, run_dir) in enumerate(runs, 1):
        logger.info("[%d/%d] %s", number, len(runs), config.run_name)
        outcome.results.append(train_run(config, run_dir, resume=True))
    outcome.seconds = time.perf_counter() - started
    return outcome


def run_experiment(direction: str | None, models: str, settings: str, seeds: int, output: str | Path,
                   overrides: list[str] | None = None, runner: GridRunner = run_in_order,
                   pairs: list[DatasetPair] | None = None) -> GridOutcome:
    """Run (or finish) every cell of the grid with ``runner``: one after the other by default.

    Every cell's inputs are checked before the first one trains, so a grid
    never stops hours in for an input that was missing from the start; the
    error names every missing input and the command that makes it.
    ``xl experiment --ray`` comes here through
    :func:`xlingual.scale.experiment.run_experiment`, with Ray tasks as the runner.
    """
    return run_grid(plan_grid(direction, models, settings, seeds, output, overrides, pairs), runner)


def run_grid(runs: list[tuple[TrainConfig, Path]], runner: GridRunner = run_in_order,
             before: Callable[[], None] | None = None) -> GridOutcome:
    """Check every planned run's inputs, then (``before`` first, e.g. writing the plan's copy) train them with ``runner``."""
    check_grid(runs).raise_for_missing()
    if before is not None:
        before()
    return runner(runs)


__all__ = ["CellCheck", "DatasetPair", "GridCell", "GridCheck", "GridOutcome", "GridRunner", "GridTarget", "check_experiment", "check_grid",
           "grid", "parse_list", "parse_pair", "parse_pairs", "plan_cells", "plan_grid", "run_experiment", "run_grid", "run_in_order",
           "run_state"]
