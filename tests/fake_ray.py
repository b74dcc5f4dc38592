"""An in-process stand-in for the part of ``ray`` that :mod:`xlingual.scale.runtime` uses, counting starts and stops.

Starting a real local runtime takes seconds and a test session shares one
(``ray_support.shared_ray``), which hides how often a command would start its
own. This fake runs actors and tasks in the calling process, one call at a
time, and refuses any work while no runtime is up, so a test can run a whole
``--ray`` command through the library's real dispatch code and count
``init``/``shutdown``. Install it with ``monkeypatch.setitem(sys.modules, "ray", FakeRay())``.
"""

from __future__ import annotations

import types
from typing import Any


class RayError(Exception):
    pass


class _Ref:
    """A finished call: its value, or the error it raised (raised again by ``get``)."""

    def __init__(self, call: Any, *args: Any) -> None:
        self.value, self.error = None, None
        try:
            self.value = call(*args)
        except Exception as err:
            self.error = err


class _Method:
    def __init__(self, ray: "FakeRay", bound: Any) -> None:
        self.ray, self.bound = ray, bound

    def remote(self, *args: Any) -> _Ref:
        self.ray.check_up()
        return _Ref(self.bound, *args)


class _Actor:
    def __init__(self, ray: "FakeRay", instance: Any) -> None:
        self.ray, self.instance = ray, instance

    def __getattr__(self, name: str) -> _Method:
        return _Method(self.ray, getattr(self.instance, name))


class _Remote:
    """What ``ray.remote(...)`` makes of a class (``.remote`` starts an actor) or a function (``.remote`` runs a task)."""

    def __init__(self, ray: "FakeRay", target: Any) -> None:
        self.ray, self.target = ray, target

    def remote(self, *args: Any) -> Any:
        self.ray.check_up()
        if isinstance(self.target, type):
            self.ray.actors += 1
            return _Actor(self.ray, self.target(*args))
        return _Ref(self.target, *args)


class FakeRay(types.ModuleType):
    """``ray`` as far as the runtime module calls it; ``inits``/``shutdowns``/``actors`` count what happened."""

    def __init__(self, cpus: float = 2.0) -> None:
        super().__init__("ray")
        self.cpus = cpus
        self.up = False
        self.inits = self.shutdowns = self.actors = 0
        self.exceptions = types.SimpleNamespace(RayError=RayError)

    def check_up(self) -> None:
        if not self.up:
            raise AssertionError("work submitted while no Ray runtime is up")

    def is_initialized(self) -> bool:
        return self.up

    def init(self, address: str | None = None, **_: Any) -> None:
        if self.up:
            raise RuntimeError("Maybe you called ray.init twice by accident?")
        self.up, self.inits = True, self.inits + 1

    def shutdown(self) -> None:
        self.up, self.shutdowns = False, self.shutdowns + 1

    def cluster_resources(self) -> dict[str, float]:
        self.check_up()
        return {"CPU": self.cpus}

    def remote(self, **_: Any):
        return lambda target: _Remote(self, target)

    def get(self, refs: Any) -> Any:
        if isinstance(refs, list):
            return [self.get(ref) for ref in refs]
        if refs.error is not None:
            raise refs.error
        return refs.value

    def wait(self, refs: list[_Ref], num_returns: int = 1) -> tuple[list[_Ref], list[_Ref]]:
        return refs[:num_returns], refs[num_returns:]

    def kill(self, actor: _Actor) -> None:
        self.check_up()
