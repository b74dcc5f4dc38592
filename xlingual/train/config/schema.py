"""The typed training config: pydantic models that validate a resolved mapping.

pydantic does the checking (types, ranges, choices, unknown keys, YAML's loose
numbers such as ``1e-3`` read as text); :func:`config_from_dict` turns its
report into one ``ConfigError`` line naming the field (and the ``--set``
option that set it, when one did).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any

from pydantic import (
    AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_serializer, model_validator,
)

from xlingual.data.datasets import SOURCE_DATASET_BY_LANG
from xlingual.errors import ConfigError
from xlingual.workspace import DataDir
from xlingual.train.config.packaged import directions, model_types, settings

CONFIG_VERSION = 1
IMAGE_MODES: tuple[str, ...] = ("none", "one", "all")
"""Table 2's inputs: text only, one randomly chosen image, all images averaged."""
MIXED_PRECISION: tuple[str, ...] = ("no", "fp16", "bf16")
OPTIMIZERS: tuple[str, ...] = ("adam", "adamw")
SCHEDULES: tuple[str, ...] = ("constant", "linear")
BATCHING: tuple[str, ...] = ("mixed", "by_language")
"""How a stage groups its training posts into batches (see :mod:`xlingual.train.batching`)."""


def one_of(allowed: Sequence[str] | Callable[[], Sequence[str]]) -> AfterValidator:
    """A choice check; ``allowed`` may be a function, for the choices the packaged config files offer."""
    def check(value: str) -> str:
        options = allowed() if callable(allowed) else allowed
        if value not in options:
            raise ValueError(f"'{value}' is not one of {', '.join(options)}")
        return value
    return AfterValidator(check)


def _text(value: Any) -> Any:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def _yaml_no(value: Any) -> Any:
    return "no" if value is False else value  # YAML 1.1 reads an unquoted `no` as false


def _finite(value: Any) -> Any:
    """A model option must be a finite number where it is a number: NaN or infinity (also as text) trains nothing."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"must be a finite number, not {value}")
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        if not math.isfinite(number):
            raise ValueError(f"must be a finite number, not {value}")
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


PositiveInt = Annotated[int, Field(gt=0)]
Count = Annotated[int, Field(ge=0)]
"""A count where 0 means "off" (``max_steps``, ``save_every_steps``, ...); never negative."""
Text = Annotated[str, BeforeValidator(_text)]
ModelOption = Annotated[Any, AfterValidator(_finite)]


class _Section(BaseModel):
    # every float of a config is finite: `lr=inf` or `max_grad_norm=nan` would train NaNs to the end
    model_config = ConfigDict(extra="forbid", protected_namespaces=(), allow_inf_nan=False)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


class StageConfig(_Section):
    """Optimisation of one training stage (pre-training on source data, or training on the target)."""

    epochs: PositiveInt = 24
    lr: Annotated[float, Field(gt=0)] = 1e-3
    batch_size: PositiveInt = 16
    eval_batch_size: PositiveInt = 32
    optimizer: Annotated[str, one_of(OPTIMIZERS)] = "adam"
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    warmup_ratio: Annotated[float, Field(ge=0, le=1)] = 0.0
    max_grad_norm: Annotated[float, Field(ge=0)] | None = None
    patience: int | None = None
    """Stop after this many evaluations without a dev improvement; None or 0: run every epoch.

    The reference code (UMT and the CMNER copy of UMT and ACN) has no early
    stopping: it runs all epochs and keeps the best dev checkpoint, so the
    shipped configs leave this off. It stays available as a switch
    (``--set patience=5``)."""
    max_steps: Count | None = None
    """Stop the stage after this many optimiser steps (smoke tests, demos)."""
    eval_every_steps: Count | None = None
    """Evaluate on dev every N steps as well as at each epoch end."""
    schedule: Annotated[str, one_of(SCHEDULES)] | None = None
    """Learning-rate schedule: ``linear`` (warm-up over ``warmup_ratio``, then linear decay to 0), ``constant``, or
    None: linear when ``warmup_ratio`` > 0, else constant (the rule of the CMNER and UMT reference configs)."""
    batching: Annotated[str, one_of(BATCHING)] = "mixed"
    """``mixed``: one shuffled pool (the reference's order); ``by_language``: each batch one language, the languages taking turns."""

    @field_validator("patience")
    @classmethod
    def _patience(cls, value: int | None) -> int | None:
        if value is not None and value < 0:
            raise ValueError("must be a positive number of evaluations, or null/0 to run every epoch")
        return value or None  # 0 reads as "no early stopping", the same as null


class DataConfig(_Section):
    """Where the inputs come from; every path defaults to the data-directory layout."""

    data_dir: Text = "data"
    translation_model: Text | None = None
    """Which translation to use (model tag or folder); None: the only one found."""
    build_missing: bool = False
    """Build a missing translation / feature cache instead of failing."""
    max_samples: Count | None = None
    """Use only the first N samples of every split (smoke tests, demos)."""
    datasets_file: Text | None = None
    """A datasets.yaml declaring datasets beside ``<data_dir>/datasets.yaml`` (``--datasets``); None: that one only."""

    @property
    def layout(self) -> DataDir:
        """The data directory with the datasets it and ``datasets_file`` declare: where every dataset of the run is found."""
        return DataDir(self.data_dir, self.datasets_file)

    @model_serializer(mode="wrap")
    def _without_unset_datasets_file(self, handler: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
        """A run that used no extra datasets file stores the config it always stored (no ``datasets_file: null``)."""
        values = handler(self)
        if values.get("datasets_file") is None:
            values.pop("datasets_file", None)
        return values


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class DatasetsConfig(_Section):
    """The datasets a run names (``--source``/``--target``): any number of sources, one target.

    A setting's ``source`` part reads every source, its ``translation`` part
    every source translated into the target's language, ``target`` the target
    (:mod:`xlingual.train.stages`). Languages come from the datasets.
    """

    source: Annotated[list[str], BeforeValidator(_as_list)] = Field(default_factory=list)
    target: str


def direction_datasets(direction: str) -> tuple[tuple[str, ...], str]:
    """(source datasets, target dataset) of a direction: the CMNER paper's shorthand (en-zh: Twitter2015 -> CMNER)."""
    src, tgt = direction.split("-")
    return (SOURCE_DATASET_BY_LANG[src],), SOURCE_DATASET_BY_LANG[tgt]


def pair_label(sources: Sequence[str], target: str) -> str:
    """``twitter2017-cmner``, ``mmnerd+twitter2015-cmner``, or ``mmnerd`` alone when there is no source: run names use it."""
    return "-".join([*(["+".join(sources)] if sources else []), target])


def dataset_lang(name: str, data: DataConfig) -> str:
    """The language of one of a run's datasets (built-in, or declared in the run's data directory or datasets file)."""
    return data.layout.dataset(name).lang


class TrainConfig(_Section):
    """Everything one run needs; ``model`` is passed unchanged to ``MnerModel.build`` (the model class validates it).

    A run names its data one of two ways: ``direction`` (the CMNER paper's
    shorthand, en-zh = Twitter2015 -> CMNER) or ``datasets`` (any source
    datasets and a target; ``direction`` is then null). ``datasets`` is left
    out of the stored YAML when unset, so a direction's config reads as it
    always did.
    """

    model_type: Annotated[str, one_of(model_types)] = "acn"
    direction: Annotated[str, one_of(directions)] | None = "en-zh"
    setting: Annotated[str, one_of(settings)] = "tgt_only"
    datasets: DatasetsConfig | None = None
    seed: Annotated[int, Field(ge=0, lt=2**32)] = 444
    """NumPy and accelerate take seeds in [0, 2**32)."""
    images: Annotated[str, one_of(IMAGE_MODES)] = "all"
    backbone: str | list[str] | None = None
    """Feature cache backbone(s); None: vgg16 for ACN, resnet152 for UMT. A model that reads several caches lists them
    (2M-NER: ``[clip-vit-b32, resnet152]``)."""
    model: dict[str, ModelOption] = Field(default_factory=dict)
    pretrain: StageConfig = Field(default_factory=StageConfig)
    target: StageConfig = Field(default_factory=StageConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    gradient_accumulation_steps: Annotated[int, Field(ge=1)] = 1
    mixed_precision: Annotated[str, BeforeValidator(_yaml_no), one_of(MIXED_PRECISION)] = "no"
    save_every_steps: Count | None = None
    """Save a resumable training state every N steps (always at each epoch end)."""
    tensorboard: bool = False
    version: int = CONFIG_VERSION
    name: str = ""

    @field_validator("version")
    @classmethod
    def _version(cls, value: int) -> int:
        if value != CONFIG_VERSION:
            raise ValueError(f"config version {value} is not supported (this xlingual reads version {CONFIG_VERSION})")
        return value

    @model_validator(mode="before")
    @classmethod
    def _datasets_or_direction(cls, values: Any) -> Any:
        """Named datasets replace the direction: one left unsaid is null, one given as well is a contradiction."""
        if isinstance(values, Mapping) and values.get("datasets") is not None:
            if values.get("direction") is not None:
                raise ValueError(f"direction {values['direction']} and datasets both say what the run trains on: give one")
            values = {**values, "direction": None}
        return values

    @model_validator(mode="after")
    def _has_data(self) -> "TrainConfig":
        if self.direction is None and self.datasets is None:
            raise ValueError("direction is null and no datasets are named: give a direction or datasets.target")
        return self

    def to_dict(self) -> dict[str, Any]:
        values = super().to_dict()
        if values["datasets"] is None:
            del values["datasets"]
        return values

    # -- derived ---------------------------------------------------------
    @property
    def source_datasets(self) -> tuple[str, ...]:
        """The source datasets: the named ones, or the direction's one."""
        if self.datasets is not None:
            return tuple(self.datasets.source)
        return direction_datasets(self.direction)[0]

    @property
    def target_dataset(self) -> str:
        return self.datasets.target if self.datasets is not None else direction_datasets(self.direction)[1]

    @property
    def source_dataset(self) -> str | None:
        """The first source dataset (None when a run names none)."""
        return self.source_datasets[0] if self.source_datasets else None

    @property
    def source_lang(self) -> str | None:
        """The first source dataset's language (None when a run names no source)."""
        if self.datasets is None:
            return self.direction.split("-")[0]
        return dataset_lang(self.source_dataset, self.data) if self.source_dataset else None

    @property
    def target_lang(self) -> str:
        if self.datasets is None:
            return self.direction.split("-")[1]
        return dataset_lang(self.target_dataset, self.data)

    @property
    def pair(self) -> str:
        """What the run trains on, as run names say it: the direction, or the named datasets (:func:`pair_label`)."""
        return self.direction if self.datasets is None else pair_label(self.source_datasets, self.target_dataset)

    @property
    def feature_backbones(self) -> tuple[str, ...]:
        """The feature caches the run's model reads, in order."""
        if isinstance(self.backbone, list):
            return tuple(self.backbone)
        return (self.backbone or ("vgg16" if self.model_type == "acn" else "resnet152"),)

    @property
    def model_options(self) -> dict[str, Any]:
        """The ``model`` section as the model is built with it: ``use_image`` is off when the run reads no images."""
        options = dict(self.model)
        options["use_image"] = self.images != "none" and bool(self.model.get("use_image", True))
        return options

    @property
    def run_name(self) -> str:
        image = "" if self.images == "all" else f"-img_{self.images}"
        return f"{self.model_type}-{self.pair}-{self.setting}{image}-seed{self.seed}"


def config_from_dict(values: Mapping[str, Any], where: str = "config",
                     sources: Mapping[str, str] | None = None) -> TrainConfig:
    """A validated config from a plain mapping (a resolved packaged config, a YAML file, a saved run config).

    ``where`` names the origin in errors; ``sources`` maps dotted keys to what
    set them (``mine.yaml:3``, ``--set lr=x``), so an error names the line or
    option behind the bad value.
    """
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(values).__name__}")
    try:
        config = TrainConfig.model_validate(dict(values))
    except ValidationError as err:
        raise ConfigError(_one_line(err, where, sources or {})) from None
    _check_model_section(config, where, sources or {})
    return config


def _check_model_section(config: TrainConfig, where: str, sources: Mapping[str, str]) -> None:
    """Check ``model.*`` against the model's own config dataclass (its fields' types, then its ``validate``).

    The options are the model's (:func:`xlingual.models.model_config_class`);
    this only words the errors, naming the file line or ``--set`` behind the
    option. Values that were right are kept as given, so a resolved config
    reads exactly as before.
    """
    from xlingual.models import MODEL_CONFIGS, model_config_class

    if config.model_type not in MODEL_CONFIGS:  # a config file may come before its model class; building it says so
        return
    options_class = model_config_class(config.model_type)
    try:
        checked = options_class.checked_options(config.model)
    except ValidationError as err:
        raise ConfigError(_one_line(err, where, sources, section=("model",), known=options_class.option_names())) from None
    config.model = {**config.model, **checked}
    try:
        options_class(**options_class.checked_options(config.model_options)).validate()
    except ConfigError as err:
        option = re.match(r"model\.(\w+)", str(err))
        raise ConfigError(f"{_origin(('model', option.group(1)) if option else ('model',), where, sources)}: {err}") from None


# -- pydantic's report as one line ------------------------------------------

def _section_class(path: tuple[str, ...]) -> type[BaseModel] | None:
    cls: Any = TrainConfig
    for part in path:
        field = cls.model_fields.get(part) if isinstance(cls, type) and issubclass(cls, BaseModel) else None
        if field is None:
            return None
        cls = field.annotation
    return cls if isinstance(cls, type) and issubclass(cls, BaseModel) else None


def _origin(path: tuple[str, ...], where: str, sources: Mapping[str, str]) -> str:
    """What set the value at ``path``: the nearest entry of ``sources`` at or above it, else ``where``."""
    for end in range(len(path), 0, -1):
        origin = sources.get(".".join(path[:end]))
        if origin is not None:
            return origin
    return where


_NOT_A_NUMBER = {"int_parsing", "float_parsing", "int_type", "float_type"}


def _describe(error: Mapping[str, Any]) -> str:
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind in _NOT_A_NUMBER:
        return f"'{value}' is not a number"
    if kind == "finite_number":
        return f"must be a finite number, not {value}"
    if kind == "int_from_float":
        return f"'{value}' is not a whole number"
    if kind == "greater_than" and ctx.get("gt") == 0:
        return f"must be positive, not {value}"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        bound = {"greater_than_equal": "at least", "less_than_equal": "at most", "greater_than": "more than", "less_than": "less than"}[kind]
        return f"must be {bound} {next(iter(ctx.values()))}, not {value}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a mapping, got {type(value).__name__}"
    if kind == "bool_parsing":
        return f"'{value}' is not true or false"
    if kind == "string_type":
        return f"expected text, got {value!r}"
    return f"{error['msg']} (got {value!r})"


def _one_line(err: ValidationError, where: str, sources: Mapping[str, str], section: tuple[str, ...] = (),
              known: Sequence[str] | None = None) -> str:
    """The first problem (unknown keys first), the fields one option broke in one phrase, and a count of the rest.

    ``section`` and ``known`` are for an error of one section checked on its
    own (``model``, by the model's config class): its path and option names.
    """
    unknown: dict[tuple[str, ...], list[str]] = {}
    grouped: dict[tuple[str, str], list[str]] = {}  # (origin, description) -> fields, in pydantic's order
    for error in err.errors():
        loc = tuple(str(part) for part in error["loc"])
        path = section + loc[:1] if section else loc  # an option's own path, not the union member or list item that failed
        if error["type"] == "extra_forbidden":
            unknown.setdefault(path[:-1], []).append(path[-1])
        else:
            grouped.setdefault((_origin(path, where, sources), _describe(error)), []).append(".".join(path))
    messages = []
    for part, keys in unknown.items():
        cls = _section_class(part)
        names = known if known is not None and part == section else (list(cls.model_fields) if cls is not None else None)
        listed = f" (known: {', '.join(sorted(names) if known is not None else names)})" if names is not None else ""
        prefix = f"{'.'.join(part)}: " if part else ""
        messages.append(f"{_origin(part + (keys[0],), where, sources)}: {prefix}unknown key(s) {', '.join(keys)}{listed}")
    messages += [f"{origin}: {' and '.join(f for f in fields if f) or 'config'}: {description}" for (origin, description), fields in grouped.items()]
    more = len(messages) - 1
    return messages[0] + (f" (and {more} more error{'s' if more > 1 else ''})" if more else "")


def validation_message(err: ValidationError, where: str, sources: Mapping[str, str], known: Sequence[str]) -> str:
    """pydantic's report on another YAML file checked like a config (an experiment plan) as one line: ``where``'s
    dotted keys map to their ``file:line`` in ``sources``; ``known`` lists the file's top-level keys for an unknown one."""
    return _one_line(err, where, sources, known=known)


__all__ = ["CONFIG_VERSION", "IMAGE_MODES", "MIXED_PRECISION", "OPTIMIZERS", "DataConfig", "DatasetsConfig", "StageConfig",
           "TrainConfig", "config_from_dict", "dataset_lang", "direction_datasets", "one_of", "pair_label", "validation_message"]
