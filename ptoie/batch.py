"""The batch job: a corpus -> triples on Ray workers -> Parquet shards -> RDF + NetworkX graphs.

Flow (one way)::

    read_corpus -> split_sentences -> deterministic batches -> ExtractorWorker (Ray actors)
      -> ShardStore.commit (Parquet shard + manifest line) -> KnowledgeGraph (RDF, GraphML, JSON)

* **Streaming.** The driver reads documents lazily and keeps at most ``2 x workers`` batches in
  flight, so memory does not grow with the corpus (it holds one small manifest entry per
  document for resume, and the final graphs, which are the size of the knowledge graph).
* **Deterministic batches.** Batch boundaries depend only on the corpus order and
  ``batch_sentences``; a resumed run decodes exactly the batches an uninterrupted run decodes, so
  its outputs are identical even with continuous batching (``n_parallel > 1``), whose output
  depends on which sentences share a decode.
* **Durable store and resume.** Each batch becomes one Parquet shard written atomically, then one
  manifest line per document is appended and fsync'ed. A document is finished iff the manifest
  says so; a shard without a manifest line (a kill between the two steps) is an orphan and is
  deleted at the next start. Rerunning the same command skips finished documents (same id and
  content hash). The RDF and graph files are rebuilt from the shards at the end of every run.
* **Bad input never kills the job**: each problem becomes one line on stderr and one JSON record
  in the errors file; the exit status is 3 when documents were skipped.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TextIO, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .corpus import CorpusOptions, CorpusProblem, Document, read_corpus
from .schema import triple_schema
from .sentences import LongSentences, split_sentences
from .sinks import KnowledgeGraph, fsync_dir, rdf_format, records_table, write_parquet_shard

if TYPE_CHECKING:
    from .merge import MergedQuant

EXIT_OK = 0
"""Every document was processed."""
EXIT_USAGE = 2
"""Bad flags or settings (nothing processed)."""
EXIT_SKIPPED = 3
"""The job completed, but some documents (or files) were skipped; see the errors file."""

ProgressMode = Literal["auto", "always", "never"]
ErrorScope = Literal["file", "document", "sentence"]


class BatchUsageError(ValueError):
    """A configuration the job cannot run with; the message says what to change."""


# -- configuration ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class BatchConfig:
    """Everything ``ptoie-batch`` needs; the CLI only fills this in."""

    # input
    inputs: tuple[Path, ...]
    """Files and directories (walked recursively): .txt, .jsonl, .parquet, each optionally .gz."""
    text_field: str = "text"
    """JSONL key / Parquet column with the document text."""
    id_field: str = "id"
    """JSONL key / Parquet column with the document id; path[:line] ids where it is missing."""
    max_line_bytes: int = 500_000
    """Lines longer than this skip their document (a .txt file, a JSONL record)."""
    max_document_bytes: int = 20_000_000
    """.txt documents larger than this are skipped."""
    max_sentence_chars: int = 600
    """Sentences longer than this are handled per ``long_sentences``."""
    long_sentences: LongSentences = "split"
    """"split": cut at ; then : then , (pieces still too long are skipped and recorded);
    "skip": skip and record the whole sentence."""
    limit: int | None = None
    """Process only the first N documents of the corpus (finished ones included)."""

    # outputs
    out: Path
    """RDF output: .ttl (Turtle) or .nt (N-Triples). Other outputs default to its siblings."""
    parquet_dir: Path | None = None
    """The Parquet dataset (shards + manifest); default ``<out stem>.parquet/``."""
    graphml: Path | None = None
    """NetworkX GraphML; default ``<out stem>.graphml``."""
    node_link: Path | None = None
    """NetworkX node-link JSON; default ``<out stem>.json``."""
    errors: Path | None = None
    """Errors JSONL of this run; default ``<out stem>.errors.jsonl``."""
    overwrite: bool = False
    """Discard a previous run's shards and manifest instead of resuming."""

    # Ray
    address: str | None = None
    """Ray cluster address (``ray.init(address=...)``); None: RAY_ADDRESS or a local Ray."""
    workers: int = 1
    """Extractor actors, each with its own model copy."""
    threads_per_worker: int = 1
    """CPU threads per actor (also its Ray ``num_cpus``). A 135M model gains little from more
    threads and loses a lot when cores are shared (llama.cpp threads spin at barriers): scale with
    ``workers`` first."""
    gpus_per_worker: float = 0.0
    """GPUs per actor, fractional allowed (0.25: four actors share a GPU); > 0 offloads all layers."""
    batch_sentences: int = 32
    """Sentences per batch (whole documents are kept together): the unit of work and of a shard."""
    object_store_mb: int = 128
    """Object store of a local Ray (batches are small; keeps startup light)."""

    # model and decoding (see ptoie.Extractor)
    model: str | None = None
    """GGUF model path or ``embedded:smollm2``; None: the shipped default model."""
    lora: str | None = None
    lora_merge: MergedQuant | None = "q4_0"
    """Merge ``lora`` into ``model`` once (cached), in this format; None: apply it at run time."""
    n_ctx: int = 2048
    """Context tokens per decoded sentence: the 63-token prompt, a sentence of at most
    ``max_sentence_chars`` (600 characters: about 210 tokens of Portuguese prose, 600 at worst)
    and ``max_tokens``; a sentence that does not fit gets no answer. (The KV cache holds
    ``max(n_ctx, 320 x n_parallel)`` cells shared by admission, see ``ptoie._llama``.)"""
    n_parallel: int = 8
    temperature: float = 0.2
    top_p: float = 0.95
    min_p: float = 0.05
    top_k: int = 40
    max_tokens: int = 160
    seed: int = 0
    grammar: bool = True

    # run
    dry_run: bool = False
    """Count documents and sentences only: no Ray, no model, nothing written but the errors file."""
    progress: ProgressMode = "auto"
    """Progress bar on stderr: "auto" when stderr is a terminal."""

    # -- derived ---------------------------------------------------------------------------
    def _sibling(self, suffix: str) -> Path:
        return self.out.with_name(self.out.stem + suffix)

    @property
    def parquet_path(self) -> Path:
        return self.parquet_dir or self._sibling(".parquet")

    @property
    def graphml_path(self) -> Path:
        return self.graphml or self._sibling(".graphml")

    @property
    def node_link_path(self) -> Path:
        return self.node_link or self._sibling(".json")

    @property
    def errors_path(self) -> Path:
        return self.errors or self._sibling(".errors.jsonl")

    def corpus_options(self) -> CorpusOptions:
        return CorpusOptions(text_field=self.text_field, id_field=self.id_field,
                             max_line_bytes=self.max_line_bytes,
                             max_document_bytes=self.max_document_bytes)

    def extractor_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :class:`ptoie.Extractor` for one worker."""
        return {"model_path": self.model, "lora_path": self.lora, "lora_merge": self.lora_merge,
                "n_ctx": self.n_ctx,
                "n_threads": self.threads_per_worker, "n_gpu_layers": -1 if self.gpus_per_worker > 0 else 0,
                "n_parallel": self.n_parallel, "temperature": self.temperature,
                "top_p": self.top_p, "min_p": self.min_p, "top_k": self.top_k,
                "max_tokens": self.max_tokens, "seed": self.seed, "grammar": self.grammar}

    def job_settings(self) -> dict[str, Any]:
        """Settings that change what is extracted: a resumed run must use the same ones."""
        kwargs = self.extractor_kwargs()
        for hardware in ("n_threads", "n_gpu_layers"):
            kwargs.pop(hardware)
        return {**kwargs, "text_field": self.text_field, "id_field": self.id_field,
                "max_sentence_chars": self.max_sentence_chars,
                "long_sentences": self.long_sentences, "batch_sentences": self.batch_sentences,
                "schema_version": triple_schema().metadata[b"version"].decode()}

    def validate(self) -> None:
        """Raise :class:`BatchUsageError` naming the flag to fix."""
        checks = [
            (bool(self.inputs), "give at least one input file or directory"),
            (self.workers >= 1, f"--workers must be >= 1 (got {self.workers})"),
            (self.threads_per_worker >= 1,
             f"--threads-per-worker must be >= 1 (got {self.threads_per_worker})"),
            (self.gpus_per_worker >= 0, f"--gpus-per-worker must be >= 0 (got {self.gpus_per_worker})"),
            (self.batch_sentences >= 1, f"--batch-sentences must be >= 1 (got {self.batch_sentences})"),
            (self.n_parallel >= 1, f"--n-parallel must be >= 1 (got {self.n_parallel})"),
            (self.max_tokens >= 1, f"--max-tokens must be >= 1 (got {self.max_tokens})"),
            (self.max_sentence_chars >= 20,
             f"--max-sentence-chars must be >= 20 (got {self.max_sentence_chars})"),
            (self.limit is None or self.limit >= 1, f"--limit must be >= 1 (got {self.limit})"),
            (self.object_store_mb >= 80, f"--object-store-mb must be >= 80 (Ray's minimum is 75 MB)"),
        ]
        for ok, message in checks:
            if not ok:
                raise BatchUsageError(message)
        try:
            rdf_format(self.out)
        except ValueError as exc:
            raise BatchUsageError(f"--out {exc}") from None
        if self.parquet_path.exists() and not self.parquet_path.is_dir():
            raise BatchUsageError(f"--parquet {self.parquet_path} exists and is not a directory")


# -- work units -------------------------------------------------------------------------------
@dataclass(slots=True)
class PreparedDocument:
    """A document split into sentences, ready to be batched."""

    doc_id: str
    source: str
    sha256: str
    sentences: list[str]
    too_long: list[str]


@dataclass(frozen=True, slots=True)
class DocumentTask:
    """What a worker gets for one document."""

    doc_id: str
    sentences: list[str]


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
            from .extractor import Extractor
            extractor_factory = Extractor
        self.extractor = extractor_factory(**extractor_kwargs)
        self.model_id: str = self.extractor.model_id

    def describe(self) -> str:
        return self.model_id

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
                        extraction_index=index, model_id=self.model_id))
            out.append(DocumentResult(task.doc_id, records, len(task.sentences), rejected, tokens,
                                      digest.hexdigest()))
        return out


# -- worker pools -----------------------------------------------------------------------------
K = TypeVar("K")


class WorkerPool(Protocol):
    model_id: str

    def map(self, items: Iterable[tuple[K, list[DocumentTask]]]
            ) -> Iterator[tuple[K, list[DocumentResult] | Exception]]: ...

    def close(self) -> None: ...


class InProcessWorkerPool:
    """One :class:`ExtractorWorker` called in this process: the job logic without Ray (tests)."""

    def __init__(self, worker: ExtractorWorker) -> None:
        self.worker = worker
        self.model_id = worker.model_id

    def map(self, items: Iterable[tuple[K, list[DocumentTask]]]
            ) -> Iterator[tuple[K, list[DocumentResult] | Exception]]:
        for key, tasks in items:
            try:
                yield key, self.worker(tasks)
            except Exception as exc:  # noqa: BLE001 - reported per document, the job goes on
                yield key, exc

    def close(self) -> None:
        return None


class RayWorkerPool:
    """``config.workers`` :class:`ExtractorWorker` Ray actors, fed at most two batches each.

    Starts a light local Ray (no dashboard, small object store, ``num_cpus = workers x threads``)
    unless ``config.address`` or ``RAY_ADDRESS`` names a cluster. (``ray.util.ActorPool.map``
    would submit the whole input up front; this pool pulls the next batch only when one finishes,
    so the corpus streams.)
    """

    def __init__(self, config: BatchConfig) -> None:
        import ray

        self._ray = ray
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            init: dict[str, Any] = {"address": config.address, "include_dashboard": False,
                                    "logging_level": logging.ERROR, "log_to_driver": True}
            if config.address is None and not os.environ.get("RAY_ADDRESS"):
                init.update(num_cpus=config.workers * config.threads_per_worker,
                            object_store_memory=config.object_store_mb * 2**20)
            ray.init(**init)
        self._check_resources(config)
        actor_class = ray.remote(ExtractorWorker).options(
            num_cpus=config.threads_per_worker, num_gpus=config.gpus_per_worker, max_restarts=1)
        self._actors = [actor_class.remote(config.extractor_kwargs())
                        for _ in range(config.workers)]
        try:
            model_ids = ray.get([actor.describe.remote() for actor in self._actors])
        except ray.exceptions.RayError as exc:
            self.close()
            lines = [line for line in str(exc).splitlines() if line.strip()]
            raise BatchUsageError(f"the extractor workers could not start: {lines[-1] if lines else exc}"
                                  ) from None
        self.model_id = model_ids[0]
        self._max_in_flight = 2 * config.workers

    def _check_resources(self, config: BatchConfig) -> None:
        total = self._ray.cluster_resources()
        need = {"CPU": config.workers * config.threads_per_worker,
                "GPU": config.workers * config.gpus_per_worker}
        for resource, amount in need.items():
            if amount > total.get(resource, 0) + 1e-9:
                self.close()
                raise BatchUsageError(
                    f"{config.workers} workers need {amount:g} {resource} in all, the Ray cluster "
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


# -- the durable store ------------------------------------------------------------------------
@dataclass(slots=True)
class ManifestEntry:
    """One finished document (a line of ``_manifest.jsonl``)."""

    doc_id: str
    source: str
    sha256: str
    shard: str | None
    """Parquet shard holding its triples; None when it has none."""
    sentences: int
    sentences_too_long: int
    triples: int
    rejected_lines: int
    outputs_sha256: str


class ShardStore:
    """The Parquet dataset folder: ``part-*.parquet`` shards, ``_manifest.jsonl``, ``_job.json``.

    Readers of the dataset (``pyarrow.dataset.dataset(folder)``) skip the ``_``-prefixed files.
    """

    MANIFEST = "_manifest.jsonl"
    SETTINGS = "_job.json"
    LAST_RUN = "_last_run.json"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.entries: dict[str, ManifestEntry] = {}
        self.removed_orphans: list[str] = []
        self._run = f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}"  # unique per run
        self._seq = 0

    @property
    def manifest_path(self) -> Path:
        return self.directory / self.MANIFEST

    def open(self, settings: dict[str, Any], *, overwrite: bool) -> None:
        """Create or resume the store; refuse to resume with different extraction settings."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if overwrite:
            for path in self._own_files():
                path.unlink()
        settings_path = self.directory / self.SETTINGS
        if settings_path.exists():
            previous = json.loads(settings_path.read_text(encoding="utf-8"))
            changed = {k: (previous.get(k), v) for k, v in settings.items() if previous.get(k) != v}
            if changed:
                diff = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
                raise BatchUsageError(
                    f"{self.directory} holds a run with other extraction settings ({diff}); "
                    f"rerun with the same settings, use another --out, or pass --overwrite")
        else:
            tmp = settings_path.with_name(settings_path.name + ".tmp")
            tmp.write_text(json.dumps(settings, indent=2, sort_keys=True), encoding="utf-8")
            os.replace(tmp, settings_path)
        self._load_manifest()
        self._remove_orphans()

    def _own_files(self) -> list[Path]:
        names = (self.MANIFEST, self.SETTINGS, self.LAST_RUN)
        return [p for p in self.directory.iterdir() if p.is_file() and (
            p.name in names or p.name.startswith("part-") or p.name.startswith(".part-"))]

    def _load_manifest(self) -> None:
        path = self.manifest_path
        if not path.exists():
            return
        data = path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) != len(data):  # a kill during the append: drop the partial line
            with open(path, "rb+") as fh:
                fh.truncate(len(complete))
                os.fsync(fh.fileno())
        for number, line in enumerate(complete.decode("utf-8").splitlines(), start=1):
            try:
                entry = ManifestEntry(**json.loads(line))
            except (json.JSONDecodeError, TypeError) as exc:
                raise BatchUsageError(f"{path}:{number}: corrupt manifest line ({exc}); "
                                      f"pass --overwrite to start over") from None
            self.entries[entry.doc_id] = entry  # a later line supersedes (changed document)

    def _remove_orphans(self) -> None:
        referenced = {e.shard for e in self.entries.values() if e.shard}
        for path in sorted(self.directory.iterdir()):
            orphan_shard = path.name.startswith("part-") and path.name not in referenced
            if orphan_shard or path.name.startswith(".part-"):
                path.unlink()
                self.removed_orphans.append(path.name)

    def is_done(self, doc_id: str, sha256: str) -> bool:
        entry = self.entries.get(doc_id)
        return entry is not None and entry.sha256 == sha256

    def commit(self, table: pa.Table, entries: list[ManifestEntry]) -> str | None:
        """Write the batch's shard, then its manifest lines (the commit point), durably."""
        shard = None
        if table.num_rows:
            self._seq += 1
            shard = f"part-{self._run}-{self._seq:06d}.parquet"
            write_parquet_shard(table, self.directory, shard)
        lines = "".join(json.dumps(asdict(e) | {"shard": shard}, ensure_ascii=False) + "\n"
                        for e in entries)
        fd = os.open(self.manifest_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, lines.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_dir(self.directory)
        for entry in entries:
            entry.shard = shard
            self.entries[entry.doc_id] = entry
        return shard

    def shards(self) -> dict[str, set[str]]:
        """Shard name -> the documents whose current triples it holds."""
        by_shard: dict[str, set[str]] = {}
        for entry in self.entries.values():
            if entry.shard:
                by_shard.setdefault(entry.shard, set()).add(entry.doc_id)
        return by_shard

    def tables(self) -> Iterator[pa.Table]:
        """The current triples, shard by shard. Rows of documents re-extracted later (their
        content changed) are pruned from the older shard first, atomically."""
        current = self.shards()
        for path in sorted(self.directory.glob("part-*.parquet")):
            if path.name not in current:
                path.unlink()  # every document it held was re-extracted into a newer shard
                continue
            table = pq.read_table(path, schema=triple_schema())
            keep = pc.is_in(table.column("doc_id"), value_set=pa.array(sorted(current[path.name])))
            if not pc.all(keep).as_py():
                table = table.filter(keep)
                write_parquet_shard(table, self.directory, path.name)
            yield table

    def n_triples(self) -> int:
        return sum(e.triples for e in self.entries.values())


# -- errors and progress ----------------------------------------------------------------------
class ErrorLog:
    """One line on stderr and one JSON record in the errors file per problem."""

    def __init__(self, path: Path | None, *, echo: Callable[[str], None]) -> None:
        self.path = path
        self._echo = echo
        self._fh: TextIO | None = None
        self.counts: dict[ErrorScope, int] = {"file": 0, "document": 0, "sentence": 0}
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(path, "w", encoding="utf-8")

    def record(self, *, source: str, kind: str, message: str, skipped: ErrorScope,
               doc_id: str | None = None, text: str | None = None) -> None:
        self.counts[skipped] += 1
        self._echo(f"ptoie-batch: skipped {skipped} {source}: {message}")
        if self._fh is not None:
            record = {"source": source, "doc_id": doc_id, "kind": kind, "skipped": skipped,
                      "message": message}
            if text is not None:
                record["text"] = text[:200] + ("…" if len(text) > 200 else "")
            self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._fh.flush()

    def problem(self, problem: CorpusProblem) -> None:
        self.record(source=problem.source, kind=problem.kind, message=problem.message,
                    skipped=problem.scope)

    @property
    def skipped_inputs(self) -> int:
        return self.counts["file"] + self.counts["document"]

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


class Progress:
    """tqdm bar over sentences, with documents and triples/s in the postfix."""

    def __init__(self, *, total_sentences: int, total_documents: int, mode: ProgressMode) -> None:
        from tqdm import tqdm

        enabled = mode == "always" or (mode == "auto" and sys.stderr.isatty())
        self.bar = tqdm(total=total_sentences, unit="sent", desc="ptoie-batch", file=sys.stderr,
                        disable=not enabled, dynamic_ncols=True, smoothing=0.1)
        self.total_documents = total_documents
        self.documents = self.triples = 0
        self._start = time.monotonic()

    def write(self, line: str) -> None:
        self.bar.write(line, file=sys.stderr)

    def update(self, *, documents: int, sentences: int, triples: int) -> None:
        self.documents += documents
        self.triples += triples
        rate = self.triples / max(time.monotonic() - self._start, 1e-9)
        self.bar.set_postfix_str(f"docs {self.documents}/{self.total_documents}, "
                                 f"triples {self.triples} ({rate:.1f}/s)", refresh=False)
        self.bar.update(sentences)

    def close(self) -> None:
        self.bar.close()


# -- corpus -> documents -> batches -----------------------------------------------------------
def prepare_documents(config: BatchConfig, on_problem: Callable[[CorpusProblem], None]
                      ) -> Iterator[PreparedDocument]:
    """The corpus' documents (up to ``config.limit``), split into sentences; problems go to
    ``on_problem``: bad input, duplicate ids, documents left without a sentence."""
    seen: set[str] = set()
    for item in read_corpus(config.inputs, config.corpus_options()):
        if isinstance(item, CorpusProblem):
            on_problem(item)
            continue
        if config.limit is not None and len(seen) >= config.limit:
            return
        if item.doc_id in seen:
            on_problem(CorpusProblem(item.source, "bad_record",
                                     f"duplicate document id {item.doc_id!r}; ids must be unique "
                                     f"(fix the {config.id_field!r} field)"))
            continue
        seen.add(item.doc_id)
        yield _prepare(item, config)


def _prepare(doc: Document, config: BatchConfig) -> PreparedDocument:
    split = split_sentences(doc.text, max_chars=config.max_sentence_chars,
                            long_sentences=config.long_sentences)
    return PreparedDocument(doc_id=doc.doc_id, source=doc.source,
                            sha256=hashlib.sha256(doc.text.encode("utf-8")).hexdigest(),
                            sentences=split.sentences, too_long=split.too_long)


def group_batches(documents: Iterable[PreparedDocument], batch_sentences: int
                  ) -> Iterator[list[PreparedDocument]]:
    """Consecutive documents, closed into a batch once it holds ``batch_sentences`` sentences:
    a function of the corpus order only (see the module doc)."""
    batch: list[PreparedDocument] = []
    n_sentences = 0
    for doc in documents:
        if not doc.sentences:
            continue
        batch.append(doc)
        n_sentences += len(doc.sentences)
        if n_sentences >= batch_sentences:
            yield batch
            batch, n_sentences = [], 0
    if batch:
        yield batch


# -- the job ----------------------------------------------------------------------------------
@dataclass(slots=True)
class BatchSummary:
    """What a run did; ``exit_code`` is the process status."""

    documents: int = 0
    """Documents of the corpus seen (finished before included)."""
    documents_resumed: int = 0
    """Already finished by an earlier run, skipped."""
    documents_processed: int = 0
    documents_skipped: int = 0
    """Documents or files skipped for bad input or failed extraction (see the errors file)."""
    sentences: int = 0
    """Sentences extracted in this run (planned, in a dry run)."""
    sentences_skipped: int = 0
    triples: int = 0
    """Triples extracted in this run."""
    triples_total: int = 0
    """Triples in the knowledge graph (all runs)."""
    seconds: float = 0.0
    dry_run: bool = False
    outputs: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    """Triples found in each written output (they must agree)."""

    @property
    def exit_code(self) -> int:
        return EXIT_SKIPPED if self.documents_skipped else EXIT_OK

    @property
    def sentences_per_second(self) -> float:
        return self.sentences / self.seconds if self.seconds > 0 else 0.0

    def render(self) -> str:
        head = "dry run (no extraction)" if self.dry_run else f"done in {self.seconds:.1f} s"
        lines = [
            f"ptoie-batch: {head}",
            f"  documents  {self.documents} in corpus: {self.documents_processed} "
            f"{'to process' if self.dry_run else 'processed'}, {self.documents_resumed} finished "
            f"earlier, {self.documents_skipped} skipped",
            f"  sentences  {self.sentences}"
            + ("" if self.dry_run else f" ({self.sentences_per_second:.2f}/s)")
            + f", {self.sentences_skipped} too long skipped",
        ]
        if not self.dry_run:
            lines.append(f"  triples    {self.triples} this run, {self.triples_total} in the graph")
        for name, path in self.outputs.items():
            count = f" ({self.counts[name]} triples)" if name in self.counts else ""
            lines.append(f"  {name:<10} {path}{count}")
        return "\n".join(lines)


def count_corpus(config: BatchConfig, *, is_done: Callable[[str, str], bool],
                 on_problem: Callable[[CorpusProblem], None]) -> BatchSummary:
    """A reading pass without extraction: document and sentence counts (``--dry-run``, and the
    totals of the progress bar)."""
    summary = BatchSummary(dry_run=True)
    for doc in prepare_documents(config, on_problem):
        summary.documents += 1
        summary.sentences_skipped += len(doc.too_long)
        if not doc.sentences:
            continue
        if is_done(doc.doc_id, doc.sha256):
            summary.documents_resumed += 1
        else:
            summary.documents_processed += 1
            summary.sentences += len(doc.sentences)
    return summary


def _echo(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_batch(config: BatchConfig, *, pool_factory: Callable[[BatchConfig], WorkerPool] | None = None
              ) -> BatchSummary:
    """Run the job (see the module doc). Raises :class:`BatchUsageError` for bad settings.

    ``pool_factory`` builds the worker pool; default :class:`RayWorkerPool`.
    """
    config.validate()
    start = time.monotonic()
    if config.dry_run:
        errors = ErrorLog(config.errors_path, echo=_echo)
        try:
            summary = count_corpus(config, is_done=lambda *_: False, on_problem=errors.problem)
        finally:
            errors.close()
        summary.documents_skipped = errors.skipped_inputs
        summary.outputs = {"errors": str(config.errors_path)}
        summary.seconds = time.monotonic() - start
        return summary

    _check_model_files(config)
    store = ShardStore(config.parquet_path)
    store.open(config.job_settings(), overwrite=config.overwrite)
    totals = count_corpus(config, is_done=store.is_done, on_problem=lambda _: None)
    progress = Progress(total_sentences=totals.sentences,
                        total_documents=totals.documents_processed, mode=config.progress)
    errors = ErrorLog(config.errors_path, echo=progress.write)
    summary = BatchSummary()
    try:
        _extract_all(config, store, pool_factory or RayWorkerPool, errors, progress, summary)
    finally:
        progress.close()
        errors.close()
    summary.documents_skipped = errors.skipped_inputs
    summary.sentences_skipped = errors.counts["sentence"]
    _write_outputs(config, store, summary)
    summary.seconds = time.monotonic() - start
    (store.directory / ShardStore.LAST_RUN).write_text(
        json.dumps(asdict(summary) | {"exit_code": summary.exit_code}, indent=2), encoding="utf-8")
    return summary


def _check_model_files(config: BatchConfig) -> None:
    """Fail fast, before Ray starts, on a missing or non-GGUF model or adapter."""
    from .extractor import ModelLoadError, check_gguf
    from .models import default_model, resolve_model_path

    if config.model is None:
        spec = default_model()
        files = [(spec.model_path, "model"), (spec.lora_path, "LoRA adapter")]
    else:
        files = [(resolve_model_path(config.model), "--model"),
                 (Path(config.lora).expanduser() if config.lora else None, "--lora")]
    for path, what in files:
        if path is not None:
            try:
                check_gguf(Path(path), what)
            except ModelLoadError as exc:
                raise BatchUsageError(str(exc)) from None


def _extract_all(config: BatchConfig, store: ShardStore,
                 pool_factory: Callable[[BatchConfig], WorkerPool], errors: ErrorLog,
                 progress: Progress, summary: BatchSummary) -> None:
    """Extract every unfinished document; the worker pool (Ray, the models) starts only when
    there is a first batch to extract."""
    def planned() -> Iterator[tuple[list[PreparedDocument], list[DocumentTask]]]:
        for batch in group_batches(_record_prepared(config, errors, summary), config.batch_sentences):
            todo = [doc for doc in batch if not store.is_done(doc.doc_id, doc.sha256)]
            summary.documents_resumed += len(batch) - len(todo)
            if todo:
                yield todo, [DocumentTask(doc.doc_id, doc.sentences) for doc in todo]

    work = planned()
    first = next(work, None)
    if first is None:
        return
    pool = pool_factory(config)
    try:
        for docs, results in pool.map(itertools.chain([first], work)):
            _commit_batch(docs, results, store, errors, progress, summary)
    finally:
        pool.close()


def _commit_batch(docs: list[PreparedDocument], results: list[DocumentResult] | Exception,
                  store: ShardStore, errors: ErrorLog, progress: Progress,
                  summary: BatchSummary) -> None:
    """Store one finished batch (shard + manifest), or record its documents as failed."""
    if isinstance(results, Exception):
        reason = str(results).strip().splitlines()[-1] if str(results).strip() else repr(results)
        for doc in docs:
            errors.record(source=doc.source, doc_id=doc.doc_id, kind="extraction_failed",
                          skipped="document",
                          message=f"extraction failed ({reason}); rerun to retry it")
        return
    entries, records = [], []
    for doc, result in zip(docs, results, strict=True):
        records += result.records
        entries.append(ManifestEntry(
            doc_id=doc.doc_id, source=doc.source, sha256=doc.sha256, shard=None,
            sentences=result.n_sentences, sentences_too_long=len(doc.too_long),
            triples=len(result.records), rejected_lines=result.rejected_lines,
            outputs_sha256=result.outputs_sha256))
    store.commit(records_table(records), entries)
    n_sentences = sum(e.sentences for e in entries)
    summary.documents_processed += len(docs)
    summary.sentences += n_sentences
    summary.triples += len(records)
    progress.update(documents=len(docs), sentences=n_sentences, triples=len(records))


def _record_prepared(config: BatchConfig, errors: ErrorLog, summary: BatchSummary
                     ) -> Iterator[PreparedDocument]:
    """Prepared documents, with their problems and over-long sentences recorded."""
    for doc in prepare_documents(config, errors.problem):
        summary.documents += 1
        for sentence in doc.too_long:
            errors.record(source=doc.source, doc_id=doc.doc_id, kind="sentence_too_long",
                          skipped="sentence", text=sentence,
                          message=f"sentence of {len(sentence):,} characters (limit "
                                  f"{config.max_sentence_chars}); raise --max-sentence-chars")
        if not doc.sentences:
            errors.record(source=doc.source, doc_id=doc.doc_id, kind="no_sentences",
                          skipped="document", message="no sentence left to extract from")
            continue
        yield doc


def _write_outputs(config: BatchConfig, store: ShardStore, summary: BatchSummary) -> None:
    """Build the RDF, GraphML and node-link files from the Parquet shards (the durable store)."""
    graph = KnowledgeGraph()
    rows = 0
    for table in store.tables():
        rows += table.num_rows
        graph.add_table(table)
    graph.write_rdf(config.out)
    graph.write_graphml(config.graphml_path)
    graph.write_node_link(config.node_link_path)
    summary.triples_total = rows
    summary.outputs = {"rdf": str(config.out), "parquet": f"{config.parquet_path}/",
                       "graphml": str(config.graphml_path), "node-link": str(config.node_link_path),
                       "errors": str(config.errors_path)}
    summary.counts = {"rdf": graph.n_statements(), "parquet": rows,
                      "graphml": graph.graph.number_of_edges(),
                      "node-link": graph.graph.number_of_edges()}
