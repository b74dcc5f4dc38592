"""Packages that export names lazily, so ``xl`` and light imports never load torch, faiss or fastText.

A package lists its public names and the sub-module defining each; the module
is imported the first time a name is read (PEP 562), and the value is then kept
in the package's namespace.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """The ``__getattr__`` of ``package``: each name in ``exports`` is read from ``package.<exports[name]>``."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        setattr(importlib.import_module(package), name, value)
        return value

    return __getattr__
