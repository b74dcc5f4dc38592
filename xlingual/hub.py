"""Finding a model folder (local path or hub id) quickly, or failing in one line.

transformers retries an unreachable hub for 23-46 s before failing; a user who
mistyped a model name or has no network should hear about it at once. So a hub
id is first looked up in the local cache; only when it is absent do we test
whether the hub answers at all (a short socket connect) and only then let
transformers download.

Translation models, CLIP weights and the text encoders of UMT and 2M-NER all
go through :func:`resolve_model`, so it lives beside the stages, not in one of them.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from xlingual.errors import ModelNotFoundError

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class ModelSource:
    """Where to load a model from: ``location`` for ``from_pretrained`` and whether to stay offline."""

    name: str
    location: str
    local_files_only: bool
    is_local_dir: bool


def _hub_offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _hub_reachable() -> bool:
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    host = parsed.hostname or "huggingface.co"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            return True
    except OSError:
        return False


def looks_like_path(name: str) -> bool:
    """Hub ids are ``name`` or ``org/name``; anything else with a slash or a leading ./~ is a path."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def resolve_model(name: str, required_file: str = "config.json") -> ModelSource:
    """Resolve ``name`` (folder or hub id) or raise :class:`ModelNotFoundError` within seconds."""
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / required_file).exists():
            raise ModelNotFoundError(f"{path}: not a model folder (no {required_file})")
        return ModelSource(name, str(path.resolve()), True, True)
    if path.exists() or looks_like_path(name):
        raise ModelNotFoundError(f"{name}: model folder not found")
    hint = f"download it where there is a network ('hf download {name}') or pass a local folder with --model PATH"
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(name, required_file)
    except Exception:  # an invalid repo id raises a validation error
        raise ModelNotFoundError(f"'{name}' is neither a local folder nor a valid hub id; pass a local folder with --model PATH") from None
    if isinstance(cached, str):
        return ModelSource(name, name, True, False)
    if _hub_offline():
        raise ModelNotFoundError(f"model '{name}' is not in the local Hugging Face cache and the hub is offline (HF_HUB_OFFLINE); {hint}")
    if not _hub_reachable():
        raise ModelNotFoundError(f"model '{name}' is not in the local Hugging Face cache and the hub cannot be reached; {hint}")
    logger.info("downloading %s from the hub", name)
    return ModelSource(name, name, False, False)
