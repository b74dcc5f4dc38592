"""Reading a YAML mapping from a file, with errors that name the file and line.

Config YAML is read as every file a person writes is
(:mod:`xlingual.safe_yaml`): no aliases, no key written twice, errors with
their line.

One parse of a file gives both its mapping and the line of each key
(:func:`parse_config_file`). The config layer files (``models/``,
``directions/``, ``settings/``) are read several times by one run (resolving
the config, checking the setting, building each stage's inputs), so
:func:`read_config_file` keeps their parse per file version, as the
``datasets.yaml`` reader does.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from xlingual import safe_yaml
from xlingual.errors import ConfigError


@dataclass(frozen=True)
class ConfigFile:
    """A YAML config file as parsed: its mapping and, per dotted key, the line (from 1) that writes it."""

    values: dict[str, Any]
    lines: dict[str, int] = field(default_factory=dict)


def parse_config_file(path: str | Path) -> ConfigFile:
    """One parse of a YAML mapping file: its values (an empty file is an empty mapping) and its key lines."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    values, node = safe_yaml.parse_file(path)
    values = values or {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping")
    return ConfigFile(values, _node_lines(node))


@functools.lru_cache(maxsize=64)
def _parsed_version(path: str, _mtime_ns: int, _size: int) -> ConfigFile:
    """The parse of one version of a file (the stat is part of the key, so an edited file is parsed again)."""
    return parse_config_file(path)


def read_config_file(path: str | Path) -> ConfigFile:
    """:func:`parse_config_file`, parsed once per file version; the caller gets its own copy to change."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    stat = path.stat()
    parsed = _parsed_version(str(path), stat.st_mtime_ns, stat.st_size)
    return ConfigFile(copy.deepcopy(parsed.values), dict(parsed.lines))


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping a YAML file holds (an empty file is an empty mapping)."""
    return parse_config_file(path).values


def key_lines(path: str | Path) -> dict[str, int]:
    """Dotted key (a list item by its index, ``set.0``) -> the line (from 1) where a YAML mapping file writes it, so errors can point at lines."""
    try:
        return parse_config_file(path).lines
    except ConfigError:  # lines only help an error message: a file that cannot be read has none
        return {}


def _node_lines(root: yaml.Node | None) -> dict[str, int]:
    """Dotted key -> line (from 1) of every mapping key and list item under a composed YAML document."""
    lines: dict[str, int] = {}

    def walk(node: yaml.Node, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    lines[prefix + key.value] = key.start_mark.line + 1
                    walk(value, f"{prefix}{key.value}.")
        elif isinstance(node, yaml.SequenceNode):  # list items by index: ``set.2``
            for index, item in enumerate(node.value):
                lines[f"{prefix}{index}"] = item.start_mark.line + 1
                walk(item, f"{prefix}{index}.")

    if root is not None:
        walk(root, "")
    return lines


__all__ = ["ConfigFile", "key_lines", "parse_config_file", "read_config_file", "read_yaml"]
