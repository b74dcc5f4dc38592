"""``xl train``, ``xl evaluate``, ``xl experiment``, ``xl report``: thin wrappers over :mod:`xlingual.train`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from xlingual.errors import ConfigError

_SET_HELP = "Override a config field, e.g. --set lr=3e-5 (both stages), --set target.epochs=5, --set model.hidden=100, --set images=none. Repeatable."


def _print_scores(title: str, scores: dict) -> None:
    table = Table(title=title)
    for column in ("split", "mode", "P", "R", "F1", *[f"F1 {t}" for t in ("PER", "LOC", "ORG", "MISC")]):
        table.add_column(column, justify="right" if column not in ("split", "mode") else "left")
    for split, modes in scores.items():
        if not isinstance(modes, dict) or "conlleval" not in modes:
            continue
        for mode, s in modes.items():
            per_type = [f"{s['per_type_f1'].get(t, 0.0):.2f}" for t in ("PER", "LOC", "ORG", "MISC")]
            table.add_row(split, mode, f"{s['precision']:.2f}", f"{s['recall']:.2f}", f"{s['f1']:.2f}", *per_type)
    Console().print(table)


def _with_data_dir(overrides: list[str], data_dir: Optional[Path], build_missing: bool) -> list[str]:
    extra = list(overrides)
    if data_dir is not None:
        extra.append(f"data.data_dir={data_dir}")
    if build_missing:
        extra.append("data.build_missing=true")
    return extra


def train(
    config: str = typer.Option(..., "--config", "-c", help="A setting (tgt_only, src, tgt, src_tgt), or a YAML file."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="acn or umt [default with a setting name: umt]."),
    direction: Optional[str] = typer.Option(None, "--direction", "-d", help="en-zh (target CMNER) or zh-en (target Twitter2015) [default with a setting name: en-zh]."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Data directory (default: the config's, ./data)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Run folder (default: runs/MODEL-DIRECTION-SETTING-seedN)."),
    set_: list[str] = typer.Option([], "--set", help=_SET_HELP),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run in --output from its last checkpoint (a finished run is kept)."),
    build_missing: bool = typer.Option(False, "--build-missing", help="Build a missing translation or feature cache instead of failing."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics.json instead of the table."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved configuration as YAML and exit without training or writing anything."),
) -> None:
    """Train one configuration end to end and evaluate it on the target test set.

    Multi-GPU: `accelerate launch -m xlingual.cli train ...`.

    Examples:

        xl train --config src_tgt --model umt --direction en-zh

        xl train --config tgt_only --model acn --direction en-zh --set images=none --set model.word_vectors=null

        xl train --config my.yaml --output runs/mine --resume

        xl train --config src_tgt --set patience=5 --dry-run
    """
    from xlingual.train.config import config_yaml, load_config

    cfg = load_config(config, model, direction, _with_data_dir(set_, data_dir, build_missing))
    if dry_run:
        typer.echo(config_yaml(cfg), nl=False)
        return
    from xlingual.train.run import train_run

    run_dir = output or Path("runs") / cfg.run_name
    result = train_run(cfg, run_dir, resume=resume)
    if as_json:
        typer.echo(json.dumps(result.metrics, indent=2))
        return
    note = " (finished earlier; kept)" if result.skipped else ""
    _print_scores(f"{cfg.run_name}: best model on {cfg.target_dataset}{note}", {"dev": result.metrics["dev"], "test": result.metrics["test"]})
    typer.echo(f"run folder: {result.run_dir}")


def evaluate(
    run: Optional[Path] = typer.Option(None, "--run", help="A run folder: re-score its saved predictions."),
    gold: Optional[Path] = typer.Option(None, "--gold", help="Gold dataset file, scored against --pred (labels as written)."),
    pred: Optional[Path] = typer.Option(None, "--pred", help="Predicted dataset file with the same posts and tokens as --gold."),
    model: Optional[Path] = typer.Option(None, "--model", help="A model folder (a run's model/): predict --data and score it."),
    data: Optional[Path] = typer.Option(None, "--data", help="Dataset file to predict with --model."),
    format: Optional[str] = typer.Option(None, "--format", "-f", help="twitter, cmner or jsonl (guessed per file when omitted)."),
    features: Optional[Path] = typer.Option(None, "--features", help="Feature cache folder for models that use images."),
    image_dir: Optional[Path] = typer.Option(None, "--image-dir", help="The dataset's image folder (default: found from --data's data-directory layout)."),
    images: str = typer.Option("all", "--images", help="'all': mean over a post's images (the paper's method); 'one': one random image."),
    seed: int = typer.Option(0, "--seed", help="Seed for '--images one'."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of the table."),
) -> None:
    """Entity-level P/R/F1 (conlleval and strict IOB2) from saved predictions, a saved model, or two files.

    Examples:

        xl evaluate --run runs/acn-en-zh-tgt_only-seed444

        xl evaluate --gold data/cmner/text/test.txt --pred pred.txt --json

        xl evaluate --model runs/acn-en-zh-tgt_only-seed444/model --data data/cmner/text/test.txt --features data/features/vgg16
    """
    from xlingual.evaluation.evaluate import evaluate_files, evaluate_model_on_file, evaluate_run

    chosen = [name for name, given in (("--run", run is not None), ("--gold/--pred", gold is not None or pred is not None), ("--model", model is not None)) if given]
    if len(chosen) != 1:
        raise ConfigError("pass one of --run DIR, --gold FILE --pred FILE, or --model DIR --data FILE")
    if run is not None:
        scores, title = evaluate_run(run), str(run)
    elif model is not None:
        if data is None:
            raise ConfigError("--model needs --data FILE")
        if images not in ("one", "all"):
            raise ConfigError(f"--images must be 'one' or 'all', not '{images}'")
        scores, title = evaluate_model_on_file(model, data, format, features, images=images, seed=seed, image_dir=image_dir), str(data)
    else:
        if gold is None or pred is None:
            raise ConfigError("--gold and --pred go together: pass both files")
        scores = evaluate_files(gold, pred, format)
        if as_json:
            typer.echo(json.dumps(scores, indent=2))
            return
        scores, title = {"pred": scores}, f"{pred} against {gold}"
    if as_json:
        typer.echo(json.dumps(scores, indent=2))
    else:
        _print_scores(title, scores)


def experiment(
    direction: str = typer.Option(..., "--direction", "-d", help="en-zh or zh-en."),
    models: str = typer.Option("acn,umt", "--models", help="Comma-separated models, or all."),
    configs: str = typer.Option("all", "--configs", help="Comma-separated settings (tgt_only,src,tgt,src_tgt), or all."),
    seeds: int = typer.Option(3, "--seeds", help="Runs per cell (seeds: the config's seed, +1, +2, ...)."),
    output: Path = typer.Option(Path("runs"), "--output", "-o", help="Folder holding one run folder per cell."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Data directory (default ./data)."),
    set_: list[str] = typer.Option([], "--set", help=_SET_HELP),
    build_missing: bool = typer.Option(False, "--build-missing", help="Build missing translations / feature caches."),
) -> None:
    """Run the grid of models x settings x seeds; finished runs are skipped, interrupted ones resumed.

    Examples:

        xl experiment --direction en-zh --models acn,umt --configs all --seeds 3

        xl experiment --direction zh-en --models acn --configs tgt_only,src_tgt --seeds 5 --output runs/zh-en
    """
    from xlingual.train.experiment import run_experiment

    results = run_experiment(direction, models, configs, seeds, output, _with_data_dir(set_, data_dir, build_missing))
    table = Table(title=f"Experiment {direction}: {len(results)} runs")
    for column in ("run", "test P", "test R", "test F1", "status"):
        table.add_column(column)
    for r in results:
        t = r.metrics["test"]["conlleval"]
        table.add_row(r.run_dir.name, f"{t['precision']:.2f}", f"{t['recall']:.2f}", f"{t['f1']:.2f}", "skipped (done)" if r.skipped else "trained")
    Console().print(table)
    typer.echo(f"report: xl report {output}")


def report(
    runs: list[Path] = typer.Argument(..., help="Run folders, or folders holding run folders."),
    output: Path = typer.Option(Path("report"), "--output", "-o", help="Where to write tables (md, tex, csv) and the chart."),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples for the significance test (0: skip)."),
) -> None:
    """Tables 2-4 of the CMNER paper (Markdown, LaTeX, CSV) and a bar chart, from run folders.

    Examples:

        xl report runs/

        xl report runs/en-zh runs/zh-en --output paper-tables --bootstrap 5000
    """
    from xlingual.evaluation.report import write_report

    result = write_report(list(runs), output, bootstrap)
    for table in result.tables:
        if table.rows:
            typer.echo(table.markdown())
    typer.echo(f"{result.runs} runs; wrote {len(result.files)} files to {output}")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.command("experiment")(experiment)
    app.command("report")(report)
