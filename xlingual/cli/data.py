"""``xl data``: validate, describe and download datasets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from xlingual.data.datasets import DATASETS, DEFAULT_DATA_DIR
from xlingual.data.download import download_dataset
from xlingual.data.formats import FORMAT_NAMES, parse_file
from xlingual.data.images import attach_images
from xlingual.data.labels import BioPolicy
from xlingual.data.stats import compute_stats, table_rows
from xlingual.errors import ConfigError, DataValidationError

data_app = typer.Typer(no_args_is_help=True, help="Validate, describe and download datasets.")


def _check_format(value: Optional[str]) -> Optional[str]:
    if value is not None and value not in FORMAT_NAMES:
        raise typer.BadParameter(f"choose from {', '.join(FORMAT_NAMES)}")
    return value


@data_app.command("validate")
def validate(
    paths: list[Path] = typer.Argument(..., help="Dataset files to check."),
    format: Optional[str] = typer.Option(None, "--format", "-f", callback=_check_format, help="twitter, cmner or jsonl (guessed from the first line when omitted)."),
    bio: BioPolicy = typer.Option(BioPolicy.repair, "--bio", help="Orphan I- tags: repair to B- (counted), reject as errors, or keep."),
) -> None:
    """Check dataset files and list every problem with file:line.

    Examples:

        xl data validate data/twitter2015/train.txt

        xl data validate data/cmner/text/dev.txt --format cmner --bio reject
    """
    failed = False
    for path in paths:
        result = parse_file(path, format, bio)
        if result.error_count:
            failed = True
            for err in result.errors:
                typer.echo(str(err), err=True)
            if result.error_count > len(result.errors):
                typer.echo(f"{path}: … {result.error_count - len(result.errors)} more errors", err=True)
            continue
        tokens = sum(len(s) for s in result.samples)
        note = f", {result.repaired_orphans} orphan I- tags repaired" if result.repaired_orphans else ""
        note += f", {result.kept_orphans} orphan I- tags kept" if result.kept_orphans else ""
        typer.echo(f"{path}: ok ({result.format}, {len(result.samples)} posts, {tokens} tokens{note})")
    if failed:
        raise typer.Exit(2)


@data_app.command("stats")
def stats(
    paths: list[Path] = typer.Argument(..., help="Dataset files, one column each (e.g. train, dev and test)."),
    format: Optional[str] = typer.Option(None, "--format", "-f", callback=_check_format, help="twitter, cmner or jsonl (guessed when omitted)."),
    images: Optional[Path] = typer.Option(None, "--images", help="Image folder: also count each post's images."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of the table."),
) -> None:
    """Entity counts per type and split, in the shape of the CMNER paper's Table 1.

    Entities are counted conlleval-style (as seqeval's default mode and the papers do).

    Examples:

        xl data stats data/cmner/text/train.txt data/cmner/text/dev.txt data/cmner/text/test.txt

        xl data stats data/twitter2015/*.txt --json
    """
    columns = []
    for path in paths:
        result = parse_file(path, format, BioPolicy.repair)
        if result.error_count:
            raise DataValidationError(result.errors, result.error_count)
        image_note = None
        if images is not None:
            image_note = attach_images(result.samples, images)
        columns.append(compute_stats(path.stem, result.samples, images_known=images is not None, repaired_orphans=result.repaired_orphans))
        if image_note and image_note.missing:
            typer.echo(f"{path}: {image_note.summary()}", err=True)
    if as_json:
        typer.echo(json.dumps({"splits": [c.to_dict() for c in columns]}, indent=2))
        return
    table = Table(title="Dataset statistics (entities counted conlleval-style)")
    table.add_column("")
    for column in columns:
        table.add_column(column.name, justify="right")
    for name, values in table_rows(columns):
        table.add_row(name, *values)
    Console().print(table)


@data_app.command("download")
def download(
    dataset: str = typer.Argument(..., help=f"One of: {', '.join(DATASETS)}."),
    to: Path = typer.Option(DEFAULT_DATA_DIR, "--to", help="Data directory to fill (the layout 'xl train' reads)."),
) -> None:
    """Download a dataset's public text files and check their checksums.

    Images cannot be fetched from a fixed address; the command says where to get them.

    Examples:

        xl data download twitter2015 --to data

        xl data download cmner --to data
    """
    if dataset not in DATASETS:
        raise ConfigError(f"unknown dataset '{dataset}' (choose from {', '.join(DATASETS)})")
    spec, written = download_dataset(dataset, to)
    for path in written:
        typer.echo(f"{path}: ok (checksum verified)")
    typer.echo(spec.images_hint.format(images=spec.images_dir(to)))


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data", help="Validate, describe and download datasets.")
