"""The batch job: a corpus -> triples on Ray workers -> Parquet shards -> the knowledge graph.

Flow (one way), a module per stage::

    config.BatchConfig
      -> plan     read_corpus -> split_sentences -> deterministic batches of documents
      -> workers  ExtractorWorker, on Ray actors (ray_pool; --workers auto sizes them from the cluster)
      -> store    ShardStore.commit: Parquet shard + manifest lines (under the output lock)
      -> ptoie.graph.build RDF file, Oxigraph store, GraphML / node-link, picture (incremental, streamed)
    report: errors file, progress bar, summary;  run: run_batch, which wires the stages

* **Streaming.** The driver reads documents lazily and keeps at most ``2 x workers`` batches in
  flight, so memory does not grow with the corpus (it holds one small manifest entry per
  document for resume). The graph outputs are built from the shards by ``ptoie.graph.build`` without
  holding the graph in memory (NetworkX outputs only up to a bound).
* **Deterministic batches** (``plan``): a resumed run decodes exactly the batches an
  uninterrupted run decodes, so its outputs are identical even with continuous batching.
* **Durable store, resume and lock** (``store``). Each batch becomes one Parquet shard written
  atomically, then one manifest line per document is appended and fsync'ed. A document is
  finished iff the manifest says so; a shard without a manifest line (a kill between the two
  steps) is an orphan and is deleted at the next start. Rerunning the same command skips finished
  documents (same id and content hash). One job at a time holds the dataset's lock (``flock``,
  released by the kernel when the job dies, so a killed job never blocks its resume).
* **Bad input never kills the job**: each problem becomes one line on stderr and one JSON record
  in the errors file; the exit status is 3 when documents were skipped. Input the job cannot run
  on at all (a missing path, no document to extract) is refused before anything is written.
* **Dead workers cost nothing** (``ray_pool.RayWorkerPool``): Ray restarts the actor, its batches
  go to live ones, and a document that kills every worker is isolated and skipped.
"""

from ptoie.batch.config import BatchConfig, BatchStoppedError, BatchUsageError
from ptoie.batch.plan import DocumentTask, PreparedDocument, group_batches, prepare_documents
from ptoie.batch.report import BatchSummary
from ptoie.batch.run import run_batch
from ptoie.batch.store import ManifestEntry, OutputLock, ShardStore
from ptoie.batch.ray_pool import MAX_TRIES, RayWorkerPool, WorkersLostError, size_workers
from ptoie.batch.workers import (DocumentFailure, DocumentResult, ExtractorWorker, FaultInjection,
                                 InProcessWorkerPool, WorkerPool)
from ptoie.exit_codes import EXIT_OK, EXIT_SKIPPED, EXIT_STOPPED, EXIT_USAGE

__all__ = ["EXIT_STOPPED", "BatchStoppedError", "MAX_TRIES", "DocumentFailure", "FaultInjection", "WorkersLostError", "EXIT_OK", "EXIT_SKIPPED", "EXIT_USAGE", "BatchConfig", "BatchSummary",
           "BatchUsageError", "DocumentResult", "DocumentTask", "ExtractorWorker",
           "InProcessWorkerPool", "ManifestEntry", "OutputLock", "PreparedDocument",
           "RayWorkerPool", "ShardStore", "WorkerPool", "group_batches", "prepare_documents",
           "run_batch", "size_workers"]
