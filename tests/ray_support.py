"""One local Ray runtime (2 CPUs) for every Ray test of the session, and the mark that skips them where Ray is missing.

Starting Ray takes seconds, so the runtime is started by the first Ray test
and stopped when the session ends; the library finds it initialised and
uses it as it is (:func:`xlingual.scale.runtime.ray_runtime`).
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
from pathlib import Path

import pytest

RAY_INSTALLED = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not RAY_INSTALLED, reason="ray is not installed (pip install 'xlingual[ray]'; make test installs it)")


def shared_ray():
    """The session's Ray runtime, started on first use."""
    import ray

    if not ray.is_initialized():
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        atexit.register(ray.shutdown)
    return ray


def data_dir_with_a_broken_translation(sample_data_dir: Path, root: Path) -> tuple[Path, Path]:
    """A copy of the sample data directory whose en->zh translation of twitter2015 is there but does not parse.

    A grid's check before its first run finds every input present, so the
    ``tgt`` runs fail only when they read it: a run failing while the others
    go on, as a grid on Ray reports it. Returns the data directory and the
    broken train file.
    """
    shutil.copytree(sample_data_dir, root)
    folder = root / "translated" / "twitter2015.en-zh.broken"
    folder.mkdir(parents=True)
    for name in ("train.txt", "valid.txt", "test.txt"):
        (folder / name).write_text("no-tab-here\n", encoding="utf-8")
    return root, folder / "train.txt"
