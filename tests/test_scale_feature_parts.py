"""``xl features extract --ray``: how the images are cut into parts, and ``--workers N`` meaning N workers on a small folder.

The plan is checked over any counts (hypothesis); the workers on the
in-process fake of ``tests/fake_ray.py``, which counts the actors started.
"""

from __future__ import annotations

import json
import sys

import pytest
from fake_ray import FakeRay
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from xlingual.cli import app
from xlingual.errors import ConfigError
from xlingual.scale.features import plan_parts
from xlingual.testing.synthetic import write_images


@given(count=st.integers(0, 3000), batch=st.integers(1, 64), part_size=st.integers(1, 1024), workers=st.integers(0, 40))
def test_parts_are_whole_batches_in_order_no_larger_than_asked_and_enough_for_the_workers(count, batch, part_size, workers) -> None:
    parts = plan_parts(count, batch, part_size, workers)
    assert [i for part in parts for i in part] == list(range(count))  # every image once, in order
    assert all(len(part) > 0 and part.start % batch == 0 for part in parts)  # whole batches: the one-process batches
    largest = -(-part_size // batch) * batch
    assert all(len(part) <= largest for part in parts)
    batches = -(-count // batch)
    assert len(parts) >= min(workers, batches)
    full = [len(part) // batch for part in parts[:-1]] + [-(-len(parts[-1]) // batch)] if parts else []
    assert not full or max(full) - min(full) <= 1  # as even as whole batches allow


def test_a_part_size_below_one_is_one_line() -> None:
    with pytest.raises(ConfigError, match="--part-size 0: must be at least 1"):
        plan_parts(10, 2, 0)


def test_the_default_part_size_still_cuts_large_folders_into_512_image_parts() -> None:
    assert [len(part) for part in plan_parts(1500, 16, workers=1)] == [512, 496, 492]


@pytest.fixture()
def fake_ray(monkeypatch: pytest.MonkeyPatch) -> FakeRay:
    fake = FakeRay(cpus=4)
    monkeypatch.setitem(sys.modules, "ray", fake)
    return fake


def test_workers_n_runs_n_workers_below_one_part_and_says_when_there_are_fewer_parts(fake_ray, tmp_path, one_torch_thread) -> None:
    """5 images in batches of 2 are 3 batches: --workers 2 starts 2 workers (not 1 for one 512-image part); --workers 4 starts 3 and says so."""
    images = write_images(tmp_path / "images", [f"post{i}.jpg" for i in range(5)])
    base = ["features", "extract", "--images", str(images), "--weights", "random", "--device", "cpu", "--batch-size", "2", "--json", "--ray"]
    result = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "two"), "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert fake_ray.actors == 2 and json.loads(result.stdout)["extracted"] == 5
    result = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "four"), "--workers", "4"])
    assert result.exit_code == 0, result.output
    assert fake_ray.actors == 2 + 3
    assert "--workers 4: only 3 feature parts to run, so 3 workers" in result.stderr
