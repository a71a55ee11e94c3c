"""The picture stage: kg.html from real Parquet shards (DuckDB + pyvis), self-contained and safe."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyvis
import pytest

from ptoie.cli.main import main
from ptoie.files import records_table, write_parquet_shard
from ptoie.graph.rdf import entity_slug
from ptoie.triple import Triple
from ptoie.graph.view import write_graph_view

MODEL = "SmolLM2-135M-Instruct.Q4_1.gguf"
EVIL = "<script>alert('xss')</script>"

# Machado de Assis (two surface forms, one entity) has degree 4, Lisboa 3, Portugal 2, Brasil 2.
TRIPLES = [
    ("livros/1", "Machado de Assis escreveu Dom Casmurro.",
     ("Machado de Assis", "escreveu", "Dom Casmurro", 0.9)),
    ("livros/1", "Machado de Assis escreveu Dom Casmurro.",
     ("machado de assis", "Escreveu", "Lisboa", 0.2)),
    ("livros/2", "Machado de Assis nasceu no Rio de Janeiro.",
     ("Machado de Assis", "nasceu em", "Rio de Janeiro", 0.8)),
    ("livros/3", "Machado de Assis fundou a Academia Brasileira de Letras.",
     ("Machado de Assis", "fundou", "Academia Brasileira de Letras", None)),
    ("geo/1", "Lisboa é a capital de Portugal.", ("Lisboa", "é a capital de", "Portugal", 0.6)),
    ("geo/2", f"Lisboa fica em Portugal {EVIL}.", ("Lisboa", "fica em", "Portugal", 0.5)),
    ("geo/3", "O Brasil fala português.", ("Brasil", "fala", "português", 0.7)),
    ("geo/4", "São Paulo fica no Brasil.", ("São Paulo", "fica em", "Brasil", 0.4)),
]


def write_shards(folder: Path, triples=TRIPLES) -> Path:
    records, index = [], {}
    for doc_id, sentence, (arg1, rel, arg2, conf) in triples:
        i = index[(doc_id, sentence)] = index.get((doc_id, sentence), -1) + 1
        records.append(Triple(arg1, rel, arg2, conf).to_record(
            doc_id=doc_id, sentence_id=0, sentence=sentence, extraction_index=i, model_id=MODEL,
            doc_url="https://exemplo.pt/geo" if doc_id == "geo/1" else None,
            doc_title="Geografia de Portugal" if doc_id == "geo/1" else None))
    write_parquet_shard(records_table(records[:4]), folder, "part-00000.parquet")
    write_parquet_shard(records_table(records[4:]), folder, "part-00001.parquet")
    (folder / "_manifest.jsonl").write_text("{}\n", encoding="utf-8")
    return folder


def page_data(html: str, name: str):
    match = re.search(rf"^const {name} = (.*);$", html, re.M)
    assert match, name
    return json.loads(match[1])


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return write_shards(tmp_path_factory.mktemp("kg") / "kg.parquet")


def test_view_draws_the_most_connected_entities(shards, tmp_path):
    html_path = tmp_path / "kg.html"
    view = write_graph_view(shards, html_path, max_nodes=3)
    html = html_path.read_text(encoding="utf-8")
    nodes = page_data(html, "NODES")
    assert (view.nodes, view.triples, view.entities) == (3, len(TRIPLES), 9)
    # keyed like the RDF entity IRIs; the two surface forms of Machado are one node. The largest
    # connected part (Machado, Lisboa, Portugal, ...: 6 entities) is drawn first: Portugal, not
    # Brasil (also of degree 2, in a part of 3 entities)
    assert [(n["id"], n["label"], n["title"]) for n in nodes] == [
        (entity_slug("Machado de Assis"), "Machado de Assis", "Machado de Assis\n4 triples"),
        (entity_slug("Lisboa"), "Lisboa", "Lisboa\n3 triples"),
        (entity_slug("Portugal"), "Portugal", "Portugal\n2 triples")]
    assert [n["value"] ** 2 for n in nodes] == pytest.approx([4, 3, 2])  # area ~ degree
    for label in ("Machado de Assis", "Lisboa", "Portugal"):
        assert f'"label": "{label}"' in html  # Portuguese text kept as UTF-8
    edges = page_data(html, "EDGES")
    # only the edges between drawn nodes, one per relation key, labelled as written
    assert sorted((e["from"], e["to"], e["label"], e["title"]) for e in edges) == [
        ("lisboa", "portugal", "fica em", "fica em (1 triple)"),
        ("lisboa", "portugal", "é a capital de", "é a capital de (1 triple)"),
        (entity_slug("Machado de Assis"), "lisboa", "Escreveu", "Escreveu (1 triple)")]


def test_view_is_self_contained(shards, tmp_path):
    html_path = tmp_path / "kg.html"
    write_graph_view(shards, html_path)
    html = html_path.read_text(encoding="utf-8")
    vis_js = next((Path(pyvis.__file__).parent / "templates" / "lib").glob(
        "vis-*/vis-network.min.js")).read_text(encoding="utf-8")
    assert vis_js in html  # vis-network inline, not from a CDN
    assert not re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=", html, re.I)
    assert "new vis.Network(" in html
    assert len(page_data(html, "NODES")) == 9  # every entity fits under the default cap


def test_view_details_are_capped_and_carry_sentences_and_documents(shards, tmp_path):
    html_path = tmp_path / "kg.html"
    write_graph_view(shards, html_path, max_nodes=4, triples_per_node=2)
    details = page_data(html_path.read_text(encoding="utf-8"), "DETAILS")
    machado = details[entity_slug("Machado de Assis")]
    assert machado["degree"] == machado["count"] == 4
    assert len(machado["triples"]) == 2  # the two most confident
    assert [t[:3] + [t[7]] for t in machado["triples"]] == [
        ["Machado de Assis", "escreveu", "Dom Casmurro", 0.9],
        ["Machado de Assis", "nasceu em", "Rio de Janeiro", 0.8]]
    assert machado["triples"][0][3] == "Machado de Assis escreveu Dom Casmurro."
    portugal = details["portugal"]["triples"]
    assert portugal[0][4:7] == ["geo/1", "Geografia de Portugal", "https://exemplo.pt/geo"]


def test_view_escapes_markup_from_the_corpus(shards, tmp_path):
    html_path = tmp_path / "kg.html"
    write_graph_view(shards, html_path, max_nodes=4, title="Grafo <b>teste</b> & cia")
    html = html_path.read_text(encoding="utf-8")
    assert EVIL not in html and "alert('xss')" not in html
    assert "<b>teste</b>" not in html and "Grafo &lt;b&gt;teste&lt;/b&gt; &amp; cia" in html
    sentences = [t[3] for d in page_data(html, "DETAILS").values() for t in d["triples"]]
    assert f"Lisboa fica em Portugal {EVIL}." in sentences  # shown as text in the panel


def test_view_of_an_empty_graph_is_a_clear_error(tmp_path):
    empty = tmp_path / "empty.parquet"
    empty.mkdir()
    (empty / "_manifest.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="the graph is empty"):
        write_graph_view(empty, tmp_path / "a.html")
    write_parquet_shard(records_table([]), empty, "part-00000.parquet")  # a shard with no rows
    with pytest.raises(ValueError, match="the graph is empty"):
        write_graph_view(empty, tmp_path / "a.html")
    assert not (tmp_path / "a.html").exists()


def test_view_accepts_parquet_files(shards, tmp_path):
    files = sorted(shards.glob("part-*.parquet"))
    view = write_graph_view(files[1:], tmp_path / "geo.html", max_nodes=2)
    assert view.triples == 4 and view.nodes == 2


def test_view_command(shards, tmp_path, capsys):
    out = tmp_path / "picture.html"
    kg = shards.with_suffix(".ttl")  # the job's --out path
    assert main(["view", str(kg), "--out", str(out), "--max-nodes", "2"]) == 0
    assert len(page_data(out.read_text(encoding="utf-8"), "NODES")) == 2
    assert capsys.readouterr().out.startswith(f"{out}: 2 of 9 entities")

    assert main(["view", str(tmp_path / "nada.ttl")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ptoie view: error: no Parquet triples at") and err.count("\n") == 1


def test_view_of_foreign_parquet_without_provenance_columns(tmp_path):
    """Parquet written by other tools (no confidence, doc_url, doc_title), with a loop."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "old.parquet"
    folder.mkdir()
    pq.write_table(pa.table({
        "doc_id": ["d", "d", "d"], "sentence_id": pa.array([0, 1, 2], pa.int32()),
        "extraction_index": pa.array([0, 0, 0], pa.int32()),
        "sentence": ["A ama A.", "A vê B.", "B vê C."],
        "arg1": ["A", "A", "B"], "rel": ["ama", "vê", "vê"], "arg2": ["a.", "B", "C"]}),
        folder / "part-0.parquet")
    write_graph_view(folder, tmp_path / "old.html")
    html = (tmp_path / "old.html").read_text(encoding="utf-8")
    a = page_data(html, "DETAILS")["a"]
    assert (a["degree"], a["count"]) == (3, 2)  # the loop A ama a. counts twice, is listed once
    assert [t[:3] + t[5:] for t in a["triples"]] == [["A", "ama", "a.", None, None, None],
                                                     ["A", "vê", "B", None, None, None]]
    assert ("a", "a", "ama") in {(e["from"], e["to"], e["label"]) for e in page_data(html, "EDGES")}


def test_view_keeps_an_edge_for_every_node_under_the_edge_cap(shards, tmp_path):
    html_path = tmp_path / "kg.html"
    write_graph_view(shards, html_path, max_edges=7)  # 8 links: one must go
    html = html_path.read_text(encoding="utf-8")
    edges = page_data(html, "EDGES")
    assert len(edges) == 7
    # the one dropped is Lisboa's and Portugal's second link, not São Paulo's only one
    assert {e["from"] for e in edges} | {e["to"] for e in edges} == \
        {n["id"] for n in page_data(html, "NODES")}
    assert sum(1 for e in edges if (e["from"], e["to"]) == ("lisboa", "portugal")) == 1
