"""Helpers of the translation tests: a Twitter2017 folder made from the packaged sample (``xl translate --dataset
twitter2017`` without ../shared), and a translator plugin module importable for one test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from xlingual.data.formats import read_samples, write_samples
from xlingual.workspace import DataDir


def twitter2017_from_sample(data_dir: Path, posts: int = 6) -> Path:
    """Write ``data_dir``'s Twitter2017 splits from the first ``posts`` posts of each Twitter2015 sample split there."""
    layout = DataDir(data_dir)
    for split in ("train", "dev", "test"):
        samples = read_samples(layout.split_file("twitter2015", split))[:posts]
        target = layout.split_file("twitter2017", split)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_samples(target, samples, "twitter")
    return data_dir


def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: str) -> str:
    """Make ``source`` importable as module ``name`` for one test (a fresh import, even if an earlier test imported it)."""
    folder = tmp_path / "plugin"
    folder.mkdir()
    (folder / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return name
