"""The base of every model's config dataclass, and the one check its options go through.

A model's options are the fields of its :class:`ModelConfig` subclass (the
only list of them). :meth:`ModelConfig.checked_options` checks a ``model``
section against those fields' types with a pydantic model derived from the
dataclass, so ``cross_heads: 2.5``, ``dropout: x`` or ``hiden: 100`` are
refused when a config is loaded (``xl train --dry-run`` included), not when
the model is built hours into an experiment.

This module and the model config modules import neither torch nor
transformers: loading a training config must stay light.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, TypeVar, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, create_model

from xlingual.errors import ConfigError

NON_MODEL_KEYS = frozenset({"type", "model_type", "name", "images", "backbone"})
"""Keys a training config may carry beside a model's own options; model configs ignore them."""

ConfigT = TypeVar("ConfigT", bound="ModelConfig")


@dataclasses.dataclass
class ModelConfig:
    """Base of every model's config dataclass (the ``model`` section of a training config).

    Subclasses are dataclasses with the model's options as fields; every model
    has ``use_image`` (multimodal or text-only) and ``visual_dim`` (channels
    of its region features). A field's type hint is checked, not only
    documented: a value pydantic cannot read as that type is refused.
    """

    fixed_on_load: ClassVar[frozenset[str]] = frozenset()
    """Options that fix weight shapes: ``from_pretrained`` refuses to override them."""

    @classmethod
    def option_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def checked_options(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """The options of ``values`` (keys beside them, :data:`NON_MODEL_KEYS`, left out), each read as its field's type.

        Raises pydantic's ``ValidationError`` (locations: the option's name)
        for an unknown option or a value of the wrong type; the caller words
        it (:meth:`from_dict`, or the training config loader, which names the
        file line or ``--set`` behind it). A value equal to its checked form
        is returned unchanged (``dropout: 0`` stays the int 0), so a config
        that was right keeps the exact values it had.
        """
        options = {key: value for key, value in values.items() if key not in NON_MODEL_KEYS}
        checked = _options_model(cls).model_validate(options).model_dump(exclude_unset=True)
        return {key: _kept(options[key], checked[key]) for key in options}

    @classmethod
    def from_dict(cls: type[ConfigT], values: Mapping[str, Any]) -> ConfigT:
        """Build and validate; an unknown key or a wrong type is a one-line ``model.<key>`` error.

        Rejecting unknown keys (instead of ignoring them) is what makes a typo in
        ``--set model.max_lenght=128`` fail loudly rather than train the wrong model.
        """
        try:
            options = cls.checked_options(values)
        except ValidationError as err:
            raise ConfigError(option_error_text(cls, err)) from None
        config = cls(**options)
        config.validate()
        return config

    def validate(self) -> None:
        """Raise a ``model.<key>`` :class:`ConfigError` for a value the model cannot use (ranges, combinations)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def pretrained_weights(self) -> dict[str, str]:
        """Pre-trained weights the model loads when built, by option (``{"model.encoder": "bert-base-cased"}``): a run checks they are here before it starts."""
        return {}

    def cached_backbones(self, backbones: tuple[str, ...]) -> tuple[str, ...]:
        """The feature caches of the run's ``backbone`` list the model reads (all of them, unless it computes one itself)."""
        return backbones


def option_error_text(cls: type[ModelConfig], err: ValidationError) -> str:
    """The first problem of a failed :meth:`ModelConfig.checked_options` as ``model.<key>: ...``."""
    error = err.errors()[0]
    key = str(error["loc"][0]) if error["loc"] else ""
    if error["type"] == "extra_forbidden":
        return f"model.{key}: unknown option (known: {', '.join(sorted(cls.option_names()))})"
    if error["type"] == "value_error":
        return f"model.{key}: {error['ctx']['error']}"
    return f"model.{key}: {error['msg']} (got {error.get('input')!r})"


def _kept(value: Any, checked: Any) -> Any:
    return value if type(value) is not str and value == checked else checked


def _leaf_types(hint: Any) -> set[Any]:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return set().union(*(_leaf_types(arg) for arg in typing.get_args(hint)))
    return {origin or hint}


def _not_a_bool(value: Any) -> Any:
    """A number option refuses true/false (pydantic would read ``hidden: true`` as 1)."""
    if isinstance(value, bool):
        raise ValueError(f"'{str(value).lower()}' is not a number")
    return value


@functools.cache
def _options_model(cls: type[ModelConfig]) -> type[BaseModel]:
    """A pydantic model with the dataclass's fields, type hints and defaults: the check, derived from the one list of options."""
    hints = typing.get_type_hints(cls)
    fields: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        leaves = _leaf_types(hint)
        if bool not in leaves and leaves & {int, float}:
            hint = Annotated[hint, BeforeValidator(_not_a_bool)]
        fields[field.name] = (hint, None)  # defaults are the dataclass's; only the given options are checked
    return create_model(f"{cls.__name__}Options", __config__=ConfigDict(extra="forbid", allow_inf_nan=False), **fields)


__all__ = ["NON_MODEL_KEYS", "ModelConfig", "option_error_text"]
