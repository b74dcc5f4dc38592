"""Typed training configuration: YAML files shipped with the package, overrides, validation.

One source of defaults: the YAML file of a model x direction x setting
(``xlingual/train/configs/<model>-<direction>-<setting>.yaml``) holds the
paper's hyper-parameters; ``--set key=value`` overrides any field (dotted
keys reach nested sections, e.g. ``model.hidden=100`` or ``target.lr=1e-4``;
a bare stage key such as ``lr=3e-5`` sets it in both stages). The resolved
config is saved in the run folder, so a run can always be repeated.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from xlingual.data.datasets import SOURCE_DATASET_BY_LANG
from xlingual.errors import ConfigError

logger = logging.getLogger(__name__)

CONFIG_VERSION = 1
DIRECTIONS: tuple[str, ...] = ("en-zh", "zh-en")
SETTINGS: tuple[str, ...] = ("tgt_only", "src", "tgt", "src_tgt")
"""The CMNER paper's training configurations: "-", SRC, TGT, SRC&TGT (§5.3)."""
IMAGE_MODES: tuple[str, ...] = ("none", "one", "all")
"""Table 2's inputs: text only, one randomly chosen image, all images averaged."""
MODEL_TYPES: tuple[str, ...] = ("acn", "umt")
MIXED_PRECISION: tuple[str, ...] = ("no", "fp16", "bf16")


@dataclass
class StageConfig:
    """Optimisation of one training stage (pre-training on source data, or training on the target)."""

    epochs: int = 24
    lr: float = 1e-3
    batch_size: int = 16
    eval_batch_size: int = 32
    optimizer: str = "adam"  # adam | adamw
    weight_decay: float = 0.0
    warmup_ratio: float = 0.0
    max_grad_norm: float | None = None
    patience: int | None = None
    """Stop after this many evaluations without a dev improvement; None or 0: run every epoch.

    The reference code (UMT and the CMNER copy of UMT and ACN) has no early
    stopping: it runs all epochs and keeps the best dev checkpoint, so the
    shipped configs leave this off. It stays available as a switch
    (``--set patience=5``)."""
    max_steps: int | None = None
    """Stop the stage after this many optimiser steps (smoke tests, demos)."""
    eval_every_steps: int | None = None
    """Evaluate on dev every N steps as well as at each epoch end."""


@dataclass
class DataConfig:
    """Where the inputs come from; every path defaults to the data-directory layout."""

    data_dir: str = "data"
    translation_model: str | None = None
    """Which translation to use (model tag or folder); None: the only one found."""
    build_missing: bool = False
    """Build a missing translation / feature cache instead of failing."""
    max_samples: int | None = None
    """Use only the first N samples of every split (smoke tests, demos)."""


@dataclass
class TrainConfig:
    """Everything one run needs; ``model`` is passed unchanged to ``MnerModel.build``."""

    model_type: str = "acn"
    direction: str = "en-zh"
    setting: str = "tgt_only"
    seed: int = 444
    images: str = "all"
    backbone: str | None = None
    """Feature cache backbone; None: vgg16 for ACN, resnet152 for UMT."""
    model: dict[str, Any] = field(default_factory=dict)
    pretrain: StageConfig = field(default_factory=StageConfig)
    target: StageConfig = field(default_factory=StageConfig)
    data: DataConfig = field(default_factory=DataConfig)
    gradient_accumulation_steps: int = 1
    mixed_precision: str = "no"
    save_every_steps: int | None = None
    """Save a resumable training state every N steps (always at each epoch end)."""
    tensorboard: bool = False
    version: int = CONFIG_VERSION
    name: str = ""

    # -- derived ---------------------------------------------------------
    @property
    def source_lang(self) -> str:
        return self.direction.split("-")[0]

    @property
    def target_lang(self) -> str:
        return self.direction.split("-")[1]

    @property
    def source_dataset(self) -> str:
        return SOURCE_DATASET_BY_LANG[self.source_lang]

    @property
    def target_dataset(self) -> str:
        return SOURCE_DATASET_BY_LANG[self.target_lang]

    @property
    def feature_backbone(self) -> str:
        return self.backbone or ("vgg16" if self.model_type == "acn" else "resnet152")

    @property
    def run_name(self) -> str:
        image = "" if self.images == "all" else f"-img_{self.images}"
        return f"{self.model_type}-{self.direction}-{self.setting}{image}-seed{self.seed}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def validate(self) -> "TrainConfig":
        checks = [
            ("model_type", self.model_type, MODEL_TYPES),
            ("direction", self.direction, DIRECTIONS),
            ("setting", self.setting, SETTINGS),
            ("images", self.images, IMAGE_MODES),
            ("mixed_precision", self.mixed_precision, MIXED_PRECISION),
        ]
        for name, value, allowed in checks:
            if value not in allowed:
                raise ConfigError(f"{name}: '{value}' is not one of {', '.join(allowed)}")
        if self.version != CONFIG_VERSION:
            raise ConfigError(f"version: config version {self.version} is not supported (this xlingual reads version {CONFIG_VERSION})")
        for stage_name in ("pretrain", "target"):
            stage = getattr(self, stage_name)
            if stage.epochs < 1 or stage.batch_size < 1 or stage.lr <= 0:
                raise ConfigError(f"{stage_name}: epochs, batch_size and lr must be positive")
            if stage.patience is not None and stage.patience < 0:
                raise ConfigError(f"{stage_name}.patience: must be a positive number of evaluations, or null/0 to run every epoch")
            if stage.optimizer not in ("adam", "adamw"):
                raise ConfigError(f"{stage_name}.optimizer: '{stage.optimizer}' is not one of adam, adamw")
        if self.gradient_accumulation_steps < 1:
            raise ConfigError("gradient_accumulation_steps: must be at least 1")
        return self


# -- building from dicts ----------------------------------------------------

def _build_dataclass(cls: type, values: dict[str, Any], where: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(values).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(known)})")
    kwargs = {}
    for name, value in values.items():
        nested = {"pretrain": StageConfig, "target": StageConfig, "data": DataConfig}.get(name) if cls is TrainConfig else None
        kwargs[name] = _build_dataclass(nested, value, f"{where}.{name}" if where else name) if nested else value
    return cls(**kwargs)


def config_from_dict(values: dict[str, Any], where: str = "config") -> TrainConfig:
    """A validated config from a plain mapping (e.g. a parsed YAML file or a saved run config)."""
    return _coerce(_build_dataclass(TrainConfig, dict(values), where)).validate()


def _coerce(config: TrainConfig) -> TrainConfig:
    """Turn YAML's loose types (``1e-3`` read as a string, ints for floats) into the declared ones."""
    for stage in (config.pretrain, config.target):
        for name in ("lr", "weight_decay", "warmup_ratio"):
            setattr(stage, name, _as_number(getattr(stage, name), float, f"{name}"))
        if stage.max_grad_norm is not None:
            stage.max_grad_norm = _as_number(stage.max_grad_norm, float, "max_grad_norm")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            setattr(stage, name, _as_number(getattr(stage, name), int, name))
        for name in ("patience", "max_steps", "eval_every_steps"):
            if getattr(stage, name) is not None:
                setattr(stage, name, _as_number(getattr(stage, name), int, name))
        if stage.patience == 0:
            stage.patience = None  # 0 reads as "no early stopping", the same as null
    config.seed = _as_number(config.seed, int, "seed")
    config.gradient_accumulation_steps = _as_number(config.gradient_accumulation_steps, int, "gradient_accumulation_steps")
    if config.data.max_samples is not None:
        config.data.max_samples = _as_number(config.data.max_samples, int, "data.max_samples")
    config.data.data_dir = str(config.data.data_dir)
    return config


def _as_number(value: Any, kind: type, name: str) -> Any:
    try:
        number = kind(float(value)) if kind is int else kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: '{value}' is not a number") from None
    if kind is int and float(value) != number:
        raise ConfigError(f"{name}: '{value}' is not a whole number")
    return number


# -- overrides ------------------------------------------------------------

_STAGE_KEYS = {f.name for f in fields(StageConfig)}


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` -> (key, YAML-parsed value); ``lr=3e-5`` gives the float 3e-5."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {text}: expected key=value (e.g. --set target.lr=1e-4)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value for c in ".eE") else value
        except ValueError:
            pass
    return key, value


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of a config mapping with ``--set`` overrides applied (validated when the config is built)."""
    import copy

    result = copy.deepcopy(values)
    for text in overrides:
        key, value = parse_override(text)
        parts = key.split(".")
        if len(parts) == 1 and parts[0] in _STAGE_KEYS and parts[0] not in {f.name for f in fields(TrainConfig)}:
            targets = [["pretrain", parts[0]], ["target", parts[0]]]
        else:
            targets = [parts]
        for path in targets:
            node = result
            for part in path[:-1]:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    raise ConfigError(f"--set {text}: '{part}' is not a section")
            node[path[-1]] = value
    return result


# -- finding config files ------------------------------------------------

def packaged_config_names() -> list[str]:
    """The names of the YAML configs shipped with the package (``acn-en-zh-src_tgt``, ...)."""
    folder = resources.files("xlingual.train") / "configs"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def packaged_config_path(model_type: str, direction: str, setting: str) -> Path:
    return Path(str(resources.files("xlingual.train") / "configs" / f"{model_type}-{direction}-{setting}.yaml"))


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: not valid YAML ({getattr(err, 'problem', err)})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping")
    return values


DEFAULT_MODEL_TYPE = "umt"
DEFAULT_DIRECTION = "en-zh"
"""With a setting name alone (``xl train --config src_tgt``): the paper's headline run, UMT en->zh,
the direction ``xl translate --src en --tgt zh`` prepares."""


def load_config(config: str | Path, model_type: str | None = None, direction: str | None = None,
                overrides: list[str] | None = None) -> TrainConfig:
    """Resolve ``--config``: a setting name (model and direction default to UMT, en-zh) or a YAML path.

    ``xl train --config src_tgt --model umt --direction en-zh`` reads the
    packaged ``umt-en-zh-src_tgt.yaml``; ``--config my.yaml`` reads that file
    (its own model/direction win unless given explicitly).
    """
    text = str(config)
    if text in SETTINGS:
        if model_type is None or direction is None:
            model_type = model_type or DEFAULT_MODEL_TYPE
            direction = direction or DEFAULT_DIRECTION
            logger.info("--config %s: using --model %s --direction %s (pass them to choose)", text, model_type, direction)
        if model_type not in MODEL_TYPES:
            raise ConfigError(f"--model: '{model_type}' is not one of {', '.join(MODEL_TYPES)}")
        if direction not in DIRECTIONS:
            raise ConfigError(f"--direction: '{direction}' is not one of {', '.join(DIRECTIONS)}")
        path = packaged_config_path(model_type, direction, text)
        values = read_yaml(path)
    else:
        path = Path(text)
        if not path.is_file():
            raise ConfigError(f"--config {text}: neither a setting ({', '.join(SETTINGS)}) nor an existing YAML file")
        values = read_yaml(path)
        if model_type is not None:
            values["model_type"] = model_type
        if direction is not None:
            values["direction"] = direction
    values = apply_overrides(values, overrides or [])
    return config_from_dict(values, where=str(path.name))


def config_yaml(config: TrainConfig) -> str:
    """The resolved config as YAML: what ``save_config`` writes and ``xl train --dry-run`` prints."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True)


def save_config(config: TrainConfig, path: str | Path) -> None:
    from xlingual.io import atomic_write_text

    atomic_write_text(path, config_yaml(config))


__all__ = [
    "DIRECTIONS", "IMAGE_MODES", "MODEL_TYPES", "SETTINGS", "DataConfig", "StageConfig", "TrainConfig",
    "apply_overrides", "config_from_dict", "config_yaml", "load_config", "packaged_config_names", "parse_override", "save_config",
]
