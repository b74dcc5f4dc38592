"""Reading a YAML mapping from a file, with errors that name the file and line.

Config YAML may not use aliases (``*name``): a few lines of nested aliases
(a "billion laughs") expand to more data than memory holds once the mapping
is copied, and a config has no need for them. They are refused while the
file is parsed, before anything is expanded.

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

from xlingual.errors import ConfigError


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing aliases (merge keys ``<<: *x`` included) where it meets them."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, f"alias *{event.anchor} is not allowed in a config (write the values out)",
                                              event.start_mark)
        return super().compose_node(parent, index)


def safe_load_no_aliases(text: str) -> Any:
    """``yaml.safe_load`` without aliases: what every config text (file or ``--set`` value) is read with."""
    return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass


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
    loader = _NoAliasLoader(path.read_text(encoding="utf-8"))
    try:
        node = loader.get_single_node()
        values = (loader.construct_document(node) if node is not None else None) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: not valid YAML ({getattr(err, 'problem', err)})") from None
    finally:
        loader.dispose()
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
        root = yaml.compose(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return _node_lines(root)


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


__all__ = ["ConfigFile", "key_lines", "parse_config_file", "read_config_file", "read_yaml", "safe_load_no_aliases"]
