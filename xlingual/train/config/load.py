"""``--config`` resolved: a packaged setting or a YAML file, ``--set`` overrides, validation; and the YAML a run stores."""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from xlingual.errors import ConfigError
from xlingual.train.config.files import key_lines, read_yaml
from xlingual.train.config.overrides import apply_overrides, override_sources
from xlingual.train.config.packaged import directions, model_types, resolve_packaged, settings
from xlingual.train.config.schema import TrainConfig, config_from_dict

logger = logging.getLogger(__name__)

DEFAULT_MODEL_TYPE = "umt"
DEFAULT_DIRECTION = "en-zh"
"""With a setting name alone (``xl train --config src_tgt``): the paper's headline run, UMT en->zh,
the direction ``xl translate --src en --tgt zh`` prepares."""


def load_config(config: str | Path, model_type: str | None = None, direction: str | None = None,
                overrides: list[str] | None = None) -> TrainConfig:
    """Resolve ``--config``: a setting name (model and direction default to UMT, en-zh) or a YAML path.

    ``xl train --config src_tgt --model umt --direction en-zh`` resolves the
    packaged UMT base with the en-zh and src_tgt deltas; ``--config my.yaml``
    reads that file (its own model/direction win unless given explicitly).
    """
    text = str(config)
    if text in settings():
        if model_type is None or direction is None:
            model_type = model_type or DEFAULT_MODEL_TYPE
            direction = direction or DEFAULT_DIRECTION
            logger.info("--config %s: using --model %s --direction %s (pass them to choose)", text, model_type, direction)
        for option, value, allowed in (("--model", model_type, model_types()), ("--direction", direction, directions())):
            if value not in allowed:
                raise ConfigError(f"{option}: '{value}' is not one of {', '.join(allowed)}")
        values, sources = resolve_packaged(model_type, direction, text)
        where = values["name"]
    else:
        path = Path(text)
        if not path.is_file():
            raise ConfigError(f"--config {text}: neither a setting ({', '.join(settings())}) nor an existing YAML file")
        values, where = read_yaml(path), text
        sources = {key: f"{text}:{line}" for key, line in key_lines(path).items()}
        for key, option, value in (("model_type", "--model", model_type), ("direction", "--direction", direction)):
            if value is not None:
                values[key], sources[key] = value, f"{option} {value}"
    overrides = overrides or []
    sources.update(override_sources(overrides))
    return config_from_dict(apply_overrides(values, overrides), where=where, sources=sources)


def config_yaml(config: TrainConfig) -> str:
    """The resolved config as YAML: what ``save_config`` writes and ``xl train --dry-run`` prints."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True)


def config_digest(config: TrainConfig) -> str:
    """The run identity: a hash of the resolved config's YAML, stamped on every file a run writes.

    A resume checks it against the config, metrics and training state it
    loads, so a folder holding files of two runs is refused instead of
    being continued as one.
    """
    import hashlib

    return hashlib.sha256(config_yaml(config).encode("utf-8")).hexdigest()[:16]


def save_config(config: TrainConfig, path: str | Path) -> None:
    from xlingual.io import atomic_write_text

    atomic_write_text(path, config_yaml(config))


__all__ = ["DEFAULT_DIRECTION", "DEFAULT_MODEL_TYPE", "config_digest", "config_yaml", "load_config", "save_config"]
