"""Sinks: triple records -> Parquet shards (the durable store) -> RDF and NetworkX graphs.

* :func:`write_parquet_shard` writes one shard atomically (temporary file, fsync, ``os.replace``,
  fsync of the folder): a shard either exists complete or not at all.
* :class:`RdfVocabulary` mints IRIs with the namespaces and terms of ``schemas/rdf_vocabulary.json``
  (read at run time); :func:`entity_slug` is the normalisation behind entity and relation IRIs.
* :class:`KnowledgeGraph` turns records into an rdflib graph (every triple plus its reified
  provenance statement) and a NetworkX ``MultiDiGraph`` (entities as nodes, one edge per triple);
  :meth:`KnowledgeGraph.write_rdf`, :meth:`~KnowledgeGraph.write_graphml` and
  :meth:`~KnowledgeGraph.write_node_link` write them atomically.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import networkx as nx
import pyarrow as pa
import pyarrow.parquet as pq
from rdflib import RDF, XSD, Graph, Literal as RdfLiteral, URIRef

from .schema import rdf_vocabulary, triple_schema

RdfFormat = Literal["turtle", "nt"]
RDF_FORMATS: dict[str, RdfFormat] = {".ttl": "turtle", ".nt": "nt"}

_STRIP = "\"'“”‘’«»()[]{}.,;:!?¿¡ \t\n"
_SPACES = re.compile(r"\s+")


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
    """The terms of ``schemas/rdf_vocabulary.json`` as rdflib IRIs, and the IRI minting rules."""

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

    def expand(self, curie: str) -> URIRef:
        prefix, _, local = curie.partition(":")
        if prefix not in self.prefixes:
            raise ValueError(f"schemas/rdf_vocabulary.json: prefix {prefix!r} of {curie!r} is not "
                             f"declared under 'prefixes'")
        return URIRef(self.prefixes[prefix] + local)

    def entity(self, surface: str) -> URIRef:
        return URIRef(self._entity_ns + entity_slug(surface))

    def relation(self, surface: str) -> URIRef:
        return URIRef(self._relation_ns + entity_slug(surface))

    def document(self, doc_id: str) -> URIRef:
        return URIRef(self._document_ns + _id_segment(doc_id))

    def extraction(self, doc_id: str, sentence_id: int, extraction_index: int) -> URIRef:
        return URIRef(f"{self._extraction_ns}{_id_segment(doc_id)}/{sentence_id}/"
                      f"{extraction_index}")

    def model(self, model_id: str) -> URIRef:
        return URIRef(self._model_ns + _id_segment(model_id))


# -- graphs -----------------------------------------------------------------------------------
class KnowledgeGraph:
    """The RDF graph and the NetworkX multigraph of a set of triple records, built together.

    RDF: ``<ent:arg1> <rel:rel> <ent:arg2>`` for every triple, and for every record a reified
    statement ``<ext:doc/sentence/index>`` (``rdf:Statement``, ``ptoie:Extraction``) carrying
    ``rdf:subject/predicate/object``, the sentence, sentence id, extraction index, document,
    confidence and model. NetworkX: a node per entity IRI (attribute ``label``), an edge per record
    keyed by the statement IRI with attributes ``rel``, ``relation``, ``confidence`` (absent when
    unknown), ``doc_id``, ``sentence_id``, ``extraction_index``, ``sentence``, ``model_id``.
    """

    def __init__(self, vocabulary: RdfVocabulary | None = None) -> None:
        self.vocabulary = vocabulary or RdfVocabulary()
        self.rdf = Graph()
        for prefix, namespace in self.vocabulary.prefixes.items():
            self.rdf.bind(prefix, namespace)
        self.graph = nx.MultiDiGraph()
        self.n_records = 0

    def add_table(self, table: pa.Table) -> None:
        for batch in table.to_batches(max_chunksize=4096):
            self.add_records(batch.to_pylist())

    def add_records(self, records: Iterable[Mapping[str, Any]]) -> None:
        v, g = self.vocabulary, self.rdf
        cls, prop = v.classes, v.properties
        for r in records:
            subject, obj = v.entity(r["arg1"]), v.entity(r["arg2"])
            predicate = v.relation(r["rel"])
            statement = v.extraction(r["doc_id"], r["sentence_id"], r["extraction_index"])
            document, model = v.document(r["doc_id"]), v.model(r["model_id"])
            g.add((subject, predicate, obj))
            for node, surface in ((subject, r["arg1"]), (obj, r["arg2"])):
                g.add((node, RDF.type, cls["Entity"]))
                g.add((node, prop["label"], RdfLiteral(surface, lang="pt")))
            g.add((predicate, RDF.type, cls["Relation"]))
            g.add((predicate, prop["label"], RdfLiteral(r["rel"], lang="pt")))
            g.add((document, RDF.type, cls["Document"]))
            g.add((document, prop["label"], RdfLiteral(r["doc_id"])))
            g.add((model, RDF.type, cls["Model"]))
            g.add((model, prop["label"], RdfLiteral(r["model_id"])))
            for p, o in ((RDF.type, RDF.Statement), (RDF.type, cls["Extraction"]),
                         (RDF.subject, subject), (RDF.predicate, predicate), (RDF.object, obj),
                         (prop["sentence"], RdfLiteral(r["sentence"], lang="pt")),
                         (prop["sentenceId"], RdfLiteral(r["sentence_id"], datatype=XSD.integer)),
                         (prop["extractionIndex"],
                          RdfLiteral(r["extraction_index"], datatype=XSD.integer)),
                         (prop["document"], document), (prop["model"], model)):
                g.add((statement, p, o))
            if r["confidence"] is not None:
                g.add((statement, prop["confidence"],
                       RdfLiteral(float(r["confidence"]), datatype=XSD.double)))

            for node, surface in ((subject, r["arg1"]), (obj, r["arg2"])):
                if node not in self.graph:
                    self.graph.add_node(str(node), label=surface)
            edge = {"rel": r["rel"], "relation": str(predicate), "doc_id": r["doc_id"],
                    "sentence_id": int(r["sentence_id"]),
                    "extraction_index": int(r["extraction_index"]),
                    "sentence": r["sentence"], "model_id": r["model_id"]}
            if r["confidence"] is not None:
                edge["confidence"] = float(r["confidence"])
            self.graph.add_edge(str(subject), str(obj), key=str(statement), **edge)
            self.n_records += 1

    def n_statements(self) -> int:
        """Reified statements in the RDF graph (one per record)."""
        return sum(1 for _ in self.rdf.subjects(RDF.type, RDF.Statement))

    def write_rdf(self, path: Path) -> None:
        fmt = rdf_format(path)
        with atomic_path(path) as tmp:
            self.rdf.serialize(destination=str(tmp), format=fmt, encoding="utf-8")

    def write_graphml(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            nx.write_graphml(self.graph, tmp)

    def write_node_link(self, path: Path) -> None:
        data = nx.node_link_data(self.graph, edges="edges")
        with atomic_path(path) as tmp:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(data, fh, ensure_ascii=False)


def rdf_format(path: Path) -> RdfFormat:
    """rdflib format of an RDF output path, from its extension (.ttl Turtle, .nt N-Triples)."""
    try:
        return RDF_FORMATS[path.suffix.lower()]
    except KeyError:
        raise ValueError(f"{path}: RDF output must end in {' or '.join(RDF_FORMATS)} "
                         f"(Turtle or N-Triples)") from None
