"""``xl report``: the paper's tables and a chart from run folders (:mod:`xlingual.evaluation.report`)."""

from __future__ import annotations

from pathlib import Path

import typer

from xlingual.evaluation.significance import BOOTSTRAP_RESAMPLES


def report(
    runs: list[Path] = typer.Argument(..., help="Run folders, or folders holding run folders."),
    output: Path = typer.Option(Path("report"), "--output", "-o", help="Where to write tables (md, tex, csv) and the chart."),
    bootstrap: int = typer.Option(BOOTSTRAP_RESAMPLES, "--bootstrap", help="Bootstrap resamples for the significance test (0: skip); "
                                  "its seed is fixed, so the same runs give the same p in every report."),
    html: bool = typer.Option(False, "--html", help="Also write report.html: the tables and the chart in one self-contained page."),
) -> None:
    """Tables 2-4 of the CMNER paper (Markdown, LaTeX, CSV) and a bar chart, from run folders.

    A folder holding an experiment's plan.yaml (xl experiment --plan) adds the plan's table, one row per planned cell in the
    plan's order, and lists each planned run that is not finished under "Missing runs".

    Examples:

        xl report runs/

        xl report runs/en-zh runs/zh-en --output paper-tables --bootstrap 5000

        xl report runs/ --html
    """
    from xlingual.evaluation.report import write_report

    result = write_report(list(runs), output, bootstrap, html=html)
    if result.note:
        typer.echo(result.note)
    for table in result.tables:
        if table.rows:
            typer.echo(table.markdown())
    if result.missing_runs:
        typer.echo(f"{len(result.missing_runs)} planned run(s) not finished (listed under 'Missing runs' in {output / 'report.md'})")
    typer.echo(f"{result.runs} runs; wrote {len(result.files)} files to {output}")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
