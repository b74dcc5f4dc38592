"""Reading a YAML mapping from a file, with errors that name the file and line.

Config YAML may not use aliases (``*name``): a few lines of nested aliases
(a "billion laughs") expand to more data than memory holds once the mapping
is copied, and a config has no need for them. They are refused while the
file is parsed, before anything is expanded.
"""

from __future__ import annotations

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


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping a YAML file holds (an empty file is an empty mapping)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        values = safe_load_no_aliases(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: not valid YAML ({getattr(err, 'problem', err)})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping")
    return values


def key_lines(path: str | Path) -> dict[str, int]:
    """Dotted key (a list item by its index, ``set.0``) -> the line (from 1) where a YAML mapping file writes it, so errors can point at lines."""
    try:
        root = yaml.compose(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
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


__all__ = ["key_lines", "read_yaml", "safe_load_no_aliases"]
