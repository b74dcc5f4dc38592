"""Loading a user's own code from ``MODULE:NAME``: a translator (``--translator``) or a target tokeniser (``--tokenizer``).

For a translator, ``NAME`` may be an object with a ``translate(texts)``
method, a class or any zero-argument callable returning such an object. For a
tokeniser, ``NAME`` is a callable ``str -> list[str]``. The module must be
importable (installed, or on ``PYTHONPATH``; the current directory is tried too).
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from typing import Any

from xlingual.errors import ConfigError
from xlingual.translate.base import Translator


def load_plugin_object(spec: str, option: str, example: str) -> Any:
    """The object ``MODULE:NAME`` names; a one-line error naming ``option`` when it cannot be imported."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{option} {spec}: expected MODULE:NAME, e.g. {example}")
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(f"{option} {spec}: cannot import module '{module_name}' ({err})") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"{option} {spec}: module '{module_name}' has no attribute '{attr}'") from None


def load_plugin_translator(spec: str) -> Translator:
    obj = load_plugin_object(spec, "--translator", "my_mt:MyTranslator")
    attr = spec.partition(":")[2]
    if not callable(getattr(obj, "translate", None)) or inspect.isclass(obj):
        if not callable(obj):
            raise ConfigError(f"--translator {spec}: '{attr}' has no translate() method and is not a factory")
        try:
            obj = obj()
        except TypeError as err:
            raise ConfigError(f"--translator {spec}: calling '{attr}()' failed ({err}); it must take no arguments") from None
    if not callable(getattr(obj, "translate", None)):
        raise ConfigError(f"--translator {spec}: '{attr}' did not give an object with a translate(texts) method")
    return obj


def load_plugin_tokenizer(spec: str) -> Callable[[str], list[str]]:
    """The target tokeniser ``MODULE:NAME`` names: a function (or other callable object) from text to tokens."""
    obj = load_plugin_object(spec, "--tokenizer", "my_segmenter:tokenize")
    if inspect.isclass(obj) or not callable(obj):
        raise ConfigError(f"--tokenizer {spec}: '{spec.partition(':')[2]}' is not a function str -> list[str]")
    return obj
