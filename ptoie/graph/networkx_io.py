"""NetworkX: the knowledge graph as a ``MultiDiGraph``, written as GraphML and node-link JSON.

:func:`networkx_graph` builds the graph (entities as nodes, one edge per triple) with the IRIs of
:mod:`ptoie.graph.rdf`; :func:`write_graphml` and :func:`write_node_link` write it atomically. A
NetworkX graph lives in memory, so callers bound its size (``ptoie.graph.build``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import networkx as nx
import pyarrow as pa

from ptoie.files import atomic_path
from ptoie.graph import canonical
from ptoie.graph.mentions import Key as MentionKey, Mention
from ptoie.graph.rdf import RdfVocabulary, split_times

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
    ``resolved_by`` (the rule, for a subject in ``mentions``: see
    :func:`ptoie.graph.rdf.rdf_triples`), ``place`` (the IRI of a place split off the second
    argument)."""
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
                    graph.add_node(obj, **_literal_node(second))
                edge = _edge(r, first, second, v.relation_key(relation_key).value, relation_label)
                if mention is not None:
                    edge["resolved_by"] = mention.rule
                if isinstance(second, canonical.Entity) and second.place is not None:
                    edge["place"] = v.entity_key(second.place.key).value
                graph.add_edge(subject, obj, key=key, **edge)
    return graph


def _literal_node(value: canonical.Value) -> dict[str, str]:
    """The attributes of a literal object's node."""
    literal = {"kind": "literal", "label": value.lexical}
    if value.datatype:
        literal["datatype"] = value.datatype
    if value.unit:
        literal["unit"] = value.unit
    return literal


def _edge(r: dict, first: canonical.Entity, second: canonical.Entity | canonical.Value,
          relation: str, relation_label: str) -> dict[str, object]:
    """The attributes of record ``r``'s edge."""
    edge: dict[str, object] = {
        "rel": r["rel"], "relation": relation, "relation_label": relation_label,
        "doc_id": r["doc_id"], "sentence_id": int(r["sentence_id"]),
        "extraction_index": int(r["extraction_index"]),
        "sentence": r["sentence"], "model_id": r["model_id"]}
    if r["confidence"] is not None:
        edge["confidence"] = float(r["confidence"])
    times = split_times(first, second)
    if times:
        edge["time"] = " ".join(t.lexical for t in times)
    return edge


def write_graphml(graph: nx.MultiDiGraph, path: Path) -> None:
    with atomic_path(path) as tmp:
        nx.write_graphml(graph, tmp)


def write_node_link(graph: nx.MultiDiGraph, path: Path) -> None:
    data = nx.node_link_data(graph, edges="edges")
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False)
