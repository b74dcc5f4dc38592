"""``xl data``: list, validate, describe, compare and download datasets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from xlingual.cli._aliases import with_aliases
from xlingual.data.files import dataset_files
from xlingual.cli._options import DataDirOption, DatasetsOption, FormatOption, JsonOption, format_name
from xlingual.data.compare import compare_inputs, write_comparison
from xlingual.data.datasets import DatasetName, get_dataset, parse_split
from xlingual.data.names import NAME_PATTERN
from xlingual.data.download import download_dataset
from xlingual.data.formats import ReadResult, parse_file
from xlingual.data.inventory import inventory
from xlingual.data.labels import BioPolicy
from xlingual.data.stats import stats_of_files, table_rows
from xlingual.workspace import DEFAULT_DATA_DIR, DataDir

data_app = typer.Typer(no_args_is_help=True, help="Validate, describe, compare and download datasets.")


def _print_validation(result: ReadResult) -> bool:
    """Print a read's errors (stderr) or its one-line summary; True when it had errors."""
    if result.error_count:
        for err in result.errors:
            typer.echo(str(err), err=True)
        if result.error_count > len(result.errors):
            typer.echo(f"{result.path}: … {result.error_count - len(result.errors)} more errors", err=True)
        return True
    tokens = sum(len(s) for s in result.samples)
    note = f", {result.repaired_orphans} orphan I- tags repaired" if result.repaired_orphans else ""
    note += f", {result.kept_orphans} orphan I- tags kept" if result.kept_orphans else ""
    typer.echo(f"{result.path}: ok ({result.format}, {len(result.samples)} posts, {tokens} tokens{note})")
    return False


def _names_a_dataset(target: str) -> bool:
    """A bare name that is not a file here (``mine``, ``twitter2015``) means a dataset; anything else a file."""
    return NAME_PATTERN.fullmatch(target) is not None and not Path(target).exists()


@data_app.command("validate")
def validate(
    targets: list[str] = typer.Argument(..., metavar="FILE_OR_DATASET...", help="Dataset files or folders (their *.txt files), or dataset names (built-in or declared) to check all their splits."),
    format: FormatOption = None,
    bio: BioPolicy = typer.Option(BioPolicy.repair, "--bio", help="Orphan I- tags: repair to B- (counted), reject as errors, or keep."),
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    datasets: DatasetsOption = None,
) -> None:
    """Check dataset files, or every split of a dataset with its format and label rule, and list every problem with file:line.

    Examples:

        xl data validate data/twitter2015/train.txt

        xl data validate data/cmner/text/dev.txt --format cmner --bio reject

        xl data validate mine --data-dir data        # a dataset declared in data/datasets.yaml
    """
    failed = False
    for target in targets:
        if _names_a_dataset(target):
            spec = get_dataset(target, data_dir, datasets)
            for split in spec.split_files:
                failed |= _print_validation(parse_split(data_dir, spec.name, split, bio, datasets))
        else:
            for path in dataset_files(target):
                failed |= _print_validation(parse_file(path, format_name(format), bio))
    if failed:
        raise typer.Exit(2)


@data_app.command("list")
def list_datasets(
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    datasets: DatasetsOption = None,
    as_json: JsonOption = False,
) -> None:
    """The built-in and declared datasets, and what of each is on disk (split files with post counts, images).

    Datasets are declared in <data-dir>/datasets.yaml (read whenever it exists) or a file given with --datasets.

    Examples:

        xl data list

        xl data list --data-dir data --datasets more-datasets.yaml --json
    """
    found = inventory(data_dir, datasets)
    if as_json:
        typer.echo(json.dumps({"data_dir": str(data_dir), "datasets": [d.to_dict() for d in found]}, indent=2, ensure_ascii=False))
        return
    table = Table(title=f"Datasets for {data_dir}")
    for column in ("name", "language", "format", "labels", "train", "dev", "test", "images", "declared"):
        table.add_column(column, justify="right" if column in ("train", "dev", "test", "images") else "left")
    for d in found:
        splits = {s.split: s.describe() for s in d.splits}
        images = "missing" if d.image_count is None else f"{d.image_count:,}"
        table.add_row(d.spec.name, d.spec.lang, d.spec.format, d.spec.label_kind.value,
                      *(splits.get(split, "—") for split in ("train", "dev", "test")), images, d.source)
    Console().print(table)


@data_app.command("stats")
def stats(
    paths: list[Path] = typer.Argument(..., help="Dataset files or folders (their *.txt files), one column per file (e.g. train, dev and test)."),
    format: FormatOption = None,
    images: Optional[Path] = typer.Option(None, "--images", help="Image folder: also count each post's images."),
    as_json: JsonOption = False,
) -> None:
    """Entity counts per type and split, in the shape of the CMNER paper's Table 1.

    Entities are counted conlleval-style (as seqeval's default mode and the papers do).

    Examples:

        xl data stats data/cmner/text/train.txt data/cmner/text/dev.txt data/cmner/text/test.txt

        xl data stats data/twitter2015/*.txt --json
    """
    columns = stats_of_files(paths, format_name(format), images)
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


@data_app.command("compare")
def compare(
    first: str = typer.Argument(..., metavar="SOURCE_FILES", help="A dataset file, a folder (its *.txt files) or a comma-separated list."),
    second: str = typer.Argument(..., metavar="TRANSLATED_FILES", help="The corpus to compare with, given the same way."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Folder for compare.md, compare.json and PNG charts."),
    names: Optional[str] = typer.Option(None, "--names", help="Column names for the two corpora, comma-separated (default: the arguments)."),
    format: FormatOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compare two corpora: entity counts and type shares, entity lengths, posts without entities, label transitions.

    Counts agree with 'xl data stats' (conlleval-style). Any two datasets work: a corpus and its
    translation, train vs test, Twitter2015 vs Twitter2017.

    Examples:

        xl data compare data/twitter2015 data/translated/twitter2015.en-zh.opus-mt-en-zh --output compare/

        xl data compare data/twitter2015/train.txt data/twitter2017/train.txt --json
    """
    result = compare_inputs(first, second, names, format_name(format))
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        typer.echo(result.markdown())
    if output is not None:
        for path in write_comparison(result, output):
            typer.echo(f"wrote {path}", err=True)


@data_app.command("download", cls=with_aliases({"--to": "--output"}))
def download(
    dataset: DatasetName = typer.Argument(..., metavar="DATASET", help="The dataset to fetch."),
    to: Path = typer.Option(DEFAULT_DATA_DIR, "--output", "-o", "--data-dir", help="Data directory to fill (the layout 'xl train' reads)."),
) -> None:
    """Download a dataset's public text files and check their checksums.

    Images cannot be fetched from a fixed address; the command says where to get them.

    Examples:

        xl data download twitter2015 --data-dir data

        xl data download cmner --data-dir data
    """
    spec, written = download_dataset(dataset.value, to)
    for path in written:
        typer.echo(f"{path}: ok (checksum verified)")
    typer.echo(spec.images_hint.format(images=DataDir(to).images_dir(spec.name)))


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data", help="Validate, describe and download datasets.")
