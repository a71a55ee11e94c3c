"""Workers: batches of documents -> triple records, on Ray actors (or in process, for tests).

:class:`ExtractorWorker` is the callable worker class of the Ray batch-inference pattern: it loads
the model once in ``__init__`` and extracts one batch per ``__call__``. :class:`RayWorkerPool`
runs ``workers`` of them as actors and feeds each at most two batches at a time, so the corpus
streams; :func:`size_workers` is the ``--workers auto`` rule.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ptoie.batch.config import BatchConfig, BatchUsageError
from ptoie.batch.plan import DocumentTask
from ptoie.extract.config import DecodingConfig, ModelConfig
from ptoie.extract.extractor import Extractor

@dataclass(slots=True)
class DocumentResult:
    """What a worker returns for one document."""

    doc_id: str
    records: list[dict[str, Any]]
    """Triple records (``Triple.to_record``), in sentence then extraction order."""
    n_sentences: int
    rejected_lines: int
    generated_tokens: int
    outputs_sha256: str
    """SHA-256 of the raw model outputs of the document's sentences: two runs decoded the same
    iff these agree, whether or not the outputs parsed into triples."""


class FaultInjection:
    """Test-only fault injection: a worker that gets a sentence holding the text of
    ``PTOIE_TEST_CRASH_ON`` dies at once (``os._exit``, as a worker killed by the kernel's OOM
    killer would), before extracting anything. With ``PTOIE_TEST_CRASH_ONCE=FOLDER`` it dies only
    the first time it meets each such sentence (a marker file per sentence in FOLDER, shared by
    all workers of the machine); without it, every time (a poison document). Read by each worker
    process from its environment; unset in normal use."""

    CRASH_ON = "PTOIE_TEST_CRASH_ON"
    CRASH_ONCE = "PTOIE_TEST_CRASH_ONCE"

    def __init__(self, text: str, once_dir: Path | None) -> None:
        self.text = text
        self.once_dir = once_dir

    @classmethod
    def from_environment(cls) -> FaultInjection | None:
        text = os.environ.get(cls.CRASH_ON)
        once = os.environ.get(cls.CRASH_ONCE)
        return cls(text, Path(once) if once else None) if text else None

    def maybe_crash(self, sentences: list[str]) -> None:
        for sentence in sentences:
            if self.text not in sentence:
                continue
            if self.once_dir is not None:
                marker = self.once_dir / hashlib.sha256(sentence.encode()).hexdigest()
                try:
                    os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                except FileExistsError:
                    continue  # crashed on it before
            os._exit(137)


class ExtractorLike(Protocol):
    model_id: str

    def extract_batch(self, sentences: list[str]) -> list[Any]: ...


class ExtractorWorker:
    """Callable worker class (the Ray batch-inference pattern): loads the extractor once in
    ``__init__``, extracts one batch of documents per ``__call__``.

    ``extractor_factory(model=..., decoding=...)`` replaces :class:`ptoie.Extractor` (tests
    inject a deterministic fake).
    """

    def __init__(self, model: ModelConfig, decoding: DecodingConfig,
                 extractor_factory: Callable[..., ExtractorLike] = Extractor) -> None:
        self._fault = FaultInjection.from_environment()
        self.extractor = extractor_factory(model=model, decoding=decoding)
        self.model_id: str = self.extractor.model_id

    def describe(self) -> tuple[str, str]:
        """The model id and the Ray node this worker runs on ("local" outside Ray)."""
        try:
            import ray

            node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else "local"
        except ImportError:  # pragma: no cover - ray is a dependency
            node = "local"
        return self.model_id, node

    def __call__(self, tasks: list[DocumentTask]) -> list[DocumentResult]:
        sentences = [s for task in tasks for s in task.sentences]
        if self._fault is not None:
            self._fault.maybe_crash(sentences)
        results = iter(self.extractor.extract_batch(sentences))
        out = []
        for task in tasks:
            records: list[dict[str, Any]] = []
            digest = hashlib.sha256()
            rejected = tokens = 0
            for sentence_id, sentence in enumerate(task.sentences):
                result = next(results)
                digest.update(result.raw_output.encode("utf-8") + b"\x00")
                rejected += result.rejected_lines
                tokens += result.generated_tokens
                for index, triple in enumerate(result.triples):
                    records.append(triple.to_record(
                        doc_id=task.doc_id, sentence_id=sentence_id, sentence=sentence,
                        extraction_index=index, model_id=self.model_id,
                        doc_url=task.url, doc_title=task.title))
            out.append(DocumentResult(task.doc_id, records, len(task.sentences), rejected, tokens,
                                      digest.hexdigest()))
        return out


# -- worker pools -----------------------------------------------------------------------------
K = TypeVar("K")

MAX_TRIES = 3
"""Tries of a batch whose worker died, and then of each of its documents alone."""


@dataclass(frozen=True, slots=True)
class DocumentFailure:
    """A document the workers could not extract: ``kind`` ``extraction_failed`` (the extractor
    raised) or ``worker_crashed`` (its worker died on each of ``tries`` tries)."""

    doc_id: str
    kind: str
    message: str
    tries: int


BatchOutcome = list[DocumentResult | DocumentFailure]
"""One entry per document of the batch, in its order."""


class WorkerPool(Protocol):
    model_id: str
    workers: int
    nodes: list[str]
    retried_batches: int

    def map(self, items: Iterable[tuple[K, list[DocumentTask]]]
            ) -> Iterator[tuple[K, BatchOutcome]]: ...

    def close(self) -> None: ...


def _reason(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else repr(exc)


def _failed(tasks: list[DocumentTask], exc: BaseException) -> BatchOutcome:
    return [DocumentFailure(t.doc_id, "extraction_failed",
                            f"extraction failed ({_reason(exc)}); rerun to retry it", 1)
            for t in tasks]


class InProcessWorkerPool:
    """One :class:`ExtractorWorker` called in this process: the job logic without Ray (tests).
    A batch that raises is extracted again one document at a time, as :class:`RayWorkerPool`
    does."""

    def __init__(self, worker: ExtractorWorker) -> None:
        self.worker = worker
        self.model_id = worker.model_id
        self.workers = 1
        self.nodes = ["local"]
        self.retried_batches = 0

    def _call(self, tasks: list[DocumentTask]) -> BatchOutcome:
        try:
            return list(self.worker(tasks))
        except Exception as exc:  # noqa: BLE001 - reported per document, the job goes on
            if len(tasks) == 1:
                return _failed(tasks, exc)
            return [outcome for task in tasks for outcome in self._call([task])]

    def map(self, items: Iterable[tuple[K, list[DocumentTask]]]
            ) -> Iterator[tuple[K, BatchOutcome]]:
        for key, tasks in items:
            yield key, self._call(tasks)

    def close(self) -> None:
        return None


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


class WorkersLostError(RuntimeError):
    """No extractor worker has been alive for ``RayWorkerPool.WAIT_FOR_WORKER_S``."""


WORKER_MEMORY_BYTES = 2**30
"""Memory the ``--workers auto`` rule reserves per worker: a worker with the shipped 135M model
peaks at 0.4-0.9 GB (docs/batch.md); larger models need a larger share, set ``--workers``."""


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
        workers, why = int(memory // WORKER_MEMORY_BYTES), f"{memory / 2**30:.1f} GiB of Ray memory / 1 GiB per worker"
    return max(workers, 1), why


class RayWorkerPool:
    """:class:`ExtractorWorker` Ray actors, fed at most two batches each.

    Starts a light local Ray (no dashboard, small object store; with ``--workers N`` its
    ``num_cpus`` is ``N x threads``, with ``auto`` Ray's own count of this machine's CPUs) unless
    ``config.address`` or ``RAY_ADDRESS`` names a cluster. ``--workers auto`` is sized by
    :func:`size_workers` from what the cluster reports, and ``announce`` gets one line saying so.
    (``ray.util.ActorPool.map`` would submit the whole input up front; this pool pulls the next
    batch only when one finishes, so the corpus streams.)
    """

    def __init__(self, config: BatchConfig, *, announce: Callable[[str], None] = lambda _: None
                 ) -> None:
        import ray

        self._ray = ray
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            init: dict[str, Any] = {"address": config.address, "include_dashboard": False,
                                    "logging_level": logging.ERROR, "log_to_driver": True}
            if config.address is None and not os.environ.get("RAY_ADDRESS"):
                # "local": always a new Ray of its own, never a cluster that another `ray start`
                # on this machine left in /tmp/ray/ray_current_cluster
                init["address"] = "local"
                init["object_store_memory"] = config.object_store_mb * 2**20
                if config.workers != "auto":
                    init["num_cpus"] = config.workers * config.threads_per_worker
            ray.init(**init)
        if config.workers == "auto":
            workers, why = size_workers(ray.cluster_resources(),
                                        threads_per_worker=config.threads_per_worker,
                                        gpus_per_worker=config.gpus_per_worker)
            announce(f"ptoie-batch: {workers} worker(s) x {config.threads_per_worker} thread(s) "
                     f"(--workers auto: {why})")
        else:
            workers = config.workers
        self.workers = workers
        self._check_resources(config, workers)
        # Ray restarts a dead actor (its process killed, its node lost) for as long as the job
        # runs; the pool, not Ray, retries the batches it was running (max_task_retries=0): Ray
        # would retry them on the same actor only, which waits forever when its node is gone,
        # and could not isolate a document that kills every worker it is sent to.
        actor_class = ray.remote(ExtractorWorker).options(
            num_cpus=config.threads_per_worker, num_gpus=config.gpus_per_worker, max_restarts=-1,
            max_task_retries=0)
        self._actors = [actor_class.remote(config.worker_model(), config.decoding) for _ in range(workers)]
        try:
            described = ray.get([actor.describe.remote() for actor in self._actors])
        except ray.exceptions.RayError as exc:
            self.close()
            lines = [line for line in str(exc).splitlines() if line.strip()]
            raise BatchUsageError(f"the extractor workers could not start: {lines[-1] if lines else exc}"
                                  ) from None
        self.model_id = described[0][0]
        self.nodes = sorted({node for _, node in described})
        """Ray node ids the actors run on."""
        self.retried_batches = 0

    def _check_resources(self, config: BatchConfig, workers: int) -> None:
        total = self._ray.cluster_resources()
        need = {"CPU": workers * config.threads_per_worker,
                "GPU": workers * config.gpus_per_worker}
        for resource, amount in need.items():
            if amount > total.get(resource, 0) + 1e-9:
                self.close()
                raise BatchUsageError(
                    f"{workers} workers need {amount:g} {resource} in all, the Ray cluster "
                    f"has {total.get(resource, 0):g}; lower --workers, --threads-per-worker or "
                    f"--gpus-per-worker")

    PER_ACTOR = 2
    """Batches in flight per actor: one decoding, one queued, so an actor never idles."""
    WAIT_FOR_WORKER_S = 600.0
    """With work left and no worker alive for this long, :meth:`map` raises WorkersLostError."""
    _PING_EVERY_S = 1.0

    def map(self, items: Iterable[tuple[K, list[DocumentTask]]]
            ) -> Iterator[tuple[K, BatchOutcome]]:
        """Outcomes of each batch, as batches finish. Pulls the next batch only when an actor has
        room, so the corpus streams. When an actor dies (Ray restarts it), its batches go to the
        front of the queue, for any live actor; the actor gets work again once it answers a
        ping. A death counts against the batch the actor was running (its oldest), not those queued
behind it. A batch on which workers died ``MAX_TRIES`` times, or whose extraction raised, is
        extracted again one document at a time; a document on which workers died ``MAX_TRIES``
        times is a ``worker_crashed`` failure, one whose extraction raised an
        ``extraction_failed`` one."""
        ray = self._ray
        source = iter(items)
        retry: list[_Unit] = []                       # units to send again, before new batches
        in_flight: dict[Any, tuple[int, int, _Unit]] = {}  # ref -> (actor, submission, unit)
        submitted = itertools.count()
        load = dict.fromkeys(range(len(self._actors)), 0)
        alive = set(load)                             # actors that answered since they died
        pings: dict[Any, int] = {}                    # describe() ref -> actor
        ping_due: dict[int, float] = {}               # actor -> when to ping it again
        blamed: set[int] = set()                      # submissions running when their actor died
        exhausted = False
        last_alive = time.monotonic()

        def next_unit() -> _Unit | None:
            nonlocal exhausted
            if retry:
                return retry.pop()
            if exhausted:
                return None
            item = next(source, None)
            if item is None:
                exhausted = True
                return None
            key, tasks = item
            return _Unit(_Batch(key, [None] * len(tasks), len(tasks)), 0, list(tasks))

        def settle(unit: _Unit, outcomes: BatchOutcome) -> _Batch | None:
            batch = unit.batch
            batch.outcomes[unit.first:unit.first + len(outcomes)] = outcomes
            batch.missing -= len(outcomes)
            return batch if batch.missing == 0 else None

        def split(unit: _Unit) -> None:
            retry.extend(reversed([_Unit(unit.batch, unit.first + i, [task])
                                   for i, task in enumerate(unit.tasks)]))

        while True:
            now = time.monotonic()
            for actor in [a for a, due in ping_due.items() if due <= now]:
                del ping_due[actor]
                pings[self._actors[actor].describe.remote()] = actor
            while True:
                free = [a for a in alive if load[a] < self.PER_ACTOR]
                if not free:
                    break
                unit = next_unit()
                if unit is None:
                    break
                actor = min(free, key=lambda a: (load[a], a))
                load[actor] += 1
                in_flight[self._actors[actor].__call__.remote(unit.tasks)] = (
                    actor, next(submitted), unit)
            if not in_flight and not retry and exhausted:
                return
            if not in_flight and not pings and not ping_due:
                raise WorkersLostError("every extractor worker is gone")  # pragma: no cover
            wait = max(min(ping_due.values(), default=now + 5.0) - now, 0.0)
            refs = [*in_flight, *pings]
            if refs:
                done, _ = ray.wait(refs, num_returns=1, timeout=min(wait, 5.0))
            else:  # every actor dead, waiting to ping them again
                done = []
                time.sleep(min(wait, 5.0))
            if alive or in_flight:
                last_alive = time.monotonic()
            elif time.monotonic() - last_alive > self.WAIT_FOR_WORKER_S:
                raise WorkersLostError(f"no extractor worker alive for "
                                       f"{self.WAIT_FOR_WORKER_S:g} s (its node lost, no room "
                                       f"to restart it elsewhere)")
            for ref in done:
                if ref in pings:
                    actor = pings.pop(ref)
                    try:
                        ray.get(ref)
                        alive.add(actor)
                    except ray.exceptions.RayError:
                        ping_due[actor] = time.monotonic() + self._PING_EVERY_S
                    continue
                actor, order, unit = in_flight.pop(ref)
                load[actor] -= 1
                try:
                    finished = settle(unit, ray.get(ref))
                except ray.exceptions.RayActorError as exc:  # the worker process or node died
                    if actor in alive:
                        # first news of this death: the actor runs its batches in submission
                        # order, so the oldest one it held was running (the suspect); the others
                        # were waiting and their failures, whenever they arrive, do not count
                        alive.discard(actor)
                        ping_due[actor] = time.monotonic()
                        blamed.add(min([order, *(o for a, o, _ in in_flight.values() if a == actor)]))
                    unit.deaths += order in blamed
                    blamed.discard(order)
                    if unit.deaths < MAX_TRIES:
                        self.retried_batches += 1
                        retry.append(unit)
                        continue
                    if len(unit.tasks) > 1:
                        split(unit)
                        continue
                    finished = settle(unit, [DocumentFailure(
                        unit.tasks[0].doc_id, "worker_crashed",
                        f"its worker died on each of {unit.deaths} tries ({type(exc).__name__}); "
                        f"skipped, rerun to retry it", unit.deaths)])
                except ray.exceptions.RayError as exc:  # the extractor raised
                    if len(unit.tasks) > 1:
                        split(unit)
                        continue
                    finished = settle(unit, _failed(unit.tasks, exc))
                if finished is not None:
                    yield finished.key, finished.outcomes  # type: ignore[misc]

    def close(self) -> None:
        for actor in getattr(self, "_actors", []):
            self._ray.kill(actor)
        self._actors = []
        if self._owns_ray and self._ray.is_initialized():
            self._ray.shutdown()
