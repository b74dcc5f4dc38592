"""Loading a user's own translator from ``MODULE:NAME`` (``xl translate --translator``).

``NAME`` may be an object with a ``translate(texts)`` method, a class or any
zero-argument callable returning such an object. The module must be importable
(installed, or on ``PYTHONPATH``; the current directory is tried too).
"""

from __future__ import annotations

import importlib
import inspect
import sys

from xlingual.errors import ConfigError
from xlingual.translate.base import Translator


def load_plugin_translator(spec: str) -> Translator:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"--translator {spec}: expected MODULE:NAME, e.g. my_mt:MyTranslator")
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(f"--translator {spec}: cannot import module '{module_name}' ({err})") from None
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"--translator {spec}: module '{module_name}' has no attribute '{attr}'") from None
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
