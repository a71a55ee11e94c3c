"""Canonical graph terms: entity keys, literals, relation lemmas (ptoie.graph.canonical), and a graph
built from sentences written for it (several documents naming one entity in different forms,
numbers and dates) through the real graph stage: RDF file, Oxigraph store, GraphML, SPARQL."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pyarrow.parquet as pq
import pytest
from rdflib import Graph, Literal, URIRef
from rdflib import namespace

from ptoie.graph import canonical
from ptoie.cli.main import main as ptoie_main
from ptoie.graph.build import GraphOutputs, build_graph
from ptoie.graph.sinks import RdfVocabulary, records_table, write_parquet_shard
from ptoie.triple import Triple

ENT = RdfVocabulary().prefixes["ent"]
REL = RdfVocabulary().prefixes["rel"]


@pytest.mark.parametrize("surface", ["O Brasil", "do Brasil", "no Brasil", "brasil", "«Brasil»",
                                     "pelo Brasil", "para o Brasil", "BRASIL"])
def test_articles_prepositions_case_fold_into_one_key(surface):
    assert canonical.argument(surface).key == "brasil"


def test_keys_fold_diacritics_labels_keep_them():
    term = canonical.argument("na Guiana Francesa")
    assert (term.key, term.label, term.preposition) == ("guiana_francesa", "Guiana Francesa", "em")
    assert canonical.subject("São José dos Campos").key == "sao_jose_dos_campos"
    assert canonical.subject("A Embraer").label == "Embraer"
    assert canonical.subject("o").key == "o"  # nothing but an article: kept whole


def test_trailing_time_is_split_off():
    term = canonical.argument("Pequim em abril de 2023")
    assert (term.key, term.time) == ("pequim", canonical.Value("2023-04", canonical.XSD_GYEARMONTH))
    assert canonical.argument("Rua 13 de Maio").key == "rua_13_de_maio"  # no year: not a time


@pytest.mark.parametrize("surface, lexical, datatype, unit", [
    ("0,9%", "0.9", canonical.XSD_DECIMAL, "%"),
    ("R$ 2,5 bilhões", "2500000000", canonical.XSD_DECIMAL, "BRL"),
    ("98 milhões de toneladas", "98000000", canonical.XSD_DECIMAL, "toneladas"),
    ("1.500 funcionários", "1500", canonical.XSD_DECIMAL, "funcionários"),
    ("30 mil euros", "30000", canonical.XSD_DECIMAL, "EUR"),
    ("em 1922", "1922", canonical.XSD_GYEAR, None),
    ("em março de 2024", "2024-03", canonical.XSD_GYEARMONTH, None),
    ("16 de novembro de 1922", "1922-11-16", canonical.XSD_DATE, None),
    ("12/03/2024", "2024-03-12", canonical.XSD_DATE, None),
    ("no terceiro trimestre de 2024", "terceiro trimestre de 2024", None, None),  # plain
    ("mais de 300 pessoas", "mais de 300 pessoas", None, None),
])
def test_numbers_amounts_and_dates_are_literals(surface, lexical, datatype, unit):
    term = canonical.argument(surface)
    assert isinstance(term, canonical.Value)
    assert (term.lexical, term.datatype, term.unit) == (lexical, datatype, unit)


def test_relative_dates_are_not_read():  # they would depend on the day the job runs
    assert isinstance(canonical.argument("ontem"), canonical.Entity)


def test_relation_keys_are_lemmas_and_take_the_moved_preposition():
    assert canonical.relation("nasceu em")[0] == canonical.relation("nasce em")[0] == "nascer_em"
    assert canonical.relation_of("fica", "na Guiana Francesa") == ("ficar_em", "fica em")
    assert canonical.relation_of("fica em", "na Guiana Francesa") == ("ficar_em", "fica em")
    assert canonical.relation_of("fica na", "Guiana Francesa")[0] == "ficar_em"
    assert canonical.relation_of("cresceu", "0,9%") == ("crescer", "cresceu")


# -- a graph of things --------------------------------------------------------------------------
MODEL = "m.gguf"
DOCUMENTS = {  # doc id -> (sentence, [(arg1, rel, arg2, confidence)])
    "noticias/1": [
        ("O Brasil exportou soja para a China.", [("O Brasil", "exportou", "soja", 0.8)]),
        ("A economia do Brasil cresceu 0,9% no terceiro trimestre de 2024.",
         [("A economia do Brasil", "cresceu", "0,9%", 0.7),
          ("A economia do Brasil", "cresceu em", "no terceiro trimestre de 2024", 0.6)]),
    ],
    "noticias/2": [
        ("Brasília é a capital do Brasil.", [("Brasília", "é a capital de", "do Brasil", 0.9)]),
        ("O escritor José Saramago nasceu em Azinhaga em 16 de novembro de 1922.",
         [("José Saramago", "nasceu", "em Azinhaga", 0.9),
          ("José Saramago", "nasceu em", "16 de novembro de 1922", 0.8)]),
    ],
    "noticias/3": [
        ("Saramago nasce em Azinhaga, conta o livro.", [("José Saramago", "nasce em", "Azinhaga", 0.3)]),
        ("O contrato da Embraer vale R$ 2,5 bilhões.",
         [("O contrato da Embraer", "vale", "R$ 2,5 bilhões", 0.9)]),
        ("A Embraer fica no Brasil.", [("A Embraer", "fica", "no Brasil", 0.2)]),
    ],
}


@pytest.fixture(scope="module")
def news_graph(tmp_path_factory):
    root = tmp_path_factory.mktemp("news")
    for n, (doc_id, sentences) in enumerate(DOCUMENTS.items()):
        records = [Triple(*t).to_record(doc_id=doc_id, sentence_id=s, sentence=sentence,
                                        extraction_index=i, model_id=MODEL)
                   for s, (sentence, triples) in enumerate(sentences)
                   for i, t in enumerate(triples)]
        write_parquet_shard(records_table(records), root / "kg.parquet", f"part-{n}.parquet")
    outputs = GraphOutputs.beside(root / "kg.ttl", view=None)
    report = build_graph(sorted((root / "kg.parquet").glob("*.parquet")), outputs,
                         cache=root / "kg.parquet" / "_kg")
    return root, outputs, report


def test_one_node_per_entity_across_documents(news_graph):
    _, outputs, report = news_graph
    assert report.triples == 9
    g = Graph().parse(outputs.rdf, format="turtle")
    brasil = URIRef(ENT + "brasil")
    assert not any(str(s).startswith(ENT + p) for s in g.all_nodes()
                   for p in ("o_", "a_", "do_", "da_", "no_", "na_"))
    assert g.value(brasil, namespace.RDFS.label) == Literal("Brasil", lang="pt")
    # "O Brasil", "do Brasil", "no Brasil": one IRI, the surface forms as written on the statements
    assert {str(o) for o in g.objects(None, URIRef(RdfVocabulary().properties["objectText"].value))
            } >= {"do Brasil", "no Brasil"}
    saramago = URIRef(ENT + "jose_saramago")
    born = URIRef(REL + "nascer_em")
    assert (saramago, born, URIRef(ENT + "azinhaga")) in g  # "nasceu | em Azinhaga", "nasce em"
    assert {str(o) for o in g.objects(born, namespace.SKOS.altLabel)} == {"nasceu em", "nasce em"}
    assert g.value(born, namespace.RDFS.label) == Literal("nasceu em", lang="pt")  # the most frequent
    assert (saramago, born, Literal("1922-11-16", datatype=namespace.XSD.date)) in g
    # simplemma reads "vale" as the noun (a valley): a lemma is only as good as the lemmatiser
    assert (URIRef(ENT + "contrato_da_embraer"), URIRef(REL + "vale"),
            Literal("2500000000", datatype=namespace.XSD.decimal)) in g
    assert (URIRef(ENT + "economia_do_brasil"), URIRef(REL + "crescer_em"),
            Literal("terceiro trimestre de 2024", lang="pt")) in g


def test_literals_are_leaves_in_graphml(news_graph):
    _, outputs, _ = news_graph
    graph = nx.read_graphml(outputs.graphml, force_multigraph=True)
    literals = [n for n, d in graph.nodes(data=True) if d["kind"] == "literal"]
    assert len(literals) == 4 and all(graph.degree(n) == 1 for n in literals)
    assert graph.nodes[ENT + "brasil"]["label"] == "Brasil"
    # Brasil links the three documents' facts: one connected part holds Brasília and the Embraer
    undirected = nx.Graph(graph)
    assert nx.has_path(undirected, ENT + "brasilia", ENT + "embraer")


def test_sparql_finds_the_merged_facts(news_graph, capsys):
    _, outputs, _ = news_graph
    query = """SELECT DISTINCT ?place WHERE {
                 ?who rdfs:label "José Saramago"@pt ; rel:nascer_em ?p . ?p rdfs:label ?place }"""
    assert ptoie_main(["sparql", str(outputs.store), query, "--format", "csv"]) == 0
    assert capsys.readouterr().out.split() == ["place", "Azinhaga"]
    # what is in the Brasil of three documents (each says it differently)
    query = """SELECT (COUNT(DISTINCT ?doc) AS ?n) WHERE {
                 ?x rdf:object ent:brasil ; prov:wasDerivedFrom ?doc }"""
    assert ptoie_main(["sparql", str(outputs.store), query, "--format", "csv"]) == 0
    assert capsys.readouterr().out.split() == ["n", "2"]


def test_min_confidence_keeps_parquet_and_filters_every_output(news_graph, tmp_path, capsys):
    root, _, _ = news_graph
    out = tmp_path / "sure.ttl"
    assert ptoie_main(["view", str(root / "kg.ttl"), "--out", str(tmp_path / "v.html"),
                       "--min-confidence", "0.5"]) == 0
    capsys.readouterr()
    outputs = GraphOutputs.beside(out, view=None, min_confidence=0.5)
    report = build_graph(sorted((root / "kg.parquet").glob("*.parquet")), outputs,
                         cache=tmp_path / "cache")
    assert (report.triples, report.rows) == (7, 9)
    g = Graph().parse(out, format="turtle")
    assert (URIRef(ENT + "embraer"), None, None) not in g  # only at 0.2
    assert nx.read_graphml(outputs.graphml, force_multigraph=True).number_of_edges() == 7
    assert ptoie_main(["sparql", str(outputs.store),
                       "SELECT (COUNT(*) AS ?n) WHERE { ?x a ptoie:Extraction }",
                       "--format", "csv"]) == 0
    assert capsys.readouterr().out.split() == ["n", "7"]


def test_news_corpus_graph_is_merged(tmp_path):
    """tests/fixtures/news_triples.parquet: the real extractor's triples of tests/fixtures/news/
    (50 sentences, 7 documents). Against surface forms as keys (lower case, as written), the
    canonical keys give fewer nodes and components and a larger connected part."""
    source = Path(__file__).parent / "fixtures" / "news_triples.parquet"
    outputs = GraphOutputs.beside(tmp_path / "kg.ttl", view=None, store=None, node_link=None)
    build_graph([source], outputs, cache=tmp_path / "cache")
    assert not [s for s in Graph().parse(outputs.rdf, format="turtle").all_nodes()
                if str(s).startswith(ENT) and str(s)[len(ENT):].split("_")[0] in
                canonical.ARTICLES | set(canonical.CONTRACTIONS) | canonical.PREPOSITIONS]
    graph = nx.read_graphml(outputs.graphml, force_multigraph=True)
    merged = nx.Graph((u, v) for u, v in graph.edges() if graph.nodes[v]["kind"] == "entity")
    merged.add_nodes_from(u for u, _ in graph.edges())
    rows = pq.read_table(source, columns=["arg1", "arg2"]).to_pylist()
    naive = nx.Graph((r["arg1"].lower(), r["arg2"].lower()) for r in rows)
    largest = lambda g: max(len(c) for c in nx.connected_components(g))  # noqa: E731
    assert merged.number_of_nodes() < naive.number_of_nodes() - 15
    assert nx.number_connected_components(merged) < nx.number_connected_components(naive) - 8
    assert largest(merged) >= 2 * largest(naive)
