"""The Oxigraph store: an embedded SPARQL store kept in step with the RDF fragments.

The store bulk-loads only the fragments it has not loaded yet, one at a time (so its memory is
bounded by a fragment), and records each in a bookkeeping named graph; if it holds a fragment
that is gone (a source was rewritten or removed), it is cleared and reloaded. Queries over its
default graph see only the knowledge graph.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import islice
from pathlib import Path

from pyoxigraph import Literal, NamedNode, Quad, Store, parse

from ptoie.graph.fragments import LABELS_KEY, Fragment
from ptoie.graph.rdf import RdfFormatName, RdfVocabulary, oxigraph_format


def _bookkeeping(vocabulary: RdfVocabulary) -> tuple[NamedNode, NamedNode]:
    """The bookkeeping graph and its predicate, ``ptoie:loadedSource``."""
    base = vocabulary.prefixes["ptoie"]
    return NamedNode(base + "bookkeeping"), NamedNode(base + "loadedSource")


def sync_store(store_dir: Path, plan: Sequence[Fragment], fmt: RdfFormatName,
               vocabulary: RdfVocabulary, *, ready: Callable[[], Fragment | None] | None = None
               ) -> int:
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
    graph, predicate = _bookkeeping(vocabulary)
    store = Store(str(store_dir))
    loaded_now = 0
    try:
        loaded = {q.object.value for q in store.quads_for_pattern(graph, predicate, None, graph)}
        old_labels = {key for key in loaded if key.startswith(LABELS_KEY)}
        if not loaded - old_labels <= {key for fragment in plan for key in fragment.keys}:
            store.clear()
            loaded, old_labels = set(), set()
        for fragment in (iter(ready, None) if ready is not None else plan):
            new = [key for key in fragment.keys if key not in loaded]
            if not new:
                continue
            if new[0].startswith(LABELS_KEY) and old_labels:
                _remove_labels(store, vocabulary)
                for key in old_labels:
                    store.remove(Quad(graph, predicate, Literal(key), graph))
                old_labels = set()
            # A kill during a load leaves statements without their bookkeeping quads: the next
            # call loads the fragment again, and the store keeps one copy of each quad.
            _load(store, fragment, fmt)
            store.extend([Quad(graph, predicate, Literal(key), graph) for key in new])
            loaded_now += 1
        if loaded_now:
            store.flush()
        return loaded_now
    finally:
        del store


LOAD_QUADS = 200_000
"""Statements per bulk load of the labels fragment. The bulk loader holds its input in memory: a
row fragment is bounded by rows, but the labels fragment grows with the entities of the whole
graph (565,590 statements for 1,000,000 synthetic triples: 469 MB loaded at once, 290 MB in
batches of 200,000, 2026-12-04)."""


def _load(store: Store, fragment: Fragment, fmt: RdfFormatName) -> None:
    """Bulk-load ``fragment``: a row fragment at once (the native loader, which leaves Python's
    other threads running), the labels fragment :data:`LOAD_QUADS` statements at a time."""
    if not fragment.keys[0].startswith(LABELS_KEY):
        store.bulk_load(path=str(fragment.path), format=oxigraph_format(fmt))
        return
    quads = parse(path=str(fragment.path), format=oxigraph_format(fmt))
    while batch := list(islice(quads, LOAD_QUADS)):
        store.bulk_extend(batch)


def _remove_labels(store: Store, vocabulary: RdfVocabulary) -> None:
    """Delete the ``rdfs:label`` of every entity and relation (a labels fragment's statements)."""
    label = vocabulary.properties["label"].value
    kinds = ", ".join(f"<{vocabulary.classes[c].value}>" for c in ("Entity", "Relation"))
    store.update(f"DELETE {{ ?x <{label}> ?l }} WHERE {{ ?x a ?c ; <{label}> ?l . "
                 f"FILTER(?c IN ({kinds})) }}")


def count_extractions(store_dir: Path, vocabulary: RdfVocabulary) -> int:
    """``ptoie:Extraction`` statements in the store (one per Parquet row)."""
    store = Store.read_only(str(store_dir))
    extraction = vocabulary.classes["Extraction"]
    [solution] = store.query(f"SELECT (COUNT(?s) AS ?n) WHERE {{ ?s a <{extraction.value}> }}")
    return int(solution["n"].value)
