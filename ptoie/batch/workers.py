"""Workers: batches of documents -> triple records, on Ray actors (or in process, for tests).

:class:`ExtractorWorker` is the callable worker class of the Ray batch-inference pattern: it loads
the model once in ``__init__`` and extracts one batch per ``__call__``. :class:`RayWorkerPool`
runs ``workers`` of them as actors and feeds each at most two batches at a time, so the corpus
streams; :func:`size_workers` is the ``--workers auto`` rule.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from .config import BatchConfig, BatchUsageError
from .plan import DocumentTask

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


class ExtractorLike(Protocol):
    model_id: str

    def extract_batch(self, sentences: list[str]) -> list[Any]: ...


class ExtractorWorker:
    """Callable worker class (the Ray batch-inference pattern): loads the extractor once in
    ``__init__``, extracts one batch of documents per ``__call__``.

    ``extractor_factory`` replaces :class:`ptoie.Extractor` (tests inject a deterministic fake).
    """

    def __init__(self, extractor_kwargs: dict[str, Any],
                 extractor_factory: Callable[..., ExtractorLike] | None = None) -> None:
        if extractor_factory is None:
            from ..extractor import Extractor
            extractor_factory = Extractor
        self.extractor = extractor_factory(**extractor_kwargs)
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


class WorkerPool(Protocol):
    model_id: str
    workers: int
    nodes: list[str]

    def map(self, items: Iterable[tuple[K, list[DocumentTask]]]
            ) -> Iterator[tuple[K, list[DocumentResult] | Exception]]: ...

    def close(self) -> None: ...


class InProcessWorkerPool:
    """One :class:`ExtractorWorker` called in this process: the job logic without Ray (tests)."""

    def __init__(self, worker: ExtractorWorker) -> None:
        self.worker = worker
        self.model_id = worker.model_id
        self.workers = 1
        self.nodes = ["local"]

    def map(self, items: Iterable[tuple[K, list[DocumentTask]]]
            ) -> Iterator[tuple[K, list[DocumentResult] | Exception]]:
        for key, tasks in items:
            try:
                yield key, self.worker(tasks)
            except Exception as exc:  # noqa: BLE001 - reported per document, the job goes on
                yield key, exc

    def close(self) -> None:
        return None


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
        actor_class = ray.remote(ExtractorWorker).options(
            num_cpus=config.threads_per_worker, num_gpus=config.gpus_per_worker, max_restarts=1)
        self._actors = [actor_class.remote(config.extractor_kwargs()) for _ in range(workers)]
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
        self._max_in_flight = 2 * workers

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

    def map(self, items: Iterable[tuple[K, list[DocumentTask]]]
            ) -> Iterator[tuple[K, list[DocumentResult] | Exception]]:
        ray = self._ray
        load = {i: 0 for i in range(len(self._actors))}
        in_flight: dict[Any, tuple[int, K]] = {}

        def collect() -> tuple[K, list[DocumentResult] | Exception]:
            [ref], _ = ray.wait(list(in_flight), num_returns=1)
            actor_index, key = in_flight.pop(ref)
            load[actor_index] -= 1
            try:
                return key, ray.get(ref)
            except ray.exceptions.RayError as exc:
                return key, exc

        for key, tasks in items:
            while len(in_flight) >= self._max_in_flight:
                yield collect()
            actor_index = min(load, key=load.__getitem__)
            load[actor_index] += 1
            in_flight[self._actors[actor_index].__call__.remote(tasks)] = (actor_index, key)
        while in_flight:
            yield collect()

    def close(self) -> None:
        for actor in getattr(self, "_actors", []):
            self._ray.kill(actor)
        self._actors = []
        if self._owns_ray and self._ray.is_initialized():
            self._ray.shutdown()
