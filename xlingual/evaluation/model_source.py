"""Which saved model ``xl predict RUN_OR_MODEL`` means, and which language it was trained on.

A user names a model folder (``config.json`` + weights) or the run folder
``xl train`` wrote, whose best model is ``RUN/model``. The language a model's
posts are written in is what raw text must be tokenised as; a model folder
does not record it, but a run's ``config.yaml`` beside ``model/`` names the
target dataset, and so its language. A bare model folder needs ``--lang``.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Any

from xlingual.errors import ConfigError, ModelNotFoundError
from xlingual.models.serialization import CONFIG_NAME, read_model_config
from xlingual.workspace import RunFolder

logger = logging.getLogger(__name__)


def resolve_model_dir(path: str | Path) -> Path:
    """``path`` when it is a model folder, ``path/model`` when it is a run folder holding one; else a one-line error saying which."""
    path = Path(path)
    if (path / CONFIG_NAME).is_file():
        return path
    run = RunFolder(path)
    if (run.model / CONFIG_NAME).is_file():
        return run.model
    if run.model.is_dir():
        raise ModelNotFoundError(f"{path}: not a model folder, and its {run.model} holds no {CONFIG_NAME} either "
                                 "(the run has not saved a model yet)")
    if run.config.is_file():
        raise ModelNotFoundError(f"{path}: a run folder without a saved model ({run.model} is missing: the run has not saved one yet)")
    read_model_config(path)  # raises the usual "not a model folder" error
    return path


def _run_config(model_dir: str | Path) -> Any:
    """The resolved config of the run whose ``model/`` (or ``pretrain-model/``) ``model_dir`` is; None when it is not in a readable run.

    ``xl predict`` asks twice (the posts' language, the image seed): the file
    is parsed once per version of it, and an unreadable one is said once.
    """
    model_dir = Path(os.path.abspath(model_dir))  # not resolved: a run's model/ may be a link to the folder it names
    run = RunFolder(model_dir.parent)
    if model_dir not in (run.model, run.pretrain_model) or not run.config.is_file():
        return None
    stat = run.config.stat()
    return _parsed_run_config(str(run.config), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _parsed_run_config(path: str, _mtime_ns: int, _size: int) -> Any:
    from xlingual.train.config import config_from_dict, read_yaml

    try:
        return config_from_dict(read_yaml(path), where=path)
    except (ConfigError, OSError) as err:
        logger.warning("%s: the run's config is not readable (%s)", path, str(err).splitlines()[0] if str(err) else type(err).__name__)
        return None


def run_language(model_dir: str | Path) -> str | None:
    """The target language of the run whose ``model/`` (or ``pretrain-model/``) ``model_dir`` is; None when it is not in a readable run."""
    config = _run_config(model_dir)
    return None if config is None else config.target_lang


def model_image_seed(model_dir: str | Path, seed: int | None = None) -> int:
    """``seed`` (``--seed``) when given, else the seed of the run the model was trained in, else 0.

    The seed picks a post's image under ``--images one`` and draws the test
    crops of a 2M-NER model with ``model.resnet=reference``: predicting with
    the run's own seed gives the run's own test predictions.
    """
    if seed is not None:
        return seed
    config = _run_config(model_dir)
    return 0 if config is None else int(config.seed)


def model_language(model_dir: str | Path, lang: str | None = None) -> str | None:
    """``lang`` (``--lang``) when given, else the model's run's target language; None when neither says."""
    recorded = run_language(model_dir)
    if lang is not None:
        from xlingual.translate.languages import check_language

        check_language("--lang", lang)
        if recorded is not None and recorded != lang:
            logger.warning("--lang %s: the model's run trained on '%s' posts", lang, recorded)
        return lang
    return recorded


__all__ = ["model_image_seed", "model_language", "resolve_model_dir", "run_language"]
