"""The Ray runtime and a pool of workers that load their model once: what every ``--ray`` stage shares.

Ray is imported here and only here, and only when a ``--ray`` path runs, so
``xl`` starts without it and a missing install is one line naming the extra.

A stage hands :func:`run_on_workers` a *factory* (a picklable zero-argument
callable that loads the model and returns the function that does one job) and
its jobs. Each worker (a Ray actor) calls the factory once, then takes jobs one
at a time, in order, as it frees up. A job that raises is reported with its
error and the others go on; a worker that dies (killed, out of memory) costs
its current job only. Results are whatever the job returns; stages write their
real output to the shared data directory themselves, so a killed driver loses
nothing a worker finished.

A command runs on one runtime however many pools it starts:
:func:`one_runtime` marks the command's extent, the first pool inside it
starts Ray, and the block's end stops it (a local runtime takes seconds to
start). Ray is still started only when a pool has jobs, so a ``--ray`` command
with nothing to do neither imports nor starts it.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from xlingual.errors import ConfigError, XlingualError
from xlingual.progress import progress_bar

logger = logging.getLogger(__name__)

LOCAL = "local"
"""``--ray`` given alone: start a Ray runtime on this machine for the run, and stop it after."""

INSTALL_HINT = "pip install 'xlingual[ray]'"

RAY_HELP = ("Run on Ray: alone, a runtime started on this machine for the run; 'auto', the cluster this machine joined "
            "with 'ray start'; or a cluster address. Needs the ray extra (pip install 'xlingual[ray]'); see docs/scale.md.")


DEFAULT_PART_SIZE = 512
"""Images per part (rounded up to whole batches): the unit of work, resume and failure under Ray."""


@dataclass(frozen=True)
class RaySettings:
    """Where to run and how to size the workers.

    ``address``: ``local`` (a runtime of its own on this machine), ``auto`` (the
    cluster this machine joined with ``ray start``) or a cluster address.
    ``workers`` 0 means as many as the cluster holds (its CPUs divided by
    ``cpus_per_worker``, or its GPUs divided by ``gpus_per_worker``).
    """

    address: str = LOCAL
    workers: int = 0
    gpus_per_worker: float = 0.0
    cpus_per_worker: int = 1

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ConfigError(f"--workers {self.workers}: must be 0 (as many as the cluster holds) or more")
        if self.gpus_per_worker < 0:
            raise ConfigError(f"--gpus-per-worker {self.gpus_per_worker}: must be 0 or more")
        if self.cpus_per_worker < 1:
            raise ConfigError(f"CPUs per worker {self.cpus_per_worker}: must be at least 1")

    @classmethod
    def from_options(cls, address: str | None, workers: int = 0, gpus_per_worker: float = 0.0, threads: int = 0) -> "RaySettings | None":
        """The settings of ``--ray ADDRESS --workers N --gpus-per-worker G``, or None (one process) without ``--ray``.

        ``threads`` is the command's ``--threads``: a worker reserves that many
        CPUs, and at least one where 0 would mean "every core" to one process.
        """
        if address is None:
            return None
        return cls(address, workers, gpus_per_worker, max(1, threads))


def import_ray() -> Any:
    """The ``ray`` module, or the one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


@dataclass
class _CommandScope:
    """How deep inside :func:`one_runtime` blocks the command is, and whether a pool in them started Ray (to stop at the end)."""

    depth: int = 0
    started: Any = None


_SCOPE = _CommandScope()


@contextmanager
def one_runtime() -> Iterator[None]:
    """Every pool inside this block shares one Ray runtime: the first to need Ray starts it, the block's end stops it.

    Re-entrant: an inner block leaves the runtime to the outermost one.
    Nothing is imported or started by the block itself, so a command with no
    ``--ray``, or none of whose pools has work, pays nothing for it. A runtime
    that was already initialised when the command began is used and left as
    it is, as :func:`ray_runtime` does.
    """
    _SCOPE.depth += 1
    try:
        yield
    finally:
        _SCOPE.depth -= 1
        if _SCOPE.depth == 0 and _SCOPE.started is not None:
            ray, _SCOPE.started = _SCOPE.started, None
            ray.shutdown()


INIT_OPTIONS: dict[str, Any] = dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)


def _start(ray: Any, settings: RaySettings) -> None:
    """Start a runtime on this machine, or join the cluster ``settings.address`` names (:func:`xlingual.scale.connect.join_cluster`)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if settings.address != LOCAL:
        from xlingual.scale.connect import join_cluster

        join_cluster(ray, settings.address, **INIT_OPTIONS)
        return
    try:
        ray.init(address=None, **INIT_OPTIONS)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise ConfigError(f"--ray: no Ray runtime could be started on this machine ({' '.join(str(err).split())[:200]})") from None


@contextmanager
def ray_session(settings: RaySettings | None) -> Iterator[None]:
    """A command's extent under ``--ray``: one runtime (:func:`one_runtime`), and a named cluster joined first, before anything is written.

    A cluster address (or ``auto``) is reached on entry, so a wrong address,
    or a cluster that wants a token, stops the command before it creates its
    output folder; the connection then serves every pool of the block. A
    runtime on this machine is still left to the first pool with work, so a
    command with nothing to do starts none. Without ``--ray`` it does nothing.
    """
    with one_runtime():
        if settings is not None and settings.address != LOCAL:
            with ray_runtime(settings):  # inside one_runtime: started here, left to the block's end
                yield
        else:
            yield


@contextmanager
def ray_runtime(settings: RaySettings) -> Iterator[Any]:
    """Ray, connected: an already initialised runtime is used as it is; otherwise one is started or joined, and left after.

    Inside :func:`one_runtime` a runtime started here is left to the end of the block instead, for the command's next pool.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    _start(ray, settings)
    if _SCOPE.depth:
        _SCOPE.started = ray
        yield ray
        return
    try:
        yield ray
    finally:
        ray.shutdown()


@dataclass(frozen=True)
class DriverContext:
    """What a worker takes over from the command that started it: working folder, import path, command line.

    Relative paths in options and configs then mean what they mean to the
    user, a plug-in module found by the driver is found by the workers, and a
    run folder's ``environment.json`` records the user's command. On another
    node this assumes the same paths (the shared data directory of docs/scale.md).
    """

    cwd: str
    path: tuple[str, ...]
    argv: tuple[str, ...]

    @classmethod
    def capture(cls) -> "DriverContext":
        cwd = os.getcwd()
        return cls(cwd, tuple(os.path.abspath(p) if p else cwd for p in sys.path), tuple(sys.argv))

    def apply(self) -> None:
        try:
            os.chdir(self.cwd)
        except OSError:
            logger.warning("working folder %s does not exist on this node; relative paths may not resolve", self.cwd)
        sys.path.extend(p for p in self.path if p not in sys.path and os.path.isdir(p))
        sys.argv = list(self.argv)


@dataclass(frozen=True)
class WorkerError:
    """A job's (or a worker's) failure as the driver reports it: one line, plus the traceback for the debug log."""

    message: str
    user_error: bool = False
    traceback: str = ""

    @classmethod
    def of(cls, err: BaseException) -> "WorkerError":
        text = " ".join(str(err).split())
        message = text if isinstance(err, XlingualError) else f"{type(err).__name__}: {text}"
        return cls(message, isinstance(err, XlingualError), traceback.format_exc())


class _Worker:
    """One Ray actor: builds its stage with the factory once, then runs the jobs it is given."""

    def __init__(self, context: DriverContext, factory: Callable[[], Callable[[Any], Any]]) -> None:
        context.apply()
        self.problem: WorkerError | None = None
        try:
            self.stage = factory()
        except Exception as err:
            self.problem = WorkerError.of(err)

    def ready(self) -> WorkerError | None:
        return self.problem

    def run(self, job: Any) -> tuple[bool, Any]:
        try:
            return True, self.stage(job)
        except Exception as err:
            return False, WorkerError.of(err)


@dataclass
class PoolOutcome:
    """Per job key: its result, or the error it failed with; ``workers`` is how many ran."""

    results: dict[Hashable, Any] = field(default_factory=dict)
    failures: dict[Hashable, str] = field(default_factory=dict)
    workers: int = 0
    seconds: float = 0.0


def _worker_count(ray: Any, settings: RaySettings, jobs: int, desc: str) -> int:
    resources = ray.cluster_resources()
    if settings.gpus_per_worker > 0:
        if resources.get("GPU", 0) < settings.gpus_per_worker:
            raise ConfigError(f"--gpus-per-worker {settings.gpus_per_worker:g}: the Ray cluster has {resources.get('GPU', 0):g} GPUs")
        fits = int(resources["GPU"] // settings.gpus_per_worker)
    else:
        fits = int(resources.get("CPU", 1) // settings.cpus_per_worker)
    if settings.workers > fits:
        raise ConfigError(f"--workers {settings.workers}: the Ray cluster holds {fits} such workers "
                          f"({resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs)")
    if settings.workers > jobs:
        logger.warning("--workers %d: only %d %s to run, so %d workers", settings.workers, jobs, desc, jobs)
    return max(1, min(settings.workers or fits, jobs))


def _raise_load_error(problem: WorkerError) -> None:
    logger.debug("worker failed to start:\n%s", problem.traceback)
    if problem.user_error:
        raise XlingualError(problem.message)
    raise RuntimeError(f"a Ray worker failed to load its model: {problem.message}")


def run_on_workers(settings: RaySettings, factory: Callable[[], Callable[[Any], Any]], jobs: Sequence[tuple[Hashable, Any]],
                   desc: str = "shards") -> PoolOutcome:
    """Run ``jobs`` (key, job) on a pool of workers built by ``factory``; see the module docstring.

    The first worker is started alone, so a model converted or downloaded on
    first use is prepared once, not raced by every worker.
    """
    outcome = PoolOutcome()
    if not jobs:
        return outcome
    started = time.perf_counter()
    with ray_runtime(settings) as ray:
        count = _worker_count(ray, settings, len(jobs), desc)
        actor_class = ray.remote(num_cpus=settings.cpus_per_worker, num_gpus=settings.gpus_per_worker, max_restarts=0)(_Worker)
        context = DriverContext.capture()
        actors = [actor_class.remote(context, factory)]
        try:
            if (problem := ray.get(actors[0].ready.remote())) is not None:
                _raise_load_error(problem)
            actors += [actor_class.remote(context, factory) for _ in range(count - 1)]
            for problem in ray.get([a.ready.remote() for a in actors[1:]]):
                if problem is not None:
                    _raise_load_error(problem)
            outcome.workers = len(actors)
            logger.info("%d %s on %d Ray workers", len(jobs), desc, len(actors))
            _dispatch(ray, actors, jobs, outcome, desc)
        finally:
            for actor in actors:
                ray.kill(actor)
    outcome.seconds = time.perf_counter() - started
    return outcome


def _dispatch(ray: Any, actors: list[Any], jobs: Sequence[tuple[Hashable, Any]], outcome: PoolOutcome, desc: str) -> None:
    """Give each free worker the next job, in order, until every job has a result or an error."""
    queue = deque(jobs)
    idle = deque(actors)
    running: dict[Any, tuple[Any, Hashable]] = {}
    with progress_bar(total=len(jobs), desc=desc, unit=desc.split()[-1]) as bar:
        while queue or running:
            while idle and queue:
                actor = idle.popleft()
                key, job = queue.popleft()
                running[actor.run.remote(job)] = (actor, key)
            if not running:  # every worker died: what is left is not run
                for key, _ in queue:
                    outcome.failures[key] = "not run: every Ray worker died"
                break
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                actor, key = running.pop(ref)
                bar.update(1)
                if _collect(ray, ref, key, outcome):
                    idle.append(actor)


def _collect(ray: Any, ref: Any, key: Hashable, outcome: PoolOutcome) -> bool:
    """Record a finished job's result or error; False when its worker died with it."""
    try:
        ok, value = ray.get(ref)
    except ray.exceptions.RayError as err:  # the worker process died (killed, out of memory)
        outcome.failures[key] = f"the Ray worker died ({type(err).__name__}: {' '.join(str(err).split())[:300]})"
        return False
    if ok:
        outcome.results[key] = value
    else:
        outcome.failures[key] = value.message
        logger.debug("%s failed:\n%s", key, value.traceback)
    return True


def _run_task(context: DriverContext, function: Callable[[Any], Any], item: Any) -> tuple[bool, Any]:
    context.apply()
    try:
        return True, function(item)
    except Exception as err:
        return False, WorkerError.of(err)


def run_as_tasks(settings: RaySettings, function: Callable[[Any], Any], items: Sequence[tuple[Hashable, Any]],
                 desc: str = "tasks") -> PoolOutcome:
    """Run ``function(item)`` as one Ray task per item: one GPU each where the cluster has GPUs, else one CPU.

    Ray runs as many at once as the cluster has room for; a task that fails is
    reported with its error and the others go on.
    """
    outcome = PoolOutcome()
    if not items:
        return outcome
    started = time.perf_counter()
    with ray_runtime(settings) as ray:
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        task = ray.remote(num_cpus=settings.cpus_per_worker, num_gpus=gpus, max_retries=0)(_run_task)
        context = DriverContext.capture()
        running = {task.remote(context, function, item): key for key, item in items}
        with progress_bar(total=len(items), desc=desc, unit=desc.split()[-1]) as bar:
            while running:
                done, _ = ray.wait(list(running), num_returns=1)
                for ref in done:
                    key = running.pop(ref)
                    bar.update(1)
                    _collect(ray, ref, key, outcome)
    outcome.seconds = time.perf_counter() - started
    return outcome
