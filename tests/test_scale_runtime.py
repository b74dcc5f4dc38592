"""One Ray runtime per command: :func:`one_runtime` around any nesting of pools starts Ray at most once and stops it once.

Run against the in-process fake of ``tests/fake_ray.py``, so the count of
starts is exact and no real runtime is needed.
"""

from __future__ import annotations

import sys

import pytest
from fake_ray import FakeRay
from hypothesis import given, settings
from hypothesis import strategies as st

from xlingual.errors import ConfigError
from xlingual.scale.runtime import RaySettings, one_runtime, run_as_tasks, run_on_workers


@pytest.fixture()
def fake_ray(monkeypatch: pytest.MonkeyPatch) -> FakeRay:
    fake = FakeRay()
    monkeypatch.setitem(sys.modules, "ray", fake)
    return fake


def _double() -> object:
    return lambda job: 2 * job


def _pool(jobs: int, tasks: bool) -> None:
    """One stage's pool: ``jobs`` jobs on actors, or as tasks; checks every job ran."""
    items = [(n, n) for n in range(jobs)]
    outcome = run_as_tasks(RaySettings(), lambda job: 2 * job, items) if tasks else run_on_workers(RaySettings(), _double, items)
    assert outcome.results == {n: 2 * n for n in range(jobs)} and not outcome.failures


# A command: a list of steps, each a pool (jobs, as tasks?) or a nested block of steps.
steps = st.recursive(st.tuples(st.integers(0, 3), st.booleans()), lambda inner: st.lists(inner, max_size=3), max_leaves=8)


def _run(program: list, fake: FakeRay, ups: list[bool]) -> None:
    for step in program:
        if isinstance(step, list):
            with one_runtime():
                _run(step, fake, ups)
        else:
            _pool(*step)
        ups.append(fake.up)


def _pools_with_work(program: list) -> int:
    return sum(_pools_with_work(s) if isinstance(s, list) else int(s[0] > 0) for s in program)


@settings(max_examples=60, deadline=None)
@given(program=st.lists(steps, max_size=4), initialised=st.booleans())
def test_a_command_starts_ray_at_most_once_and_leaves_nothing_running(program: list, initialised: bool) -> None:
    """Whatever pools run inside the block: one start if any has work (none otherwise), one stop, and none for a runtime found running."""
    fake = FakeRay()
    fake.up = initialised
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "ray", fake)
        ups: list[bool] = []
        with one_runtime():
            _run(program, fake, ups)
    busy = _pools_with_work(program) > 0
    if initialised:
        assert (fake.inits, fake.shutdowns, fake.up) == (0, 0, True)
    else:
        assert (fake.inits, fake.shutdowns, fake.up) == (int(busy), int(busy), False)
        first = next((i for i, up in enumerate(ups) if up), len(ups))
        assert all(ups[first:]), "the runtime stopped before the command ended"


def test_without_the_block_each_pool_starts_and_stops_its_own(fake_ray: FakeRay) -> None:
    _pool(2, tasks=False)
    _pool(0, tasks=False)
    _pool(1, tasks=True)
    assert (fake_ray.inits, fake_ray.shutdowns, fake_ray.up) == (2, 2, False)


def test_a_pool_that_fails_inside_the_block_still_has_the_runtime_stopped_once(fake_ray: FakeRay) -> None:
    with pytest.raises(ConfigError, match="--workers 5: the Ray cluster holds 2 such workers"):
        with one_runtime():
            _pool(1, tasks=False)
            run_on_workers(RaySettings(workers=5), _double, [(0, 0)])
    assert (fake_ray.inits, fake_ray.shutdowns, fake_ray.up) == (1, 1, False)
    with one_runtime():  # the next command starts afresh
        _pool(1, tasks=True)
    assert (fake_ray.inits, fake_ray.shutdowns, fake_ray.up) == (2, 2, False)


@pytest.mark.parametrize("address,expected", [(None, None), ("local", RaySettings()), ("auto", RaySettings("auto"))])
def test_settings_from_the_command_line(address, expected) -> None:
    assert RaySettings.from_options(address) == expected


def test_threads_become_each_workers_cpus_and_zero_means_one() -> None:
    assert RaySettings.from_options("auto", 2, 0.5, threads=0) == RaySettings("auto", 2, 0.5, 1)
    assert RaySettings.from_options("auto", 2, 0.5, threads=3).cpus_per_worker == 3
