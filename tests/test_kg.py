"""The graph stage (ptoie.graph.build) and ``ptoie-kg``: Parquet triples -> RDF file, Oxigraph store,
GraphML / node-link, picture; incremental rebuilds; bad input."""

from __future__ import annotations

import json

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rdflib import RDF, Graph

from ptoie.cli.kg import main
from ptoie.files import records_table, write_parquet_shard
from ptoie.graph import fragments as graph_fragments, sources as graph_sources, store as graph_store
from ptoie.graph.build import GraphOutputs, build_graph
from ptoie.graph.rdf import RdfVocabulary
from ptoie.graph.sources import GraphInputError
from ptoie.graph.store import count_extractions
from ptoie.triple import Triple

PEOPLE = [("Machado de Assis", "escreveu", "Dom Casmurro"), ("Machado de Assis", "nasceu em", "Rio de Janeiro"),
          ("Fernando Pessoa", "escreveu", "Mensagem"), ("Lisboa", "é a capital de", "Portugal"),
          ("Camões", "escreveu", "Os Lusíadas"), ("Pedro Álvares Cabral", "chegou a", "o Brasil")]


def shard(directory, name, rows):
    records = [Triple(a, r, b, 0.9).to_record(doc_id=f"doc-{i}", sentence_id=0,
                                               sentence=f"{a} {r} {b}.", extraction_index=0,
                                               model_id="m.gguf")
               for i, (a, r, b) in rows]
    return write_parquet_shard(records_table(records), directory, name)


def statements(path, fmt="turtle") -> int:
    return len(set(Graph().parse(path, format=fmt).subjects(RDF.type, RDF.Statement)))


def test_outputs_agree_and_reruns_rewrite_only_what_changed(tmp_path, monkeypatch):
    monkeypatch.setattr(graph_fragments, "FRAGMENT_SOURCES", 2)  # several fragments from a few shards
    data = tmp_path / "kg.parquet"
    sources = [shard(data, f"part-{n}.parquet", [(n * 10 + i, PEOPLE[(n + i) % 6]) for i in range(2)])
               for n in range(3)]
    outputs = GraphOutputs.beside(tmp_path / "kg.ttl")
    cache = data / "_kg"
    report = build_graph(sources, outputs, cache=cache)
    assert report.triples == 6 and report.skipped == {}
    assert report.counts == dict.fromkeys(["rdf", "store", "graphml", "node-link"], 6)
    assert sorted(report.written) == ["graphml", "node-link", "rdf", "store", "view"]
    assert statements(outputs.rdf) == 6                      # rdflib reads the concatenated Turtle
    assert count_extractions(outputs.store, RdfVocabulary()) == 6
    assert "Machado de Assis" in outputs.view.read_text(encoding="utf-8")
    assert len(list(cache.glob("fragment-0*.ttl"))) == 2     # 3 shards, 2 per fragment
    assert len(list(cache.glob("fragment-labels-*.ttl"))) == 1  # and the labels

    again = build_graph(sources, outputs, cache=cache)
    assert again.written == [] and sorted(again.unchanged) == sorted(report.written)

    # one more shard: only the last fragment is remade, the store loads only what is new
    sources.append(shard(data, "part-3.parquet", [(99, PEOPLE[5])]))
    loads = []
    real = graph_store._load
    monkeypatch.setattr(graph_store, "_load", lambda store, fragment, fmt: (
        loads.append(str(fragment.path)), real(store, fragment, fmt))[1])
    third = build_graph(sources, outputs, cache=cache)
    assert third.triples == 7 and third.counts["store"] == 7 and statements(outputs.rdf) == 7
    # the last group only, and the labels (a new entity)
    assert [p.rsplit("/", 1)[1][:15] for p in loads] == ["fragment-000001", "fragment-labels"]

    # a source rewritten with fewer rows: the store drops what is gone (cleared and reloaded)
    shard(data, "part-0.parquet", [(0, PEOPLE[0])])
    fourth = build_graph(sources, outputs, cache=cache)
    assert fourth.triples == 6 and fourth.counts["store"] == 6 and statements(outputs.rdf) == 6
    assert len(list(cache.glob("fragment-*.ttl"))) == 3      # stale fragments removed


def test_fragments_are_bounded_by_rows_whatever_the_file_sizes(tmp_path, monkeypatch):
    monkeypatch.setattr(graph_fragments, "FRAGMENT_ROWS", 5)
    monkeypatch.setattr(graph_sources, "READ_ROWS", 2)
    data = tmp_path / "kg.parquet"
    people = [(i, PEOPLE[i % 6]) for i in range(23)]
    big = shard(data, "part-0.parquet", people[:12])       # one file over three fragments
    small = [shard(data, f"part-{n}.parquet", people[12 + 2 * (n - 1):12 + 2 * n]) for n in (1, 2)]
    last = shard(data, "part-3.parquet", people[16:])      # 7 rows
    sources = [big, *small, last]
    outputs = GraphOutputs.beside(tmp_path / "kg.ttl", view=None)
    loads = []
    real = graph_store._load
    monkeypatch.setattr(graph_store, "_load", lambda store, fragment, fmt: (
        loads.append(str(fragment.path)), real(store, fragment, fmt))[1])
    report = build_graph(sources, outputs, cache=data / "_kg")
    assert report.triples == 23 and report.counts == dict.fromkeys(["rdf", "store", "graphml", "node-link"], 23)
    assert statements(outputs.rdf) == 23
    fragments = sorted((data / "_kg").glob("fragment-0*.ttl"))  # not the labels fragment
    assert [statements(f) for f in fragments] == [5, 5, 5, 5, 3]   # rows cut at 5, files or not
    assert len(loads) == 6                    # the store loads one at a time, then the labels
    rows = sorted((r["doc_id"], r["arg1"]) for r in
                  pq.read_table(tmp_path / "kg.parquet").to_pylist())
    graph = Graph().parse(outputs.rdf, format="turtle")
    assert len(rows) == 23 and len(set(graph.subjects(RDF.type, RDF.Statement))) == 23
    again = build_graph(sources, outputs, cache=data / "_kg")
    assert again.written == [] and len(loads) == 6


def test_networkx_outputs_stop_at_the_bound_with_a_reason(tmp_path):
    data = tmp_path / "kg.parquet"
    sources = [shard(data, "part-0.parquet", list(enumerate(PEOPLE)))]
    outputs = GraphOutputs.beside(tmp_path / "kg.nt", view=None)
    build_graph(sources, outputs, cache=data / "_kg")
    assert outputs.graphml.exists()
    small = GraphOutputs.beside(tmp_path / "kg.nt", max_graph_triples=5)
    report = build_graph(sources, small, cache=data / "_kg")
    assert set(report.skipped) == {"graphml", "node-link"}
    assert "6 triples > --max-graph-triples 5" in report.skipped["graphml"]
    assert not outputs.graphml.exists() and not outputs.node_link.exists()  # no stale file left
    assert statements(outputs.rdf, "nt") == 6


def test_ptoie_kg_builds_from_a_duckdb_filtered_table(tmp_path, capsys):
    data = tmp_path / "job.parquet"
    shard(data, "part-0.parquet", list(enumerate(PEOPLE)))
    filtered = tmp_path / "escreveu.parquet"
    duckdb.sql(f"COPY (SELECT * FROM read_parquet('{data}/*.parquet') WHERE rel = 'escreveu') "
               f"TO '{filtered}' (FORMAT parquet)")
    out = tmp_path / "sub" / "escreveu.ttl"
    assert main([str(filtered), "--out", str(out), "--no-view", "--no-store"]) == 0
    stdout = capsys.readouterr().out
    assert "3 triples" in stdout and "not written" not in stdout
    assert statements(out) == 3
    assert json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))["edges"].__len__() == 3
    assert not out.with_suffix(".oxigraph").exists() and not out.with_suffix(".html").exists()
    assert main([str(filtered), "--out", str(out), "--no-view", "--no-store"]) == 0
    assert "unchanged" in capsys.readouterr().out


def test_a_graph_without_triples_writes_empty_outputs_and_no_picture(tmp_path, capsys):
    data = tmp_path / "kg.parquet"
    shard(data, "part-0.parquet", [])
    (tmp_path / "kg.html").write_text("an old picture")
    assert main([str(data), "--out", str(tmp_path / "kg.ttl")]) == 0
    out = capsys.readouterr().out
    assert "ptoie-kg: 0 triples" in out and "view       not written: the graph is empty" in out
    assert statements(tmp_path / "kg.ttl") == 0 and not (tmp_path / "kg.html").exists()
    assert count_extractions(tmp_path / "kg.oxigraph", RdfVocabulary()) == 0


def test_an_error_of_the_store_loader_reaches_the_caller_after_the_fragments(tmp_path):
    """The store is loaded in a background thread: its error is raised by build_graph, once the
    fragments are written and the picture is drawn."""
    data = tmp_path / "kg.parquet"
    sources = [shard(data, "part-0.parquet", list(enumerate(PEOPLE)))]
    (tmp_path / "kg.oxigraph").write_text("a file where the store folder goes")
    outputs = GraphOutputs.beside(tmp_path / "kg.ttl", graphml=None, node_link=None)
    with pytest.raises(OSError):
        build_graph(sources, outputs, cache=data / "_kg")
    assert len(list((data / "_kg").glob("fragment-*.ttl"))) == 2  # the rows, and the labels
    assert "Machado de Assis" in outputs.view.read_text(encoding="utf-8")
    assert not outputs.rdf.exists()


def test_an_error_of_the_fragments_stops_the_store_loader(tmp_path):
    """A source that is not a table of triples stops the build with its error; the store
    loader, waiting for fragments, stops too (build_graph returns instead of hanging)."""
    data = tmp_path / "kg.parquet"
    good = shard(data, "part-0.parquet", list(enumerate(PEOPLE)))
    bad = data / "part-1.parquet"
    pq.write_table(pa.table({"doc_id": ["a"], "text": ["b"]}), bad)
    outputs = GraphOutputs.beside(tmp_path / "kg.ttl", view=None)
    with pytest.raises(GraphInputError, match="column 'sentence_id' is missing"):
        build_graph([good, bad], outputs, cache=data / "_kg")
    assert not outputs.rdf.exists() and not outputs.graphml.exists()


def _empty_folder(path):
    path.mkdir()


def _documents_table(path):
    pq.write_table(pa.table({"doc_id": ["a"], "text": ["b"]}), path)


def _junk(path):
    path.write_bytes(b"not parquet")


@pytest.mark.parametrize("name, make, message", [
    ("missing.parquet", None, "no such file or folder"),
    ("empty", _empty_folder, "no Parquet file in this folder"),
    ("docs.parquet", _documents_table, "column 'sentence_id' is missing"),
    ("junk.parquet", _junk, "not a readable Parquet file"),
])
def test_ptoie_kg_bad_input_is_one_line_and_exit_2(tmp_path, capsys, name, make, message):
    path = tmp_path / name
    if make is not None:
        make(path)
    out = tmp_path / "out"
    assert main([str(path), "--out", str(out / "kg.ttl")]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("ptoie-kg: error: ") and message in line and str(path) in line
    assert not out.exists()  # nothing written, not even the fragment cache
