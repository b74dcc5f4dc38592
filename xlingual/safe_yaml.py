"""YAML as the project reads every file a person writes: the safe loader, no aliases, no key written twice, errors with their line.

Configs, experiment plans, ``--set`` values, dataset declarations and the
packaged dataset catalogue are all read here, so they accept and refuse the
same things:

* aliases (``*name``, merge keys ``<<: *x`` included): a few lines of nested
  aliases (a "billion laughs") expand to more data than memory holds once a
  mapping is copied, and none of these files needs them. They are refused
  while the file is composed, before anything is expanded;
* a key written twice in one mapping: YAML keeps the last one silently, which
  hides a mistake;
* anything PyYAML's safe loader would not build (no Python objects from data).

:func:`parse` returns the node tree beside the value, so a caller can name the
line of whatever it refuses later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from xlingual.errors import ConfigError


class _StrictSafeLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing aliases and repeated keys where it meets them."""

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, f"alias *{event.anchor} is not allowed (aliases are refused in every file "
                                              "xlingual reads: write the values out)", event.start_mark)
        node = super().compose_node(parent, index)
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key, _ in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in seen:
                        raise yaml.composer.ComposerError(None, None, f"key '{key.value}' is written twice", key.start_mark)
                    seen.add(key.value)
        return node


def load(text: str) -> Any:
    """The value ``text`` holds (``--set`` values); refusals are :class:`yaml.YAMLError` for the caller to word."""
    return yaml.load(text, Loader=_StrictSafeLoader)  # noqa: S506 - a SafeLoader subclass


def parse(text: str, where: str) -> tuple[Any, yaml.Node | None]:
    """The value ``text`` holds and its node tree; anything refused is a ConfigError ``where:LINE: ...``."""
    loader = _StrictSafeLoader(text)
    try:
        node = loader.get_single_node()
        value = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{where}{line}: not valid YAML ({getattr(err, 'problem', None) or err})") from None
    finally:
        loader.dispose()
    return value, node


def parse_file(path: Path) -> tuple[Any, yaml.Node | None]:
    """:func:`parse` of a UTF-8 file; an unreadable file is one line naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({err.strerror})") from None
    return parse(text, str(path))


__all__ = ["load", "parse", "parse_file"]
