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
# XLINGUAL_SHARED_DATA points the real-data layer elsewhere; a missing folder simulates a bare clone.
SHARED_DATA = Path(os.environ.get("XLINGUAL_SHARED_DATA") or REPO.parent / "shared" / "data")


REAL_DATA_FIXTURE = "shared_data"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "real_data: a check about the real dataset files (runs where ../shared/data is)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that read the real datasets form a layer of their own: marked, and left out on a clone without the data.

    A test belongs to it when it asks for ``shared_data`` or carries the ``real_data`` mark
    (a parameter that reaches the data through ``request.getfixturevalue``).

    Every property they check also runs on generated data or the packaged
    sample, so leaving them out loses only the checks about the real files.
    ``XLINGUAL_REQUIRE_SHARED_DATA=1`` turns a missing data folder into an error
    (for CI, where the real-data layer must run).
    """
    real = [item for item in items if REAL_DATA_FIXTURE in getattr(item, "fixturenames", ()) or item.get_closest_marker("real_data")]
    for item in real:
        item.add_marker(pytest.mark.real_data)
    if SHARED_DATA.is_dir() or not real:
        return
    if os.environ.get("XLINGUAL_REQUIRE_SHARED_DATA") == "1":
        raise pytest.UsageError(f"XLINGUAL_REQUIRE_SHARED_DATA=1 but the real datasets are not at {SHARED_DATA}")
    keep = set(map(id, real))
    config.hook.pytest_deselected(items=real)
    items[:] = [item for item in items if id(item) not in keep]
    config.stash[_LEFT_OUT] = len(real)


_LEFT_OUT = pytest.StashKey[int]()


def pytest_report_header(config: pytest.Config) -> str:
    where = "present" if SHARED_DATA.is_dir() else "absent: the real-data layer is left out"
    return f"real datasets: {SHARED_DATA} ({where}; XLINGUAL_SHARED_DATA moves it)"


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    left_out = config.stash.get(_LEFT_OUT, 0)
    if left_out:
        terminalreporter.write_line(f"real-data layer: {left_out} tests deselected, no datasets at {SHARED_DATA} (XLINGUAL_SHARED_DATA)")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real datasets beside the repository (only tests of the real-data layer ask for it)."""
    if not SHARED_DATA.is_dir():  # reached only when collection was bypassed
        pytest.skip(f"real datasets not found at {SHARED_DATA} (../shared/data or XLINGUAL_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def generated_data():
    """Generated Twitter2015 and CMNER splits plus 25 images over six CMNER posts, in the data-directory layout."""
    from xlingual.testing.synthetic import write_generated_data_dir

    return write_generated_data_dir(_SESSION_TMP / "generated-data")


@pytest.fixture(scope="session")
def sample_data_dir() -> Path:
    """The small made-up sample that ships with the package, laid out as a data directory (the demo's input)."""
    from xlingual.data.sample_data import write_sample_data_dir

    return write_sample_data_dir(_SESSION_TMP / "sample-data")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models gain nothing from intra-op threads, and spinning threads slow a busy machine down."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
