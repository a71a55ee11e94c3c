"""The job: plan -> workers -> store -> graph outputs, with errors and progress reported.

See :mod:`ptoie.batch` for the guarantees (streaming, deterministic batches, resume, lock).
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict

from ptoie.corpus import READ_TYPES, CorpusProblem
from ptoie.extract.extractor import ModelLoadError, model_files
from ptoie.graph.build import build_graph
from ptoie.files import records_table
from ptoie.batch.config import BatchConfig, BatchStoppedError, BatchUsageError
from ptoie.batch.plan import DocumentTask, PreparedDocument, group_batches, prepare_documents
from ptoie.batch.report import BatchSummary, ErrorLog, IgnoredFiles, Progress
from ptoie.batch.store import ManifestEntry, OutputLock, ShardStore
from ptoie.batch.ray_pool import RayWorkerPool, WorkersLostError
from ptoie.batch.workers import BatchOutcome, DocumentFailure, WorkerPool


def check_corpus(config: BatchConfig) -> None:
    """The door: raise :class:`BatchUsageError` (one line, before anything is written) when the
    corpus holds no document to extract. Reads only up to the first such document."""
    problems: list[CorpusProblem] = []
    ignored = IgnoredFiles()
    for doc in prepare_documents(config, problems.append, ignored.add):
        if doc.sentences:
            return
    where = ", ".join(map(str, config.inputs))
    why = []
    if problems:
        kinds = Counter(p.kind for p in problems)
        why.append(f"{len(problems)} skipped ({', '.join(f'{n} {k}' for k, n in kinds.items())}; "
                   f"first: {problems[0]})")
    if ignored.count:
        why.append(ignored.describe())
    if not why:
        why.append("no file of a type it reads")
    raise BatchUsageError(f"no document to extract in {where}: {'; '.join(why)}. ptoie-batch "
                          f"reads {READ_TYPES}")


def count_corpus(config: BatchConfig, *, is_done: Callable[[str, str], bool],
                 on_problem: Callable[[CorpusProblem], None]) -> BatchSummary:
    """A reading pass without extraction: document and sentence counts (``--dry-run``, and the
    totals of the progress bar), and the files of types not read."""
    summary = BatchSummary(dry_run=True)
    ignored = IgnoredFiles()
    for doc in prepare_documents(config, on_problem, ignored.add):
        summary.documents += 1
        summary.sentences_skipped += len(doc.too_long)
        if not doc.sentences:
            continue
        if is_done(doc.doc_id, doc.sha256):
            summary.documents_resumed += 1
        else:
            summary.documents_processed += 1
            summary.sentences += len(doc.sentences)
    summary.ignored = ignored.describe() if ignored.count else ""
    return summary


def _echo(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_batch(config: BatchConfig, *,
              pool_factory: Callable[..., WorkerPool] | None = None) -> BatchSummary:
    """Run the job (see :mod:`ptoie.batch`). Raises :class:`BatchUsageError` for bad settings or
    input and when another job holds the output's lock (nothing written), and
    :class:`BatchStoppedError` when it cannot write its outputs (a full disk) or loses every
    worker (finished documents kept).

    ``pool_factory(config, announce=...)`` builds the worker pool; default :class:`RayWorkerPool`.
    """
    config.validate()
    check_corpus(config)
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

    config = _with_model_files(config)
    lock = OutputLock(config.parquet_path)
    lock.acquire()
    try:
        store = ShardStore(config.parquet_path)
        store.open(config.job_settings(), overwrite=config.overwrite, added=config.SETTINGS_ADDED)
        totals = count_corpus(config, is_done=store.is_done, on_problem=lambda _: None)
        progress = Progress(total_sentences=totals.sentences,
                            total_documents=totals.documents_processed, mode=config.progress)
        errors = ErrorLog(config.errors_path, echo=progress.write)
        summary = BatchSummary(ignored=totals.ignored)
        try:
            _extract_all(config, store, pool_factory or RayWorkerPool, errors, progress, summary)
        except OSError as exc:
            raise _stopped(config, exc, "storing extracted triples") from None
        except WorkersLostError as exc:
            raise BatchStoppedError(f"stopped: {exc}; the documents finished so far are kept in "
                                    f"{config.parquet_path}/, rerun the same command to resume"
                                    ) from None
        finally:
            progress.close()
            errors.close()
        summary.documents_skipped = errors.skipped_inputs
        summary.sentences_skipped = errors.counts["sentence"]
        try:
            _write_outputs(config, store, summary)
            summary.seconds = time.monotonic() - start
            (store.directory / ShardStore.LAST_RUN).write_text(
                json.dumps(asdict(summary) | {"exit_code": summary.exit_code}, indent=2),
                encoding="utf-8")
        except OSError as exc:
            raise _stopped(config, exc, "writing the graph outputs") from None
    finally:
        lock.release()
    return summary


def _stopped(config: BatchConfig, exc: OSError, doing: str) -> BatchStoppedError:
    where = f" ({exc.filename})" if exc.filename else ""
    return BatchStoppedError(
        f"stopped {doing}: {exc.strerror or exc}{where}; the documents finished so far are kept "
        f"in {config.parquet_path}/, free space (or fix the error) and rerun the same command to "
        f"resume")


def _with_model_files(config: BatchConfig) -> BatchConfig:
    """``config`` with its model named (the shipped default when none is: named once here, it is
    recorded in the job settings and sent to every worker); fail fast, before Ray starts, on a
    missing or non-GGUF model or adapter."""
    names = ("--model", "--lora") if config.model.model_path is not None else ("model", "LoRA adapter")
    config = config.with_default_model()
    try:
        model_files(config.model, names=names)
    except ModelLoadError as exc:
        raise BatchUsageError(str(exc)) from None
    return config


def _extract_all(config: BatchConfig, store: ShardStore,
                 pool_factory: Callable[..., WorkerPool], errors: ErrorLog,
                 progress: Progress, summary: BatchSummary) -> None:
    """Extract every unfinished document; the worker pool (Ray, the models) starts only when
    there is a first batch to extract."""
    def planned() -> Iterator[tuple[list[PreparedDocument], list[DocumentTask]]]:
        for batch in group_batches(_record_prepared(config, errors, summary), config.batch_sentences):
            todo = [doc for doc in batch if not store.is_done(doc.doc_id, doc.sha256)]
            summary.documents_resumed += len(batch) - len(todo)
            if todo:
                yield todo, [doc.task() for doc in todo]

    work = planned()
    first = next(work, None)
    if first is None:
        return
    pool = pool_factory(config, announce=progress.write)
    summary.workers, summary.worker_nodes = pool.workers, len(pool.nodes)
    try:
        for docs, outcomes in pool.map(itertools.chain([first], work)):
            began = time.monotonic()
            _commit_batch(docs, outcomes, store, errors, progress, summary)
            summary.commit_seconds += time.monotonic() - began
    finally:
        summary.batch_retries = pool.retried_batches
        pool.close()


def _commit_batch(docs: list[PreparedDocument], outcomes: BatchOutcome, store: ShardStore,
                  errors: ErrorLog, progress: Progress, summary: BatchSummary) -> None:
    """Store the extracted documents of one finished batch (shard + manifest); record the
    failed ones."""
    entries, records = [], []
    for doc, outcome in zip(docs, outcomes, strict=True):
        if isinstance(outcome, DocumentFailure):
            errors.record(source=doc.source, doc_id=doc.doc_id, kind=outcome.kind,
                          skipped="document", message=outcome.message,
                          tries=outcome.tries if outcome.kind == "worker_crashed" else None)
            continue
        records += outcome.records
        entries.append(ManifestEntry(
            doc_id=doc.doc_id, source=doc.source, sha256=doc.sha256, shard=None,
            sentences=outcome.n_sentences, sentences_too_long=len(doc.too_long),
            triples=len(outcome.records), rejected_lines=outcome.rejected_lines,
            outputs_sha256=outcome.outputs_sha256))
    if not entries:
        return
    store.commit(records_table(records), entries)
    n_sentences = sum(e.sentences for e in entries)
    summary.documents_processed += len(entries)
    summary.sentences += n_sentences
    summary.triples += len(records)
    progress.update(documents=len(entries), sentences=n_sentences, triples=len(records))


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
    """Build the graph outputs from the Parquet shards (the durable store), incrementally
    (``ptoie.graph.build``): what did not change is not rewritten."""
    outputs = config.graph_outputs
    report = build_graph(store.current_shards(), outputs, cache=store.directory / "_kg")
    summary.triples_total = report.rows
    summary.outputs = {"parquet": f"{config.parquet_path}/"} | {
        name: str(path) + ("/" if name == "store" else "")
        for name, path in outputs.named().items() if name not in report.skipped}
    summary.outputs["errors"] = str(config.errors_path)
    summary.counts = {"parquet": report.rows} | report.counts
    summary.skipped_outputs = report.skipped
