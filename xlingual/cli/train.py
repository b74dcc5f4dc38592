"""``xl train``, ``xl experiment``: thin wrappers over :mod:`xlingual.train`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from xlingual.cli._options import BuildMissingOption, DatasetsOption, RayOption, SetOption
from xlingual.cli._scores import print_scores
from xlingual.scale.runtime import RaySettings
from xlingual.train.config.packaged import model_types, settings as packaged_settings
from xlingual.workspace import METRICS_NAME


def _run_scores(metrics: dict) -> dict:
    """dev and test of the target dataset, then every other test set the run was scored on (``test <dataset>``)."""
    others = {f"test {name}": value for name, value in metrics.get("tests", {}).items() if name != metrics.get("target_dataset")}
    return {"dev": metrics["dev"], "test": metrics["test"], **others}


def _with_data_dir(overrides: list[str], data_dir: Optional[Path], build_missing: bool, datasets: Optional[Path] = None) -> list[str]:
    extra = list(overrides)
    if data_dir is not None:
        extra.append(f"data.data_dir={data_dir}")
    if datasets is not None:
        extra.append(f"data.datasets_file={datasets}")
    if build_missing:
        extra.append("data.build_missing=true")
    return extra


def train(
    config: str = typer.Option(..., "--config", "-c", help=f"A setting ({', '.join(packaged_settings())}; yours in $XLINGUAL_CONFIGS/settings/), or a YAML file."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=f"{', '.join(model_types())} [default with a setting name: umt]."),
    direction: Optional[str] = typer.Option(None, "--direction", "-d", help="The CMNER paper's pairs: en-zh (Twitter2015 -> CMNER) or zh-en (CMNER -> Twitter2015) [default with a setting name and no --target: en-zh]."),
    source: list[str] = typer.Option([], "--source", "-s", help="A source dataset (repeat for several, e.g. a joint setting); instead of --direction."),
    target: Optional[str] = typer.Option(None, "--target", "-t", help="The target dataset (fine-tuned on, selected on, scored on); instead of --direction."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Data directory (default: the config's, ./data)."),
    datasets: DatasetsOption = None,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Run folder (default: runs/<run name>, e.g. runs/acn-twitter2017-cmner-src_tgt-seed444)."),
    set_: SetOption = [],
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run in --output from its last checkpoint (a finished run is kept)."),
    resume_partial: bool = typer.Option(False, "--resume-partial", help="Like --resume, but go on when part of the saved state (RNG states, optimizer, scheduler) is missing; the results will differ from an uninterrupted run."),
    build_missing: BuildMissingOption = False,
    as_json: bool = typer.Option(False, "--json", help=f"Print {METRICS_NAME} instead of the table."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved configuration as YAML and exit without training or writing anything."),
) -> None:
    """Train one configuration end to end and evaluate it on the target test set (and each source's).

    Multi-GPU: `accelerate launch -m xlingual.cli train ...`.

    Examples:

        xl train --config src_tgt --model umt --direction en-zh

        xl train --config src_tgt --model acn --source twitter2017 --target cmner

        xl train --config joint --model 2mner --source mmnerd --source twitter2015 --target cmner

        xl train --config tgt_only --model acn --direction en-zh --set images=none --set model.word_vectors=null

        xl train --config my.yaml --output runs/mine --resume

        xl train --config src_tgt --set patience=5 --dry-run
    """
    from xlingual.train.config import config_yaml, load_config

    cfg = load_config(config, model, direction, _with_data_dir(set_, data_dir, build_missing, datasets), source=source, target=target)
    if dry_run:
        typer.echo(config_yaml(cfg), nl=False)
        return
    from xlingual.train.run import train_run

    run_dir = output or Path("runs") / cfg.run_name
    result = train_run(cfg, run_dir, resume=resume or resume_partial, partial=resume_partial)
    if as_json:
        typer.echo(json.dumps(result.metrics, indent=2))
        return
    note = " (finished earlier; kept)" if result.skipped else ""
    print_scores(f"{cfg.run_name}: best model on {cfg.target_dataset}{note}", _run_scores(result.metrics))
    typer.echo(f"run folder: {result.run_dir}")


def experiment(
    plan: Optional[Path] = typer.Option(None, "--plan", help="An experiment plan (YAML: models, settings, directions or pairs, seeds, "
                                        "images, set); instead of --direction/--pairs/--models/--configs/--seeds. Copied into --output as plan.yaml."),
    direction: Optional[str] = typer.Option(None, "--direction", "-d", help="en-zh or zh-en (the CMNER paper's pairs); or --pairs."),
    pairs: Optional[str] = typer.Option(None, "--pairs", help="Dataset pairs SOURCE:TARGET, comma-separated (several sources: a+b:TARGET), instead of --direction."),
    models: Optional[str] = typer.Option(None, "--models", help=f"Comma-separated models ({', '.join(model_types())}), or all [default: acn,umt]."),
    configs: Optional[str] = typer.Option(None, "--configs", help=f"Comma-separated settings ({', '.join(packaged_settings())}), or all [default: all]."),
    seeds: Optional[int] = typer.Option(None, "--seeds", help="Runs per cell (seeds: the config's seed, +1, +2, ...) [default: 3]."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Folder holding one run folder per cell [default: the plan's output, else runs]."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Data directory (default ./data)."),
    datasets: DatasetsOption = None,
    set_: SetOption = [],
    build_missing: BuildMissingOption = False,
    ray: RayOption = None,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print every run of the grid and every missing input (with the command that makes it); train and write nothing."),
) -> None:
    """Run the grid of models x settings x seeds; finished runs are skipped, interrupted ones resumed.

    Every run's inputs are checked before the first one trains: a missing one stops the grid at once, named with the command
    that makes it (with --build-missing, translations and feature caches are made instead).

    With --ray each run is a Ray task with one GPU (one CPU where the cluster has none); a failed run does not stop the others.

    Examples:

        xl experiment --direction en-zh --models acn,umt --configs all --seeds 3

        xl experiment --direction zh-en --models acn --configs tgt_only,src_tgt --seeds 5 --output runs/zh-en

        xl experiment --direction en-zh --seeds 3 --ray auto     # the 24 runs spread over a Ray cluster's GPUs

        xl experiment --pairs twitter2017:cmner,cmner:twitter2017 --models acn --configs tgt_only,src_tgt

        xl experiment --direction en-zh --seeds 3 --dry-run      # the runs, and what is missing before any trains

        xl experiment --plan plan.yaml --output runs/plan1 --dry-run
    """
    from xlingual.errors import ConfigError
    from xlingual.train.experiment import check_grid, check_experiment, parse_pairs

    extra = _with_data_dir(set_, data_dir, build_missing, datasets)
    if plan is not None:
        given = [name for name, value in (("--direction", direction), ("--pairs", pairs), ("--models", models), ("--configs", configs),
                                          ("--seeds", seeds)) if value is not None]
        if given:
            raise ConfigError(f"--plan {plan} and {' '.join(given)}: the plan says what the grid holds; give one or the other")
        from xlingual.train.plan import read_plan

        read = read_plan(plan)
        if dry_run:
            _print_grid_check(check_grid(read.runs(output, extra)))
            return
        from xlingual.scale.experiment import run_experiment_plan

        outcome = run_experiment_plan(read, output, extra, ray=RaySettings.from_options(ray))
        _print_outcome(f"Experiment {plan}", outcome, read.output_folder(output))
        return
    models, configs, seeds, output = models or "acn,umt", configs or "all", 3 if seeds is None else seeds, output or Path("runs")
    pair_list = parse_pairs(pairs) if pairs is not None else None
    if dry_run:
        _print_grid_check(check_experiment(direction, models, configs, seeds, output, extra, pairs=pair_list))
        return
    from xlingual.scale.experiment import run_experiment  # torch: only when the grid trains

    outcome = run_experiment(direction, models, configs, seeds, output, extra, ray=RaySettings.from_options(ray), pairs=pair_list)
    _print_outcome(f"Experiment {direction or pairs}", outcome, output)


def _print_outcome(title: str, outcome, output: Path) -> None:
    """The grid's runs with their test scores (or error), the report command, then the one-line error of failed runs."""
    table = Table(title=f"{title}: {len(outcome.results) + len(outcome.failures)} runs")
    for column in ("run", "test P", "test R", "test F1", "status"):
        table.add_column(column)
    for r in outcome.results:
        t = r.metrics["test"]["conlleval"]
        table.add_row(r.run_dir.name, f"{t['precision']:.2f}", f"{t['recall']:.2f}", f"{t['f1']:.2f}", "skipped (done)" if r.skipped else "trained")
    for name, error in outcome.failures.items():
        table.add_row(name, "", "", "", f"failed: {error}")
    Console().print(table)
    typer.echo(f"report: xl report {output}")
    outcome.raise_for_failures()


def _print_grid_check(check) -> None:
    """``xl experiment --dry-run``: every run with its state, then every missing input with the command that makes it."""
    from xlingual.errors import ConfigError

    states = {"new": "to train", "unfinished": "to resume", "finished": "done (skipped)", "failed": "failed earlier (refused)"}
    typer.echo(f"{len(check.cells)} runs:")
    for cell in check.cells:
        typer.echo(f"  {states[cell.state]:<24} {cell.run_dir}")
    missing = check.missing()
    for built in (True, False):
        items = [(item, runs) for item, runs in missing.items() if item.built == built]
        if items:
            typer.echo("made by the runs themselves:" if built else "missing:")
        for item, runs in items:
            typer.echo(f"  {item.what}\n      {'made like' if built else 'make it with'}: {item.command}\n      needed by {len(runs)} run(s): {', '.join(runs)}")
    blocking = check.blocking()
    if blocking:
        raise ConfigError(f"{len(blocking)} missing input(s); the grid would stop before its first run (nothing was trained)")
    typer.echo("every input is there: the grid can run")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("experiment")(experiment)
