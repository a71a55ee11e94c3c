"""Sinks: atomic Parquet shards, IRI minting, and the RDF / GraphML / node-link graphs."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pyarrow.parquet as pq
import pytest
from rdflib import RDF, Graph, Literal, URIRef

from ptoie.schema import triple_schema
from ptoie.sinks import (KnowledgeGraph, RdfVocabulary, entity_slug, rdf_format, records_table,
                         write_parquet_shard)
from ptoie.triple import Triple

MODEL = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _records() -> list[dict]:
    sentence1 = "Machado de Assis escreveu Dom Casmurro."
    sentence2 = "Lisboa é a capital de Portugal."
    triples = [
        ("livros.jsonl:1", 0, sentence1, Triple("Machado de Assis", "escreveu", "Dom Casmurro", 0.91,
                                                (0, 16), (17, 25), (26, 38))),
        ("livros.jsonl:1", 0, sentence1, Triple("machado de assis", "escreveu", "um romance", None)),
        ("geo/pt.txt", 3, sentence2, Triple("Lisboa", "é a capital de", "Portugal", 0.5)),
    ]
    records, index = [], {}
    for doc_id, sid, sentence, triple in triples:
        i = index[(doc_id, sid)] = index.get((doc_id, sid), -1) + 1
        records.append(triple.to_record(doc_id=doc_id, sentence_id=sid, sentence=sentence,
                                        extraction_index=i, model_id=MODEL))
    return records


def test_entity_slug_is_normalised_and_percent_safe():
    assert entity_slug("São Paulo") == entity_slug("são  paulo") == entity_slug("«São Paulo».")
    assert entity_slug("São Paulo") == "são_paulo"  # an IRI: letters of any script stay
    # NFD input (combining tilde) mints the same IRI as NFC
    assert entity_slug("Sa\u0303o Paulo") == entity_slug("São Paulo")
    assert entity_slug("a/b?c#d e") == "a%2Fb%3Fc%23d_e"
    assert entity_slug("...") == "_"
    assert entity_slug("S.A. 50%") == "s%2Ea%2E_50%25"  # no dot segments, no bare %
    vocab = RdfVocabulary()
    assert vocab.entity("Dom Casmurro") == URIRef("https://w3id.org/ptoie/entity/dom_casmurro")
    assert vocab.relation("é a capital de").startswith("https://w3id.org/ptoie/relation/")


def test_parquet_shard_is_written_atomically_with_the_schema(tmp_path):
    table = records_table(_records())
    path = write_parquet_shard(table, tmp_path, "part-1.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part-1.parquet"]  # no temp file left
    back = pq.read_table(path)
    assert back.schema.equals(triple_schema(), check_metadata=False)
    assert back.to_pylist() == _records()
    with pytest.raises(ValueError, match="schema"):
        write_parquet_shard(table.drop_columns(["confidence"]), tmp_path, "part-2.parquet")
    assert not (tmp_path / "part-2.parquet").exists()


def test_graphs_hold_every_record_with_provenance(tmp_path):
    kg = KnowledgeGraph()
    kg.add_table(records_table(_records()))
    vocab = kg.vocabulary

    kg.write_rdf(tmp_path / "kg.ttl")
    kg.write_rdf(tmp_path / "kg.nt")
    kg.write_graphml(tmp_path / "kg.graphml")
    kg.write_node_link(tmp_path / "kg.json")

    for name, fmt in (("kg.ttl", "turtle"), ("kg.nt", "nt")):
        g = Graph().parse(tmp_path / name, format=fmt)
        statements = set(g.subjects(RDF.type, RDF.Statement))
        assert len(statements) == 3 == kg.n_statements()
        # the two surface forms of Machado de Assis are one entity with both labels
        machado = vocab.entity("Machado de Assis")
        assert {str(o) for o in g.objects(machado, vocab.properties["label"])} == \
            {"Machado de Assis", "machado de assis"}
        first = vocab.extraction("livros.jsonl:1", 0, 0)
        assert first in statements
        assert g.value(first, RDF.subject) == machado
        assert g.value(first, RDF.predicate) == vocab.relation("escreveu")
        assert g.value(first, RDF.object) == vocab.entity("Dom Casmurro")
        assert g.value(first, vocab.properties["sentence"]) == \
            Literal("Machado de Assis escreveu Dom Casmurro.", lang="pt")
        assert g.value(first, vocab.properties["document"]) == vocab.document("livros.jsonl:1")
        assert g.value(first, vocab.properties["model"]) == vocab.model(MODEL)
        assert g.value(first, vocab.properties["confidence"]).toPython() == pytest.approx(0.91)
        assert g.value(vocab.extraction("livros.jsonl:1", 0, 1), vocab.properties["confidence"]) is None
        assert (machado, vocab.relation("escreveu"), vocab.entity("Dom Casmurro")) in g

    graph = nx.read_graphml(tmp_path / "kg.graphml", force_multigraph=True)
    assert graph.number_of_edges() == 3
    assert graph.number_of_nodes() == 5  # machado, dom casmurro, um romance, lisboa, portugal
    edge = graph.get_edge_data(str(vocab.entity("Lisboa")), str(vocab.entity("Portugal")))
    [(key, attrs)] = edge.items()
    assert key == str(vocab.extraction("geo/pt.txt", 3, 0))
    assert attrs["rel"] == "é a capital de" and attrs["doc_id"] == "geo/pt.txt"
    assert attrs["sentence_id"] == 3 and attrs["confidence"] == pytest.approx(0.5)

    data = json.loads((tmp_path / "kg.json").read_text(encoding="utf-8"))
    assert len(data["edges"]) == 3 and len(data["nodes"]) == 5
    assert nx.node_link_graph(data, edges="edges").number_of_edges() == 3


def test_empty_graph_writes_valid_empty_files(tmp_path):
    kg = KnowledgeGraph()
    kg.write_rdf(tmp_path / "kg.ttl")
    kg.write_graphml(tmp_path / "kg.graphml")
    assert len(Graph().parse(tmp_path / "kg.ttl", format="turtle")) == 0
    assert nx.read_graphml(tmp_path / "kg.graphml").number_of_edges() == 0


def test_rdf_format_from_extension():
    assert rdf_format(Path("x/kg.TTL")) == "turtle"
    assert rdf_format(Path("kg.nt")) == "nt"
    with pytest.raises(ValueError, match=r"\.ttl or \.nt"):
        rdf_format(Path("kg.rdf"))
