"""Configuration of the batch job: :class:`BatchConfig` (what the CLI fills in) and
:class:`BatchUsageError` (a setting the job cannot run with, naming the flag to fix)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

from ptoie.corpus import CorpusOptions
from ptoie.extract.config import DecodingConfig, ModelConfig, extraction_settings
from ptoie.graph.build import DEFAULT_MAX_GRAPH_TRIPLES, GraphOutputs
from ptoie.schema import triple_schema
from ptoie.text.sentences import LongSentences
from ptoie.graph.rdf import rdf_format


ProgressMode = Literal["auto", "always", "never"]


class BatchUsageError(ValueError):
    """A configuration the job cannot run with; the message says what to change."""


class BatchStoppedError(RuntimeError):
    """The job stopped before the end (:data:`ptoie.exit_codes.EXIT_STOPPED`); the message says
    why and that a rerun resumes."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchConfig:
    """Everything ``ptoie-batch`` needs; the CLI only fills this in."""

    # input
    inputs: tuple[Path, ...]
    """Files and directories (walked recursively): .txt, .jsonl, .parquet, .html (each optionally
    .gz), .warc, .warc.gz."""
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
    languages: tuple[str, ...] | None = ("pt",)
    """Documents found to be in another language are skipped and recorded
    (:class:`ptoie.text.language.LanguageFilter`); None: every document is extracted."""

    # outputs
    out: Path
    """RDF output: .ttl (Turtle) or .nt (N-Triples). Other outputs default to its siblings."""
    parquet_dir: Path | None = None
    """The Parquet dataset (shards + manifest); default ``<out stem>.parquet/``."""
    graphml: Path | None = None
    """NetworkX GraphML; default ``<out stem>.graphml``."""
    node_link: Path | None = None
    """NetworkX node-link JSON; default ``<out stem>.json``."""
    store: Path | None = None
    """The embedded Oxigraph store (SPARQL); default ``<out stem>.oxigraph/``."""
    view: Path | None = None
    """The interactive picture of the graph; default ``<out stem>.html``."""
    max_graph_triples: int = DEFAULT_MAX_GRAPH_TRIPLES
    """GraphML and node-link JSON are written up to this many triples (NetworkX holds the graph
    in memory); above it they are skipped with a message pointing to the Parquet edge list."""
    min_confidence: float | None = None
    """RDF, store, NetworkX outputs and picture hold only the triples whose confidence is known and
    at least this; the Parquet dataset keeps every triple. None: all."""
    resolve_mentions: bool = True
    """The graph links a subject written as a pronoun, a definite description or a short name to
    the entity of its document that it refers to (``ptoie.graph.mentions``, docs/graph.md); the
    Parquet dataset keeps the text as written either way."""
    errors: Path | None = None
    """Errors JSONL of this run; default ``<out stem>.errors.jsonl``."""
    overwrite: bool = False
    """Discard a previous run's shards and manifest instead of resuming."""

    # Ray
    address: str | None = None
    """Ray cluster address (``ray.init(address=...)``); None: RAY_ADDRESS or a local Ray."""
    workers: int | Literal["auto"] = "auto"
    """Extractor actors, each with its own model copy. "auto": sized from what the Ray cluster
    (local or remote) reports, see :func:`ptoie.batch.ray_pool.size_workers`."""
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
    model: ModelConfig = field(default_factory=ModelConfig)
    """Which model the workers load (:class:`ptoie.extract.config.ModelConfig`); its ``n_threads``
    and ``n_gpu_layers`` are set per worker from ``threads_per_worker`` and ``gpus_per_worker``.
    Its ``model_path`` None: the shipped default, named once when the job starts
    (:meth:`with_default_model`), recorded in the job settings and sent to every worker."""
    decoding: DecodingConfig = field(default_factory=DecodingConfig)
    """How answers are decoded and which triples are kept (:class:`ptoie.extract.config.DecodingConfig`)."""

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
    def graph_outputs(self) -> GraphOutputs:
        """The graph files built from the shards (``ptoie.graph.build``)."""
        return GraphOutputs.beside(self.out, store=self.store, graphml=self.graphml,
                                   node_link=self.node_link, view=self.view,
                                   max_graph_triples=self.max_graph_triples,
                                   min_confidence=self.min_confidence,
                                   resolve_mentions=self.resolve_mentions)

    @property
    def errors_path(self) -> Path:
        return self.errors or self._sibling(".errors.jsonl")

    def corpus_options(self) -> CorpusOptions:
        return CorpusOptions(text_field=self.text_field, id_field=self.id_field,
                             max_line_bytes=self.max_line_bytes,
                             max_document_bytes=self.max_document_bytes)

    def with_default_model(self) -> BatchConfig:
        """This config with the shipped default model named when none is
        (:meth:`ptoie.extract.config.ModelConfig.with_default_model`)."""
        return replace(self, model=self.model.with_default_model())

    def worker_model(self) -> ModelConfig:
        """The model settings of one worker: its threads and GPU layers from the Ray settings."""
        return replace(self.model, n_threads=self.threads_per_worker,
                       n_gpu_layers=-1 if self.gpus_per_worker > 0 else 0)

    SETTINGS_ADDED: ClassVar[dict[str, Any]] = {"end_bias": 0.0, "require_spans": False}
    """Job settings a stored ``_job.json`` may lack, with the value it stands for: a missing
    ``end_bias`` reads as 0.0 (the paper's decoding), a missing ``require_spans`` as False (every
    parsed triple kept); the resume check compares the settings after filling them in."""

    def job_settings(self) -> dict[str, Any]:
        """Settings that change what is extracted: a resumed run must use the same ones. The
        model is the one the job runs, so the config must name it (:meth:`with_default_model`):
        a run of the shipped default records which model and adapter that was."""
        if self.model.model_path is None:
            raise ValueError("job_settings needs the model named: call with_default_model() first")
        return {**extraction_settings(self.model, self.decoding), "text_field": self.text_field,
                "id_field": self.id_field, "max_sentence_chars": self.max_sentence_chars,
                "long_sentences": self.long_sentences, "batch_sentences": self.batch_sentences,
                "schema_version": triple_schema().metadata[b"version"].decode()}

    def validate(self) -> None:
        """Raise :class:`BatchUsageError` naming the flag to fix."""
        checks = [
            (bool(self.inputs), "give at least one input file or directory"),
            (self.languages is None or bool(self.languages),
             "--languages needs at least one language code, or any"),
            (self.workers == "auto" or (isinstance(self.workers, int) and self.workers >= 1),
             f"--workers must be auto or >= 1 (got {self.workers})"),
            (self.max_graph_triples >= 0,
             f"--max-graph-triples must be >= 0 (got {self.max_graph_triples})"),
            (self.min_confidence is None or 0 <= self.min_confidence <= 1,
             f"--min-confidence must be between 0 and 1 (got {self.min_confidence})"),
            (self.threads_per_worker >= 1,
             f"--threads-per-worker must be >= 1 (got {self.threads_per_worker})"),
            (self.gpus_per_worker >= 0, f"--gpus-per-worker must be >= 0 (got {self.gpus_per_worker})"),
            (self.batch_sentences >= 1, f"--batch-sentences must be >= 1 (got {self.batch_sentences})"),
            (self.max_sentence_chars >= 20,
             f"--max-sentence-chars must be >= 20 (got {self.max_sentence_chars})"),
            (self.limit is None or self.limit >= 1, f"--limit must be >= 1 (got {self.limit})"),
            (self.object_store_mb >= 80, "--object-store-mb must be >= 80 (Ray's minimum is 75 MB)"),
        ]
        for ok, message in checks:
            if not ok:
                raise BatchUsageError(message)
        try:
            rdf_format(self.out)
        except ValueError as exc:
            raise BatchUsageError(f"--out {exc}") from None
        for path in self.inputs:
            if not path.exists():
                raise BatchUsageError(f"{path}: no such file or directory")
        if self.parquet_path.exists() and not self.parquet_path.is_dir():
            raise BatchUsageError(f"--parquet {self.parquet_path} exists and is not a directory")
