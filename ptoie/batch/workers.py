"""Workers: batches of documents -> triple records, and the types every worker pool shares.

:class:`ExtractorWorker` is the callable worker class of the Ray batch-inference pattern: it loads
the model once in ``__init__`` and extracts one batch per ``__call__``. A :class:`WorkerPool` maps
batches to one outcome per document (:data:`BatchOutcome`): :class:`InProcessWorkerPool` calls one
worker in this process (tests); :class:`ptoie.batch.ray_pool.RayWorkerPool` runs them as Ray
actors.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import ray

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
        node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else "local"
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


def error_reason(exc: BaseException) -> str:
    """The last non-blank line of an error's message (a Ray error's ends with the cause)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else repr(exc)


def extraction_failed(tasks: list[DocumentTask], exc: BaseException) -> BatchOutcome:
    """An ``extraction_failed`` failure for each of ``tasks``, whose extraction raised ``exc``."""
    return [DocumentFailure(t.doc_id, "extraction_failed",
                            f"extraction failed ({error_reason(exc)}); rerun to retry it", 1)
            for t in tasks]


class InProcessWorkerPool:
    """One :class:`ExtractorWorker` called in this process: the job logic without Ray (tests).
    A batch that raises is extracted again one document at a time, as
    :class:`ptoie.batch.ray_pool.RayWorkerPool` does."""

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
                return extraction_failed(tasks, exc)
            return [outcome for task in tasks for outcome in self._call([task])]

    def map(self, items: Iterable[tuple[K, list[DocumentTask]]]
            ) -> Iterator[tuple[K, BatchOutcome]]:
        for key, tasks in items:
            yield key, self._call(tasks)

    def close(self) -> None:
        return None
