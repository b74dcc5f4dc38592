"""An experiment as one file: ``xl experiment --plan plan.yaml``.

A plan names the grid's models, settings, what the runs train on
(``directions`` of the CMNER paper, or dataset ``pairs``), the seeds per
cell, the image inputs, and overrides every run shares (``set``, each item
one ``--set key=value``)::

    models: [acn, umt]            # or all
    settings: [tgt_only, src_tgt] # or all
    directions: [en-zh]           # or pairs: [twitter2017:cmner, mmnerd+twitter2015:cmner]
    seeds: 3                      # runs per cell: the config's seed, +1, +2 (set: [seed=1000] moves the first)
    images: [all, none]           # optional: Table 2's inputs (none, one, all); left out: each config's own
    set: [target.epochs=2]        # optional
    output: runs/plan1            # optional: where the run folders go when --output is not given

It is read like a config (no YAML aliases; an unknown key, a wrong type or a
bad ``set`` item is one line naming ``plan.yaml:LINE``), expanded into the
same run folders the per-option form makes (:func:`~xlingual.train.experiment.plan_cells`),
and copied into the output folder as :data:`PLAN_NAME` before the first run
trains, so ``xl report`` lays its rows out by the plan and lists the planned
runs that are not finished (:mod:`xlingual.evaluation.plan_report`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from xlingual.errors import ConfigError
from xlingual.train.config import TrainConfig
from xlingual.train.config.files import parse_config_file
from xlingual.train.config.overrides import parse_override
from xlingual.train.config.packaged import directions as known_directions, model_types, settings as known_settings
from xlingual.train.config.schema import IMAGE_MODES, one_of, validation_message
from xlingual.train.experiment import GridCell, GridOutcome, GridRunner, GridTarget, grid, parse_pair, plan_cells, run_grid, run_in_order

PLAN_NAME = "plan.yaml"
"""The copy of the plan in the experiment's output folder: what ``xl report`` lays its rows out by."""
DEFAULT_OUTPUT = "runs"


def _listed(allowed: Callable[[], Sequence[str]] | None = None) -> BeforeValidator:
    """One name, a list, or (with ``allowed``) ``all``: always a list."""
    def as_list(value: Any) -> Any:
        if value == "all" and allowed is not None:
            return list(allowed())
        return [value] if isinstance(value, str) else value
    return BeforeValidator(as_list)


def _distinct(values: list[Any]) -> list[Any]:
    twice = [v for i, v in enumerate(values) if v in values[:i]]
    if twice:
        raise ValueError(f"lists {twice[0]!r} twice")
    return values


def _pair(text: str) -> str:
    parse_pair(text)  # ValueError: not SOURCE:TARGET
    return text.strip()


Names = Callable[[], Sequence[str]]


def _choices(allowed: Names | Sequence[str], everything: bool = True) -> Any:
    return Annotated[list[Annotated[str, one_of(allowed)]], _listed(allowed if everything and callable(allowed) else None),
                     AfterValidator(_distinct)]


class ExperimentPlan(BaseModel):
    """A plan file's contents, checked (see the module docstring for each key)."""

    model_config = ConfigDict(extra="forbid")

    models: _choices(model_types) = Field(default_factory=lambda: ["acn", "umt"])
    settings: _choices(known_settings) = Field(default_factory=lambda: list(known_settings()))
    directions: _choices(known_directions, everything=False) | None = None
    pairs: Annotated[list[Annotated[str, AfterValidator(_pair)]], _listed(), AfterValidator(_distinct)] | None = None
    seeds: Annotated[int, Field(gt=0)] = 3
    images: _choices(IMAGE_MODES, everything=False) | None = None
    overrides: Annotated[list[str], _listed()] = Field(default_factory=list, alias="set")
    output: str | None = None

    def targets(self) -> list[GridTarget]:
        """Each direction, or each dataset pair, in the plan's order."""
        if self.pairs is not None:
            return [(None, parse_pair(pair)) for pair in self.pairs]
        return [(direction, None) for direction in self.directions or ()]

    def cells(self) -> list[GridCell]:
        return grid(self.models, self.settings, self.seeds)

    def to_yaml(self) -> str:
        values = self.model_dump(by_alias=True, exclude_none=True)
        return yaml.safe_dump(values, sort_keys=False, allow_unicode=True)


@dataclass
class Plan:
    """A plan read from ``path``, with the line of each key and ``set`` item, for errors."""

    path: Path
    plan: ExperimentPlan
    lines: dict[str, int]

    def origin(self, key: str) -> str:
        line = self.lines.get(key)
        return f"{self.path}:{line}" if line is not None else str(self.path)

    def runs(self, output: str | Path | None = None, overrides: Sequence[str] = ()) -> list[tuple[TrainConfig, Path]]:
        """Every planned run's config and folder under ``output`` (default: the plan's ``output``, else ``runs``), in plan
        order: target by target, image input by image input, then models x settings x seeds. ``overrides`` (the command
        line's ``--set``) come after the plan's ``set`` and win."""
        folder = self.output_folder(output)
        shared = list(self.plan.overrides)
        origins = [self.origin(f"set.{i}") for i in range(len(shared))]
        if self.plan.images is not None:
            clash = next((i for i, text in enumerate(shared) if parse_override(text)[0] == "images"), None)
            if clash is not None:
                raise ConfigError(f"{origins[clash]}: set {shared[clash]} and images: both choose the runs' image input; keep one")
        runs: list[tuple[TrainConfig, Path]] = []
        for target in self.plan.targets():
            for mode in self.plan.images or [None]:
                chosen = [f"images={mode}"] if mode is not None else []
                runs += plan_cells(self.plan.cells(), [target], folder, [*shared, *chosen, *overrides],
                                   [*origins, *([self.origin("images")] * len(chosen)), *(f"--set {text}" for text in overrides)])
        seen: dict[Path, int] = {}
        for config, run_dir in runs:
            seen[run_dir] = seen.get(run_dir, 0) + 1
            if seen[run_dir] > 1:
                raise ConfigError(f"{self.path}: two planned runs would share the folder {run_dir} (the same run planned twice)")
        return runs

    def output_folder(self, output: str | Path | None = None) -> Path:
        """Where the run folders go: ``output`` (``--output``), else the plan's ``output``, else ``runs``."""
        return Path(output if output is not None else self.plan.output or DEFAULT_OUTPUT)

    def copy_text(self, output: str | Path | None = None, overrides: Sequence[str] = ()) -> str:
        """The plan as the experiment ran it (into ``output``, the command line's ``--set`` appended to ``set``)."""
        ran = self.plan.model_copy(update={"overrides": [*self.plan.overrides, *overrides], "output": str(self.output_folder(output))})
        return f"# xl experiment --plan {self.path}: the plan these runs were made by (xl report reads it)\n" + ran.to_yaml()


def read_plan(path: str | Path) -> Plan:
    """A checked plan; one line naming ``path:LINE`` for anything wrong in it."""
    path = Path(path)
    parsed = parse_config_file(path)
    values, lines = parsed.values, parsed.lines
    sources = {key: f"{path}:{line}" for key, line in lines.items()}
    try:
        plan = ExperimentPlan.model_validate(values)
    except ValidationError as err:
        known = [field.alias or name for name, field in ExperimentPlan.model_fields.items()]
        raise ConfigError(validation_message(err, str(path), sources, known)) from None
    read = Plan(path, plan, lines)
    if (plan.directions is None) == (plan.pairs is None):
        both = f"{read.origin('pairs')}: directions and pairs both" if plan.directions is not None else f"{path}: neither directions nor pairs"
        raise ConfigError(f"{both} say what the runs train on: give one (directions: [en-zh] or pairs: [twitter2017:cmner])")
    for i, text in enumerate(plan.overrides):
        try:
            parse_override(text)
        except ConfigError as err:
            raise ConfigError(f"{read.origin(f'set.{i}')}: {err}") from None
    return read


def find_plan(folder: str | Path) -> Path | None:
    """The plan copy an experiment left in ``folder``, if any."""
    path = Path(folder) / PLAN_NAME
    return path if path.is_file() else None


def run_plan(plan: Plan, output: str | Path | None = None, overrides: Sequence[str] = (), runner: GridRunner = run_in_order) -> GridOutcome:
    """Run (or finish) every planned run with ``runner``: inputs checked first, then the plan copied to ``output/plan.yaml``.

    The experiment holds its output folder's lock (:func:`xlingual.lock.output_lock`) until its last run ends, so a
    second experiment started into the same folder meanwhile is refused (``FOLDER is in use by process PID``) before it
    writes its plan over this one's; the same plan run again later takes the lock and resumes.
    """
    from xlingual.io import atomic_write_text
    from xlingual.lock import output_lock

    runs = plan.runs(output, overrides)
    folder = plan.output_folder(output)
    with output_lock(folder):
        return run_grid(runs, runner, before=lambda: atomic_write_text(folder / PLAN_NAME, plan.copy_text(output, overrides)))


__all__ = ["DEFAULT_OUTPUT", "PLAN_NAME", "ExperimentPlan", "Plan", "find_plan", "read_plan", "run_plan"]
