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

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Literal

import pyarrow as pa
from pyoxigraph import Literal as RdfLiteral, NamedNode, RdfFormat, serialize
from pyoxigraph import Triple as RdfTriple

from ptoie.graph import canonical
from ptoie.graph.mentions import Key as MentionKey, Mention
from ptoie.schema import rdf_vocabulary

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


# -- statements -------------------------------------------------------------------------------
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


def split_times(first: canonical.Entity, second: canonical.Entity | canonical.Value
                ) -> list[canonical.Value]:
    """The time expressions split off a triple's two arguments (each once)."""
    times = [first.time] if first.time else []
    if second.time and second.time != first.time:
        times.append(second.time)
    return times


def rdf_triples(table: pa.Table, vocabulary: RdfVocabulary,
                mentions: Mapping[MentionKey, Mention] | None = None) -> Iterator[RdfTriple]:
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
    A subject in ``mentions`` (:func:`ptoie.graph.mention_pass.resolve_sources`) is the entity it
    refers to, and its statement says by which rule (``ptoie:resolvedBy``).
    """
    statements = _RecordStatements(vocabulary, mentions)
    for batch in table.select(_RDF_COLUMNS).to_batches(max_chunksize=4096):
        for record in batch.to_pylist():
            yield from statements.of(record)


class _RecordStatements:
    """The statements of records, one table's worth: each entity, relation, document and model
    is described once (the nodes the table names are remembered); a subject in ``mentions`` is
    the entity it refers to."""

    def __init__(self, vocabulary: RdfVocabulary,
                 mentions: Mapping[MentionKey, Mention] | None = None) -> None:
        self.vocabulary = vocabulary
        self.mentions = mentions
        self.classes, self.properties = vocabulary.classes, vocabulary.properties
        self.described: set[str] = set()
        self.entity = _memo(vocabulary.entity_key)
        self.relation = _memo(vocabulary.relation_key)

    def of(self, r: dict[str, Any]) -> Iterator[RdfTriple]:
        """The triple of record ``r``, the descriptions of the nodes it names first, and its
        reified statement."""
        v, cls, prop = self.vocabulary, self.classes, self.properties
        first, second = canonical.subject(r["arg1"]), canonical.argument(r["arg2"])
        mention = self.mentions.get((r["doc_id"], r["sentence_id"], r["extraction_index"])
                                    ) if self.mentions else None
        first = mention.entity if mention is not None else first
        relation_key, relation_label = canonical.relation(r["rel"], second.preposition)
        subject, predicate = self.entity(first.key), self.relation(relation_key)
        obj = rdf_object(second, v)
        statement = v.extraction(r["doc_id"], r["sentence_id"], r["extraction_index"])
        document, model = v.document(r["doc_id"]), v.model(r["model_id"])
        yield RdfTriple(subject, predicate, obj)
        yield from self._describe(subject, cls["Entity"], first.label, _LANG, prop["altLabel"])
        if isinstance(second, canonical.Entity):
            yield from self._describe(obj, cls["Entity"], second.label, _LANG, prop["altLabel"])
        yield from self._describe(predicate, cls["Relation"], relation_label, _LANG,
                                  prop["altLabel"])
        yield from self._document(document, r)
        yield from self._describe(model, cls["Model"], r["model_id"], None, prop["label"])
        yield RdfTriple(statement, RDF_TYPE, RDF_STATEMENT)
        yield RdfTriple(statement, RDF_TYPE, cls["Extraction"])
        yield RdfTriple(statement, RDF_SUBJECT, subject)
        yield RdfTriple(statement, RDF_PREDICATE, predicate)
        yield RdfTriple(statement, RDF_OBJECT, obj)
        yield from self._provenance(statement, r, first, second, document, model, mention)

    def _describe(self, node: NamedNode, klass: NamedNode, label: str, language: str | None,
                  labelled_by: NamedNode) -> Iterator[RdfTriple]:
        """``node``'s class and ``label``, unless this table has given them already."""
        key = node.value + "\x00" + label
        if key not in self.described:
            self.described.add(key)
            yield RdfTriple(node, RDF_TYPE, klass)
            yield RdfTriple(node, labelled_by, RdfLiteral(label, language=language))

    def _document(self, document: NamedNode, r: dict[str, Any]) -> Iterator[RdfTriple]:
        """The document of record ``r``: its class and id, and its URL and title when known."""
        if document.value in self.described:
            return
        prop = self.properties
        yield from self._describe(document, self.classes["Document"], r["doc_id"], None,
                                  prop["label"])
        if r["doc_url"]:
            yield RdfTriple(document, prop["url"], NamedNode(r["doc_url"]))
        if r["doc_title"]:
            yield RdfTriple(document, prop["title"], RdfLiteral(r["doc_title"]))
        self.described.add(document.value)

    def _provenance(self, statement: NamedNode, r: dict[str, Any], first: canonical.Entity,
                    second: canonical.Entity | canonical.Value, document: NamedNode,
                    model: NamedNode, mention: Mention | None) -> Iterator[RdfTriple]:
        """What the reified ``statement`` of record ``r`` says besides its subject, predicate
        and object: the text, unit, times, place, the rule that resolved its subject
        (``mention``), sentence, position, document, model, confidence."""
        prop = self.properties
        for name, column in (("subjectText", "arg1"), ("predicateText", "rel"),
                             ("objectText", "arg2")):
            yield RdfTriple(statement, prop[name], RdfLiteral(r[column], language=_LANG))
        if isinstance(second, canonical.Value) and second.unit:
            yield RdfTriple(statement, prop["unit"], RdfLiteral(second.unit))
        for time in split_times(first, second):
            yield RdfTriple(statement, prop["time"], _literal(time))
        if isinstance(second, canonical.Entity) and second.place is not None:
            place = self.entity(second.place.key)
            yield RdfTriple(statement, prop["place"], place)
            yield from self._describe(place, self.classes["Entity"], second.place.label, _LANG,
                                      prop["altLabel"])
        if mention is not None:
            yield RdfTriple(statement, prop["resolvedBy"], RdfLiteral(mention.rule))
        yield RdfTriple(statement, prop["sentence"], RdfLiteral(r["sentence"], language=_LANG))
        yield RdfTriple(statement, prop["sentenceId"],
                        RdfLiteral(str(r["sentence_id"]), datatype=XSD_INTEGER))
        yield RdfTriple(statement, prop["extractionIndex"],
                        RdfLiteral(str(r["extraction_index"]), datatype=XSD_INTEGER))
        yield RdfTriple(statement, prop["document"], document)
        yield RdfTriple(statement, prop["model"], model)
        if r["confidence"] is not None:
            yield RdfTriple(statement, prop["confidence"],
                            RdfLiteral(repr(float(r["confidence"])), datatype=XSD_DOUBLE))


def label_triples(entities: Iterable[tuple[str, str]], relations: Iterable[tuple[str, str]],
                  vocabulary: RdfVocabulary) -> Iterator[RdfTriple]:
    """``rdfs:label`` of each entity and relation, from ``(key, label)`` pairs (the most frequent
    surface form of each key: :func:`ptoie.graph.canonical.preferred_labels`)."""
    label = vocabulary.properties["label"]
    for key, text in entities:
        yield RdfTriple(vocabulary.entity_key(key), label, RdfLiteral(text, language=_LANG))
    for key, text in relations:
        yield RdfTriple(vocabulary.relation_key(key), label, RdfLiteral(text, language=_LANG))


def _memo(mint: Callable[[str], NamedNode]) -> Callable[[str], NamedNode]:
    """``mint`` with a cache of the table at hand (keys repeat across its rows)."""
    cache: dict[str, NamedNode] = {}

    def cached(key: str) -> NamedNode:
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


def serialize_triples(triples: Iterable[RdfTriple], output: IO[bytes], fmt: RdfFormatName,
                      vocabulary: RdfVocabulary) -> None:
    """Serialise ``triples`` to ``output`` as one document (Turtle with the vocabulary's
    prefixes; documents written one after another concatenate into one valid file)."""
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
