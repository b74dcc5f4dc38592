"""The packaged paper configs: one base per model, plus small per-direction and per-setting deltas.

``xlingual/train/packaged_configs/`` holds::

    models/<model>.yaml              what the paper fixes for a model: seed, ``model`` section, both stages
    models/<model>.<direction>.yaml  what that model changes for one direction (only where it does)
    directions/<direction>.yaml      the direction
    settings/<setting>.yaml          the setting: what each stage trains on (``stages``, read by
                                     :mod:`xlingual.train.stages`) and how it shapes the stages' optimisation

``<model>-<direction>-<setting>`` is the model's base with the direction, the
model's direction delta and the setting merged on in that order
(:func:`merge`), and ``name`` set to those three words. A run that names its
datasets instead of a direction has no direction layers. The models,
directions and settings on offer are the files present, so a new model
(``models/2mner.yaml``) or a new setting (``settings/joint.yaml``) is one file.

Users add or replace files without touching the package: every folder named
in ``XLINGUAL_CONFIGS`` (separated like ``PATH``) is laid out the same way and
searched before the packaged one, so ``$XLINGUAL_CONFIGS/settings/mine.yaml``
is the setting ``mine``.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from xlingual.errors import ConfigError
from xlingual.train.config.files import read_config_file

PAPER_SETTINGS: tuple[str, ...] = ("tgt_only", "src", "tgt", "src_tgt")
"""The CMNER paper's training configurations "-", SRC, TGT, SRC&TGT (§5.3), in the order of its tables."""


USER_CONFIGS_ENV = "XLINGUAL_CONFIGS"
"""Folders (``os.pathsep``-separated) of user config files, laid out like the packaged folder and searched first."""

STAGES_KEY = "stages"
"""A setting file's declaration of what each stage trains on: data for :mod:`xlingual.train.stages`, not a config field."""


def configs_folder() -> Path:
    return Path(str(resources.files("xlingual.train") / "packaged_configs"))


def config_folders() -> list[Path]:
    """The folders searched for config files: ``$XLINGUAL_CONFIGS``'s in order, then the packaged one."""
    users = [Path(part) for part in os.environ.get(USER_CONFIGS_ENV, "").split(os.pathsep) if part.strip()]
    return [*users, configs_folder()]


def config_file(kind: str, name: str) -> Path | None:
    """``<kind>/<name>.yaml`` from the first folder that has it (a user's file shadows the packaged one)."""
    for folder in config_folders():
        path = folder / kind / f"{name}.yaml"
        if path.is_file():
            return path
    return None


def _label(path: Path) -> str:
    """How errors name a config file: ``settings/src.yaml`` inside the package, the full path elsewhere."""
    return f"{path.parent.name}/{path.name}" if path.parent.parent == configs_folder() else str(path)


def _stems(kind: str) -> list[str]:
    """Names of the ``<name>.yaml`` files of one kind (``models/umt.zh-en.yaml``, a delta, is not a model)."""
    folders = [folder / kind for folder in config_folders() if (folder / kind).is_dir()]
    return sorted({p.name[:-5] for folder in folders for p in folder.iterdir() if p.name.endswith(".yaml") and "." not in p.name[:-5]})


PAPER_MODELS: tuple[str, ...] = ("acn", "umt")
"""The CMNER paper's models, in the order of its tables; other packaged models (2M-NER) follow by name."""


def model_types() -> tuple[str, ...]:
    present = _stems("models")
    return (*[m for m in PAPER_MODELS if m in present], *[m for m in present if m not in PAPER_MODELS])


def directions() -> tuple[str, ...]:
    return tuple(_stems("directions"))


def settings() -> tuple[str, ...]:
    """The paper's settings in its order, then any other packaged setting by name."""
    present = _stems("settings")
    return (*[s for s in PAPER_SETTINGS if s in present], *[s for s in present if s not in PAPER_SETTINGS])


MODEL_TYPES: tuple[str, ...] = model_types()
DIRECTIONS: tuple[str, ...] = directions()
SETTINGS: tuple[str, ...] = settings()
"""The packaged choices when this module was imported (validation reads the folder each time)."""


def packaged_config_names() -> list[str]:
    """Every packaged ``<model>-<direction>-<setting>`` (``acn-en-zh-src_tgt``, ...), sorted."""
    return sorted(f"{m}-{d}-{s}" for m in model_types() for d in directions() for s in settings())


def layer_files(model_type: str, direction: str | None, setting: str) -> list[Path]:
    """The files that make one packaged config, in the order they are merged (no direction layers for None)."""
    layers = [("models", model_type)]
    if direction is not None:
        layers += [("directions", direction), ("models", f"{model_type}.{direction}")]
    layers.append(("settings", setting))
    return [path for kind, name in layers if (path := config_file(kind, name)) is not None]


def packaged_values(model_type: str, direction: str, setting: str) -> dict[str, Any]:
    """The resolved mapping of one packaged config (not yet validated); names must be packaged ones."""
    return resolve_packaged(model_type, direction, setting)[0]


def resolve_packaged(model_type: str, direction: str | None, setting: str,
                     name: str | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """The resolved mapping and, for each dotted key, the ``file:line`` its value comes from (for errors).

    A setting file's ``stages`` declaration is not merged: it is not a config
    field but the setting's own data, read by name when a run builds its
    inputs (:func:`setting_declaration`). ``setting`` is the file's name
    (a ``setting:`` line in the file may repeat it). ``name`` defaults to
    ``<model>-<direction>-<setting>``.
    """
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for path in layer_files(model_type, direction, setting):
        label = _label(path)
        layer = read_config_file(path)
        delta = layer.values
        if path.parent.name == "settings":
            delta.pop(STAGES_KEY, None)
        values = merge(values, delta, where=label)
        for key, line in layer.lines.items():
            if path.parent.name == "settings" and (key == STAGES_KEY or key.startswith(STAGES_KEY + ".")):
                continue
            if not isinstance(_value_at(delta, key), Mapping):  # a value, or a section reset or copied whole
                sources = {k: v for k, v in sources.items() if not k.startswith(key + ".")}
            sources[key] = f"{label}:{line}"
    values["setting"] = setting
    values["name"] = name or f"{model_type}-{direction}-{setting}"
    return values, sources


def setting_declaration(setting: str) -> tuple[dict[str, Any] | None, str, dict[str, int]]:
    """A setting file's ``stages`` mapping (None when it declares none), the file's label, and its key lines."""
    path = config_file("settings", setting)
    if path is None:
        raise ConfigError(f"setting '{setting}': no settings/{setting}.yaml in {', '.join(map(str, config_folders()))}")
    parsed = read_config_file(path)
    return parsed.values.get(STAGES_KEY), _label(path), parsed.lines


def _value_at(tree: Any, dotted: str) -> Any:
    """The value at a dotted key, or None where the path is not a chain of string-keyed mappings."""
    for part in dotted.split("."):
        if not isinstance(tree, Mapping) or part not in tree:
            return None
        tree = tree[part]
    return tree


def merge(below: Mapping[str, Any], delta: Mapping[str, Any], where: str = "config") -> dict[str, Any]:
    """``delta`` applied on ``below`` (neither is changed); the three rules of a delta file:

    * a mapping merges into the mapping below it key by key, recursively; any other value replaces;
    * ``null`` in place of a section (a mapping below) removes it, so the schema's defaults apply;
    * the name of a sibling section in place of a section copies that section as it stood
      below this delta (``target: pretrain``: the target stage takes the pre-training's values).
    """
    result = copy.deepcopy(dict(below))
    for key, value in delta.items():
        current = below.get(key)
        if isinstance(current, Mapping) and value is None:
            del result[key]
        elif isinstance(current, Mapping) and isinstance(value, str):
            source = below.get(value)
            if not isinstance(source, Mapping):
                raise ConfigError(f"{where}: {key}: '{value}' is not a section to copy")
            result[key] = copy.deepcopy(dict(source))
        elif isinstance(current, Mapping) and isinstance(value, Mapping):
            result[key] = merge(current, value, f"{where}: {key}")
        else:
            result[key] = copy.deepcopy(value)
    return result


__all__ = ["DIRECTIONS", "MODEL_TYPES", "PAPER_MODELS", "PAPER_SETTINGS", "SETTINGS", "STAGES_KEY", "USER_CONFIGS_ENV", "config_file",
           "config_folders", "configs_folder", "directions", "layer_files", "merge", "model_types", "packaged_config_names",
           "packaged_values", "resolve_packaged", "setting_declaration", "settings"]
