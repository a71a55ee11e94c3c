"""Sinks: triple records -> Parquet shards (the durable store) -> RDF statements and NetworkX graphs.

* :func:`write_parquet_shard` writes one shard atomically (temporary file, fsync, ``os.replace``,
  fsync of the folder): a shard either exists complete or not at all.
* :class:`RdfVocabulary` mints IRIs with the namespaces and terms of ``schemas/rdf_vocabulary.json``
  (read at run time); :func:`entity_slug` is the normalisation behind entity and relation IRIs.
* :func:`rdf_triples` turns a table of records into RDF statements (pyoxigraph terms), streamed:
  every triple plus its reified provenance statement; :func:`write_rdf` serialises them with
  pyoxigraph's streaming Turtle / N-Triples writer, a table at a time, never a whole graph in memory.
* :func:`networkx_graph` builds the NetworkX ``MultiDiGraph`` (entities as nodes, one edge per
  triple) and :func:`write_graphml` / :func:`write_node_link` write it. A NetworkX graph lives in
  memory, so callers bound its size (``ptoie.kg``).

The graph-building stage that puts these together, incrementally, is :mod:`ptoie.kg`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Literal

import networkx as nx
import pyarrow as pa
import pyarrow.parquet as pq
from pyoxigraph import Literal as RdfLiteral, NamedNode, RdfFormat, Triple, serialize

from .schema import rdf_vocabulary, triple_schema

RdfFormatName = Literal["turtle", "nt"]
RDF_FORMATS: dict[str, RdfFormatName] = {".ttl": "turtle", ".nt": "nt"}
_OXIGRAPH_FORMATS = {"turtle": RdfFormat.TURTLE, "nt": RdfFormat.N_TRIPLES}

_STRIP = "\"'“”‘’«»()[]{}.,;:!?¿¡ \t\n"
_SPACES = re.compile(r"\s+")
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_XSD = "http://www.w3.org/2001/XMLSchema#"
RDF_TYPE = NamedNode(_RDF + "type")
RDF_STATEMENT = NamedNode(_RDF + "Statement")
RDF_SUBJECT, RDF_PREDICATE, RDF_OBJECT = (NamedNode(_RDF + p) for p in ("subject", "predicate", "object"))
XSD_INTEGER, XSD_DOUBLE = NamedNode(_XSD + "integer"), NamedNode(_XSD + "double")


# -- files ------------------------------------------------------------------------------------
def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary sibling of ``path`` to write; it replaces ``path`` only when the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def records_table(records: list[dict[str, Any]]) -> pa.Table:
    """Triple records (``Triple.to_record`` rows) as a table with the project's schema."""
    return pa.Table.from_pylist(records, schema=triple_schema())


def write_parquet_shard(table: pa.Table, directory: Path, name: str) -> Path:
    """Write ``table`` as ``directory/name`` atomically; the schema must be the triple schema."""
    if not table.schema.equals(triple_schema(), check_metadata=False):
        raise ValueError(f"shard {name}: table schema differs from schemas/triple.schema.json")
    path = directory / name
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return path


# -- IRIs -------------------------------------------------------------------------------------
def iri_segment(text: str, *, keep: str = "-_~") -> str:
    """``text`` as one IRI path segment: letters and digits (any script, as IRIs allow) and the
    characters in ``keep`` stay, everything else is percent-encoded (UTF-8)."""
    return "".join(ch if ch.isalnum() or ch in keep else "".join(f"%{b:02X}" for b in ch.encode())
                   for ch in text)


def entity_slug(surface: str) -> str:
    """Stable IRI-safe key of a surface form: NFC, lower case, trimmed of surrounding punctuation,
    whitespace runs as ``_``, then :func:`iri_segment` (``são_paulo``, ``a%2Fb``)."""
    text = unicodedata.normalize("NFC", surface).lower().strip(_STRIP)
    return iri_segment(_SPACES.sub("_", text) or "_")


def _id_segment(identifier: str) -> str:
    """A document or model id as one IRI segment (case kept; ``.`` kept except a dot-only id)."""
    return iri_segment(identifier, keep="-_~" if set(identifier) <= {"."} else "-_~.")


class RdfVocabulary:
    """The terms of ``schemas/rdf_vocabulary.json`` as IRIs, and the IRI minting rules."""

    def __init__(self, spec: Mapping[str, Any] | None = None) -> None:
        spec = spec if spec is not None else rdf_vocabulary()
        self.prefixes: dict[str, str] = dict(spec["prefixes"])
        self._entity_ns = self.prefixes[spec["entity_namespace"]]
        self._relation_ns = self.prefixes[spec["relation_namespace"]]
        self._document_ns = self.prefixes[spec["document_namespace"]]
        self._extraction_ns = self.prefixes[spec["extraction_namespace"]]
        self._model_ns = self.prefixes[spec["model_namespace"]]
        self.classes = {name: self.expand(curie) for name, curie in spec["classes"].items()}
        self.properties = {name: self.expand(curie) for name, curie in spec["properties"].items()}

    def expand(self, curie: str) -> NamedNode:
        prefix, _, local = curie.partition(":")
        if prefix not in self.prefixes:
            raise ValueError(f"schemas/rdf_vocabulary.json: prefix {prefix!r} of {curie!r} is not "
                             f"declared under 'prefixes'")
        return NamedNode(self.prefixes[prefix] + local)

    def entity(self, surface: str) -> NamedNode:
        return NamedNode(self._entity_ns + entity_slug(surface))

    def relation(self, surface: str) -> NamedNode:
        return NamedNode(self._relation_ns + entity_slug(surface))

    def document(self, doc_id: str) -> NamedNode:
        return NamedNode(self._document_ns + _id_segment(doc_id))

    def extraction(self, doc_id: str, sentence_id: int, extraction_index: int) -> NamedNode:
        return NamedNode(f"{self._extraction_ns}{_id_segment(doc_id)}/{sentence_id}/"
                         f"{extraction_index}")

    def model(self, model_id: str) -> NamedNode:
        return NamedNode(self._model_ns + _id_segment(model_id))


# -- RDF --------------------------------------------------------------------------------------
_RDF_COLUMNS = ["doc_id", "sentence_id", "sentence", "extraction_index", "arg1", "rel", "arg2",
                "confidence", "model_id", "doc_url", "doc_title"]


def rdf_triples(table: pa.Table, vocabulary: RdfVocabulary) -> Iterator[Triple]:
    """The RDF statements of a table of records, streamed, 4,096 rows at a time.

    Per record: ``<ent:arg1> <rel:rel> <ent:arg2>`` and a reified statement
    ``<ext:doc/sentence/index>`` (``rdf:Statement``, ``ptoie:Extraction``) carrying
    ``rdf:subject/predicate/object``, the sentence, sentence id, extraction index, document,
    confidence (when known) and model. Entities, relations, documents (with their URL and title
    when the input was a web page) and models are typed and labelled once per table; an RDF store
    or parser merges the repeats of other tables (an RDF graph is a set).
    """
    v = vocabulary
    cls, prop = v.classes, v.properties
    lang = "pt"
    described: set[str] = set()
    entity = _memo(v.entity)
    relation = _memo(v.relation)

    def describe(node: NamedNode, klass: NamedNode, label: str, language: str | None
                 ) -> Iterator[Triple]:
        key = node.value + "\x00" + label
        if key not in described:
            described.add(key)
            yield Triple(node, RDF_TYPE, klass)
            yield Triple(node, prop["label"], RdfLiteral(label, language=language))

    for batch in table.select(_RDF_COLUMNS).to_batches(max_chunksize=4096):
        for r in batch.to_pylist():
            subject, obj = entity(r["arg1"]), entity(r["arg2"])
            predicate = relation(r["rel"])
            statement = v.extraction(r["doc_id"], r["sentence_id"], r["extraction_index"])
            document, model = v.document(r["doc_id"]), v.model(r["model_id"])
            yield Triple(subject, predicate, obj)
            yield from describe(subject, cls["Entity"], r["arg1"], lang)
            yield from describe(obj, cls["Entity"], r["arg2"], lang)
            yield from describe(predicate, cls["Relation"], r["rel"], lang)
            if document.value not in described:
                yield from describe(document, cls["Document"], r["doc_id"], None)
                if r["doc_url"]:
                    yield Triple(document, prop["url"], NamedNode(r["doc_url"]))
                if r["doc_title"]:
                    yield Triple(document, prop["title"], RdfLiteral(r["doc_title"]))
                described.add(document.value)
            yield from describe(model, cls["Model"], r["model_id"], None)
            yield Triple(statement, RDF_TYPE, RDF_STATEMENT)
            yield Triple(statement, RDF_TYPE, cls["Extraction"])
            yield Triple(statement, RDF_SUBJECT, subject)
            yield Triple(statement, RDF_PREDICATE, predicate)
            yield Triple(statement, RDF_OBJECT, obj)
            yield Triple(statement, prop["sentence"], RdfLiteral(r["sentence"], language=lang))
            yield Triple(statement, prop["sentenceId"],
                         RdfLiteral(str(r["sentence_id"]), datatype=XSD_INTEGER))
            yield Triple(statement, prop["extractionIndex"],
                         RdfLiteral(str(r["extraction_index"]), datatype=XSD_INTEGER))
            yield Triple(statement, prop["document"], document)
            yield Triple(statement, prop["model"], model)
            if r["confidence"] is not None:
                yield Triple(statement, prop["confidence"],
                             RdfLiteral(repr(float(r["confidence"])), datatype=XSD_DOUBLE))


def _memo(mint):
    """``mint`` with a cache of the table at hand (surface forms repeat across its rows)."""
    cache: dict[str, NamedNode] = {}

    def cached(surface: str) -> NamedNode:
        node = cache.get(surface)
        if node is None:
            node = cache[surface] = mint(surface)
        return node
    return cached


def rdf_format(path: Path) -> RdfFormatName:
    """RDF format of an output path, from its extension (.ttl Turtle, .nt N-Triples)."""
    try:
        return RDF_FORMATS[path.suffix.lower()]
    except KeyError:
        raise ValueError(f"{path}: RDF output must end in {' or '.join(RDF_FORMATS)} "
                         f"(Turtle or N-Triples)") from None


def oxigraph_format(fmt: RdfFormatName) -> RdfFormat:
    return _OXIGRAPH_FORMATS[fmt]


def write_rdf(tables: Iterable[pa.Table], output: IO[bytes], fmt: RdfFormatName,
              vocabulary: RdfVocabulary | None = None) -> None:
    """Serialise the statements of ``tables`` to ``output`` (pyoxigraph's streaming writer; one
    Turtle document per table, each with the vocabulary's prefixes, which concatenate into one
    valid Turtle file)."""
    vocabulary = vocabulary or RdfVocabulary()
    prefixes = vocabulary.prefixes if fmt == "turtle" else None
    for table in tables:
        serialize(rdf_triples(table, vocabulary), output, oxigraph_format(fmt), prefixes=prefixes)


# -- NetworkX ---------------------------------------------------------------------------------
_GRAPH_COLUMNS = ["doc_id", "sentence_id", "sentence", "extraction_index", "arg1", "rel", "arg2",
                  "confidence", "model_id"]


def networkx_graph(tables: Iterable[pa.Table], vocabulary: RdfVocabulary | None = None
                   ) -> nx.MultiDiGraph:
    """A node per entity IRI (attribute ``label``: the first surface form seen), an edge per
    record keyed by its statement IRI, with ``rel``, ``relation`` (IRI), ``confidence`` (absent
    when unknown), ``doc_id``, ``sentence_id``, ``extraction_index``, ``sentence``, ``model_id``."""
    v = vocabulary or RdfVocabulary()
    graph = nx.MultiDiGraph()
    for table in tables:
        for batch in table.select(_GRAPH_COLUMNS).to_batches(max_chunksize=4096):
            for r in batch.to_pylist():
                subject, obj = v.entity(r["arg1"]).value, v.entity(r["arg2"]).value
                for node, surface in ((subject, r["arg1"]), (obj, r["arg2"])):
                    if node not in graph:
                        graph.add_node(node, label=surface)
                edge = {"rel": r["rel"], "relation": v.relation(r["rel"]).value,
                        "doc_id": r["doc_id"], "sentence_id": int(r["sentence_id"]),
                        "extraction_index": int(r["extraction_index"]),
                        "sentence": r["sentence"], "model_id": r["model_id"]}
                if r["confidence"] is not None:
                    edge["confidence"] = float(r["confidence"])
                key = v.extraction(r["doc_id"], r["sentence_id"], r["extraction_index"]).value
                graph.add_edge(subject, obj, key=key, **edge)
    return graph


def write_graphml(graph: nx.MultiDiGraph, path: Path) -> None:
    with atomic_path(path) as tmp:
        nx.write_graphml(graph, tmp)


def write_node_link(graph: nx.MultiDiGraph, path: Path) -> None:
    data = nx.node_link_data(graph, edges="edges")
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False)
