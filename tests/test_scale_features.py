"""``xl features extract --ray`` on the shared local Ray runtime: the same cache as one process, leftover parts adopted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ray_support import needs_ray, shared_ray
from typer.testing import CliRunner

from xlingual.testing.synthetic import write_images

pytestmark = needs_ray

NAMES = [f"post{i}_img.jpg" for i in range(5)]
OPTIONS = dict(backbone="vgg16", weights="random", batch_size=2, device="cpu")


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = write_images(tmp_path_factory.mktemp("ray-images") / "images", NAMES)
    (folder / "broken_img.jpg").write_text("not a picture")
    return folder


@pytest.fixture(scope="module")
def one_process(images: Path, tmp_path_factory, one_torch_thread):
    from xlingual.features.extract import extract_folder

    cache = tmp_path_factory.mktemp("one") / "cache"
    return cache, extract_folder(images, cache, **OPTIONS)


def assert_same_cache(one: Path, other: Path) -> None:
    from xlingual.features.cache import FeatureCache

    a, b = FeatureCache.open(one), FeatureCache.open(other)
    assert a.names() == b.names() == NAMES
    assert a.producer == b.producer
    for name in NAMES:
        assert a.fingerprint(name) == b.fingerprint(name)
        assert np.array_equal(a.get(name), b.get(name)), name
    assert not (other / ".parts").exists()


def test_sharded_extraction_writes_the_cache_one_process_writes(images, one_process, tmp_path) -> None:
    from xlingual.cli import app

    shared_ray()
    cache, single = one_process
    result = CliRunner().invoke(app, ["features", "extract", "--images", str(images), "--out", str(tmp_path / "cache"), "--weights", "random",
                                      "--batch-size", "2", "--device", "cpu", "--json", "--ray", "--workers", "1"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["extracted"], summary["forward_batches"], summary["failed"]) == (single.extracted, single.forward_batches, single.failed)
    assert_same_cache(cache, tmp_path / "cache")


def test_parts_of_many_workers_and_a_killed_run_are_merged_once(images, one_process, tmp_path) -> None:
    """A part folder left by a killed run is adopted, not extracted again; small parts spread the rest over both workers."""
    from xlingual.features.extract import extract_folder
    from xlingual.scale.features import PARTS_DIR, RayParts
    from xlingual.scale.runtime import RaySettings

    shared_ray()
    cache = tmp_path / "cache"
    leftover = write_images(tmp_path / "subset", NAMES[:2])  # the same bytes as the first two images
    extract_folder(leftover, cache / PARTS_DIR / "part-000003", **OPTIONS)
    report = extract_folder(images, cache, runner=RayParts(RaySettings(workers=2), part_size=2), **OPTIONS)
    assert (report.cached, report.extracted, list(report.failed)) == (2, 3, ["broken_img.jpg"])
    assert_same_cache(one_process[0], cache)
    again = extract_folder(images, cache, runner=RayParts(RaySettings(workers=2), part_size=2), **OPTIONS)
    assert (again.cached, again.extracted, again.forward_batches) == (5, 0, 0)
