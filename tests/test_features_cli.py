"""`xl features` end to end on a few generated CMNER-style images: --json summary, reuse, one-line errors with exit 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xlingual.cli import app
from xlingual.data.formats import write_samples
from xlingual.data.sample import Sample
from xlingual.testing.synthetic import write_images

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory) -> tuple[Path, Path]:
    """Two one-image posts (plus a broken file of a third post) and a CMNER file naming them and a post without images."""
    root = tmp_path_factory.mktemp("cli")
    images = write_images(root / "images", ["L4x7aaJ4n_00gv0wr.jpg", "L5SRzy4Ez_u0dfta3.jpg"])
    (images / "Lbroken000_abc.jpg").write_text("not a picture")
    samples = [
        Sample(id=post, tokens=list("北京"), labels=["B-LOC", "I-LOC"], lang="zh")
        for post in ("L4x7aaJ4n", "L5SRzy4Ez", "Lbroken000", "Lnoimage00")
    ]
    text = root / "dev.txt"
    write_samples(text, samples, "cmner")
    return images, text


@pytest.fixture(scope="module")
def first_run(small_dataset: tuple[Path, Path], tmp_path_factory) -> tuple[list[str], Path, dict]:
    images, text = small_dataset
    cache = tmp_path_factory.mktemp("cli_cache") / "cache"
    args = ["features", "extract", "--images", str(images), "-d", str(text), "-d", str(text), "--backbone", "vgg16",
            "--weights", "random", "--out", str(cache), "--batch-size", "2", "--json"]
    result = run(*args)
    assert result.exit_code == 0, result.output
    return args, cache, json.loads(result.stdout)


def test_extract_json_then_reuse(first_run: tuple[list[str], Path, dict]) -> None:
    args, cache, summary = first_run
    assert summary["named"] == 3 and summary["extracted"] == 2 and summary["cached"] == 0
    assert list(summary["failed"]) == ["Lbroken000_abc.jpg"]
    assert summary["samples"] == 8 and summary["samples_without_image"] == 4
    assert summary["weights"] == "random" and summary["backbone"] == "vgg16"

    again = json.loads(run(*args).stdout)
    assert (again["extracted"], again["cached"], again["forward_batches"]) == (0, 2, 0)

    table = run(*args[:-1])
    assert table.exit_code == 0 and "taken from cache" in table.stdout and "samples with no image" in table.stdout

    info = run("features", "info", str(cache), "--json")
    assert info.exit_code == 0
    described = json.loads(info.stdout)
    assert described["images"] == 2 and described["region_shape"] == [49, 512] and described["weights"] == "random"


def test_data_dir_finds_datasets_and_the_default_cache(first_run, small_dataset: tuple[Path, Path], tmp_path: Path) -> None:
    _, cache, _ = first_run
    images, text = small_dataset
    data = tmp_path / "data"
    shutil.copytree(images, data / "cmner" / "images")
    (data / "cmner" / "text").mkdir(parents=True)
    shutil.copy(text, data / "cmner" / "text" / "dev.txt")
    shutil.copytree(cache, data / "features" / "vgg16")  # a moved cache; the copied images have new times
    result = run("features", "extract", "--data-dir", str(data), "--weights", "random", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["named"], summary["cached"], summary["extracted"], summary["forward_batches"]) == (3, 2, 0, 0)
    assert summary["samples"] == 4 and summary["cache_dir"] == str(data / "features" / "vgg16")


def test_whole_folder_without_dataset_files(small_dataset: tuple[Path, Path], tmp_path: Path) -> None:
    images, _ = small_dataset
    result = run("features", "extract", "--images", str(images), "--backbone", "vgg16", "--weights", "random",
                 "--out", str(tmp_path / "r"), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["named"] == 3 and summary["extracted"] == 2 and summary["samples"] is None
    assert json.loads(run("features", "info", str(tmp_path / "r"), "--json").stdout)["region_shape"] == [49, 512]


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--weights", "default"], r"--weights PATH .*--weights random"),
        (["--weights", "nowhere.pth"], r"--weights nowhere.pth: no such file"),
        (["--images", "/nonexistent/images"], r"--images /nonexistent/images: image folder does not exist"),
        (["--device", "cuda:7"], r"--device cuda:7"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(small_dataset: tuple[Path, Path], tmp_path: Path, extra: list[str], message: str) -> None:
    images, _ = small_dataset
    base = {"--images": str(images), "--weights": "random", "--out": str(tmp_path / "c"), "--backbone": "resnet152"}
    for key, value in zip(extra[::2], extra[1::2]):
        base[key] = value
    result = run("features", "extract", *[part for pair in base.items() for part in pair])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.output
    import re

    assert re.search(message, lines[0]), lines[0]


def test_mixing_weights_in_one_cache_is_refused(small_dataset: tuple[Path, Path], tmp_path: Path) -> None:
    images, text = small_dataset
    common = ["features", "extract", "--images", str(images), "-d", str(text), "--out", str(tmp_path / "c"), "--backbone", "vgg16"]
    assert run(*common, "--weights", "random").exit_code == 0
    refused = run(*common, "--weights", "random", "--crop", "faithful")
    assert refused.exit_code == 2 and "never mixed" in refused.stderr


def test_help_has_examples() -> None:
    for command in (["features", "extract", "--help"], ["features", "info", "--help"]):
        result = run(*command)
        assert result.exit_code == 0 and "Examples" in result.stdout and "xl features" in result.stdout
    assert "not a feature cache" in run("features", "info", "/nonexistent").stderr


def test_data_dir_lists_each_image_folder_once_for_all_its_splits(small_dataset: tuple[Path, Path], tmp_path: Path,
                                                                  monkeypatch) -> None:
    from xlingual.data.datasets import load_split

    images, text = small_dataset
    data = tmp_path / "data"
    shutil.copytree(images, data / "cmner" / "images")
    (data / "cmner" / "text").mkdir(parents=True)
    for split in ("train", "dev", "test"):
        shutil.copy(text, data / "cmner" / "text" / f"{split}.txt")
    folder = data / "cmner" / "images"
    listings: list[Path] = []
    iterdir = Path.iterdir

    def counting(self: Path):
        if self == folder:
            listings.append(self)
        return iterdir(self)

    monkeypatch.setattr(Path, "iterdir", counting)
    result = run("features", "extract", "--data-dir", str(data), "--weights", "random", "--json")
    assert result.exit_code == 0, result.output
    assert len(listings) == 1
    summary = json.loads(result.stdout)
    from xlingual.features.extract import extract_for_samples

    per_split = [s for split in ("train", "dev", "test") for s in load_split(data, "cmner", split)]  # each split indexing the folder
    alone = extract_for_samples(folder, per_split, tmp_path / "alone", backbone="vgg16", weights="random").to_dict()
    compared = ("named", "extracted", "cached", "failed", "forward_batches", "samples", "samples_without_image")
    assert {key: summary[key] for key in compared} == {key: alone[key] for key in compared}
    assert summary["samples"] == 12 and summary["samples_without_image"] == 6
