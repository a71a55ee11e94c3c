"""The job: plan -> workers -> store -> graph outputs, with errors and progress reported.

See :mod:`ptoie.batch` for the guarantees (streaming, deterministic batches, resume, lock).
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

from ..corpus import CorpusProblem
from ..kg import build_graph
from ..sinks import records_table
from .config import BatchConfig, BatchUsageError
from .plan import DocumentTask, PreparedDocument, group_batches, prepare_documents
from .report import BatchSummary, ErrorLog, Progress
from .store import ManifestEntry, OutputLock, ShardStore
from .workers import DocumentResult, RayWorkerPool, WorkerPool


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


def run_batch(config: BatchConfig, *,
              pool_factory: Callable[..., WorkerPool] | None = None) -> BatchSummary:
    """Run the job (see :mod:`ptoie.batch`). Raises :class:`BatchUsageError` for bad settings
    and when another job holds the output's lock.

    ``pool_factory(config, announce=...)`` builds the worker pool; default :class:`RayWorkerPool`.
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
    lock = OutputLock(config.parquet_path)
    lock.acquire()
    try:
        store = ShardStore(config.parquet_path)
        store.open(config.job_settings(), overwrite=config.overwrite, added=config.SETTINGS_ADDED)
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
            json.dumps(asdict(summary) | {"exit_code": summary.exit_code}, indent=2),
            encoding="utf-8")
    finally:
        lock.release()
    return summary


def _check_model_files(config: BatchConfig) -> None:
    """Fail fast, before Ray starts, on a missing or non-GGUF model or adapter."""
    from ..extractor import ModelLoadError, check_gguf
    from ..models import default_model, resolve_model_path

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
        for docs, results in pool.map(itertools.chain([first], work)):
            began = time.monotonic()
            _commit_batch(docs, results, store, errors, progress, summary)
            summary.commit_seconds += time.monotonic() - began
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
    """Build the graph outputs from the Parquet shards (the durable store), incrementally
    (``ptoie.kg``): what did not change is not rewritten."""
    outputs = config.graph_outputs
    report = build_graph(store.current_shards(), outputs, cache=store.directory / "_kg")
    summary.triples_total = report.rows
    summary.outputs = {"parquet": f"{config.parquet_path}/"} | {
        name: str(path) + ("/" if name == "store" else "")
        for name, path in outputs.named().items() if name not in report.skipped}
    summary.outputs["errors"] = str(config.errors_path)
    summary.counts = {"parquet": report.rows} | report.counts
    summary.skipped_outputs = report.skipped
