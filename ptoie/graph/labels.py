"""Preferred labels: the most frequent surface form of each entity and relation key in the Parquet
sources, counted by DuckDB (:func:`ptoie.graph.canonical_sql.preferred_labels`), so only the pairs
reach Python.

:func:`write_labels` streams them as ``rdfs:label`` statements (for the RDF outputs);
:func:`entity_labels` gives the entities' as a dict (for the NetworkX outputs, which are bounded).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

import duckdb

from ptoie.graph.canonical_sql import install_sql_functions, preferred_labels
from ptoie.graph.mention_pass import substitute_subjects
from ptoie.graph.mentions import Key as MentionKey, Mention
from ptoie.graph.rdf import RdfFormatName, RdfVocabulary, label_triples, serialize_triples
from ptoie.graph.sources import confidence_condition, duckdb_connection, triples_view

_FETCH_ROWS = 8192


def label_connection(sources: Sequence[Path], min_confidence: float | None,
                     mentions: Mapping[MentionKey, Mention] | None = None
                     ) -> duckdb.DuckDBPyConnection:
    """DuckDB with the view ``triples`` (``arg1``, ``rel``, ``arg2`` of the rows at or above
    ``min_confidence``; a subject in ``mentions`` as the label of the entity it refers to:
    :func:`ptoie.graph.mention_pass.substitute_subjects`) over ``sources`` and the canonical
    functions installed (:func:`ptoie.graph.sources.triples_view` reads the files)."""
    con = duckdb_connection()
    try:
        triples_view(con, sources, columns="doc_id, sentence_id, extraction_index, arg1, rel, arg2",
                     where=confidence_condition(min_confidence))
        substitute_subjects(con, mentions or {})
    except duckdb.Error:
        con.close()
        raise
    install_sql_functions(con)
    return con


def entity_labels(sources: Sequence[Path], min_confidence: float | None = None,
                  mentions: Mapping[MentionKey, Mention] | None = None) -> dict[str, str]:
    """The label of each entity key: its most frequent surface form in ``sources`` (in memory:
    for the NetworkX outputs, which are bounded by ``max_graph_triples``); ``mentions``: the
    subjects resolved (:func:`label_connection`)."""
    con = label_connection(sources, min_confidence, mentions)
    try:
        entities, _ = preferred_labels(con)
        return {key: label for key, label, _n in con.execute(entities).fetchall()}
    finally:
        con.close()


def write_labels(sources: Sequence[Path], output: IO[bytes], fmt: RdfFormatName,
                 vocabulary: RdfVocabulary, min_confidence: float | None,
                 mentions: Mapping[MentionKey, Mention] | None = None) -> str:
    """Serialise the ``rdfs:label`` of every entity and relation of ``sources``
    (:func:`ptoie.graph.rdf.label_triples`; ``mentions``: the subjects resolved) to ``output``,
    rows streamed from DuckDB; returns the hex digest of the labels written (what names their
    fragment)."""
    con = label_connection(sources, min_confidence, mentions)
    digest = hashlib.sha256()
    try:
        for index, query in enumerate(preferred_labels(con)):
            cursor = con.execute(query)
            while rows := cursor.fetchmany(_FETCH_ROWS):
                pairs = [(key, label) for key, label, _n in rows]
                digest.update(repr(pairs).encode())
                entities, relations = (pairs, []) if index == 0 else ([], pairs)
                serialize_triples(label_triples(entities, relations, vocabulary), output, fmt,
                                  vocabulary)
    finally:
        con.close()
    return digest.hexdigest()
