"""RDF: the vocabulary and its IRIs, the statements of triple records, and their serialisation.

* :class:`RdfVocabulary` mints IRIs with the namespaces and terms of ``schemas/rdf_vocabulary.json``
  (read at run time) from the canonical keys of :mod:`ptoie.graph.canonical`.
* :func:`rdf_triples` turns a table of records into RDF statements (pyoxigraph terms), streamed:
  every triple plus its reified provenance statement; :func:`label_triples` gives entities and
  relations their ``rdfs:label``.
* :func:`write_rdf` serialises them with pyoxigraph's streaming Turtle / N-Triples writer, a table
  at a time, never a whole graph in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Literal, NamedTuple, TypeVar

import pyarrow as pa
from pyoxigraph import Literal as RdfLiteral, NamedNode, Quad, RdfFormat, parse, serialize
from pyoxigraph import Triple as RdfTriple

from ptoie.graph import canonical
from ptoie.graph.mentions import Key as MentionKey, Mention
from ptoie.schema import rdf_vocabulary

RdfFormatName = Literal["turtle", "nt"]
RDF_FORMATS: dict[str, RdfFormatName] = {".ttl": "turtle", ".nt": "nt"}
_OXIGRAPH_FORMATS = {"turtle": RdfFormat.TURTLE, "nt": RdfFormat.N_TRIPLES}

_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_XSD = "http://www.w3.org/2001/XMLSchema#"
_RDF_TYPE, _RDF_STATEMENT = f"<{_RDF}type>", f"<{_RDF}Statement>"
_RDF_SUBJECT, _RDF_PREDICATE, _RDF_OBJECT = (f"<{_RDF}{p}>"
                                             for p in ("subject", "predicate", "object"))
_XSD_INTEGER, _XSD_DOUBLE = _XSD + "integer", _XSD + "double"
_LANG = "pt"
_K = TypeVar("_K", bound=Hashable)
_T = TypeVar("_T")


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
        return NamedNode(f"{self.extraction_prefix(doc_id)}{sentence_id}/{extraction_index}")

    def extraction_prefix(self, doc_id: str) -> str:
        """The start of the IRIs of the extractions of a document (sentence and index follow)."""
        return f"{self._extraction_ns}{_id_segment(doc_id)}/"

    def model(self, model_id: str) -> NamedNode:
        return NamedNode(self._model_ns + _id_segment(model_id))


# -- statements -------------------------------------------------------------------------------


def split_times(first: canonical.Entity, second: canonical.Entity | canonical.Value
                ) -> list[canonical.Value]:
    """The time expressions split off a triple's two arguments (each once)."""
    times = [first.time] if first.time else []
    if second.time and second.time != first.time:
        times.append(second.time)
    return times


class _Record(NamedTuple):
    """One row of a table of triples: the columns the RDF statements are made of."""

    doc_id: str
    sentence_id: int
    sentence: str
    extraction_index: int
    arg1: str
    rel: str
    arg2: str
    confidence: float | None
    model_id: str
    doc_url: str | None
    doc_title: str | None


def rdf_triples(table: pa.Table, vocabulary: RdfVocabulary,
                mentions: Mapping[MentionKey, Mention] | None = None) -> Iterator[Quad]:
    """The RDF statements of a table of records (in the default graph), streamed, 1,024 rows at
    a time.

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
    A subject in ``mentions`` (:func:`ptoie.graph.mention_pass.resolve_sources`) is the entity it
    refers to, and its statement says by which rule (``ptoie:resolvedBy``).

    The statements are written as N-Triples lines and read back by pyoxigraph's parser, which
    builds the terms in Rust: making them one by one with pyoxigraph's Python constructors
    (1.5 µs a triple) took longer than the rest of the work on a row.
    """
    statements = _RecordStatements(vocabulary, mentions)
    for batch in table.select(list(_Record._fields)).to_batches(max_chunksize=1024):
        lines: list[str] = []
        for values in zip(*(column.to_pylist() for column in batch.columns)):
            statements.of(_Record(*values), lines)
        # lenient: every IRI was checked as it was made (NamedNode), once per term
        yield from parse("".join(lines), RdfFormat.N_TRIPLES, lenient=True)


def _nt_text(text: str) -> str:
    """The body of an N-Triples string literal (its ECHAR escapes)."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")


def _nt_iri(node: NamedNode) -> str:
    return f"<{node.value}>"


def _nt_literal(lexical: str, *, language: str | None = None, datatype: str | None = None) -> str:
    """An N-Triples literal: tagged with ``language``, typed ``datatype`` (an IRI), or plain."""
    if language is not None:
        return f'"{_nt_text(lexical)}"@{language}'
    if datatype is not None:
        return f'"{_nt_text(lexical)}"^^<{datatype}>'
    return f'"{_nt_text(lexical)}"'


def _nt_value(value: canonical.Value) -> str:
    """The literal of a value: typed, or a Portuguese string."""
    if value.datatype is None:
        return _nt_literal(value.lexical, language=_LANG)
    return _nt_literal(value.lexical, datatype=value.datatype)


class _RecordStatements:
    """The statements of records, one table's worth, as N-Triples lines: each entity, relation,
    document and model is described once (the nodes the table names are remembered); a subject
    in ``mentions`` is the entity it refers to. Terms that recur from row to row are written
    once."""

    def __init__(self, vocabulary: RdfVocabulary,
                 mentions: Mapping[MentionKey, Mention] | None = None) -> None:
        self.mentions = mentions or {}
        self.classes = {name: _nt_iri(node) for name, node in vocabulary.classes.items()}
        self.properties = {name: _nt_iri(node) for name, node in vocabulary.properties.items()}
        self.described: set[tuple[str, str, str]] = set()
        self.entity = _memo(lambda key: _nt_iri(vocabulary.entity_key(key)))
        self.relation = _memo(lambda key: _nt_iri(vocabulary.relation_key(key)))
        self.document = _memo(lambda doc_id: _nt_iri(vocabulary.document(doc_id)))
        self.model = _memo(lambda model_id: _nt_iri(vocabulary.model(model_id)))
        self.extractions = _memo(  # the start of a document's extraction IRIs, checked once
            lambda doc_id: NamedNode(vocabulary.extraction_prefix(doc_id)).value)
        self.url = _memo(lambda url: _nt_iri(NamedNode(url)))  # a URL that is no IRI: ValueError
        self.text = _memo(lambda text: _nt_literal(text, language=_LANG))
        self.integer = _memo(lambda n: _nt_literal(str(n), datatype=_XSD_INTEGER))

    def of(self, r: _Record, out: list[str]) -> None:
        """Append the triple of record ``r``, the descriptions of the nodes it names first, and
        its reified statement to ``out``."""
        cls, prop = self.classes, self.properties
        first, second = canonical.subject(r.arg1), canonical.argument(r.arg2)
        mention = self.mentions.get((r.doc_id, r.sentence_id, r.extraction_index))
        first = mention.entity if mention is not None else first
        relation_key, relation_label = canonical.relation(r.rel, second.preposition)
        subject, predicate = self.entity(first.key), self.relation(relation_key)
        second_entity = isinstance(second, canonical.Entity)
        obj = self.entity(second.key) if second_entity else _nt_value(second)
        statement = f"<{self.extractions(r.doc_id)}{r.sentence_id}/{r.extraction_index}>"
        out.append(f"{subject} {predicate} {obj} .\n")
        self._describe(out, "E", first.key, subject, cls["Entity"], first.label,
                       prop["altLabel"])
        if second_entity:
            self._describe(out, "E", second.key, obj, cls["Entity"], second.label,
                           prop["altLabel"])
        self._describe(out, "R", relation_key, predicate, cls["Relation"], relation_label,
                       prop["altLabel"])
        self._document(out, r)
        model = self.model(r.model_id)
        self._describe(out, "M", r.model_id, model, cls["Model"], r.model_id, prop["label"],
                       language=None)
        out.append(f"{statement} {_RDF_TYPE} {_RDF_STATEMENT} .\n"
                   f"{statement} {_RDF_TYPE} {cls['Extraction']} .\n"
                   f"{statement} {_RDF_SUBJECT} {subject} .\n"
                   f"{statement} {_RDF_PREDICATE} {predicate} .\n"
                   f"{statement} {_RDF_OBJECT} {obj} .\n")
        self._provenance(out, statement, r, first, second, mention)

    def _describe(self, out: list[str], kind: str, key: str, node: str, klass: str, label: str,
                  labelled_by: str, *, language: str | None = _LANG) -> None:
        """``node``'s class and ``label``, unless this table has given them already (``kind``
        and ``key`` name the node)."""
        seen = (kind, key, label)
        if seen not in self.described:
            self.described.add(seen)
            out.append(f"{node} {_RDF_TYPE} {klass} .\n"
                       f"{node} {labelled_by} {_nt_literal(label, language=language)} .\n")

    def _document(self, out: list[str], r: _Record) -> None:
        """The document of record ``r``: its class and id, and its URL and title when known."""
        if ("D", r.doc_id, r.doc_id) in self.described:  # described below, once
            return
        prop, document = self.properties, self.document(r.doc_id)
        self._describe(out, "D", r.doc_id, document, self.classes["Document"], r.doc_id,
                       prop["label"], language=None)
        if r.doc_url:
            out.append(f"{document} {prop['url']} {self.url(r.doc_url)} .\n")
        if r.doc_title:
            out.append(f"{document} {prop['title']} {_nt_literal(r.doc_title)} .\n")

    def _provenance(self, out: list[str], statement: str, r: _Record, first: canonical.Entity,
                    second: canonical.Entity | canonical.Value, mention: Mention | None) -> None:
        """What the reified ``statement`` of record ``r`` says besides its subject, predicate
        and object: the text, unit, times, place, the rule that resolved its subject
        (``mention``), sentence, position, document, model, confidence."""
        prop, text = self.properties, self.text
        out.append(f"{statement} {prop['subjectText']} {text(r.arg1)} .\n"
                   f"{statement} {prop['predicateText']} {text(r.rel)} .\n"
                   f"{statement} {prop['objectText']} {text(r.arg2)} .\n")
        if isinstance(second, canonical.Value) and second.unit:
            out.append(f"{statement} {prop['unit']} {_nt_literal(second.unit)} .\n")
        for time in split_times(first, second):
            out.append(f"{statement} {prop['time']} {_nt_value(time)} .\n")
        if isinstance(second, canonical.Entity) and second.place is not None:
            place = self.entity(second.place.key)
            out.append(f"{statement} {prop['place']} {place} .\n")
            self._describe(out, "E", second.place.key, place, self.classes["Entity"],
                           second.place.label, prop["altLabel"])
        if mention is not None:
            out.append(f"{statement} {prop['resolvedBy']} {_nt_literal(mention.rule)} .\n")
        out.append(f"{statement} {prop['sentence']} {text(r.sentence)} .\n"
                   f"{statement} {prop['sentenceId']} {self.integer(r.sentence_id)} .\n"
                   f"{statement} {prop['extractionIndex']} {self.integer(r.extraction_index)} .\n"
                   f"{statement} {prop['document']} {self.document(r.doc_id)} .\n"
                   f"{statement} {prop['model']} {self.model(r.model_id)} .\n")
        if r.confidence is not None:
            confidence = _nt_literal(repr(float(r.confidence)), datatype=_XSD_DOUBLE)
            out.append(f"{statement} {prop['confidence']} {confidence} .\n")


def label_triples(entities: Iterable[tuple[str, str]], relations: Iterable[tuple[str, str]],
                  vocabulary: RdfVocabulary) -> Iterator[RdfTriple]:
    """``rdfs:label`` of each entity and relation, from ``(key, label)`` pairs (the most frequent
    surface form of each key: :func:`ptoie.graph.canonical_sql.preferred_labels`)."""
    label = vocabulary.properties["label"]
    for key, text in entities:
        yield RdfTriple(vocabulary.entity_key(key), label, RdfLiteral(text, language=_LANG))
    for key, text in relations:
        yield RdfTriple(vocabulary.relation_key(key), label, RdfLiteral(text, language=_LANG))


def _memo(mint: Callable[[_K], _T]) -> Callable[[_K], _T]:
    """``mint`` with a cache of the table at hand (keys repeat across its rows)."""
    cache: dict[_K, _T] = {}

    def cached(key: _K) -> _T:
        node = cache.get(key)
        if node is None:
            node = cache[key] = mint(key)
        return node
    return cached


# -- serialisation ----------------------------------------------------------------------------
def rdf_format(path: Path) -> RdfFormatName:
    """RDF format of an output path, from its extension (.ttl Turtle, .nt N-Triples)."""
    try:
        return RDF_FORMATS[path.suffix.lower()]
    except KeyError:
        raise ValueError(f"{path}: RDF output must end in {' or '.join(RDF_FORMATS)} "
                         f"(Turtle or N-Triples)") from None


def rdf_extension(fmt: RdfFormatName) -> str:
    """The file extension of an RDF format (``.ttl``, ``.nt``)."""
    return ".ttl" if fmt == "turtle" else ".nt"


def oxigraph_format(fmt: RdfFormatName) -> RdfFormat:
    return _OXIGRAPH_FORMATS[fmt]


def serialize_triples(triples: Iterable[RdfTriple | Quad], output: IO[bytes], fmt: RdfFormatName,
                      vocabulary: RdfVocabulary) -> None:
    """Serialise ``triples`` (or quads of the default graph) to ``output`` as one document
    (Turtle with the vocabulary's prefixes; documents written one after another concatenate
    into one valid file)."""
    prefixes = vocabulary.prefixes if fmt == "turtle" else None
    serialize(triples, output, oxigraph_format(fmt), prefixes=prefixes)


def write_rdf(tables: Iterable[pa.Table], output: IO[bytes], fmt: RdfFormatName,
              vocabulary: RdfVocabulary | None = None,
              mentions: Mapping[MentionKey, Mention] | None = None) -> None:
    """Serialise the statements of ``tables`` to ``output`` (pyoxigraph's streaming writer; one
    Turtle document per table, each with the vocabulary's prefixes, which concatenate into one
    valid Turtle file); a subject in ``mentions`` is the entity it refers to
    (:func:`rdf_triples`)."""
    vocabulary = vocabulary or RdfVocabulary()
    for table in tables:
        serialize_triples(rdf_triples(table, vocabulary, mentions), output, fmt, vocabulary)
