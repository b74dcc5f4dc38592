"""The MNER models (ACN, UMT) behind one interface, :class:`~xlingual.models.base.MnerModel`.

Adding a model: one module (its layers, text encoding and a ``ModelConfig``
subclass) and one line in :data:`MODEL_CLASSES` (see docs/models.md).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from xlingual.errors import ConfigError, ModelNotFoundError
from xlingual.models.base import MnerModel, ModelConfig, VisualLookup
from xlingual.models.serialization import read_model_config

MODEL_CLASSES: dict[str, str] = {
    "acn": "xlingual.models.acn:AcnModel",
    "umt": "xlingual.models.umt:UmtModel",
    "2mner": "xlingual.models.mner2:Mner2Model",
}


def model_class(model_type: str) -> type[MnerModel]:
    """The class implementing ``model_type`` (imported on demand: UMT pulls in transformers)."""
    if model_type not in MODEL_CLASSES:
        raise ConfigError(f"unknown model '{model_type}' (choose from {', '.join(MODEL_CLASSES)})")
    module, _, name = MODEL_CLASSES[model_type].partition(":")
    return getattr(importlib.import_module(module), name)


def load_model(directory: str | Path, **overrides: Any) -> MnerModel:
    """Rebuild any saved model from its folder; the folder's ``config.json`` says which class."""
    model_type = read_model_config(directory).get("model_type")
    if model_type not in MODEL_CLASSES:
        raise ModelNotFoundError(f"{directory}: holds a '{model_type}' model, which this version does not know ({', '.join(MODEL_CLASSES)})")
    return model_class(model_type).from_pretrained(directory, **overrides)


__all__ = ["MODEL_CLASSES", "MnerModel", "ModelConfig", "VisualLookup", "load_model", "model_class"]
