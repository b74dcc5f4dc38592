"""What a setting trains on: the ``stages`` declaration of its ``settings/<name>.yaml``, read and checked.

A setting is data. Its file says, per stage, which parts of the run's data
the stage trains on and which select its best model::

    stages:
      pretrain: {train: [source, translation], dev: [source, translation]}
      target:   {train: [target], dev: [target]}

Parts: ``source`` (each source dataset), ``target`` (the target dataset),
``translation`` (each source dataset translated into the target's language).
Stages: ``pretrain`` (optional; its best model starts the next stage) and
``target`` (required; its best model is the run's, scored on every test set).
A part listed in order is read in that order, so the samples, hence the
trained weights, follow the file. :mod:`xlingual.train.inputs` turns a plan
into samples; no code lists the settings.

The declaration is not a config field: it stays out of the resolved config
(whose stored YAML must not change when a setting gains a declaration) and is
read by the setting's name, from the same folders the config layers come from
(:func:`xlingual.train.config.packaged.config_folders`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from xlingual.errors import ConfigError
from xlingual.train.config.packaged import STAGES_KEY, setting_declaration

PARTS: tuple[str, ...] = ("source", "target", "translation")
STAGE_NAMES: tuple[str, ...] = ("pretrain", "target")
"""In training order; a stage's optimisation is the config section of the same name."""
SPLITS: tuple[str, ...] = ("train", "dev")


@dataclass(frozen=True)
class StagePlan:
    """One stage: the parts it trains on and the parts whose dev sets select its best model, in reading order."""

    name: str
    train: tuple[str, ...]
    dev: tuple[str, ...]

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.train + self.dev))


@dataclass(frozen=True)
class SettingPlan:
    setting: str
    stages: tuple[StagePlan, ...]

    @property
    def parts(self) -> frozenset[str]:
        """Every part any stage reads."""
        return frozenset(part for stage in self.stages for part in stage.parts)


def setting_plan(setting: str) -> SettingPlan:
    """The checked declaration of ``setting``; a mistake is one line naming the settings file and line."""
    declared, label, lines = setting_declaration(setting)
    if declared is None:
        raise ConfigError(f"{label}: setting '{setting}' declares no '{STAGES_KEY}' (what each stage trains on; see docs/training.md)")
    return parse_plan(setting, declared, label, lines)


def check_setting(setting: str) -> SettingPlan | None:
    """``setting``'s checked declaration, or None where it has none (such a setting fails only when a run trains it)."""
    declared, label, lines = setting_declaration(setting)
    return None if declared is None else parse_plan(setting, declared, label, lines)


def parse_plan(setting: str, declared: Any, label: str, lines: Mapping[str, int]) -> SettingPlan:
    def fail(key: str, message: str) -> ConfigError:
        dotted = f"{STAGES_KEY}.{key}" if key else STAGES_KEY
        line = next((lines[k] for k in (dotted, dotted.rsplit(".", 1)[0], STAGES_KEY) if k in lines), None)
        return ConfigError(f"{label}{f':{line}' if line else ''}: {dotted}: {message}")

    if not isinstance(declared, Mapping):
        raise fail("", f"expected a mapping of stages ({', '.join(STAGE_NAMES)}), got {type(declared).__name__}")
    unknown = [str(name) for name in declared if name not in STAGE_NAMES]
    if unknown:
        raise fail(unknown[0], f"unknown stage '{unknown[0]}' (stages: {', '.join(STAGE_NAMES)})")
    if "target" not in declared:
        raise fail("", "no 'target' stage (the stage whose best model is the run's)")
    stages = []
    for name in STAGE_NAMES:
        if name not in declared:
            continue
        body = declared[name]
        if not isinstance(body, Mapping):
            raise fail(name, f"expected a mapping with {' and '.join(SPLITS)}, got {type(body).__name__}")
        extra = [str(key) for key in body if key not in SPLITS]
        if extra:
            raise fail(f"{name}.{extra[0]}", f"unknown key '{extra[0]}' (a stage lists its {' and '.join(SPLITS)} parts)")
        splits = {}
        for split in SPLITS:
            parts = body.get(split)
            parts = [parts] if isinstance(parts, str) else parts
            if not isinstance(parts, list) or not parts:
                raise fail(f"{name}.{split}" if split in body else name, f"{split}: list the parts it reads ({', '.join(PARTS)})")
            for part in parts:
                if part not in PARTS:
                    raise fail(f"{name}.{split}", f"unknown part '{part}' (parts: {', '.join(PARTS)})")
            if len(set(parts)) != len(parts):
                raise fail(f"{name}.{split}", "a part is listed twice")
            splits[split] = tuple(parts)
        stages.append(StagePlan(name, splits["train"], splits["dev"]))
    return SettingPlan(setting, tuple(stages))


__all__ = ["PARTS", "SPLITS", "STAGE_NAMES", "SettingPlan", "StagePlan", "check_setting", "parse_plan", "setting_plan"]
