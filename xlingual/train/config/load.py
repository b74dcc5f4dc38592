"""``--config`` resolved: a packaged setting or a YAML file, ``--set`` overrides, validation; and the YAML a run stores."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import yaml

from xlingual.errors import ConfigError
from xlingual.train.config.files import parse_config_file
from xlingual.train.config.overrides import apply_overrides, override_sources
from xlingual.train.config.packaged import directions, model_types, resolve_packaged, settings
from xlingual.train.config.stages import check_setting
from xlingual.train.config.schema import TrainConfig, config_from_dict, dataset_lang, direction_datasets, pair_label

logger = logging.getLogger(__name__)

DEFAULT_MODEL_TYPE = "umt"
DEFAULT_DIRECTION = "en-zh"
"""With a setting name alone (``xl train --config src_tgt``): the paper's headline run, UMT en->zh,
the direction ``xl translate --src en --tgt zh`` prepares."""


def load_config(config: str | Path, model_type: str | None = None, direction: str | None = None,
                overrides: list[str] | None = None, source: Sequence[str] | None = None, target: str | None = None,
                override_origins: Sequence[str] | None = None) -> TrainConfig:
    """Resolve ``--config``: a setting name (model and direction default to UMT, en-zh) or a YAML path.

    ``xl train --config src_tgt --model umt --direction en-zh`` resolves the
    packaged UMT base with the en-zh and src_tgt deltas; ``--config my.yaml``
    reads that file (its own model/direction win unless given explicitly).

    ``source``/``target`` name the datasets instead of a direction
    (``--source twitter2017 --target cmner``; ``source`` may list several, or
    none for a setting that reads only the target). A setting name then
    resolves the model base and the setting without direction layers, except
    where the datasets are a direction's pair (``--source cmner --target
    twitter2015`` takes zh-en's deltas, as ``--direction zh-en`` does); the run
    name carries the datasets (``acn-twitter2017-cmner-src_tgt``).

    ``override_origins`` names, per override, what gave it where that was not
    a ``--set`` option (an experiment plan's ``plan.yaml:7``), for errors.
    """
    text = str(config)
    named = _named_datasets(source, target, direction)
    if text in settings():
        if model_type is None or (direction is None and named is None):
            model_type = model_type or DEFAULT_MODEL_TYPE
            direction = direction or (None if named else DEFAULT_DIRECTION)
            logger.info("--config %s: using --model %s %s (pass them to choose)", text, model_type,
                        f"--direction {direction}" if direction else "")
        choices = [("--model", model_type, model_types())] + ([("--direction", direction, directions())] if named is None else [])
        for option, value, allowed in choices:
            if value not in allowed:
                raise ConfigError(f"{option}: '{value}' is not one of {', '.join(allowed)}")
        if named is None:
            values, sources = resolve_packaged(model_type, direction, text)
        else:
            values, sources = resolve_packaged(model_type, _direction_of(*named), text,
                                               name=f"{model_type}-{pair_label(*named)}-{text}")
        where = values["name"]
    else:
        path = Path(text)
        if not path.is_file():
            raise ConfigError(f"--config {text}: neither a setting ({', '.join(settings())}) nor an existing YAML file")
        parsed, where = parse_config_file(path), text
        values = parsed.values
        sources = {key: f"{text}:{line}" for key, line in parsed.lines.items()}
        for key, option, value in (("model_type", "--model", model_type), ("direction", "--direction", direction)):
            if value is not None:
                values[key], sources[key] = value, f"{option} {value}"
    if named is not None:
        values["direction"] = None
        values["datasets"] = {"source": list(named[0]), "target": named[1]}
        sources.update({"datasets": "--target", "datasets.target": f"--target {named[1]}",
                        "datasets.source": " ".join(f"--source {name}" for name in named[0]) or "--target"})
    overrides = overrides or []
    sources.update(override_sources(overrides, override_origins))
    resolved = config_from_dict(apply_overrides(values, overrides), where=where, sources=sources)
    _check_datasets(resolved, sources, where)
    _check_setting(resolved)
    return resolved


def _check_setting(config: TrainConfig) -> None:
    """The setting's declaration is sound, and a setting that reads source data has a source to read."""
    plan = check_setting(config.setting)
    needs_source = sorted(plan.parts & {"source", "translation"}) if plan is not None else []
    if needs_source and not config.source_datasets:
        raise ConfigError(f"setting '{config.setting}' trains on {' and '.join(needs_source)} data: name the source dataset(s) "
                          "with --source DATASET")


def _named_datasets(source: Sequence[str] | None, target: str | None,
                    direction: str | None) -> tuple[tuple[str, ...], str] | None:
    """(sources, target) when the caller named datasets, after the checks on the options alone."""
    sources = tuple(source or ())
    if target is None:
        if sources:
            raise ConfigError(f"--source {sources[0]}: name the target dataset too (--target DATASET)")
        return None
    if direction is not None:
        raise ConfigError(f"--direction {direction} and --target {target}: give one (--direction is the CMNER paper's "
                          "shorthand for Twitter2015 <-> CMNER)")
    twice = [name for name in dict.fromkeys(sources) if sources.count(name) > 1 or name == target]
    if twice:
        raise ConfigError(f"--source {twice[0]}: named twice (each dataset is one source, or the target)")
    return sources, target


def _direction_of(sources: tuple[str, ...], target: str) -> str | None:
    """The packaged direction whose datasets these are (its deltas apply), or None."""
    return next((d for d in directions() if direction_datasets(d) == (sources, target)), None)


def _check_datasets(config: TrainConfig, sources: dict[str, str], where: str) -> None:
    """Every named dataset is known (the one-line error names the option or file line that named it)."""
    if config.datasets is None:
        return
    for key, names in (("datasets.source", config.datasets.source), ("datasets.target", [config.datasets.target])):
        for name in names:
            try:
                dataset_lang(name, config.data)
            except ConfigError as err:
                raise ConfigError(f"{sources.get(key, sources.get('datasets', where))}: {err}") from None


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
