"""Shared fixtures: offline environment, paths to the real data, tiny models built once per session."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

_SESSION_TMP = Path(tempfile.mkdtemp(prefix="xlingual-tests-"))
atexit.register(shutil.rmtree, _SESSION_TMP, ignore_errors=True)
# No test may reach a hub; caches and compile artefacts go to a temp dir.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ["HF_HOME"] = str(_SESSION_TMP / "hf")
os.environ["TORCH_HOME"] = str(_SESSION_TMP / "torch")
os.environ["TMPDIR"] = str(_SESSION_TMP / "tmp")
(_SESSION_TMP / "tmp").mkdir(exist_ok=True)
tempfile.tempdir = None  # re-read TMPDIR

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real datasets beside the repository; tests that need them skip where they are absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA} (../shared/data)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sample_data_dir() -> Path:
    """The small made-up sample that ships with the package, laid out as a data directory (the demo's input)."""
    from xlingual.data.sample_data import write_sample_data_dir

    return write_sample_data_dir(_SESSION_TMP / "sample-data")
