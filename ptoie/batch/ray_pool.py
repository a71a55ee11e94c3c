"""The Ray worker pool: :class:`~ptoie.batch.workers.ExtractorWorker` actors fed at most two
batches each, so the corpus streams; a dead worker costs nothing (its batches go to live actors)
and a document that kills every worker it is sent to is isolated and skipped.
:func:`size_workers` is the ``--workers auto`` rule.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import ray

from ptoie.batch.config import BatchConfig, BatchUsageError
from ptoie.batch.plan import DocumentTask
from ptoie.batch.workers import (K, BatchOutcome, DocumentFailure, DocumentResult, ExtractorWorker,
                                 error_reason, extraction_failed)

MAX_TRIES = 3
"""Tries of a batch whose worker died, and then of each of its documents alone."""

WORKER_MEMORY_BYTES = 2**30
"""Memory the ``--workers auto`` rule reserves per worker: a worker with the shipped 135M model
peaks at 0.4-0.9 GB (docs/batch.md); larger models need a larger share, set ``--workers``."""


class WorkersLostError(RuntimeError):
    """No extractor worker has been alive for ``RayWorkerPool.WAIT_FOR_WORKER_S``."""


def size_workers(resources: dict[str, float], *, threads_per_worker: int,
                 gpus_per_worker: float) -> tuple[int, str]:
    """The ``--workers auto`` rule, from the resources a Ray cluster reports (local or remote):
    one worker per ``threads_per_worker`` CPUs (per ``gpus_per_worker`` GPUs when > 0, still
    within the CPUs), at most one per GiB of Ray's ``memory`` resource, at least one.
    Returns ``(workers, the rule applied, in words)``."""
    cpus, gpus = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
    memory = resources.get("memory", 0.0)
    by_cpu = int(cpus // threads_per_worker + 1e-9)
    workers, why = by_cpu, f"{cpus:g} CPUs / {threads_per_worker} thread(s) per worker"
    if gpus_per_worker > 0:
        by_gpu = int(gpus / gpus_per_worker + 1e-9)
        if by_gpu < workers:
            workers, why = by_gpu, f"{gpus:g} GPUs / {gpus_per_worker:g} GPU per worker"
    if memory and int(memory // WORKER_MEMORY_BYTES) < workers:
        workers = int(memory // WORKER_MEMORY_BYTES)
        why = f"{memory / 2**30:.1f} GiB of Ray memory / 1 GiB per worker"
    return max(workers, 1), why


def _ray_init_options(config: BatchConfig) -> dict[str, Any]:
    """``ray.init`` arguments: the cluster ``config.address`` or ``RAY_ADDRESS`` names, else a
    light local Ray (no dashboard, small object store; with ``--workers N`` its ``num_cpus`` is
    ``N x threads``, with ``auto`` Ray's own count of this machine's CPUs)."""
    init: dict[str, Any] = {"address": config.address, "include_dashboard": False,
                            "logging_level": logging.ERROR, "log_to_driver": True}
    if config.address is None and not os.environ.get("RAY_ADDRESS"):
        # "local": always a new Ray of its own, never a cluster that another `ray start`
        # on this machine left in /tmp/ray/ray_current_cluster
        init["address"] = "local"
        init["object_store_memory"] = config.object_store_mb * 2**20
        if config.workers != "auto":
            init["num_cpus"] = config.workers * config.threads_per_worker
    return init


class RayWorkerPool:
    """:class:`ExtractorWorker` Ray actors, fed at most two batches each.

    Starts a light local Ray (see :func:`_ray_init_options`) unless ``config.address`` or
    ``RAY_ADDRESS`` names a cluster. ``--workers auto`` is sized by :func:`size_workers` from what
    the cluster reports, and ``announce`` gets one line saying so. ``nodes``: the Ray node ids the
    actors run on. (``ray.util.ActorPool.map`` would submit the whole input up front; this pool pulls the next
    batch only when one finishes, so the corpus streams.)
    """

    PER_ACTOR = 2
    """Batches in flight per actor: one decoding, one queued, so an actor never idles."""
    WAIT_FOR_WORKER_S = 600.0
    """With work left and no worker alive for this long, :meth:`map` raises WorkersLostError."""
    _PING_EVERY_S = 1.0

    def __init__(self, config: BatchConfig, *, announce: Callable[[str], None] = lambda _: None
                 ) -> None:
        self._actors: list[Any] = []
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            ray.init(**_ray_init_options(config))
        self.workers = self._count_workers(config, announce)
        self._check_resources(config, self.workers)
        self.model_id, self.nodes = self._start_actors(config)
        self.retried_batches = 0

    def _count_workers(self, config: BatchConfig, announce: Callable[[str], None]) -> int:
        if config.workers != "auto":
            return config.workers
        workers, why = size_workers(ray.cluster_resources(),
                                    threads_per_worker=config.threads_per_worker,
                                    gpus_per_worker=config.gpus_per_worker)
        announce(f"ptoie-batch: {workers} worker(s) x {config.threads_per_worker} thread(s) "
                 f"(--workers auto: {why})")
        return workers

    def _check_resources(self, config: BatchConfig, workers: int) -> None:
        total = ray.cluster_resources()
        need = {"CPU": workers * config.threads_per_worker,
                "GPU": workers * config.gpus_per_worker}
        for resource, amount in need.items():
            if amount > total.get(resource, 0) + 1e-9:
                self.close()
                raise BatchUsageError(
                    f"{workers} workers need {amount:g} {resource} in all, the Ray cluster "
                    f"has {total.get(resource, 0):g}; lower --workers, --threads-per-worker or "
                    f"--gpus-per-worker")

    def _start_actors(self, config: BatchConfig) -> tuple[str, list[str]]:
        """Start ``self.workers`` actors and wait until each has loaded the model; returns the
        model id and the sorted Ray node ids they run on."""
        # Ray restarts a dead actor (its process killed, its node lost) for as long as the job
        # runs; the pool, not Ray, retries the batches it was running (max_task_retries=0): Ray
        # would retry them on the same actor only, which waits forever when its node is gone,
        # and could not isolate a document that kills every worker it is sent to.
        actor_class = ray.remote(ExtractorWorker).options(
            num_cpus=config.threads_per_worker, num_gpus=config.gpus_per_worker, max_restarts=-1,
            max_task_retries=0)
        self._actors = [actor_class.remote(config.worker_model(), config.decoding)
                        for _ in range(self.workers)]
        try:
            described = ray.get([actor.describe.remote() for actor in self._actors])
        except ray.exceptions.RayError as exc:
            self.close()
            raise BatchUsageError(f"the extractor workers could not start: {error_reason(exc)}"
                                  ) from None
        return described[0][0], sorted({node for _, node in described})

    def map(self, items: Iterable[tuple[K, list[DocumentTask]]]
            ) -> Iterator[tuple[K, BatchOutcome]]:
        """Outcomes of each batch, as batches finish. Pulls the next batch only when an actor has
        room, so the corpus streams. When an actor dies (Ray restarts it), its batches go to the
        front of the queue, for any live actor; the actor gets work again once it answers a
        ping. A death counts against the batch the actor was running (its oldest), not those
        queued behind it. A batch on which workers died ``MAX_TRIES`` times, or whose extraction
        raised, is extracted again one document at a time; a document on which workers died
        ``MAX_TRIES`` times is a ``worker_crashed`` failure, one whose extraction raised an
        ``extraction_failed`` one."""
        schedule = _Schedule(self, items)
        while True:
            now = time.monotonic()
            schedule.ping_dead_actors(now)
            schedule.submit()
            if schedule.finished():
                return
            done = schedule.wait(now)
            schedule.check_some_worker_alive()
            for ref in done:
                batch = schedule.receive(ref)
                if batch is not None:
                    yield batch.key, batch.outcomes  # type: ignore[misc]

    def close(self) -> None:
        for actor in self._actors:
            ray.kill(actor)
        self._actors = []
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()


@dataclass(slots=True)
class _Batch:
    """A batch of :meth:`RayWorkerPool.map` until every document has an outcome."""

    key: Any
    outcomes: list[DocumentResult | DocumentFailure | None]
    missing: int


@dataclass(slots=True)
class _Unit:
    """Work sent to one actor: documents ``first ..`` of a batch (the whole batch, or one
    document once the batch failed), and how many times a worker died on it."""

    batch: _Batch
    first: int
    tasks: list[DocumentTask]
    deaths: int = 0


class _Schedule:
    """The bookkeeping of one :meth:`RayWorkerPool.map`: the units waiting to be sent, those in
    flight on each actor, the actors alive, the pings to restarted ones, the blamed deaths."""

    def __init__(self, pool: RayWorkerPool, items: Iterable[tuple[Any, list[DocumentTask]]]
                 ) -> None:
        self.pool = pool
        self.source = iter(items)
        self.exhausted = False
        self.retry: list[_Unit] = []                       # to send again, before new batches (last first)
        self.in_flight: dict[Any, tuple[int, int, _Unit]] = {}  # ref -> (actor, submission, unit)
        self.submitted = itertools.count()
        self.load = dict.fromkeys(range(len(pool._actors)), 0)
        self.alive = set(self.load)                        # actors that answered since they died
        self.pings: dict[Any, int] = {}                    # describe() ref -> actor
        self.ping_due: dict[int, float] = {}               # actor -> when to ping it again
        self.blamed: set[int] = set()                      # submissions running when their actor died
        self.last_alive = time.monotonic()

    # -- the steps of map, in order ------------------------------------------------------------
    def ping_dead_actors(self, now: float) -> None:
        """Ping each dead actor whose ping is due: once it answers, Ray has restarted it."""
        for actor in [a for a, due in self.ping_due.items() if due <= now]:
            del self.ping_due[actor]
            self.pings[self.pool._actors[actor].describe.remote()] = actor

    def submit(self) -> None:
        """Send units to the live actors with room, the least loaded first; retried units go
        before new batches."""
        while True:
            free = [a for a in self.alive if self.load[a] < self.pool.PER_ACTOR]
            if not free:
                return
            unit = self._next_unit()
            if unit is None:
                return
            actor = min(free, key=lambda a: (self.load[a], a))
            self.load[actor] += 1
            self.in_flight[self.pool._actors[actor].__call__.remote(unit.tasks)] = (
                actor, next(self.submitted), unit)

    def finished(self) -> bool:
        """Every batch read and settled."""
        return not self.in_flight and not self.retry and self.exhausted

    def wait(self, now: float) -> list[Any]:
        """The refs (a unit's or a ping's) that finished, waiting for one at most until the next
        ping is due, and 5 s at most."""
        if not self.in_flight and not self.pings and not self.ping_due:
            raise WorkersLostError("every extractor worker is gone")  # pragma: no cover
        timeout = min(max(min(self.ping_due.values(), default=now + 5.0) - now, 0.0), 5.0)
        refs = [*self.in_flight, *self.pings]
        if not refs:  # every actor dead, waiting to ping them again
            time.sleep(timeout)
            return []
        done, _ = ray.wait(refs, num_returns=1, timeout=timeout)
        return done

    def check_some_worker_alive(self) -> None:
        """Raise :class:`WorkersLostError` once no actor has been alive (nor running a unit)
        for ``WAIT_FOR_WORKER_S``."""
        if self.alive or self.in_flight:
            self.last_alive = time.monotonic()
        elif time.monotonic() - self.last_alive > self.pool.WAIT_FOR_WORKER_S:
            raise WorkersLostError(f"no extractor worker alive for "
                                   f"{self.pool.WAIT_FOR_WORKER_S:g} s (its node lost, no room "
                                   f"to restart it elsewhere)")

    def receive(self, ref: Any) -> _Batch | None:
        """Take in a finished ref: a ping's answer, a unit's outcomes, its worker's death or its
        extraction's error. Returns the batch it completed, if any."""
        if ref in self.pings:
            self._answer_ping(ref)
            return None
        actor, order, unit = self.in_flight.pop(ref)
        self.load[actor] -= 1
        try:
            outcomes = ray.get(ref)
        except ray.exceptions.RayActorError as exc:  # the worker process or node died
            self._blame_death(actor, order)
            unit.deaths += order in self.blamed
            self.blamed.discard(order)
            return self._retry_after_death(unit, exc)
        except ray.exceptions.RayError as exc:  # the extractor raised
            if len(unit.tasks) > 1:
                self._isolate(unit)
                return None
            return self._settle(unit, extraction_failed(unit.tasks, exc))
        return self._settle(unit, outcomes)

    # -- what receive does ---------------------------------------------------------------------
    def _answer_ping(self, ref: Any) -> None:
        """A restarted actor that answers is alive again; one that does not is pinged later."""
        actor = self.pings.pop(ref)
        try:
            ray.get(ref)
            self.alive.add(actor)
        except ray.exceptions.RayError:
            self.ping_due[actor] = time.monotonic() + self.pool._PING_EVERY_S

    def _blame_death(self, actor: int, order: int) -> None:
        """At the first news of an actor's death (submission ``order`` failed), mark it dead, ping
        it at once, and blame the death on the oldest submission it held."""
        if actor not in self.alive:
            return
        # the actor runs its units in submission order, so the oldest one it held was running
        # (the suspect); the others were waiting and their failures, whenever they arrive, do
        # not count
        self.alive.discard(actor)
        self.ping_due[actor] = time.monotonic()
        self.blamed.add(min([order, *(o for a, o, _ in self.in_flight.values() if a == actor)]))

    def _retry_after_death(self, unit: _Unit, exc: BaseException) -> _Batch | None:
        """Send a unit whose worker died again, up to ``MAX_TRIES`` deaths; then a batch one
        document at a time, a single document as a ``worker_crashed`` failure."""
        if unit.deaths < MAX_TRIES:
            self.pool.retried_batches += 1
            self.retry.append(unit)
            return None
        if len(unit.tasks) > 1:
            self._isolate(unit)
            return None
        return self._settle(unit, [DocumentFailure(
            unit.tasks[0].doc_id, "worker_crashed",
            f"its worker died on each of {unit.deaths} tries ({type(exc).__name__}); "
            f"skipped, rerun to retry it", unit.deaths)])

    def _isolate(self, unit: _Unit) -> None:
        """Queue each document of ``unit`` as a unit of its own, the first one first."""
        self.retry.extend(reversed([_Unit(unit.batch, unit.first + i, [task])
                                    for i, task in enumerate(unit.tasks)]))

    def _next_unit(self) -> _Unit | None:
        """The last unit queued for a retry, else the next batch of the input, else None."""
        if self.retry:
            return self.retry.pop()
        if self.exhausted:
            return None
        item = next(self.source, None)
        if item is None:
            self.exhausted = True
            return None
        key, tasks = item
        return _Unit(_Batch(key, [None] * len(tasks), len(tasks)), 0, list(tasks))

    @staticmethod
    def _settle(unit: _Unit, outcomes: BatchOutcome) -> _Batch | None:
        """Record the outcomes of a unit's documents; the batch once all of its documents have one."""
        batch = unit.batch
        batch.outcomes[unit.first:unit.first + len(outcomes)] = outcomes
        batch.missing -= len(outcomes)
        return batch if batch.missing == 0 else None
