"""Model folders in the ``save_pretrained`` style: ``config.json`` + ``model.safetensors`` + extras.

``config.json`` holds ``model_type`` (which class to rebuild), the model's
config and its vocabularies (label map, ACN word/char vocabularies), so one
call rebuilds a trained model anywhere. Files are written atomically, with
the permissions the umask gives, and the same tensors always give the same
``model.safetensors`` bytes (the header's keys are written in sorted order).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save

from xlingual.errors import ModelNotFoundError
from xlingual.io import atomic_open, atomic_write_json

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def save_model_folder(directory: str | Path, model_type: str, config: dict[str, Any], state_dict: dict[str, torch.Tensor], extras: dict[str, Any] | None = None) -> Path:
    """Write config (with ``model_type`` and ``extras``) and weights into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # safetensors refuses shared storage and non-contiguous tensors: store plain copies.
    tensors = {name: tensor.detach().cpu().contiguous().clone() for name, tensor in state_dict.items()}
    with atomic_open(directory / WEIGHTS_NAME, "wb") as handle:
        for part in canonical_safetensors(save(tensors, metadata={"format": "pt", "model_type": model_type})):
            handle.write(part)
    atomic_write_json(directory / CONFIG_NAME, {"model_type": model_type, "config": config, "extras": extras or {}})
    return directory


def canonical_safetensors(data: bytes) -> tuple[bytes, memoryview]:
    """``data`` (a safetensors file) with its JSON header re-written with sorted keys: the new header, then the tensor bytes.

    safetensors writes the header's entries (``__metadata__`` among them) in
    hash-map order, which changes from run to run: identical tensors gave
    files with different hashes. Offsets in the header count from the end of
    the header, so re-writing it leaves the tensor bytes as they are. The
    tensor bytes are a view of ``data``, not a copy: a model of a gigabyte is
    held once while it is written.
    """
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # safetensors pads the header to 8 bytes
    return struct.pack("<Q", len(text)) + text, memoryview(data)[8 + length:]


def read_model_config(directory: str | Path) -> dict[str, Any]:
    """The parsed ``config.json`` of a model folder, with a one-line error when it is not one (or is damaged)."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise ModelNotFoundError(f"{directory}: not a model folder (no {CONFIG_NAME}); pass a folder written by 'xl train' or save_pretrained")
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ModelNotFoundError(f"{path}: not readable JSON ({str(err).splitlines()[0]})") from None
    if not isinstance(values, dict) or not isinstance(values.get("config"), dict) or not isinstance(values.get("extras", {}), dict):
        raise ModelNotFoundError(f"{path}: not a model config (needs model_type, a config mapping and extras); "
                                 "pass a folder written by 'xl train' or save_pretrained")
    return values


def load_model_weights(directory: str | Path) -> dict[str, torch.Tensor]:
    path = Path(directory) / WEIGHTS_NAME
    if not path.is_file():
        raise ModelNotFoundError(f"{directory}: no {WEIGHTS_NAME} in the model folder")
    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises its own SafetensorError (and OSError) for a damaged file
        detail = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ModelNotFoundError(f"{path}: unreadable weights ({detail}); the file is damaged or truncated") from None


__all__ = ["CONFIG_NAME", "WEIGHTS_NAME", "canonical_safetensors", "load_model_weights", "read_model_config", "save_model_folder"]
