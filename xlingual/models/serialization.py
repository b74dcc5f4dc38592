"""Model folders in the ``save_pretrained`` style: ``config.json`` + ``model.safetensors`` + extras.

``config.json`` holds ``model_type`` (which class to rebuild), the model's
config and its vocabularies (label map, ACN word/char vocabularies), so one
call rebuilds a trained model anywhere. Files are written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from xlingual.errors import ModelNotFoundError
from xlingual.io import atomic_write_json

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def save_model_folder(directory: str | Path, model_type: str, config: dict[str, Any], state_dict: dict[str, torch.Tensor], extras: dict[str, Any] | None = None) -> Path:
    """Write config (with ``model_type`` and ``extras``) and weights into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # safetensors refuses shared storage and non-contiguous tensors: store plain copies.
    tensors = {name: tensor.detach().cpu().contiguous().clone() for name, tensor in state_dict.items()}
    tmp = directory / f".{WEIGHTS_NAME}.tmp"
    save_file(tensors, str(tmp), metadata={"format": "pt", "model_type": model_type})
    tmp.replace(directory / WEIGHTS_NAME)
    atomic_write_json(directory / CONFIG_NAME, {"model_type": model_type, "config": config, "extras": extras or {}})
    return directory


def read_model_config(directory: str | Path) -> dict[str, Any]:
    """The parsed ``config.json`` of a model folder, with a one-line error when it is not one."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise ModelNotFoundError(f"{directory}: not a model folder (no {CONFIG_NAME}); pass a folder written by 'xl train' or save_pretrained")
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def load_model_weights(directory: str | Path) -> dict[str, torch.Tensor]:
    path = Path(directory) / WEIGHTS_NAME
    if not path.is_file():
        raise ModelNotFoundError(f"{directory}: no {WEIGHTS_NAME} in the model folder")
    return load_file(str(path))


__all__ = ["CONFIG_NAME", "WEIGHTS_NAME", "load_model_weights", "read_model_config", "save_model_folder"]
