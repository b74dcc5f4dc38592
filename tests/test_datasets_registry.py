"""The dataset registry is built once per version of its declaration files, and a split file is checked by one function.

Every path a command builds asks the registry (each split, image folder and
translation of each dataset), so it must not be rebuilt for each question,
and must still follow an edited ``datasets.yaml``. ``xl data validate``
(:func:`parse_split`) and the input check before a run
(:func:`~xlingual.stage_inputs.locate_split`) must say the same of a missing
split file, since one function decides it.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xlingual.data.datasets as datasets
from xlingual.data.datasets import DATASETS, MissingSplit, dataset_registry, find_split, get_dataset, load_split, parse_split
from xlingual.errors import ConfigError, XlingualError
from xlingual.stage_inputs import Missing, locate_split
from xlingual.workspace import DataDir


def declaration(names: list[str]) -> str:
    return "datasets:\n" + "".join(f"  {name}:\n    language: en\n    format: conll\n    splits: {{train: {name}/train.conll}}\n"
                                   for name in names)


VERSIONS = itertools.count(1)
"""Modification times for the edits of the property test, each later than any before (hypothesis reuses the folder)."""


def builds() -> int:
    return datasets._registry_of.cache_info().misses


def test_many_questions_about_one_data_dir_build_the_registry_once(tmp_path: Path) -> None:
    (tmp_path / "datasets.yaml").write_text(declaration(["shop"]), encoding="utf-8")
    layout = DataDir(tmp_path)
    datasets._registry_of.cache_clear()
    for _ in range(20):
        assert layout.dataset("shop").split_files == {"train": "shop/train.conll"}
        layout.split_file("twitter2015", "dev"), layout.images_dir("shop"), layout.datasets()
        get_dataset("cmner", tmp_path), dataset_registry(tmp_path)
    assert builds() == 1
    extra = tmp_path / "more.yaml"
    extra.write_text(declaration(["blog"]), encoding="utf-8")
    for _ in range(5):
        assert list(DataDir(tmp_path, extra).datasets())[-2:] == [get_dataset("shop", tmp_path), get_dataset("blog", tmp_path, extra)]
    assert builds() == 2  # another set of declaration files: another registry, once


def test_an_edited_declarations_file_is_seen_at_once(tmp_path: Path) -> None:
    path = tmp_path / "datasets.yaml"
    path.write_text(declaration(["shop"]), encoding="utf-8")
    assert "shop" in dataset_registry(tmp_path)
    path.write_text(declaration(["shop", "blog"]), encoding="utf-8")
    assert list(dataset_registry(tmp_path))[-2:] == ["shop", "blog"]
    stat = path.stat()
    path.write_text(declaration(["shoe"]), encoding="utf-8")  # the same size: told apart by the modification time
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert "shoe" in dataset_registry(tmp_path) and "shop" not in dataset_registry(tmp_path)
    path.unlink()
    assert dict(dataset_registry(tmp_path)) == DATASETS


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.lists(st.sampled_from(["a", "bb", "ccc", "shop", "x-1"]), unique=True, max_size=4), min_size=1, max_size=6))
def test_the_registry_always_holds_what_the_file_declares_now(tmp_path: Path, edits: list[list[str]]) -> None:
    path = tmp_path / "datasets.yaml"
    for names in edits:
        path.write_text(declaration(names), encoding="utf-8")
        os.utime(path, ns=(0, 10**18 + next(VERSIONS) * 10**6))  # each edit a later version, as any editor's save is
        assert list(dataset_registry(tmp_path)) == [*DATASETS, *names]


def test_the_registry_is_read_only(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        dataset_registry(tmp_path)["mine"] = DATASETS["cmner"]  # type: ignore[index]


@pytest.mark.parametrize("dataset, split", [("twitter2015", "dev"), ("cmner", "test"), ("shop", "train")])
def test_validate_and_the_input_check_say_the_same_of_a_missing_split(tmp_path: Path, dataset: str, split: str) -> None:
    (tmp_path / "datasets.yaml").write_text(declaration(["shop"]), encoding="utf-8")
    spec = get_dataset(dataset, tmp_path)
    missing = find_split(spec, tmp_path, split)
    assert isinstance(missing, MissingSplit) and missing.path == spec.split_path(tmp_path, split)
    with pytest.raises(XlingualError) as err:
        parse_split(tmp_path, dataset, split)
    located = locate_split(tmp_path, dataset, split)
    assert isinstance(located, Missing) and str(err.value) == located.error == missing.error
    assert missing.error.startswith(f"{missing.path}: not found (")
    if spec.builtin:
        assert located.command == f"xl data download {dataset} --data-dir {tmp_path}"
        assert missing.hint == f"run 'xl data download {dataset} --data-dir {tmp_path}' or pass --data-dir"
    else:
        assert located.command == missing.hint == f"the train split of 'shop', declared at {tmp_path / 'datasets.yaml'}:5"
    missing.path.parent.mkdir(parents=True, exist_ok=True)
    missing.path.write_text({"shop": "a\tO\n", "cmner": "WID:1\n中\tO\n"}.get(dataset, "IMGID:1\na\tO\n"), encoding="utf-8")
    assert find_split(spec, tmp_path, split) == missing.path == locate_split(tmp_path, dataset, split)
    assert len(load_split(tmp_path, dataset, split, with_images=False)) == 1


def test_a_split_the_dataset_lacks_is_still_refused_before_the_file_is_looked_for(tmp_path: Path) -> None:
    (tmp_path / "datasets.yaml").write_text(declaration(["shop"]), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^dataset 'shop' declares no dev split \(.*datasets.yaml:2\)$"):
        find_split(get_dataset("shop", tmp_path), tmp_path, "dev")
