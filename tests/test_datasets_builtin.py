"""The built-in datasets come from the packaged ``xlingual/data/builtin_datasets.yaml``, read safely and checked.

The catalogue must read exactly as the table in code it replaced
(``tests/fixtures/builtin_datasets.json`` holds those values, written from the
old code), ship in the wheel, and refuse any mistake with one line naming the
file and the line of the key at fault.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import re
import tomllib
from pathlib import Path

import pytest

from xlingual.data.datasets import DATASETS, SOURCE_DATASET_BY_LANG, DatasetName, builtin_file, read_builtin_datasets
from xlingual.data.names import BUILTIN_FILE_NAME
from xlingual.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = json.loads((Path(__file__).parent / "fixtures" / "builtin_datasets.json").read_text(encoding="utf-8"))
TEXT = builtin_file().read_text(encoding="utf-8")
FIELD_KEY = re.compile(r"^(\s+)(language|format|text|splits|images|images_hint|download|url|bytes|sha256):")


def _as_dict(spec) -> dict:
    values = dataclasses.asdict(spec)
    values.update(image_names=spec.image_names.value, label_kind=spec.label_kind.value)
    return values


def _broken(tmp_path: Path, text: str) -> Path:
    path = tmp_path / BUILTIN_FILE_NAME
    path.write_text(text, encoding="utf-8")
    return path


def test_the_catalogue_reads_as_the_table_it_replaced():
    assert list(DATASETS) == list(EXPECTED["datasets"])  # order too: listings and the enum follow it
    for name, spec in DATASETS.items():
        values = _as_dict(spec)
        assert json.dumps(values) == json.dumps(EXPECTED["datasets"][name]), name  # key order of split_files and remote too
        assert spec.builtin and spec.declared is None
    assert {member.name: member.value for member in DatasetName} == EXPECTED["enum"]
    assert SOURCE_DATASET_BY_LANG == EXPECTED["source_by_lang"]
    assert all(SOURCE_DATASET_BY_LANG[lang] in DATASETS and DATASETS[SOURCE_DATASET_BY_LANG[lang]].lang == lang
               for lang in SOURCE_DATASET_BY_LANG)


def test_reading_the_file_again_gives_equal_specs():
    assert read_builtin_datasets(builtin_file()) == DATASETS


def test_the_catalogue_is_package_data():
    path = builtin_file()
    assert path.is_file() and path.parent == ROOT / "xlingual" / "data"
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]["xlingual"]
    relative = path.relative_to(ROOT / "xlingual").as_posix()
    assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), f"{relative} is not shipped by {patterns}"


FIELD_LINES = [number for number, line in enumerate(TEXT.splitlines(), 1) if FIELD_KEY.match(line)]


def test_every_field_is_checked():
    assert len(FIELD_LINES) == len(DATASETS) * (7 + 3 * 3)  # 7 fields per dataset, 3 per source of each of 3 splits


def _parent_line(lines: list[str], at: int) -> int:
    """The line (1-based) of the mapping key that holds line ``at`` (0-based): where a missing key is reported."""
    indent = len(lines[at]) - len(lines[at].lstrip())
    return next(i for i in range(at, -1, -1) if lines[i].strip() and len(lines[i]) - len(lines[i].lstrip()) < indent) + 1


@pytest.mark.parametrize("line", FIELD_LINES)
def test_a_misspelt_key_is_refused_naming_file_and_line(tmp_path: Path, line: int):
    """Every field of every entry: its key misspelt, the file is refused with one line at the key's entry (as a user's file is)."""
    lines = TEXT.splitlines()
    key = FIELD_KEY.match(lines[line - 1]).group(2)
    lines[line - 1] = lines[line - 1].replace(f"{key}:", f"{key}s:", 1)
    path = _broken(tmp_path, "\n".join(lines))
    with pytest.raises(ConfigError) as err:
        read_builtin_datasets(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{_parent_line(lines, line - 1)}: ") and "\n" not in message
    assert message.endswith(f"missing key '{key}' (and 1 more error)")  # the other: the unknown '{key}s'


def _replace_first(old: str, new: str) -> str:
    assert old in TEXT
    return TEXT.replace(old, new, 1)


@pytest.mark.parametrize("old, new, says", [
    ("bytes: 670884", "bytes: -670884", "greater than 0"),
    ("bytes: 670884", "bytes: '670884'", "valid integer"),
    ("sha256: a6246e", "sha256: A6246e", "is not a SHA-256 digest"),
    ("url: https://raw.githubusercontent.com/jefferyYu/UMT/master/data/twitter2015/train.txt", "url: http://example.org/train.txt",
     "not an https:// address"),
    ("format: twitter", "format: twiter", "'twiter' is not one of"),
    ("language: en", "language: english", "english"),
    ("      valid.txt:\n", "      dev.txt:\n", "each split file needs exactly one source"),
    ("unpack the .jpg files into {images}", "unpack the .jpg files there", "must say where the images go"),
    ("    splits: {train: train.txt, dev: valid.txt, test: test.txt}", "    splits: {train: train.txt, dev: test.txt, test: test.txt}",
     "two splits name the file 'test.txt'"),
])
def test_a_wrong_value_is_refused_at_its_line(tmp_path: Path, old: str, new: str, says: str):
    text = _replace_first(old, new)
    first_changed = next(i for i, (a, b) in enumerate(zip(TEXT.splitlines(), text.splitlines())) if a != b) + 1
    path = _broken(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        read_builtin_datasets(path)
    message = str(err.value)
    assert says in message and "\n" not in message
    lines = TEXT.splitlines()
    key_line = first_changed if FIELD_KEY.match(lines[first_changed - 1]) else _parent_line(lines, first_changed - 1)
    assert message.startswith(f"{path}:{key_line}: "), "the line of the key whose value is wrong"


@pytest.mark.parametrize("text, says", [
    ("datasets:\n  x: !!python/object/apply:os.system ['true']\n", "not valid YAML"),
    ("datasets:\n  a: &one {language: en}\n  b: *one\n", "aliases"),
    ("", "expected a mapping, got nothing"),
    ("datasets: {}\n", "at least 1"),
])
def test_the_file_is_read_as_plain_data(tmp_path: Path, text: str, says: str):
    with pytest.raises(ConfigError, match=re.escape(says)):
        read_builtin_datasets(_broken(tmp_path, text))
