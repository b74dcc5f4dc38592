"""``xl demo``: the whole pipeline on the shipped sample with tiny models (what ``make demo`` runs)."""

from __future__ import annotations

from pathlib import Path

import typer

from xlingual.workspace import RUN_LOG_NAME

NOTICE = ("NOTE: every model in this demo is tiny, built here from random weights and trained for a few hundred steps "
          "on the package's made-up sample. Its scores are real, on a handful of made-up test posts whose entities also "
          "occur in training: they show the pipeline learns, not how well the methods work on the real datasets.")


def demo(
    output: Path = typer.Option(Path("demo-output"), "--output", "-o", help="Work folder (re-running reuses finished stages)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Print every log line (training steps too) instead of one line per stage."),
) -> None:
    """Translate -> project -> embeddings -> features -> train -> report on the sample data, offline.

    Examples:

        xl demo

        xl demo --output /tmp/xl-demo

        xl demo -v        # every log line, training steps included (otherwise in each run's run.log)
    """
    from xlingual.cli._console import quiet_console, verbose_logging
    from xlingual.demo import REAL_RUN_COMMANDS, explained_by_demo, run_demo
    from xlingual.progress import transient_bars

    verbose = verbose or verbose_logging()
    typer.echo(NOTICE)
    typer.echo(f"work folder: {output} (sample data copied to {output / 'data'})")
    if not verbose:
        typer.echo(f"one line per stage; each training run logs its steps to {RUN_LOG_NAME} in its folder ('xl demo -v' prints every log line)")
    typer.echo("")

    def show(stage) -> None:
        typer.echo(f"[{stage.name}] {stage.summary} ({stage.seconds:.1f} s)")
        for path in stage.outputs:
            typer.echo(f"    -> {path}")

    if verbose:
        result = run_demo(output, on_stage=show)
    else:
        with quiet_console(explained_by_demo), transient_bars():
            result = run_demo(output, on_stage=show)
    report_md = result.report_dir / "report.md" if result.report_dir else None
    if report_md and report_md.is_file():
        typer.echo("\n" + report_md.read_text(encoding="utf-8"))
    typer.echo(NOTICE)
    typer.echo("\nA real run, with real models and data (GPU recommended):")
    for command in REAL_RUN_COMMANDS:
        typer.echo(f"  {command}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
