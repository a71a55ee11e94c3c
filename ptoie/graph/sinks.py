"""Sinks: triple records -> Parquet shards (the durable store) -> RDF statements and NetworkX graphs.

* :func:`write_parquet_shard` writes one shard atomically (temporary file, fsync, ``os.replace``,
  fsync of the folder): a shard either exists complete or not at all.
* :class:`RdfVocabulary` mints IRIs with the namespaces and terms of ``schemas/rdf_vocabulary.json``
  (read at run time) from the canonical keys of :mod:`ptoie.graph.canonical`.
* :func:`rdf_triples` turns a table of records into RDF statements (pyoxigraph terms), streamed:
  every triple plus its reified provenance statement; :func:`label_triples` gives entities and
  relations their ``rdfs:label``; :func:`write_rdf` serialises them with
  pyoxigraph's streaming Turtle / N-Triples writer, a table at a time, never a whole graph in memory.
* :func:`networkx_graph` builds the NetworkX ``MultiDiGraph`` (entities as nodes, one edge per
  triple) and :func:`write_graphml` / :func:`write_node_link` write it. A NetworkX graph lives in
  memory, so callers bound its size (``ptoie.graph.build``).

The graph-building stage that puts these together, incrementally, is :mod:`ptoie.graph.build`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Literal

import networkx as nx
import pyarrow as pa
import pyarrow.parquet as pq
from pyoxigraph import Literal as RdfLiteral, NamedNode, RdfFormat, Triple, serialize

from ptoie.graph import canonical
from ptoie.graph.mentions import Key as MentionKey, Mention
from ptoie.schema import rdf_vocabulary, triple_schema

RdfFormatName = Literal["turtle", "nt"]
RDF_FORMATS: dict[str, RdfFormatName] = {".ttl": "turtle", ".nt": "nt"}
_OXIGRAPH_FORMATS = {"turtle": RdfFormat.TURTLE, "nt": RdfFormat.N_TRIPLES}

_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_XSD = "http://www.w3.org/2001/XMLSchema#"
RDF_TYPE = NamedNode(_RDF + "type")
RDF_STATEMENT = NamedNode(_RDF + "Statement")
RDF_SUBJECT, RDF_PREDICATE, RDF_OBJECT = (NamedNode(_RDF + p) for p in ("subject", "predicate", "object"))
XSD_INTEGER, XSD_DOUBLE = NamedNode(_XSD + "integer"), NamedNode(_XSD + "double")
_LANG = "pt"


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
    """The IRI segment of the entity that the argument ``surface`` names: its canonical key
    (:func:`ptoie.graph.canonical.subject`: ``O Brasil``, ``do Brasil`` -> ``brasil``) through
    :func:`iri_segment` (``são paulo`` -> ``sao_paulo``, ``a/b`` -> ``a%2Fb``)."""
    return iri_segment(canonical.subject(surface).key)


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
        """The entity a triple's first argument names (:func:`entity_slug`)."""
        return NamedNode(self._entity_ns + entity_slug(surface))

    def entity_key(self, key: str) -> NamedNode:
        """The entity of a canonical key (:class:`ptoie.graph.canonical.Entity`)."""
        return NamedNode(self._entity_ns + iri_segment(key))

    def relation(self, surface: str, preposition: str | None = None) -> NamedNode:
        """The relation of a phrase (:func:`ptoie.graph.canonical.relation`: ``nasceu em`` ->
        ``rel:nascer_em``)."""
        return self.relation_key(canonical.relation(surface, preposition)[0])

    def relation_key(self, key: str) -> NamedNode:
        return NamedNode(self._relation_ns + iri_segment(key))

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


def rdf_object(term: canonical.Entity | canonical.Value, vocabulary: RdfVocabulary
               ) -> NamedNode | RdfLiteral:
    """The RDF object of a second argument: its entity, or its literal (typed, or ``@pt``)."""
    if isinstance(term, canonical.Entity):
        return vocabulary.entity_key(term.key)
    return _literal(term)


def _literal(value: canonical.Value) -> RdfLiteral:
    if value.datatype is None:
        return RdfLiteral(value.lexical, language=_LANG)
    return RdfLiteral(value.lexical, datatype=NamedNode(value.datatype))


def rdf_triples(table: pa.Table, vocabulary: RdfVocabulary,
                mentions: Mapping[MentionKey, Mention] | None = None) -> Iterator[Triple]:
    """The RDF statements of a table of records, streamed, 4,096 rows at a time.

    Per record: ``<ent:subject> <rel:relation> <ent:object>`` (or a literal object) with the
    canonical terms of :mod:`ptoie.graph.canonical`, and a reified statement
    ``<ext:doc/sentence/index>`` (``rdf:Statement``, ``ptoie:Extraction``) carrying
    ``rdf:subject/predicate/object``, the parts as written (``ptoie:subjectText``,
    ``predicateText``, ``objectText``), a literal's ``ptoie:unit``, a time split off an argument
    (``ptoie:time``), a place split off the second (``ptoie:place``, an entity), the sentence,
    sentence id, extraction index, document, confidence (when known) and model. Entities and
    relations are typed and given each surface form as a ``skos:altLabel`` once per table (their
    ``rdfs:label``, the most frequent form of the whole graph, comes from :func:`label_triples`);
    documents (with their URL and title when the input was a web page) and models are typed and
    labelled. An RDF store or parser merges the repeats of other tables (an RDF graph is a set).
    A subject in ``mentions`` (:func:`ptoie.graph.mentions.resolve_sources`) is the entity it
    refers to, and its statement says by which rule (``ptoie:resolvedBy``).
    """
    v = vocabulary
    cls, prop = v.classes, v.properties
    described: set[str] = set()
    entity = _memo(v.entity_key)
    relation = _memo(v.relation_key)

    def describe(node: NamedNode, klass: NamedNode, label: str, language: str | None,
                 labelled_by: NamedNode) -> Iterator[Triple]:
        key = node.value + "\x00" + label
        if key not in described:
            described.add(key)
            yield Triple(node, RDF_TYPE, klass)
            yield Triple(node, labelled_by, RdfLiteral(label, language=language))

    for batch in table.select(_RDF_COLUMNS).to_batches(max_chunksize=4096):
        for r in batch.to_pylist():
            first, second = canonical.subject(r["arg1"]), canonical.argument(r["arg2"])
            mention = mentions.get((r["doc_id"], r["sentence_id"], r["extraction_index"])
                                   ) if mentions else None
            first = mention.entity if mention is not None else first
            relation_key, relation_label = canonical.relation(r["rel"], second.preposition)
            subject, predicate = entity(first.key), relation(relation_key)
            obj = rdf_object(second, v)
            statement = v.extraction(r["doc_id"], r["sentence_id"], r["extraction_index"])
            document, model = v.document(r["doc_id"]), v.model(r["model_id"])
            yield Triple(subject, predicate, obj)
            yield from describe(subject, cls["Entity"], first.label, _LANG, prop["altLabel"])
            if isinstance(second, canonical.Entity):
                yield from describe(obj, cls["Entity"], second.label, _LANG, prop["altLabel"])
            yield from describe(predicate, cls["Relation"], relation_label, _LANG,
                                prop["altLabel"])
            if document.value not in described:
                yield from describe(document, cls["Document"], r["doc_id"], None, prop["label"])
                if r["doc_url"]:
                    yield Triple(document, prop["url"], NamedNode(r["doc_url"]))
                if r["doc_title"]:
                    yield Triple(document, prop["title"], RdfLiteral(r["doc_title"]))
                described.add(document.value)
            yield from describe(model, cls["Model"], r["model_id"], None, prop["label"])
            yield Triple(statement, RDF_TYPE, RDF_STATEMENT)
            yield Triple(statement, RDF_TYPE, cls["Extraction"])
            yield Triple(statement, RDF_SUBJECT, subject)
            yield Triple(statement, RDF_PREDICATE, predicate)
            yield Triple(statement, RDF_OBJECT, obj)
            for name, column in (("subjectText", "arg1"), ("predicateText", "rel"),
                                 ("objectText", "arg2")):
                yield Triple(statement, prop[name], RdfLiteral(r[column], language=_LANG))
            if isinstance(second, canonical.Value) and second.unit:
                yield Triple(statement, prop["unit"], RdfLiteral(second.unit))
            for time in _times(first, second):
                yield Triple(statement, prop["time"], _literal(time))
            if isinstance(second, canonical.Entity) and second.place is not None:
                place = entity(second.place.key)
                yield Triple(statement, prop["place"], place)
                yield from describe(place, cls["Entity"], second.place.label, _LANG,
                                    prop["altLabel"])
            if mention is not None:
                yield Triple(statement, prop["resolvedBy"], RdfLiteral(mention.rule))
            yield Triple(statement, prop["sentence"], RdfLiteral(r["sentence"], language=_LANG))
            yield Triple(statement, prop["sentenceId"],
                         RdfLiteral(str(r["sentence_id"]), datatype=XSD_INTEGER))
            yield Triple(statement, prop["extractionIndex"],
                         RdfLiteral(str(r["extraction_index"]), datatype=XSD_INTEGER))
            yield Triple(statement, prop["document"], document)
            yield Triple(statement, prop["model"], model)
            if r["confidence"] is not None:
                yield Triple(statement, prop["confidence"],
                             RdfLiteral(repr(float(r["confidence"])), datatype=XSD_DOUBLE))


def _times(first: canonical.Entity, second: canonical.Entity | canonical.Value
           ) -> list[canonical.Value]:
    """The time expressions split off the two arguments."""
    times = [first.time] if first.time else []
    if second.time and second.time != first.time:
        times.append(second.time)
    return times


def label_triples(entities: Iterable[tuple[str, str]], relations: Iterable[tuple[str, str]],
                  vocabulary: RdfVocabulary) -> Iterator[Triple]:
    """``rdfs:label`` of each entity and relation, from ``(key, label)`` pairs (the most frequent
    surface form of each key: :func:`ptoie.graph.canonical.preferred_labels`)."""
    label = vocabulary.properties["label"]
    for key, text in entities:
        yield Triple(vocabulary.entity_key(key), label, RdfLiteral(text, language=_LANG))
    for key, text in relations:
        yield Triple(vocabulary.relation_key(key), label, RdfLiteral(text, language=_LANG))


def _memo(mint):
    """``mint`` with a cache of the table at hand (keys repeat across its rows)."""
    cache: dict[str, NamedNode] = {}

    def cached(key: str) -> NamedNode:
        node = cache.get(key)
        if node is None:
            node = cache[key] = mint(key)
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
              vocabulary: RdfVocabulary | None = None,
              mentions: Mapping[MentionKey, Mention] | None = None) -> None:
    """Serialise the statements of ``tables`` to ``output`` (pyoxigraph's streaming writer; one
    Turtle document per table, each with the vocabulary's prefixes, which concatenate into one
    valid Turtle file)."""
    vocabulary = vocabulary or RdfVocabulary()
    prefixes = vocabulary.prefixes if fmt == "turtle" else None
    for table in tables:
        serialize(rdf_triples(table, vocabulary, mentions), output, oxigraph_format(fmt),
                  prefixes=prefixes)


# -- NetworkX ---------------------------------------------------------------------------------
_GRAPH_COLUMNS = ["doc_id", "sentence_id", "sentence", "extraction_index", "arg1", "rel", "arg2",
                  "confidence", "model_id"]


def networkx_graph(tables: Iterable[pa.Table], vocabulary: RdfVocabulary | None = None,
                   labels: Mapping[str, str] | None = None,
                   mentions: Mapping[MentionKey, Mention] | None = None) -> nx.MultiDiGraph:
    """A node per entity IRI (``kind`` ``entity``; ``label``: ``labels[key]`` when given, the
    most frequent surface form, else the first one seen) and a node per literal object (``kind``
    ``literal``, keyed ``<statement IRI>#object``, with ``label``, ``datatype`` and ``unit`` when
    known: a leaf of its statement, never shared, so a number is never a hub); an edge per record
    keyed by its statement IRI, with ``rel`` (as written), ``relation`` (IRI),
    ``relation_label``, ``confidence`` (absent when unknown), ``time`` (when split off an
    argument), ``doc_id``, ``sentence_id``, ``extraction_index``, ``sentence``, ``model_id``,
    ``resolved_by`` (the rule, for a subject in ``mentions``: see :func:`rdf_triples`), ``place``
    (the IRI of a place split off the second argument)."""
    v = vocabulary or RdfVocabulary()
    labels = labels or {}
    graph = nx.MultiDiGraph()

    def add_entity(term: canonical.Entity) -> str:
        node = v.entity_key(term.key).value
        if node not in graph:
            graph.add_node(node, kind="entity", label=labels.get(term.key, term.label))
        return node

    for table in tables:
        for batch in table.select(_GRAPH_COLUMNS).to_batches(max_chunksize=4096):
            for r in batch.to_pylist():
                first, second = canonical.subject(r["arg1"]), canonical.argument(r["arg2"])
                mention = mentions.get((r["doc_id"], r["sentence_id"], r["extraction_index"])
                                       ) if mentions else None
                first = mention.entity if mention is not None else first
                relation_key, relation_label = canonical.relation(r["rel"], second.preposition)
                key = v.extraction(r["doc_id"], r["sentence_id"], r["extraction_index"]).value
                subject = add_entity(first)
                if isinstance(second, canonical.Entity):
                    obj = add_entity(second)
                else:
                    obj = key + "#object"
                    literal = {"kind": "literal", "label": second.lexical}
                    if second.datatype:
                        literal["datatype"] = second.datatype
                    if second.unit:
                        literal["unit"] = second.unit
                    graph.add_node(obj, **literal)
                edge = {"rel": r["rel"], "relation": v.relation_key(relation_key).value,
                        "relation_label": relation_label,
                        "doc_id": r["doc_id"], "sentence_id": int(r["sentence_id"]),
                        "extraction_index": int(r["extraction_index"]),
                        "sentence": r["sentence"], "model_id": r["model_id"]}
                if r["confidence"] is not None:
                    edge["confidence"] = float(r["confidence"])
                if mention is not None:
                    edge["resolved_by"] = mention.rule
                if isinstance(second, canonical.Entity) and second.place is not None:
                    edge["place"] = v.entity_key(second.place.key).value
                times = _times(first, second)
                if times:
                    edge["time"] = " ".join(t.lexical for t in times)
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
