"""One way to ask what ``load_config`` says about a config file: the tests of the run config and of the model sections share it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from xlingual.errors import ConfigError
from xlingual.train.config import load_config


def file_error(folder: Path, text: str, **options: Any) -> str:
    """The one-line error ``load_config`` raises for ``folder/mine.yaml`` holding ``text``; the test fails when the file loads."""
    path = folder / "mine.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_config(path, **options)
    message = str(refused.value)
    assert "\n" not in message
    return message
