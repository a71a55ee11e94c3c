"""The graph stage: Parquet triples -> RDF file, Oxigraph store, GraphML, node-link JSON, picture.

Used by ``ptoie-kg`` (any Parquet files in the triple schema) and by ``ptoie-batch`` (its shards).
Nothing here holds the whole knowledge graph in memory except the NetworkX outputs, which are
written only up to ``max_graph_triples``:

* **RDF fragments.** The rows of the Parquet sources, in order, are cut into fragments of at most
  ``FRAGMENT_ROWS`` rows (several small files in one, a large file over several; at most
  ``FRAGMENT_SOURCES`` files in one), each serialised (pyoxigraph's streaming serialiser,
  ``ptoie.graph.sinks.write_rdf``) from Parquet row batches into a cache folder and named after its
  sources' paths, sizes, modification times and row ranges: sources that did not change are
  never serialised again, and a stale fragment is deleted. Memory is bounded by rows, whatever
  the sizes of the files.
* **The RDF file** (``.ttl`` or ``.nt``) is the concatenation of the fragments, in source order
  (Turtle documents and N-Triples concatenate into one valid document); time and memory are
  linear in the number of triples.
* **The Oxigraph store** bulk-loads only the fragments it has not loaded yet, one at a time (so
  its memory is bounded by a fragment), and records each in a bookkeeping named graph; if it holds
  a fragment that is gone (a source was rewritten or removed), it is cleared and reloaded. Queries
  over its default graph see only the knowledge graph.
* **GraphML and node-link JSON** (NetworkX, in memory) are written when the graph has at most
  ``max_graph_triples`` triples; above that the caller gets the reason (the Parquet dataset is the
  edge list; ``ptoie sql`` queries it), and a stale file is removed.
* An output whose sources did not change since it was written is not rewritten.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import queue
import threading
import json
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyoxigraph import serialize

from ptoie.graph import canonical, mentions, sinks
from ptoie.graph.canonical import install_sql_functions, preferred_labels
from ptoie.schema import triple_schema
from ptoie.graph.sinks import (RdfVocabulary, atomic_path, label_triples, networkx_graph, oxigraph_format,
                    rdf_format, write_graphml, write_node_link, write_rdf)
from ptoie.graph.view import write_graph_view

DEFAULT_MAX_GRAPH_TRIPLES = 200_000
"""NetworkX outputs up to this many triples (the graph stage peaked at 722 MB at 200,000 with
them, 71 s; ``bench/scale.py outputs --sizes 200000``, docs/batch.md)."""
_STAMPS = "_outputs.json"
FRAGMENT_SOURCES = 256
"""At most this many Parquet sources per RDF fragment (see ``_plan_fragments``)."""
FRAGMENT_ROWS = 25_000
"""At most this many rows (triples) per RDF fragment: what the store bulk-loads at once."""
READ_ROWS = 8192
"""Rows per Parquet read batch."""
GRAPH_FORMAT = hashlib.sha256(b"".join(Path(module.__file__).read_bytes()
                                       for module in (canonical, mentions, sinks))).hexdigest()[:12]
"""Part of every fragment's key: the digest of the code that writes the statements
(``ptoie.graph.canonical``, ``ptoie.graph.mentions``, ``ptoie.graph.sinks``), so caches and stores
made by other code are rebuilt."""
_LABELS = "labels|"


def confidence(value: str) -> float:
    """A ``--min-confidence`` value: a number from 0 to 1 (an argparse type)."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0 <= number <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (got {value})")
    return number


class GraphInputError(ValueError):
    """A Parquet source that is not a table of triples; the message names the file."""


# -- inputs -----------------------------------------------------------------------------------
def parquet_sources(paths: Sequence[Path]) -> list[Path]:
    """Parquet files of ``paths``: files as given, folders expanded to their ``*.parquet`` files
    (recursively, sorted; ``_``- and ``.``-prefixed entries skipped, as pyarrow.dataset does, so a
    job's bookkeeping and temporary files are never read). Raises :class:`GraphInputError` for a
    missing path and when there is no Parquet file at all (an empty graph)."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(p for p in path.rglob("*.parquet") if p.is_file() and not any(
                part.startswith(("_", ".")) for part in p.relative_to(path).parts))
        elif path.is_file():
            files.append(path)
        else:
            raise GraphInputError(f"no Parquet triples at {path}: no such file or folder")
    if not files:
        where = ", ".join(map(str, paths)) or "(no path given)"
        raise GraphInputError(f"{where}: no Parquet file in this folder: the graph is empty")
    return files


def read_triples(path: Path) -> pa.Table:
    """One Parquet file as a table of the triple schema (``schemas/triple.schema.json``).

    Columns are matched by name and cast to the schema's types (a table written by DuckDB or
    polars fits); nullable columns it lacks (``doc_url`` of an older file, say) are null. Raises
    :class:`GraphInputError` naming the file and the column when it is not a table of triples."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise GraphInputError(f"{path}: not a readable Parquet file ({exc})") from None
    return conform_triples(table, path)


def count_rows(path: Path) -> int:
    """Rows of a Parquet file, from its footer."""
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (OSError, pa.ArrowException) as exc:
        raise GraphInputError(f"{path}: not a readable Parquet file ({exc})") from None


class TripleReader:
    """Reads row ranges of Parquet files as tables of the triple schema (see
    :func:`read_triples`) of at most ``READ_ROWS`` rows, in row batches. Consecutive ranges of a
    file continue the same read; another range starts at its file's first row group that holds
    it."""

    def __init__(self) -> None:
        self._path: Path | None = None
        self._row = 0
        self._batches: Iterator[pa.RecordBatch] = iter(())
        self._left: pa.RecordBatch | None = None

    def _open(self, path: Path, start: int) -> None:
        parquet = pq.ParquetFile(path)
        names = set(parquet.schema_arrow.names)
        columns = [name for name in triple_schema().names if name in names]
        groups, row = [], 0
        for index in range(parquet.metadata.num_row_groups):
            size = parquet.metadata.row_group(index).num_rows
            if row + size > start or groups:
                groups.append(index)
            else:
                row += size
        self._path, self._row, self._left = path, row, None
        self._batches = parquet.iter_batches(batch_size=READ_ROWS, row_groups=groups,
                                             columns=columns)

    def read(self, path: Path, start: int, stop: int) -> Iterator[pa.Table]:
        """Rows ``start`` to ``stop`` (exclusive) of ``path``."""
        try:
            if path != self._path or start != self._row:
                self._open(path, start)
            while self._row < stop:
                batch = self._left if self._left is not None else next(self._batches, None)
                self._left = None
                if batch is None:
                    return
                first = self._row
                if first + batch.num_rows <= start:  # before the range (a reopened read)
                    self._row += batch.num_rows
                    continue
                skip = max(start - first, 0)
                take = min(stop - first, batch.num_rows) - skip
                if skip + take < batch.num_rows:
                    self._left = batch.slice(skip + take)
                self._row = first + skip + take
                yield conform_triples(pa.Table.from_batches([batch.slice(skip, take)]), path)
        except (OSError, pa.ArrowException) as exc:
            raise GraphInputError(f"{path}: not a readable Parquet file ({exc})") from None


def conform_triples(table: pa.Table, path: Path) -> pa.Table:
    """``table`` (read from ``path``) with the columns and types of the triple schema."""
    schema = triple_schema()
    columns = []
    for target in schema:
        if target.name not in table.column_names:
            if not target.nullable:
                raise GraphInputError(
                    f"{path}: column {target.name!r} is missing; a table of triples has the columns "
                    f"of schemas/triple.schema.json ({', '.join(schema.names)})")
            columns.append(pa.nulls(table.num_rows, target.type))
            continue
        column = table.column(target.name)
        try:
            column = column.cast(target.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise GraphInputError(f"{path}: column {target.name!r} is {column.type}, not "
                                  f"{target.type}") from None
        if not target.nullable and column.null_count:
            raise GraphInputError(f"{path}: column {target.name!r} has {column.null_count} null "
                                  f"values; it may not be null")
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)


# -- outputs ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class GraphOutputs:
    """Where the graph stage writes; None: not written."""

    rdf: Path
    """The RDF file: ``.ttl`` (Turtle) or ``.nt`` (N-Triples)."""
    store: Path | None = None
    """Folder of the embedded Oxigraph store (SPARQL: ``ptoie sparql``)."""
    graphml: Path | None = None
    node_link: Path | None = None
    view: Path | None = None
    """The interactive HTML picture of the most connected part of the graph."""
    max_graph_triples: int = DEFAULT_MAX_GRAPH_TRIPLES
    """GraphML and node-link JSON only up to this many triples (NetworkX holds them in memory)."""
    min_confidence: float | None = None
    """Only triples whose confidence is known and at least this go into the outputs (the Parquet
    sources keep every triple); None: all triples."""
    resolve_mentions: bool = True
    """Link a subject written as a pronoun, a definite description or a short name to the entity
    of its document that it refers to (:mod:`ptoie.graph.mentions`; docs/graph.md gives how often
    the rules are right); False: every subject is the entity of its text as written."""

    @classmethod
    def beside(cls, rdf: Path, **overrides: object) -> GraphOutputs:
        """The default outputs of ``rdf``: ``<stem>.oxigraph/``, ``.graphml``, ``.json``, ``.html``."""
        sibling = lambda suffix: rdf.with_name(rdf.stem + suffix)  # noqa: E731
        defaults = {"store": sibling(".oxigraph"), "graphml": sibling(".graphml"),
                    "node_link": sibling(".json"), "view": sibling(".html")}
        return cls(rdf=rdf, **(defaults | {k: v for k, v in overrides.items() if v is not None}))

    def named(self) -> dict[str, Path]:
        """The outputs that are written, by name (the summary's and the report's keys)."""
        return {name: path for name, path in (("rdf", self.rdf), ("store", self.store),
                                              ("graphml", self.graphml), ("node-link", self.node_link),
                                              ("view", self.view)) if path is not None}


@dataclass(slots=True)
class GraphReport:
    """What :func:`build_graph` did."""

    triples: int = 0
    """Triples (with their provenance statements) in every output: the rows of the sources at or
    above ``min_confidence``."""
    rows: int = 0
    """Rows of the sources, all of them."""
    counts: dict[str, int] = field(default_factory=dict)
    """Triples found in each output written or kept (store: its ``ptoie:Extraction`` count)."""
    written: list[str] = field(default_factory=list)
    """Outputs (re)written by this call."""
    unchanged: list[str] = field(default_factory=list)
    """Outputs whose sources did not change: kept as they were."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Outputs not written, with the reason."""


def build_graph(sources: Sequence[Path], outputs: GraphOutputs, *, cache: Path,
                vocabulary: RdfVocabulary | None = None) -> GraphReport:
    """Build ``outputs`` from the Parquet ``sources`` (see the module doc); ``cache`` keeps the RDF
    fragments and the stamps of the outputs between calls.

    The store loads each fragment (Rust, without the GIL) and the picture is drawn (DuckDB) in
    background threads while the fragments are serialised (Python), so the stages overlap."""
    vocabulary = vocabulary or RdfVocabulary()
    fmt = rdf_format(outputs.rdf)
    threshold = outputs.min_confidence
    cache.mkdir(parents=True, exist_ok=True)
    report = GraphReport()
    stamps = _Stamps(cache / _STAMPS)
    plan = _plan_fragments(sources, cache, fmt, threshold, outputs.resolve_mentions)
    resolved = functools.cache(lambda: _resolve_mentions(sources, threshold)
                               if outputs.resolve_mentions else None)
    cached = all(f.path.exists() and _counts(stamps.rows.get(f.path.name)) for f in plan)
    stamps.use([fragment.path for fragment in plan])  # the labels follow from the same sources
    draw = outputs.view is not None and not stamps.fresh("view", outputs.view)
    if draw or not cached:
        resolved()  # before the threads start: a source that is no table of triples stops here
    ready: queue.Queue[_Fragment | None] = queue.Queue()
    background: dict[str, _Background] = {}
    if outputs.store is not None:
        background["store"] = _Background(sync_store, outputs.store, plan, fmt,
                                          vocabulary, ready=ready.get)
    if draw:
        background["view"] = _Background(write_graph_view, list(sources), outputs.view,
                                         min_confidence=threshold,
                                         resolve_mentions=False, mentions=resolved())
    reader = TripleReader()
    try:
        for fragment in plan:
            counts = _counts(stamps.rows.get(fragment.path.name)) if fragment.path.exists() else None
            if counts is None:
                counts = _write_fragment(fragment, fmt, vocabulary, reader, threshold, resolved())
            stamps.rows[fragment.path.name] = list(counts)
            report.triples += counts[0]
            report.rows += counts[1]
            ready.put(fragment)
        # after the fragments: their sources are known to be tables of triples by now
        labels = _labels_fragment(sources, cache, fmt, vocabulary, threshold, resolved,
                                  reuse=stamps.labels if cached else None)
        ready.put(labels)
    except BaseException:
        ready.put(None)  # the store loader stops; this error, not a background one, is raised
        for task in background.values():
            task.join()
        raise
    ready.put(None)
    fragments = [fragment.path for fragment in plan] + [labels.path]
    stamps.labels = labels.path.name
    if report.triples == 0 and "view" in background:  # nothing to draw: the picture says so
        background.pop("view").join()
        outputs.view.unlink(missing_ok=True)  # type: ignore[union-attr]
        report.skipped["view"] = ("the graph is empty" if report.rows == 0 else
                                  f"no triple at or above --min-confidence {threshold}")
    results = {name: task.result() for name, task in background.items()}
    _remove_stale_fragments(cache, fragments)

    if stamps.fresh("rdf", outputs.rdf):
        report.unchanged.append("rdf")
    else:
        with atomic_path(outputs.rdf) as tmp, open(tmp, "wb") as out:
            for fragment in fragments:
                with open(fragment, "rb") as fh:
                    shutil.copyfileobj(fh, out, 1 << 20)
        stamps.record("rdf", outputs.rdf)
        report.written.append("rdf")
    report.counts["rdf"] = report.triples

    if outputs.store is not None:
        (report.written if results["store"] else report.unchanged).append("store")
        report.counts["store"] = count_extractions(outputs.store, vocabulary)

    networkx_outputs = {"graphml": outputs.graphml, "node-link": outputs.node_link}
    wanted = {name: path for name, path in networkx_outputs.items() if path is not None}
    if report.triples > outputs.max_graph_triples:
        for name, path in wanted.items():
            path.unlink(missing_ok=True)
            report.skipped[name] = (
                f"{report.triples:,} triples > --max-graph-triples {outputs.max_graph_triples:,} "
                f"(NetworkX holds the graph in memory); the Parquet triples are the edge list "
                f"(`ptoie sql`), or raise the limit")
    else:
        stale = {name: path for name, path in wanted.items() if not stamps.fresh(name, path)}
        graph = networkx_graph((_kept(read_triples(path), threshold) for path in sources),
                               vocabulary, entity_labels(sources, threshold, resolved()),
                               resolved()) if stale else None
        for name, path in wanted.items():
            if name in stale:
                (write_graphml if name == "graphml" else write_node_link)(graph, path)
                stamps.record(name, path)
                report.written.append(name)
            else:
                report.unchanged.append(name)
            report.counts[name] = report.triples

    if outputs.view is not None and "view" not in report.skipped:
        if "view" in background:
            stamps.record("view", outputs.view)
            report.written.append("view")
        else:
            report.unchanged.append("view")
    stamps.save()
    return report


def _resolve_mentions(sources: Sequence[Path], min_confidence: float | None
                      ) -> dict[mentions.Key, mentions.Mention]:
    """:func:`ptoie.graph.mentions.resolve_sources`; a source that is no table of triples raises
    :class:`GraphInputError` naming it."""
    try:
        return mentions.resolve_sources(sources, min_confidence)
    except duckdb.Error as exc:
        for path in sources:
            read_triples(path)  # names the file and the column
        raise GraphInputError(f"{sources[0]}: cannot read the triples to resolve mentions "
                              f"({' '.join(str(exc).split())})") from None


class _Background:
    """A function run in a thread; :meth:`result` joins it and re-raises its exception."""

    def __init__(self, function: Callable[..., object], *args: object, **kwargs: object) -> None:
        self._result: object = None
        self._error: BaseException | None = None

        def run() -> None:
            try:
                self._result = function(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                self._error = exc

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def join(self) -> None:
        self._thread.join()

    def result(self) -> object:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result


@dataclass(frozen=True, slots=True)
class _Piece:
    """Rows ``start`` to ``stop`` (exclusive) of one Parquet source."""

    path: Path
    start: int
    stop: int


@dataclass(frozen=True, slots=True)
class _Fragment:
    """One RDF fragment of the cache: the file, its pieces of Parquet sources and their keys."""

    path: Path
    pieces: Sequence[_Piece]
    keys: tuple[str, ...]
    """``path|size|mtime|min_confidence|GRAPH_FORMAT`` of each piece's source (``|rows=start-stop``
    when the piece is not the whole file): what the store records as loaded."""


def _plan_fragments(sources: Sequence[Path], cache: Path, fmt: str,
                    min_confidence: float | None = None,
                    resolve_mentions: bool = False) -> list[_Fragment]:
    """The sources' rows in order, cut into fragments of at most ``FRAGMENT_ROWS`` rows and
    ``FRAGMENT_SOURCES`` sources, each with the path of its RDF fragment.

    The batch job writes many small shards (about 40 rows each), and a file per shard would cost
    more in opens and fsyncs than in serialisation; a user's table may be one file of millions of
    rows, which the store could not bulk-load at once. A fragment is named after its pieces' keys;
    a job's new shards sort after its old ones, so a run that adds shards remakes only the last
    fragment and the new ones. A key also holds the confidence threshold, whether mentions are
    resolved and :data:`GRAPH_FORMAT`: another threshold or setting, or other code, is another
    fragment. (A mention is resolved from its document's triples; a document whose triples lie
    in several sources is resolved as a whole, but a fragment is rewritten only when its own
    sources change.)"""
    extension = ".ttl" if fmt == "turtle" else ".nt"
    groups: list[list[tuple[_Piece, str]]] = [[]]
    rows = 0
    for path in sources:
        stat = path.stat()
        key = (f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{min_confidence}"
               f"|{GRAPH_FORMAT}{'|mentions' if resolve_mentions else ''}")
        total = count_rows(path)
        start = 0
        while True:
            if groups[-1] and (rows >= FRAGMENT_ROWS or len(groups[-1]) >= FRAGMENT_SOURCES):
                groups.append([])
                rows = 0
            stop = min(total, start + FRAGMENT_ROWS - rows)
            whole = start == 0 and stop == total
            groups[-1].append((_Piece(path, start, stop),
                               key if whole else f"{key}|rows={start}-{stop}"))
            rows += stop - start
            start = stop
            if start >= total:
                break
    plan = []
    for index, group in enumerate(g for g in groups if g):
        keys = tuple(key for _, key in group)
        digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:20]
        plan.append(_Fragment(cache / f"fragment-{index:06d}-{digest}{extension}",
                              [piece for piece, _ in group], keys))
    return plan


def _write_fragment(fragment: _Fragment, fmt: str, vocabulary: RdfVocabulary,
                    reader: TripleReader, min_confidence: float | None,
                    found: dict[mentions.Key, mentions.Mention] | None = None) -> tuple[int, int]:
    """Serialise the triples of the fragment's pieces at or above ``min_confidence`` to its file
    (atomically), a row batch at a time; returns the rows written and the rows read."""
    written = read = 0

    def tables() -> Iterator[pa.Table]:
        nonlocal written, read
        for piece in fragment.pieces:
            for table in reader.read(piece.path, piece.start, piece.stop):
                read += table.num_rows
                table = _kept(table, min_confidence)
                written += table.num_rows
                yield table

    with atomic_path(fragment.path) as tmp, open(tmp, "wb") as out:
        write_rdf(tables(), out, fmt, vocabulary, found)  # type: ignore[arg-type]
    return written, read


def _kept(table: pa.Table, min_confidence: float | None) -> pa.Table:
    """The rows whose confidence is known and at least ``min_confidence`` (all when None)."""
    if min_confidence is None:
        return table
    return table.filter(pc.greater_equal(table.column("confidence"), min_confidence))


def _counts(value: object) -> tuple[int, int] | None:
    """A fragment's ``[written, read]`` row counts from the stamps file (None if absent)."""
    if isinstance(value, list) and len(value) == 2 and all(isinstance(n, int) for n in value):
        return value[0], value[1]
    return None


# -- labels -----------------------------------------------------------------------------------
def _label_connection(sources: Sequence[Path], min_confidence: float | None,
                      found: dict[mentions.Key, mentions.Mention] | None = None):
    """DuckDB with the view ``triples`` (``arg1``, ``rel``, ``arg2`` of the rows at or above
    ``min_confidence``; a mention of ``found`` as the label of its entity:
    :func:`ptoie.graph.mentions.substitute_subjects`) over ``sources`` and the canonical
    functions installed. The files are
    read by name (a job's shards share one schema); files of different schemas, which only
    ``ptoie-kg`` may be given, are unified by name (``union_by_name``, a schema read per file)."""
    listing = ", ".join("'" + str(p).replace("'", "''") + "'" for p in sources)
    kept = "" if min_confidence is None else f" WHERE confidence >= {float(min_confidence)!r}"
    con = duckdb.connect()
    install_sql_functions(con)
    for options in ("", ", union_by_name = true"):
        try:
            con.execute(f"CREATE OR REPLACE VIEW triples AS SELECT doc_id, sentence_id, "
                        f"extraction_index, arg1, rel, arg2 FROM "
                        f"read_parquet([{listing}]{options}){kept}")
            con.execute("SELECT count(*) FROM triples").fetchall()
            mentions.substitute_subjects(con, found or {})
            return con
        except duckdb.Error:
            if options:
                con.close()
                raise
    raise AssertionError("unreachable")


def entity_labels(sources: Sequence[Path], min_confidence: float | None = None,
                  found: dict[mentions.Key, mentions.Mention] | None = None) -> dict[str, str]:
    """The label of each entity key: its most frequent surface form in ``sources`` (in memory:
    for the NetworkX outputs, which are bounded by ``max_graph_triples``); ``found``: the
    mentions resolved."""
    con = _label_connection(sources, min_confidence, found)
    try:
        entities, _ = preferred_labels(con)
        return {key: label for key, label, _n in con.execute(entities).fetchall()}
    finally:
        con.close()


def _labels_fragment(sources: Sequence[Path], cache: Path, fmt: str, vocabulary: RdfVocabulary,
                     min_confidence: float | None,
                     found: Callable[[], dict[mentions.Key, mentions.Mention] | None], *,
                     reuse: str | None) -> _Fragment:
    """The fragment of ``rdfs:label`` statements (:func:`ptoie.graph.sinks.label_triples`): one per
    entity and relation, its most frequent surface form in all the sources (a DuckDB pass over
    the Parquet files, rows streamed to the file). Named after its content, keyed ``labels|``
    + name for the store. ``reuse``: the name of the previous labels fragment, used as it is
    when it exists (the caller knows that the sources did not change). ``found()``: the
    mentions resolved."""
    if reuse is not None and (cache / reuse).exists():
        return _Fragment(cache / reuse, (), (_LABELS + reuse,))
    extension = ".ttl" if fmt == "turtle" else ".nt"
    con = _label_connection(sources, min_confidence, found())
    draft = cache / f"labels-draft{extension}"
    digest = hashlib.sha256()
    try:
        queries = preferred_labels(con)
        with atomic_path(draft) as tmp, open(tmp, "wb") as out:
            for index, query in enumerate(queries):
                cursor = con.execute(query)
                while rows := cursor.fetchmany(8192):
                    pairs = [(key, label) for key, label, _n in rows]
                    digest.update(repr(pairs).encode())
                    entities, relations = (pairs, []) if index == 0 else ([], pairs)
                    serialize(label_triples(entities, relations, vocabulary), out,
                              oxigraph_format(fmt),  # type: ignore[arg-type]
                              prefixes=vocabulary.prefixes if fmt == "turtle" else None)
    finally:
        con.close()
    path = cache / f"fragment-labels-{digest.hexdigest()[:20]}{extension}"
    draft.replace(path)
    return _Fragment(path, (), (_LABELS + path.name,))


def _remove_stale_fragments(cache: Path, fragments: list[Path]) -> None:
    keep = {f.name for f in fragments}
    for old in cache.glob("fragment-*"):
        if old.name not in keep:
            old.unlink()


class _Stamps:
    """``<cache>/_outputs.json``: the row count of each fragment, and which fragments each output
    was last written from."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        self.rows: dict[str, list[int]] = data.get("fragments", {})
        self.outputs: dict[str, dict[str, object]] = data.get("outputs", {})
        self.labels: str | None = data.get("labels")
        self.key = ""

    def use(self, fragments: list[Path]) -> None:
        """The fragments of this build (row counts of others are dropped)."""
        names = [fragment.name for fragment in fragments]
        self.rows = {name: self.rows[name] for name in names if name in self.rows}
        self.key = hashlib.sha256("\n".join(names).encode()).hexdigest()

    def fresh(self, name: str, path: Path) -> bool:
        stamp = self.outputs.get(name)
        return (stamp is not None and path.exists() and stamp.get("path") == str(path.resolve())
                and stamp.get("sources") == self.key and stamp.get("size") == _size(path))

    def record(self, name: str, path: Path) -> None:
        self.outputs[name] = {"path": str(path.resolve()), "sources": self.key, "size": _size(path)}

    def save(self) -> None:
        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps({"fragments": self.rows, "outputs": self.outputs,
                                       "labels": self.labels}, indent=1),
                           encoding="utf-8")


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else -1


# -- the store --------------------------------------------------------------------------------
def _bookkeeping(vocabulary: RdfVocabulary):
    from pyoxigraph import NamedNode

    base = vocabulary.prefixes["ptoie"]
    return NamedNode(base + "bookkeeping"), NamedNode(base + "loadedSource")


def sync_store(store_dir: Path, plan: Sequence[_Fragment], fmt: str, vocabulary: RdfVocabulary,
               *, ready: Callable[[], _Fragment | None] | None = None) -> int:
    """Bring the Oxigraph store at ``store_dir`` to the fragments of ``plan``.

    The store records each Parquet source it has loaded (path, size, modification time) in its
    bookkeeping graph. A fragment with a source not loaded yet is bulk-loaded, one bulk load per
    fragment (memory bounded by a fragment); its other sources' statements are loaded again, which
    an RDF store, a set of quads, absorbs. If the store holds a source that is gone or changed, it
    is cleared and reloaded. ``ready()``, when given, returns each fragment in order once its file
    is written, then the labels fragment (None: stop). The labels fragment (its key starts with
    ``labels|``) changes with any source: when the store holds another one, the ``rdfs:label``
    of every entity and relation is deleted before the new one is loaded. Returns the number of
    fragments loaded."""
    from pyoxigraph import Literal, Quad, Store

    graph, predicate = _bookkeeping(vocabulary)
    store = Store(str(store_dir))
    loaded_now = 0
    try:
        loaded = {q.object.value for q in store.quads_for_pattern(graph, predicate, None, graph)}
        old_labels = {key for key in loaded if key.startswith(_LABELS)}
        if not loaded - old_labels <= {key for fragment in plan for key in fragment.keys}:
            store.clear()
            loaded, old_labels = set(), set()
        for fragment in (iter(ready, None) if ready is not None else plan):
            new = [key for key in fragment.keys if key not in loaded]
            if not new:
                continue
            if new[0].startswith(_LABELS) and old_labels:
                _remove_labels(store, vocabulary)
                for key in old_labels:
                    store.remove(Quad(graph, predicate, Literal(key), graph))
                old_labels = set()
            # A kill during a load leaves statements without their bookkeeping quads: the next
            # call loads the fragment again, and the store keeps one copy of each quad.
            store.bulk_load(path=str(fragment.path), format=oxigraph_format(fmt))
            store.extend([Quad(graph, predicate, Literal(key), graph) for key in new])
            loaded_now += 1
        if loaded_now:
            store.flush()
        return loaded_now
    finally:
        del store


def _remove_labels(store, vocabulary: RdfVocabulary) -> None:
    """Delete the ``rdfs:label`` of every entity and relation (a labels fragment's statements)."""
    label = vocabulary.properties["label"].value
    kinds = ", ".join(f"<{vocabulary.classes[c].value}>" for c in ("Entity", "Relation"))
    store.update(f"DELETE {{ ?x <{label}> ?l }} WHERE {{ ?x a ?c ; <{label}> ?l . "
                 f"FILTER(?c IN ({kinds})) }}")


def count_extractions(store_dir: Path, vocabulary: RdfVocabulary) -> int:
    """``ptoie:Extraction`` statements in the store (one per Parquet row)."""
    from pyoxigraph import Store

    store = Store.read_only(str(store_dir))
    extraction = vocabulary.classes["Extraction"]
    [solution] = store.query(f"SELECT (COUNT(?s) AS ?n) WHERE {{ ?s a <{extraction.value}> }}")
    return int(solution["n"].value)
