"""The MNER models (ACN, UMT, 2M-NER) behind one interface, :class:`~xlingual.models.base.MnerModel`.

Adding a model: one module (its layers and text encoding), one config module
(its :class:`ModelConfig` subclass, importing no torch, so configs are checked
without loading it), and one line in each of :data:`MODEL_CLASSES` and
:data:`MODEL_CONFIGS` (see docs/models.md).

The package itself imports no torch: ``MnerModel`` and ``VisualLookup`` are
loaded on first use.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xlingual.errors import ConfigError, ModelNotFoundError
from xlingual.lazy import lazy_exports
from xlingual.models.config import ModelConfig

if TYPE_CHECKING:
    from xlingual.models.base import MnerModel, VisualLookup

MODEL_CLASSES: dict[str, str] = {
    "acn": "xlingual.models.acn:AcnModel",
    "umt": "xlingual.models.umt:UmtModel",
    "2mner": "xlingual.models.mner2:Mner2Model",
}

MODEL_CONFIGS: dict[str, str] = {
    "acn": "xlingual.models.acn_config:AcnConfig",
    "umt": "xlingual.models.umt_config:UmtConfig",
    "2mner": "xlingual.models.mner2_config:Mner2Config",
}
"""Each model's options (its class's ``config_class``), importable without torch."""


def _import(entry: str) -> Any:
    module, _, name = entry.partition(":")
    return getattr(importlib.import_module(module), name)


def _known(model_type: str) -> None:
    if model_type not in MODEL_CLASSES:
        raise ConfigError(f"unknown model '{model_type}' (choose from {', '.join(MODEL_CLASSES)})")


def model_class(model_type: str) -> type["MnerModel"]:
    """The class implementing ``model_type`` (imported on demand: UMT pulls in transformers)."""
    _known(model_type)
    return _import(MODEL_CLASSES[model_type])


def model_config_class(model_type: str) -> type[ModelConfig]:
    """The config dataclass of ``model_type``: what its ``model`` section may hold (no torch import)."""
    _known(model_type)
    return _import(MODEL_CONFIGS[model_type])


def load_model(directory: str | Path, **overrides: Any) -> "MnerModel":
    """Rebuild any saved model from its folder; the folder's ``config.json`` says which class."""
    from xlingual.models.serialization import read_model_config

    model_type = read_model_config(directory).get("model_type")
    if model_type not in MODEL_CLASSES:
        raise ModelNotFoundError(f"{directory}: holds a '{model_type}' model, which this version does not know ({', '.join(MODEL_CLASSES)})")
    return model_class(model_type).from_pretrained(directory, **overrides)


__getattr__ = lazy_exports(__name__, {"MnerModel": "base", "VisualLookup": "base"})

__all__ = ["MODEL_CLASSES", "MODEL_CONFIGS", "MnerModel", "ModelConfig", "VisualLookup", "load_model", "model_class", "model_config_class"]
