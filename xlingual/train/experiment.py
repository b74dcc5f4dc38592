"""The experiment grid: models x settings x seeds for one direction, resumable.

Each cell is an ordinary run folder (``<model>-<direction>-<setting>-seed<N>``)
trained with ``resume=True``: a finished cell is skipped, an interrupted one
continues from its checkpoint, so re-running the same command after a crash
or a pre-emption only does the missing work.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from xlingual.errors import ConfigError
from xlingual.train.config import MODEL_TYPES, SETTINGS, TrainConfig, load_config
from xlingual.train.run import RunResult, train_run

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GridCell:
    model_type: str
    setting: str
    seed_index: int


def parse_list(text: str, allowed: tuple[str, ...], option: str) -> list[str]:
    """``acn,umt`` or ``all`` -> a checked list."""
    values = list(allowed) if text.strip() == "all" else [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in values if v not in allowed]
    if bad or not values:
        raise ConfigError(f"{option}: '{text}' must be 'all' or a comma-separated list of {', '.join(allowed)}")
    return values


def grid(models: list[str], settings: list[str], seeds: int) -> list[GridCell]:
    return [GridCell(m, s, i) for m in models for s in settings for i in range(seeds)]


def plan_grid(direction: str, models: str, settings: str, seeds: int, output: str | Path,
              overrides: list[str] | None = None) -> list[tuple[TrainConfig, Path]]:
    """Every cell's config and run folder, in grid order; seeds are the config's seed, +1, +2, ..."""
    if seeds < 1:
        raise ConfigError("--seeds: must be at least 1")
    cells = grid(parse_list(models, MODEL_TYPES, "--models"), parse_list(settings, SETTINGS, "--configs"), seeds)
    runs = []
    for cell in cells:
        config = load_config(cell.setting, cell.model_type, direction, overrides)
        config.seed += cell.seed_index
        runs.append((config, Path(output) / config.run_name))
    return runs


def run_experiment(direction: str, models: str, settings: str, seeds: int, output: str | Path,
                   overrides: list[str] | None = None) -> list[RunResult]:
    """Run (or finish) every cell of the grid, one after the other (``xl experiment --ray``: :mod:`xlingual.scale.experiment`)."""
    runs = plan_grid(direction, models, settings, seeds, output, overrides)
    results = []
    for number, (config, run_dir) in enumerate(runs, 1):
        logger.info("[%d/%d] %s", number, len(runs), config.run_name)
        results.append(train_run(config, run_dir, resume=True))
    return results


__all__ = ["GridCell", "grid", "parse_list", "plan_grid", "run_experiment"]
