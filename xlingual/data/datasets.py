"""The dataset registry: the datasets xlingual knows and those a user declares.

The registry is the one source of what a dataset is: its language, format,
split files and image folder (relative to a data directory), how its posts
name their images and how its labels read. It holds the four built-ins
(Twitter2015/2017, CMNER, MMNERD, with their public sources), which the
package lists in ``builtin_datasets.yaml`` (data, read and checked once, on first use), and
whatever ``<data-dir>/datasets.yaml`` declares, plus a file passed with ``--datasets``
(see :mod:`xlingual.data.declared` for the file). :class:`~xlingual.workspace.DataDir`
asks the registry for paths; the registry knows nothing of the workspace.

Splits are called ``train``, ``dev`` and ``test`` everywhere in the library;
the file names (Twitter's ``valid.txt``) are a detail of each dataset.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from xlingual.data.formats import TEXT_FORMATS, ReadResult, parse_file, raise_for_errors
from xlingual.data.images import ImageNames, attach_images
from xlingual.data.labels import CANONICAL_SCHEMA, OPEN_SCHEMA, LabelSchema, mapped_schema
from xlingual.data.names import BUILTIN_FILE_NAME, DATASETS_FILE_NAME, SPLITS
from xlingual.data.sample import Sample
from xlingual.errors import ConfigError, XlingualError

if TYPE_CHECKING:
    from xlingual.data.declared import BuiltinEntry, Declaration


class LabelKind(str, Enum):
    """How a dataset's labels read: the canonical PER/LOC/ORG/MISC as its format spells them, its own types mapped
    into those, or its own types kept as they are (an open label set)."""

    CANONICAL = "canonical"
    MAPPED = "mapped"
    OPEN = "open"


@dataclass(frozen=True)
class RemoteFile:
    url: str
    size: int
    sha256: str


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: its language, format, split files, image folder and naming, label rule, and public sources.

    Paths are relative to a data directory: split ``s`` is
    ``<data-dir>/<text_subdir>/<split_files[s]>`` and the images lie in
    ``<data-dir>/<images_subdir>``. A declared dataset has no ``text_subdir``
    and no ``remote`` files, and ``declared_in`` names its ``file:line``.
    """

    name: str
    lang: str
    format: str
    text_subdir: str
    split_files: dict[str, str]
    images_subdir: str
    remote: dict[str, RemoteFile]
    images_hint: str
    image_names: ImageNames = ImageNames.ANY
    label_kind: LabelKind = LabelKind.CANONICAL
    label_map: dict[str, str] = field(default_factory=dict)
    """The file's types -> canonical types (``label_kind`` mapped only)."""
    declared: "Declaration | None" = None
    """Where a declared dataset was declared; None for a built-in."""

    @property
    def builtin(self) -> bool:
        return self.declared is None

    @property
    def open_labels(self) -> bool:
        """True when samples carry the file's own entity types (not PER/LOC/ORG/MISC)."""
        return self.label_kind is LabelKind.OPEN

    @property
    def schema(self) -> LabelSchema:
        """How this dataset's files spell their labels (readers map them, writers spell them back)."""
        if self.label_kind is LabelKind.OPEN:
            return OPEN_SCHEMA
        if self.label_kind is LabelKind.MAPPED:
            return mapped_schema(f"{self.name} label map", self.label_map)
        return TEXT_FORMATS[self.format].schema if self.format in TEXT_FORMATS else CANONICAL_SCHEMA

    @property
    def translation_schema(self) -> LabelSchema | None:
        """How a translation of this dataset spells its labels in the target's text format.

        An open label set keeps its own types (``B-PRODUCT`` stays so in any
        format); otherwise the samples are canonical and the target format's
        own spelling applies (None), as it always has for the built-ins.
        Writer and reader of a translation both ask here.
        """
        return OPEN_SCHEMA if self.open_labels else None

    @property
    def entity_types(self) -> tuple[str, ...] | None:
        """The entity types its samples can carry; None for an open label set (the data says which)."""
        return self.schema.entity_types

    def split_path(self, data_dir: str | Path, split: str) -> Path:
        """Where split ``split`` lies in ``data_dir``; a one-line error for a split the dataset does not have."""
        if split not in self.split_files:
            if self.declared is not None and split in SPLITS:
                raise ConfigError(f"dataset '{self.name}' declares no {split} split ({self.declared.where()})")
            raise ConfigError(f"unknown split '{split}' for {self.name} (choose from {', '.join(self.split_files)})")
        return Path(data_dir) / self.text_subdir / self.split_files[split]

    def split_name(self, split: str) -> str:
        """The name a split's derived files take: its file's stem (Twitter's ``valid``, CMNER's ``dev``, ``learn`` for ``shop/learn.tsv``),
        or the split itself (``train``, ``dev``, ``test``) for every split of a dataset whose files share a stem
        (``train/data.conll``, ``dev/data.conll``), so that each split's name is its own.

        A translation writes ``<name>.txt`` for each split, so readers of a
        translation and writers of one agree through here.
        """
        stems = [Path(file).stem for file in self.split_files.values()]
        return split if len(set(stems)) < len(stems) else Path(self.split_files[split]).stem

    def images_path(self, data_dir: str | Path) -> Path:
        """The image folder in ``data_dir`` (it may not exist: images are optional)."""
        return Path(data_dir) / self.images_subdir

    def parse(self, path: str | Path, split: str, bio: str = "repair") -> ReadResult:
        """Read one of this dataset's files with its format and label rule, collecting every error."""
        if self.builtin:
            return parse_file(path, self.format, bio)  # exactly as the built-ins have always read
        return parse_file(path, self.format, bio, schema=self.schema, lang=self.lang, id_prefix=split)


def builtin_file() -> Path:
    """Where the package's catalogue lies (inside the installed package, as a wheel ships it)."""
    return Path(str(resources.files("xlingual.data") / BUILTIN_FILE_NAME))


def _builtin_spec(name: str, entry: "BuiltinEntry") -> DatasetSpec:
    return DatasetSpec(
        name=name, lang=entry.language, format=entry.format.value, text_subdir=entry.text, split_files=entry.splits.files(),
        images_subdir=entry.images, remote={file: RemoteFile(source.url, source.bytes, source.sha256) for file, source in entry.download.items()},
        images_hint=entry.images_hint,
    )


def read_builtin_datasets(path: str | Path) -> dict[str, DatasetSpec]:
    """Name -> spec of each dataset a catalogue file lists, checked (a mistake is one line ``path:line: what``)."""
    from xlingual.data.declared import read_builtin_entries  # pydantic's models: built only when a catalogue is read

    return {name: _builtin_spec(name, entry) for name, entry in read_builtin_entries(path).items()}


@functools.cache
def builtin_datasets() -> dict[str, DatasetSpec]:
    """The built-in datasets (Twitter2015/2017, CMNER, MMNERD) and their public sources, as ``builtin_datasets.yaml`` lists them.

    Read and checked on first use rather than at import: the check builds
    pydantic models (about 70 ms), which ``import xlingual`` and ``xl --help``
    do not need. Also reachable as the module attribute ``DATASETS``.
    """
    return read_builtin_datasets(builtin_file())


@functools.cache
def _dataset_name_enum() -> type[Enum]:
    """The built-ins' names as a choice (``xl data download DATASET``), from the catalogue's keys (safe YAML, no checking needed)."""
    from xlingual.safe_yaml import parse_file

    names = parse_file(builtin_file())[0]["datasets"]
    return Enum("DatasetName", {name.upper(): name for name in names}, type=str)  # type: ignore[return-value]


def __getattr__(name: str) -> object:
    """``DATASETS`` and ``DatasetName``, built when first asked for (see :func:`builtin_datasets`)."""
    if name == "DATASETS":
        return builtin_datasets()
    if name == "DatasetName":
        return _dataset_name_enum()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

SOURCE_DATASET_BY_LANG: dict[str, str] = {"en": "twitter2015", "zh": "cmner"}
"""The CMNER paper's shorthand (§5): ``--direction en-zh`` means Twitter2015 -> CMNER. Not a rule that a language is a dataset."""


def _declared_spec(declaration: "Declaration") -> DatasetSpec:
    entry = declaration.entry
    if isinstance(entry.labels, dict):
        kind, label_map = LabelKind.MAPPED, dict(entry.labels)
    else:
        kind, label_map = LabelKind(entry.labels), {}
    return DatasetSpec(
        name=declaration.name, lang=entry.language, format=entry.format.value, text_subdir="",
        split_files=entry.splits.files(), images_subdir=entry.images or f"{declaration.name}/images", remote={},
        images_hint="", image_names=ImageNames(entry.image_names), label_kind=kind, label_map=label_map, declared=declaration,
    )


@functools.lru_cache(maxsize=32)
def _declared_in(path: str, _mtime_ns: int, _size: int) -> tuple[DatasetSpec, ...]:
    """The datasets one file declares; cached per file version (the stat is part of the key)."""
    from xlingual.data.declared import read_declarations

    return tuple(_declared_spec(d) for d in read_declarations(path, reserved=builtin_datasets()))


def _declaration_files(data_dir: str | Path | None, datasets_file: str | Path | None) -> list[Path]:
    files = []
    if data_dir is not None and (Path(data_dir) / DATASETS_FILE_NAME).is_file():
        files.append(Path(data_dir) / DATASETS_FILE_NAME)
    if datasets_file is not None:
        extra = Path(datasets_file)
        if not extra.is_file():
            raise ConfigError(f"{extra}: datasets file not found")
        if not any(extra.resolve() == f.resolve() for f in files):
            files.append(extra)
    return files


FileVersion = tuple[str, int, int]
"""A declarations file as the registry cache knows it: its path, modification time (ns) and size."""


def _version(path: Path) -> FileVersion:
    stat = path.stat()
    return str(path), stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=32)
def _registry_of(versions: tuple[FileVersion, ...]) -> Mapping[str, DatasetSpec]:
    """The built-ins, then what each file declares in order; built once per set of file versions (read-only)."""
    registry = dict(builtin_datasets())
    for path, mtime_ns, size in versions:
        for spec in _declared_in(path, mtime_ns, size):
            if spec.name in registry:
                earlier = registry[spec.name].declared
                raise ConfigError(f"{spec.declared.where() if spec.declared else path}: dataset '{spec.name}' is declared twice "
                                  f"(first at {earlier.where() if earlier else 'the built-ins'})")
            registry[spec.name] = spec
    return MappingProxyType(registry)


def dataset_registry(data_dir: str | Path | None = None, datasets_file: str | Path | None = None) -> Mapping[str, DatasetSpec]:
    """Name -> spec: the built-ins, then what ``<data_dir>/datasets.yaml`` declares, then what ``datasets_file`` declares.

    Asked for on every path a command builds (each split, image folder and
    translation of each dataset), so it is built once per version of its
    declaration files: only their stat is taken again, and an edited file
    (another modification time or size) builds a new one.
    """
    return _registry_of(tuple(_version(path) for path in _declaration_files(data_dir, datasets_file)))


def available_datasets(data_dir: str | Path | None, datasets_file: str | Path | None = None) -> list[DatasetSpec]:
    """Every dataset a command reading ``data_dir`` can use: the built-ins first, then the declared ones in file order."""
    return list(dataset_registry(data_dir, datasets_file).values())


def get_dataset(name: str, data_dir: str | Path | None = None, datasets_file: str | Path | None = None) -> DatasetSpec:
    """The built-in ``name``, or (given a data directory or a datasets file) a declared one; a one-line error listing the choices."""
    registry: Mapping[str, DatasetSpec] = (dataset_registry(data_dir, datasets_file) if (data_dir is not None or datasets_file is not None)
                                           else builtin_datasets())
    if name not in registry:
        raise ConfigError(f"unknown dataset '{name}' (choose from {', '.join(registry)})")
    return registry[name]


@dataclass(frozen=True)
class MissingSplit:
    """A split file that is not where its dataset says: where it should be, and what makes it."""

    spec: DatasetSpec
    data_dir: Path
    split: str
    path: Path

    @property
    def hint(self) -> str:
        """What makes the file: the download command of a built-in dataset, the declaration of a declared one."""
        if self.spec.builtin:
            return f"run '{self.command}' or pass --data-dir"
        return f"the {self.split} split of '{self.spec.name}', declared at {self.spec.declared.where(self.split)}"  # type: ignore[union-attr]

    @property
    def command(self) -> str:
        return f"xl data download {self.spec.name} --data-dir {self.data_dir}" if self.spec.builtin else self.hint

    @property
    def error(self) -> str:
        return f"{self.path}: not found ({self.hint})"


def find_split(spec: DatasetSpec, data_dir: str | Path, split: str) -> Path | MissingSplit:
    """The file of ``split`` in ``data_dir``, or what is missing: the one split-file check every reader makes."""
    path = spec.split_path(data_dir, split)
    return path if path.exists() else MissingSplit(spec, Path(data_dir), split, path)


def parse_split(data_dir: str | Path, dataset: str, split: str, bio: str = "repair",
                datasets_file: str | Path | None = None) -> ReadResult:
    """One split read with its dataset's format and label rule, every error collected (``xl data validate DATASET``)."""
    spec = get_dataset(dataset, data_dir, datasets_file)
    found = find_split(spec, data_dir, split)
    if isinstance(found, MissingSplit):
        raise XlingualError(found.error)
    return spec.parse(found, split, bio)


def load_split(data_dir: str | Path, dataset: str, split: str, with_images: bool = True, bio: str = "repair",
               *, datasets_file: str | Path | None = None) -> list[Sample]:
    """Read one split of a dataset from ``data_dir``; attach images (by the dataset's naming rule) when its image folder exists.

    ``bio="keep"`` reads the labels as written (scoring); the default repairs orphan ``I-`` tags (training).
    A declared dataset's samples carry its language, and its labels as its label rule says (canonical, mapped or open).
    """
    spec = get_dataset(dataset, data_dir, datasets_file)
    samples = raise_for_errors(parse_split(data_dir, dataset, split, bio, datasets_file))
    images = spec.images_path(data_dir)
    if with_images and images.is_dir():
        attach_images(samples, images, spec.image_names)
    return samples
