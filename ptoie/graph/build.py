"""The graph stage: Parquet triples -> RDF file, Oxigraph store, GraphML, node-link JSON, picture.

Used by ``ptoie-kg`` (any Parquet files in the triple schema) and by ``ptoie-batch`` (its shards).
Nothing here holds the whole knowledge graph in memory except the NetworkX outputs, which are
written only up to ``max_graph_triples``:

* **RDF fragments** (:mod:`ptoie.graph.fragments`): the rows of the Parquet sources, in order, cut
  into fragments of bounded rows, each serialised (pyoxigraph's streaming serialiser,
  :func:`ptoie.graph.rdf.write_rdf`) from Parquet row batches into a cache folder: sources that
  did not change are never serialised again, and a stale fragment is deleted. Memory is bounded
  by rows, whatever the sizes of the files.
* **The RDF file** (``.ttl`` or ``.nt``) is the concatenation of the fragments, in source order
  (Turtle documents and N-Triples concatenate into one valid document); time and memory are
  linear in the number of triples.
* **The Oxigraph store** (:mod:`ptoie.graph.store`) bulk-loads only the fragments it has not
  loaded yet, one at a time, while the next fragments are serialised.
* **GraphML and node-link JSON** (NetworkX, in memory) are written when the graph has at most
  ``max_graph_triples`` triples; above that the caller gets the reason (the Parquet dataset is the
  edge list; ``ptoie sql`` queries it), and a stale file is removed.
* **The picture** (:mod:`ptoie.graph.view`) is drawn by DuckDB from the Parquet sources.
* **Mentions** (:mod:`ptoie.graph.mentions`): a subject written as a pronoun, a description or a
  short name is the entity of its document it refers to in every output; they are resolved once
  per call, and only when an output or fragment is to be written.
* An output whose sources did not change since it was written is not rewritten.
"""

from __future__ import annotations

import functools
import hashlib
import json
import queue
import shutil
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ptoie.files import atomic_path
from ptoie.graph.fragments import (Fragment, labels_fragment, plan_fragments,
                                   remove_stale_fragments, write_fragment)
from ptoie.graph.labels import entity_labels
from ptoie.graph.mention_pass import resolve_sources
from ptoie.graph.mentions import Key as MentionKey, Mention
from ptoie.graph.networkx_io import networkx_graph, write_graphml, write_node_link
from ptoie.graph.rdf import RdfFormatName, RdfVocabulary, rdf_format
from ptoie.graph.sources import GraphInputError, TripleReader, confident_rows, read_triples
from ptoie.graph.store import count_extractions, sync_store
from ptoie.graph.view import write_graph_view

DEFAULT_MAX_GRAPH_TRIPLES = 200_000
"""NetworkX outputs up to this many triples (the graph stage peaked at 722 MB at 200,000 with
them, 71 s; ``bench/scale.py outputs --sizes 200000``, docs/batch.md)."""
_STAMPS = "_outputs.json"


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
    build = _Build(sources, outputs, cache, vocabulary, fmt, _Stamps(cache / _STAMPS),
                   functools.cache(lambda: _resolve_mentions(sources, outputs.min_confidence)
                                   if outputs.resolve_mentions else None))
    plan = plan_fragments(sources, cache, fmt, outputs.min_confidence, outputs.resolve_mentions)
    cache.mkdir(parents=True, exist_ok=True)  # after the sources: bad input writes nothing
    cached = all(f.path.exists() and _counts(build.stamps.rows.get(f.path.name)) for f in plan)
    build.stamps.use([fragment.path for fragment in plan])  # the labels follow from the same sources
    if not cached or build.view_stale():
        build.mentions()  # once, before the threads that share them start
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="ptoie-graph") as pool:
        ready: queue.Queue[Fragment | None] = queue.Queue()
        background = _start_background(pool, build, plan, ready)
        try:
            labels = _write_fragments(build, plan, ready, reuse_labels=cached)
        finally:
            ready.put(None)  # the store loader stops; on an error, this one is raised, not theirs
        _skip_an_empty_view(build, background)
        loaded = {name: task.result() for name, task in background.items()}.get("store")
    fragments = [fragment.path for fragment in plan] + [labels.path]
    build.stamps.labels = labels.path.name
    remove_stale_fragments(cache, fragments)
    _write_rdf_file(build, fragments)
    if outputs.store is not None:
        (build.report.written if loaded else build.report.unchanged).append("store")
        build.report.counts["store"] = count_extractions(outputs.store, vocabulary)
    _write_networkx(build)
    _record_view(build, drawn="view" in background)
    build.stamps.save()
    return build.report


@dataclass(slots=True)
class _Build:
    """One call of :func:`build_graph`: what it reads and writes, the stamps, the report."""

    sources: Sequence[Path]
    outputs: GraphOutputs
    cache: Path
    vocabulary: RdfVocabulary
    fmt: RdfFormatName
    stamps: _Stamps
    mentions: Callable[[], Mapping[MentionKey, Mention] | None]
    """The mentions of the sources (:func:`_resolve_mentions`, computed once); None when they
    are not resolved."""
    report: GraphReport = field(default_factory=GraphReport)

    @property
    def threshold(self) -> float | None:
        return self.outputs.min_confidence

    def view_stale(self) -> bool:
        """The picture is wanted and was not drawn from these sources (known after
        :meth:`_Stamps.use`)."""
        view = self.outputs.view
        return view is not None and not self.stamps.fresh("view", view)


def _resolve_mentions(sources: Sequence[Path], min_confidence: float | None
                      ) -> dict[MentionKey, Mention]:
    """:func:`ptoie.graph.mention_pass.resolve_sources`; a source that is no table of triples raises
    :class:`GraphInputError` naming it."""
    try:
        return resolve_sources(sources, min_confidence)
    except duckdb.Error as exc:
        for path in sources:
            read_triples(path)  # names the file and the column
        raise GraphInputError(f"{sources[0]}: cannot read the triples to resolve mentions "
                              f"({' '.join(str(exc).split())})") from None


def _start_background(pool: ThreadPoolExecutor, build: _Build, plan: list[Fragment],
                      ready: queue.Queue[Fragment | None]) -> dict[str, Future]:
    """The store loader, fed each fragment from ``ready`` once written, and the picture, when
    it is out of date."""
    tasks: dict[str, Future] = {}
    outputs = build.outputs
    if outputs.store is not None:
        tasks["store"] = pool.submit(sync_store, outputs.store, plan, build.fmt,
                                     build.vocabulary, ready=ready.get)
    if build.view_stale():
        tasks["view"] = pool.submit(write_graph_view, list(build.sources), outputs.view,
                                    min_confidence=build.threshold, resolve_mentions=False,
                                    mentions=build.mentions())
    return tasks


def _write_fragments(build: _Build, plan: list[Fragment], ready: queue.Queue[Fragment | None], *,
                     reuse_labels: bool) -> Fragment:
    """Serialise the fragments of ``plan`` that the cache lacks, putting each on ``ready`` once
    its file exists, then the labels fragment (reused when every fragment was cached); returns
    the labels fragment."""
    reader = TripleReader()
    report, rows = build.report, build.stamps.rows
    for fragment in plan:
        counts = _counts(rows.get(fragment.path.name)) if fragment.path.exists() else None
        if counts is None:
            counts = write_fragment(fragment, build.fmt, build.vocabulary, reader, build.threshold,
                                    build.mentions())
        rows[fragment.path.name] = list(counts)
        report.triples += counts[0]
        report.rows += counts[1]
        ready.put(fragment)
    # after the fragments: their sources are known to be tables of triples by now
    labels = labels_fragment(build.sources, build.cache, build.fmt, build.vocabulary,
                             build.threshold, build.mentions,
                             reuse=build.stamps.labels if reuse_labels else None)
    ready.put(labels)
    return labels


def _skip_an_empty_view(build: _Build, background: dict[str, Future]) -> None:
    """Without a triple there is nothing to draw: the picture (which fails) is removed, and the
    report says why."""
    if build.report.triples == 0 and "view" in background:
        wait([background.pop("view")])
        build.outputs.view.unlink(missing_ok=True)  # type: ignore[union-attr]
        build.report.skipped["view"] = (
            "the graph is empty" if build.report.rows == 0 else
            f"no triple at or above --min-confidence {build.threshold}")


def _write_rdf_file(build: _Build, fragments: list[Path]) -> None:
    """The RDF file: the fragments concatenated, unless it is fresh."""
    rdf, report = build.outputs.rdf, build.report
    if build.stamps.fresh("rdf", rdf):
        report.unchanged.append("rdf")
    else:
        with atomic_path(rdf) as tmp, open(tmp, "wb") as out:
            for fragment in fragments:
                with open(fragment, "rb") as fh:
                    shutil.copyfileobj(fh, out, 1 << 20)
        build.stamps.record("rdf", rdf)
        report.written.append("rdf")
    report.counts["rdf"] = report.triples


def _write_networkx(build: _Build) -> None:
    """GraphML and node-link JSON, those that are stale, when the graph is within
    ``max_graph_triples``; else removed, with the reason."""
    outputs, report = build.outputs, build.report
    networkx_outputs = {"graphml": outputs.graphml, "node-link": outputs.node_link}
    wanted = {name: path for name, path in networkx_outputs.items() if path is not None}
    if report.triples > outputs.max_graph_triples:
        for name, path in wanted.items():
            path.unlink(missing_ok=True)
            report.skipped[name] = (
                f"{report.triples:,} triples > --max-graph-triples {outputs.max_graph_triples:,} "
                f"(NetworkX holds the graph in memory); the Parquet triples are the edge list "
                f"(`ptoie sql`), or raise the limit")
        return
    stale = {name: path for name, path in wanted.items() if not build.stamps.fresh(name, path)}
    found = build.mentions() if stale else None
    graph = networkx_graph((confident_rows(read_triples(path), build.threshold)
                            for path in build.sources), build.vocabulary,
                           entity_labels(build.sources, build.threshold, found),
                           found) if stale else None
    for name, path in wanted.items():
        if name in stale:
            (write_graphml if name == "graphml" else write_node_link)(graph, path)
            build.stamps.record(name, path)
            report.written.append(name)
        else:
            report.unchanged.append(name)
        report.counts[name] = report.triples


def _record_view(build: _Build, *, drawn: bool) -> None:
    """The picture in the report and the stamps: drawn by this call, or kept."""
    if build.outputs.view is None or "view" in build.report.skipped:
        return
    if drawn:
        build.stamps.record("view", build.outputs.view)
        build.report.written.append("view")
    else:
        build.report.unchanged.append("view")


def _counts(value: object) -> tuple[int, int] | None:
    """A fragment's ``[written, read]`` row counts from the stamps file (None if absent)."""
    if isinstance(value, list) and len(value) == 2 and all(isinstance(n, int) for n in value):
        return value[0], value[1]
    return None


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
