"""``--set key=value``: dotted keys reach nested sections; a bare stage key sets both stages."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from xlingual.errors import ConfigError
from xlingual import safe_yaml
from xlingual.train.config.schema import StageConfig, TrainConfig

STAGES: tuple[str, ...] = ("pretrain", "target")


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` -> (key, YAML-parsed value); ``lr=3e-5`` gives the float 3e-5."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {text}: expected key=value (e.g. --set target.lr=1e-4)")
    try:
        value = safe_yaml.load(raw) if raw.strip() else None
    except yaml.composer.ComposerError as err:
        raise ConfigError(f"--set {text}: {err.problem}") from None
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value for c in ".eE") else value
        except ValueError:
            pass
    return key, value


def override_targets(key: str) -> list[list[str]]:
    """The key paths one ``--set`` key writes: ``lr`` -> pretrain.lr and target.lr; ``model.hidden`` -> itself."""
    parts = key.split(".")
    if len(parts) == 1 and parts[0] in StageConfig.model_fields and parts[0] not in TrainConfig.model_fields:
        return [[stage, parts[0]] for stage in STAGES]
    return [parts]


def override_sources(overrides: list[str], origins: Sequence[str] | None = None) -> dict[str, str]:
    """Dotted key -> ``--set key=value``, the option that set it (the last one wins, as in :func:`apply_overrides`).

    ``origins``, one per override, replaces ``--set key=value`` with what gave
    the override where it came from a file (``plan.yaml:7``).
    """
    if origins is not None and len(origins) != len(overrides):
        raise ValueError("one origin per override")
    return {".".join(path): origins[i] if origins is not None else f"--set {text}"
            for i, text in enumerate(overrides) for path in override_targets(parse_override(text)[0])}


def apply_overrides(values: Mapping[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of a config mapping with ``--set`` overrides applied (validated when the config is built)."""
    result = copy.deepcopy(dict(values))
    for text in overrides:
        key, value = parse_override(text)
        for path in override_targets(key):
            node = result
            for part in path[:-1]:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    raise ConfigError(f"--set {text}: '{part}' is not a section")
            node[path[-1]] = value
    return result


__all__ = ["apply_overrides", "override_sources", "override_targets", "parse_override"]
