"""Graph outputs: atomic Parquet shards (ptoie.files), IRI minting and RDF statements
(ptoie.graph.rdf: pyoxigraph's writer, read back with rdflib, an independent parser) and the
GraphML / node-link graphs (ptoie.graph.networkx_io)."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pyarrow.parquet as pq
import pytest
from rdflib import RDF, Graph, Literal, URIRef

from ptoie.schema import triple_schema
from ptoie.files import records_table, write_parquet_shard
from ptoie.graph.networkx_io import networkx_graph, write_graphml, write_node_link
from ptoie.graph.rdf import RdfVocabulary, entity_slug, rdf_format, write_rdf
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
    assert entity_slug("São Paulo") == "sao_paulo"  # the key folds case and diacritics
    assert entity_slug("O Brasil") == entity_slug("do Brasil") == entity_slug("brasil") == "brasil"
    # NFD input (combining tilde) mints the same IRI as NFC
    assert entity_slug("Sa\u0303o Paulo") == entity_slug("São Paulo")
    assert entity_slug("a/b?c#d e") == "a%2Fb%3Fc%23d_e"
    assert entity_slug("...") == "_"
    assert entity_slug("S.A. 50%") == "s%2Ea%2E_50%25"  # no dot segments, no bare %
    vocab = RdfVocabulary()
    assert vocab.entity("Dom Casmurro").value == "https://w3id.org/ptoie/entity/dom_casmurro"
    assert vocab.relation("é a capital de").value.startswith("https://w3id.org/ptoie/relation/")


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


def _iri(node) -> URIRef:
    return URIRef(node.value)


def _write_all(tmp_path: Path, tables) -> None:
    for name, fmt in (("kg.ttl", "turtle"), ("kg.nt", "nt")):
        with open(tmp_path / name, "wb") as out:
            write_rdf(tables, out, fmt)
    graph = networkx_graph(tables)
    write_graphml(graph, tmp_path / "kg.graphml")
    write_node_link(graph, tmp_path / "kg.json")


def test_graphs_hold_every_record_with_provenance(tmp_path):
    records = _records()
    records[2] |= {"doc_url": "https://pt.example.org/lisboa", "doc_title": "Lisboa — cidade"}
    # two tables: their Turtle documents concatenate into one valid file, repeats merge
    _write_all(tmp_path, [records_table(records[:1]), records_table(records[1:])])
    vocab = RdfVocabulary()
    label = _iri(vocab.properties["altLabel"])

    for name, fmt in (("kg.ttl", "turtle"), ("kg.nt", "nt")):
        g = Graph().parse(tmp_path / name, format=fmt)
        statements = set(g.subjects(RDF.type, RDF.Statement))
        assert len(statements) == 3
        # the two surface forms of Machado de Assis are one entity with both as alternative labels
        machado = _iri(vocab.entity("Machado de Assis"))
        assert {str(o) for o in g.objects(machado, label)} == {"Machado de Assis", "machado de assis"}
        first = _iri(vocab.extraction("livros.jsonl:1", 0, 0))
        prop = {k: _iri(v) for k, v in vocab.properties.items()}
        assert first in statements
        assert g.value(first, RDF.subject) == machado
        assert g.value(first, RDF.predicate) == _iri(vocab.relation("escreveu"))
        assert g.value(first, RDF.object) == _iri(vocab.entity("Dom Casmurro"))
        assert g.value(first, prop["sentence"]) == \
            Literal("Machado de Assis escreveu Dom Casmurro.", lang="pt")
        assert g.value(first, prop["sentenceId"]).toPython() == 0
        assert g.value(first, prop["document"]) == _iri(vocab.document("livros.jsonl:1"))
        assert g.value(first, prop["model"]) == _iri(vocab.model(MODEL))
        assert g.value(first, prop["confidence"]).toPython() == pytest.approx(0.91)
        assert g.value(_iri(vocab.extraction("livros.jsonl:1", 0, 1)), prop["confidence"]) is None
        assert (machado, _iri(vocab.relation("escreveu")), _iri(vocab.entity("Dom Casmurro"))) in g
        page = _iri(vocab.document("geo/pt.txt"))
        assert g.value(page, prop["url"]) == URIRef("https://pt.example.org/lisboa")
        assert str(g.value(page, prop["title"])) == "Lisboa — cidade"
        assert g.value(_iri(vocab.document("livros.jsonl:1")), prop["url"]) is None

    graph = nx.read_graphml(tmp_path / "kg.graphml", force_multigraph=True)
    assert graph.number_of_edges() == 3
    assert graph.number_of_nodes() == 5  # machado, dom casmurro, um romance, lisboa, portugal
    edge = graph.get_edge_data(vocab.entity("Lisboa").value, vocab.entity("Portugal").value)
    [(key, attrs)] = edge.items()
    assert key == vocab.extraction("geo/pt.txt", 3, 0).value
    assert attrs["rel"] == "é a capital de" and attrs["doc_id"] == "geo/pt.txt"
    assert attrs["sentence_id"] == 3 and attrs["confidence"] == pytest.approx(0.5)

    data = json.loads((tmp_path / "kg.json").read_text(encoding="utf-8"))
    assert len(data["edges"]) == 3 and len(data["nodes"]) == 5
    assert nx.node_link_graph(data, edges="edges").number_of_edges() == 3


def test_empty_graph_writes_valid_empty_files(tmp_path):
    _write_all(tmp_path, [records_table([])])
    assert len(Graph().parse(tmp_path / "kg.ttl", format="turtle")) == 0
    assert nx.read_graphml(tmp_path / "kg.graphml").number_of_edges() == 0


def test_rdf_format_from_extension():
    assert rdf_format(Path("x/kg.TTL")) == "turtle"
    assert rdf_format(Path("kg.nt")) == "nt"
    with pytest.raises(ValueError, match=r"\.ttl or \.nt"):
        rdf_format(Path("kg.rdf"))
