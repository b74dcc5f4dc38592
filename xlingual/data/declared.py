"""Datasets declared in YAML: a user's ``datasets.yaml``, and the package's own ``builtin_datasets.yaml``.

Both files are read and checked here, in one vocabulary: a dataset's
``language``, ``format``, ``splits`` and ``images``; the built-ins add the
folder of their split files (``text``), their public sources (``download``)
and how to get their images (``images_hint``).

A file is data, never code: it is read with a safe loader that also refuses
YAML aliases (``*name``, a way to blow up a small file) and repeated keys (the
second silently wins in plain YAML). pydantic checks its shape; every problem
becomes one :class:`~xlingual.errors.ConfigError` line ``FILE:LINE: what``,
the line being that of the key at fault. What a declaration means (paths,
label schema, image rule) is :mod:`xlingual.data.datasets`' business.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, ValidationError, ValidationInfo,
                      field_validator, model_validator)

from xlingual.data.formats import DatasetFormat
from xlingual.data.languages import check_language
from xlingual.data.labels import ENTITY_TYPES, OPEN_TYPE_PATTERN
from xlingual.data.names import NAME_PATTERN, SPLITS
from xlingual.errors import ConfigError
from xlingual.safe_yaml import parse_file


def _name(value: str) -> str:
    if not NAME_PATTERN.fullmatch(value):
        raise ValueError(f"dataset name '{value}' must be lower-case letters, digits, '_' or '-', starting with a letter (at most 40)")
    return value


def _file_type(value: str) -> str:
    if not OPEN_TYPE_PATTERN.fullmatch(value):
        raise ValueError(f"type '{value}' must match {OPEN_TYPE_PATTERN.pattern} (the X of the file's B-X labels)")
    return value


def _labels_kind(value: Any) -> str:
    return "<map>" if isinstance(value, dict) else "<word>"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitFiles(_Strict):
    """Split files, relative to the data directory (absolute paths are taken as they are)."""

    train: str | None = None
    dev: str | None = None
    test: str | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> "SplitFiles":
        if not self.files():
            raise ValueError(f"declare at least one of {', '.join(SPLITS)}")
        return self

    def files(self) -> dict[str, str]:
        return {split: getattr(self, split) for split in SPLITS if getattr(self, split) is not None}


LabelMap = dict[Annotated[str, AfterValidator(_file_type)], Literal["PER", "LOC", "ORG", "MISC"]]
LabelRule = Annotated[
    Union[Annotated[Literal["canonical", "open"], Tag("<word>")], Annotated[LabelMap, Tag("<map>")]],
    Discriminator(_labels_kind),
]


class DatasetEntry(_Strict):
    """One dataset of a ``datasets.yaml``."""

    language: Annotated[str, AfterValidator(check_language)]
    format: DatasetFormat
    splits: SplitFiles
    images: str | None = None
    """Image folder, relative to the data directory (default: ``<name>/images``, used when it exists)."""
    image_names: Literal["stem", "prefix"] = "stem"
    labels: LabelRule = "canonical"
    """``canonical``: the format's own schema (PER/LOC/ORG/MISC); a map of the file's types into those; or ``open``."""


class DeclarationsFile(_Strict):
    datasets: Annotated[dict[Annotated[str, AfterValidator(_name)], DatasetEntry], BeforeValidator(lambda v: {} if v is None else v)] = {}
    """An empty ``datasets:`` declares nothing (a file being written, or one kept for later)."""


def _https(value: str) -> str:
    if not re.fullmatch(r"https://\S+", value):
        raise ValueError(f"'{value}' is not an https:// address")
    return value


def _sha256(value: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{64}", value):
        raise ValueError(f"'{value}' is not a SHA-256 digest (64 lower-case hex digits)")
    return value


def _names_images(value: str) -> str:
    if "{images}" not in value:
        raise ValueError("the hint must say where the images go: {images} (the image folder)")
    return value


class Download(_Strict):
    """A built-in split file's public source: what ``xl data download`` fetches and checks."""

    url: Annotated[str, AfterValidator(_https)]
    bytes: Annotated[int, Field(gt=0, strict=True)]
    sha256: Annotated[str, AfterValidator(_sha256)]


class BuiltinEntry(_Strict):
    """One dataset of the package's ``builtin_datasets.yaml``: split files relative to ``text``, and their public sources."""

    language: Annotated[str, AfterValidator(check_language)]
    format: DatasetFormat
    text: str
    splits: SplitFiles
    images: str
    images_hint: Annotated[str, AfterValidator(_names_images)]
    """How to get the images; ``{images}`` stands for the image folder."""
    download: dict[str, Download]

    @field_validator("splits")
    @classmethod
    def _a_file_per_split(cls, splits: SplitFiles) -> SplitFiles:
        files = list(splits.files().values())  # a download is keyed by file name: two splits cannot share one
        repeated = next((file for file in files if files.count(file) > 1), None)
        if repeated is not None:
            raise ValueError(f"two splits name the file '{repeated}' (a built-in's download is keyed by file name)")
        return splits

    @field_validator("download")
    @classmethod
    def _one_source_per_split(cls, download: dict[str, Download], info: ValidationInfo) -> dict[str, Download]:
        splits = info.data.get("splits")  # absent when the splits themselves are wrong (that error is reported)
        if splits is not None and sorted(splits.files().values()) != sorted(download):
            raise ValueError(f"names {', '.join(download) or 'no file'}, the splits {', '.join(splits.files().values())}: "
                             "each split file needs exactly one source")
        return download


class BuiltinFile(_Strict):
    datasets: Annotated[dict[Annotated[str, AfterValidator(_name)], BuiltinEntry], Field(min_length=1)]


@dataclass(frozen=True)
class Declaration:
    """A checked dataset entry and where it was written (for messages that send the user back to the file)."""

    name: str
    entry: DatasetEntry
    path: Path
    line: int
    split_lines: dict[str, int]

    def where(self, split: str | None = None) -> str:
        line = self.split_lines.get(split, self.line) if split else self.line
        return f"{self.path}:{line}"


# -- reading YAML with lines, safely ------------------------------------------

def _child(node: yaml.Node | None, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return k, v
    return None


def _line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The line of the deepest key of ``loc`` the file writes (pydantic's own loc parts, e.g. union tags, are skipped)."""
    node, line = root, (root.start_mark.line + 1 if root is not None else None)
    for part in loc:
        found = _child(node, str(part))
        if found is not None:
            node, line = found[1], found[0].start_mark.line + 1
    return line


# -- pydantic's report as lines --------------------------------------------------

_NESTED: dict[tuple[int, str], type[BaseModel]] = {(4, "splits"): SplitFiles, (5, "download"): Download}
"""The models below an entry, by the length of an error's loc and the entry key it is under."""


_ENTRIES: dict[type[BaseModel], type[BaseModel]] = {DeclarationsFile: DatasetEntry, BuiltinFile: BuiltinEntry}
"""Each file's model -> the model of one of its ``datasets`` entries."""


def _known_keys(loc: tuple[Any, ...], file_model: type[BaseModel]) -> str:
    models: dict[int, type[BaseModel]] = {1: file_model, 3: _ENTRIES[file_model]}
    cls = _NESTED.get((len(loc), loc[2])) if len(loc) > 3 else models.get(len(loc))
    return f" (known: {', '.join(cls.model_fields)})" if cls is not None else ""


def _describe(error: dict[str, Any], file_model: type[BaseModel]) -> str:
    loc = tuple(part for part in error["loc"] if not (isinstance(part, str) and part.startswith("<")) and part != "[key]")
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    where = ".".join(str(part) for part in loc[1:]) or ".".join(map(str, loc)) or "top level"  # 'datasets.' goes without saying
    if kind == "extra_forbidden":
        return f"{'.'.join(map(str, loc[1:-1])) or 'top level'}: unknown key '{loc[-1]}'{_known_keys(loc, file_model)}"
    if kind == "missing":
        return f"{'.'.join(map(str, loc[1:-1])) or 'top level'}: missing key '{loc[-1]}'"
    if kind == "value_error":
        return f"{where}: {ctx.get('error', error['msg'])}"
    if kind in ("literal_error", "enum"):
        if len(loc) == 4 and loc[2] == "labels":
            return f"{where}: '{value}' is not a canonical type ({', '.join(ENTITY_TYPES)}); use labels: open to keep the file's types"
        return f"{where}: '{value}' is not one of {ctx.get('expected', '')}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"{where}: expected a mapping, got {'nothing' if value is None else type(value).__name__}"
    if kind == "string_type":
        return f"{where}: expected text, got {value!r}"
    return f"{where}: {error['msg']}"


def _raise_one_line(err: ValidationError, path: Path, root: yaml.Node | None, file_model: type[BaseModel]) -> None:
    problems = sorted(((_line_of(root, tuple(e["loc"])) or 0), _describe(e, file_model)) for e in err.errors())
    line, message = problems[0]
    more = len(problems) - 1
    suffix = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
    raise ConfigError(f"{path}:{line}: {message}{suffix}" if line else f"{path}: {message}{suffix}")


def read_declarations(path: str | Path, reserved: Collection[str] = ()) -> list[Declaration]:
    """The datasets ``path`` declares, checked; ``reserved`` names (the built-ins) may not be declared again."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: datasets file not found")
    value, root = parse_file(path)
    if value is None:
        return []
    try:
        checked = DeclarationsFile.model_validate(value)
    except ValidationError as err:
        _raise_one_line(err, path, root, DeclarationsFile)
        raise  # unreachable: _raise_one_line always raises
    found = []
    for name, entry in checked.datasets.items():
        line = _line_of(root, ("datasets", name)) or 0
        if name in reserved:
            raise ConfigError(f"{path}:{line}: '{name}' is a built-in dataset; give yours another name")
        splits = {split: _line_of(root, ("datasets", name, "splits", split)) or line for split in entry.splits.files()}
        found.append(Declaration(name, entry, path, line, splits))
    return found


def read_builtin_entries(path: str | Path) -> dict[str, BuiltinEntry]:
    """The package's built-in datasets, checked like a user's file (a mistake is one line naming ``path:line``)."""
    path = Path(path)
    value, root = parse_file(path)
    try:
        return dict(BuiltinFile.model_validate(value).datasets)
    except ValidationError as err:
        _raise_one_line(err, path, root, BuiltinFile)
        raise  # unreachable: _raise_one_line always raises


__all__ = ["BuiltinEntry", "Declaration", "DatasetEntry", "Download", "SplitFiles", "read_builtin_entries", "read_declarations"]
