"""The query stage: `ptoie sparql` over a real Oxigraph store, `ptoie sql` over real Parquet shards.

The knowledge graph is laid out as ``ptoie-batch --out out/kg.ttl`` writes it: ``out/kg.parquet/``
(shards written by ptoie.files, plus ``_`` bookkeeping files), ``out/kg.ttl`` (ptoie.graph.rdf's
RDF writer) and ``out/kg.oxigraph/`` (a pyoxigraph store holding kg.ttl in its default graph and a
bookkeeping quad in a named graph, as the job's store does).
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pyoxigraph import Literal, NamedNode, Quad, RdfFormat, Store

from ptoie.cli.main import main
from ptoie.graph.query import QueryError, kg_paths, sparql, sql, write_result
from ptoie.files import records_table, write_parquet_shard
from ptoie.graph.rdf import RdfVocabulary, write_rdf
from ptoie.triple import Triple

MODEL = "SmolLM2-135M-Instruct.Q4_1.gguf"
SCRIPT = "O site publicou <script>alert('oi')</script> sobre Lisboa."

# (doc_id, sentence_id, sentence, triple, doc_url, doc_title)
ROWS = [
    ("livros.jsonl:1", 0, "Machado de Assis escreveu Dom Casmurro.",
     Triple("Machado de Assis", "escreveu", "Dom Casmurro", 0.91), None, None),
    ("livros.jsonl:1", 0, "Machado de Assis escreveu Dom Casmurro.",
     Triple("machado de assis", "escreveu", "um romance", None), None, None),
    ("livros.jsonl:2", 1, "Machado de Assis nasceu no Rio de Janeiro.",
     Triple("Machado de Assis", "nasceu em", "Rio de Janeiro", 0.8), None, None),
    ("geo/pt.txt", 3, "Lisboa é a capital de Portugal.",
     Triple("Lisboa", "é a capital de", "Portugal", 0.5), None, None),
    ("https://pt.wikipedia.org/wiki/São_Paulo", 0, "São Paulo é a maior cidade do Brasil.",
     Triple("São Paulo", "é a maior cidade de", "Brasil", 0.7),
     "https://pt.wikipedia.org/wiki/S%C3%A3o_Paulo", "São Paulo – Wikipédia"),
    ("web/1", 0, SCRIPT, Triple("O site", "publicou", "<script>alert('oi')</script>", 0.3),
     None, None),
]


def records() -> list[dict]:
    out, index = [], {}
    for doc_id, sid, sentence, triple, url, title in ROWS:
        i = index[(doc_id, sid)] = index.get((doc_id, sid), -1) + 1
        out.append(triple.to_record(doc_id=doc_id, sentence_id=sid, sentence=sentence,
                                    extraction_index=i, model_id=MODEL, doc_url=url,
                                    doc_title=title))
    return out


def build_kg(root: Path) -> Path:
    """``root/out/kg.{parquet/,ttl,oxigraph/}`` as the job lays them out; returns the --out path."""
    out = root / "out"
    rows = records()
    shards = out / "kg.parquet"
    write_parquet_shard(records_table(rows[:3]), shards, "part-00000.parquet")
    write_parquet_shard(records_table(rows[3:]), shards, "part-00001.parquet")
    (shards / "_manifest.jsonl").write_text('{"shard": "part-00000.parquet"}\n', encoding="utf-8")
    (shards / "_broken.parquet").write_bytes(b"not parquet")  # bookkeeping: must be skipped
    ttl = out / "kg.ttl"
    with open(ttl, "wb") as fh:
        write_rdf([pq.read_table(p) for p in sorted(shards.glob("part-*.parquet"))], fh, "turtle")
    store = Store(str(out / "kg.oxigraph"))
    store.bulk_load(path=str(ttl), format=RdfFormat.TURTLE)
    bookkeeping = NamedNode(RdfVocabulary().prefixes["ptoie"] + "bookkeeping")
    store.add(Quad(bookkeeping, NamedNode(RdfVocabulary().prefixes["ptoie"] + "loadedFragment"),
                   Literal("part-00000.ttl"), bookkeeping))
    store.flush()
    del store  # releases the RocksDB lock
    return ttl


@pytest.fixture(scope="module")
def kg(tmp_path_factory) -> Path:
    return build_kg(tmp_path_factory.mktemp("kg"))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- where the graph is ----------------------------------------------------------------------
def test_kg_paths_follow_the_jobs_naming_rule(kg):
    out = kg.parent
    expected = (out / "kg.oxigraph", out / "kg.parquet", out / "kg.html")
    for given in (kg, out / "kg.nt", out / "kg.oxigraph", out / "kg.parquet", out / "kg.html",
                  out / "kg", out):
        paths = kg_paths(given)
        assert (paths.store, paths.parquet, paths.html) == expected, given
    assert kg_paths("elsewhere/grafo.ttl").store == Path("elsewhere/grafo.oxigraph")


def test_a_folder_with_two_graphs_asks_which(tmp_path):
    with pytest.raises(QueryError, match="no knowledge graph in"):
        kg_paths(tmp_path)
    (tmp_path / "a.parquet").mkdir()
    (tmp_path / "b.oxigraph").mkdir()
    with pytest.raises(QueryError, match=r"several knowledge graphs \(a, b\)"):
        kg_paths(tmp_path)


# -- SPARQL ----------------------------------------------------------------------------------
def test_sparql_counts_one_extraction_per_parquet_row(kg, capsys):
    rows = pq.read_table(kg.parent / "kg.parquet" / "part-00000.parquet").num_rows + \
        pq.read_table(kg.parent / "kg.parquet" / "part-00001.parquet").num_rows
    assert rows == len(ROWS)
    query = "SELECT (COUNT(?x) AS ?n) WHERE { ?x a ptoie:Extraction }"  # no PREFIX line
    code, out, err = run(capsys, "sparql", str(kg), query, "--format", "json")
    assert (code, err) == (0, "")
    assert json.loads(out) == [{"n": rows}]

    code, out, _ = run(capsys, "sparql", str(kg), query)  # table
    assert code == 0
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    assert lines[0] == "n" and str(rows) in lines and lines[-1] == "1 row"


def test_sparql_default_graph_holds_only_the_knowledge_graph(kg):
    result = sparql(kg_paths(kg).store, "SELECT ?o WHERE { ?s ptoie:loadedFragment ?o }")
    assert list(result.rows) == []
    result = sparql(kg_paths(kg).store,
                    "SELECT ?o WHERE { GRAPH ptoie:bookkeeping { ?s ptoie:loadedFragment ?o } }")
    assert [row[0].value for row in result.rows] == ["part-00000.ttl"]


def test_sparql_relations_of_an_entity_as_csv(kg, capsys):
    query = """SELECT ?relation ?object WHERE {
                 ent:machado_de_assis ?p ?o . ?p skos:altLabel ?relation . ?o skos:altLabel ?object
               } ORDER BY ?relation ?object"""
    code, out, err = run(capsys, "sparql", str(kg.parent / "kg.oxigraph"), query, "--format", "csv")
    assert (code, err) == (0, "")
    assert list(csv.reader(io.StringIO(out))) == [
        ["relation", "object"], ["escreveu", "Dom Casmurro"], ["escreveu", "romance"],
        ["nasceu em", "Rio de Janeiro"]]


def test_sparql_provenance_iris_in_csv_and_compact_in_table(kg, capsys, monkeypatch):
    query = """SELECT ?x ?doc ?url ?confidence WHERE {
                 ?x rdf:subject ent:sao_paulo ; prov:wasDerivedFrom ?doc ; ptoie:confidence ?confidence .
                 OPTIONAL { ?doc schema:url ?url } }"""
    _, out, _ = run(capsys, "sparql", str(kg), query, "--format", "json")
    [row] = json.loads(out)
    assert row["url"] == "https://pt.wikipedia.org/wiki/S%C3%A3o_Paulo"
    assert row["confidence"] == pytest.approx(0.7)  # xsd:double -> a JSON number
    assert row["x"].startswith(RdfVocabulary().prefixes["ext"])
    monkeypatch.setenv("COLUMNS", "300")  # rich's width when stdout is not a terminal
    code, out, _ = run(capsys, "sparql", str(kg), query)
    assert code == 0 and "doc:https%3A%2F%2Fpt.wikipedia.org" in out  # compact IRI in the table


def test_sparql_ask_and_construct(kg):
    store = kg_paths(kg).store
    assert list(sparql(store, "ASK { ent:lisboa ?p ent:portugal }").rows) == [(True,)]
    result = sparql(store, "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o . FILTER(?s = ent:lisboa && "
                           "?o = ent:portugal) }")
    buffer = io.StringIO()
    assert write_result(result, "csv", buffer) == 1
    assert buffer.getvalue().splitlines()[0] == "subject,predicate,object"


def test_sparql_of_a_store_held_open_for_writing(kg, tmp_path, capsys):
    """A read-only open works while another process (a running job) holds the store's lock."""
    writer = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pyoxigraph import Store; "
         f"s = Store({str(kg_paths(kg).store)!r}); print('open', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "open"
        with pytest.raises(OSError, match="lock"):
            Store(str(kg_paths(kg).store))  # a second writer is refused...
        code, out, err = run(capsys, "sparql", str(kg), "SELECT (COUNT(*) AS ?n) "
                             "WHERE { ?x a ptoie:Extraction }", "--format", "csv")
        assert (code, out, err) == (0, f"n\n{len(ROWS)}\n", "")  # ...a reader is not
    finally:
        writer.communicate("", timeout=10)


# -- SQL -------------------------------------------------------------------------------------
def test_sql_most_frequent_relations(kg, capsys):
    query = "SELECT rel, count(*) AS n FROM triples GROUP BY rel ORDER BY n DESC, rel LIMIT 2"
    code, out, err = run(capsys, "sql", str(kg), query, "--format", "json")
    assert (code, err) == (0, "")
    assert json.loads(out) == [{"rel": "escreveu", "n": 2}, {"rel": "nasceu em", "n": 1}]

    code, out, _ = run(capsys, "sql", str(kg.parent / "kg.parquet"), query)  # table
    assert code == 0 and "escreveu" in out and "2 rows" in out


def test_sql_from_a_file_with_nullable_provenance_and_csv(kg, tmp_path, capsys):
    file = tmp_path / "docs.sql"
    file.write_text("SELECT doc_id, doc_title, confidence FROM triples "
                    "WHERE doc_id LIKE 'https:%' OR confidence IS NULL ORDER BY doc_id",
                    encoding="utf-8")
    code, out, err = run(capsys, "sql", str(kg), f"@{file}", "--format", "csv")
    assert (code, err) == (0, "")
    assert list(csv.reader(io.StringIO(out))) == [
        ["doc_id", "doc_title", "confidence"],
        ["https://pt.wikipedia.org/wiki/São_Paulo", "São Paulo – Wikipédia", "0.7"],
        ["livros.jsonl:1", "", ""]]
    code, out, _ = run(capsys, "sql", str(kg), f"@{file}", "--format", "json")
    assert json.loads(out)[1] == {"doc_id": "livros.jsonl:1", "doc_title": None, "confidence": None}


def test_jsonl_is_one_typed_object_per_line_in_sql_and_sparql(kg, capsys, monkeypatch):
    query = "SELECT rel, count(*) AS n FROM triples GROUP BY rel ORDER BY n DESC, rel LIMIT 2"
    code, out, err = run(capsys, "sql", str(kg), query, "--format", "jsonl")
    assert (code, err) == (0, "")
    assert out.splitlines() == ['{"rel": "escreveu", "n": 2}', '{"rel": "nasceu em", "n": 1}']
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(
        b"SELECT (COUNT(?x) AS ?n) WHERE { ?x a ptoie:Extraction }")))
    code, out, err = run(capsys, "sparql", str(kg), "-", "--format", "jsonl")  # query on stdin
    assert (code, err) == (0, "")
    assert [json.loads(line) for line in out.splitlines()] == [{"n": len(ROWS)}]


def test_a_graph_built_by_ptoie_kg_says_where_the_parquet_triples_are(kg, tmp_path, capsys):
    """ptoie-kg writes the store but no Parquet triples of its own: sparql works on its --out
    path, and sql names what is missing and what writes it (not "run ptoie-batch first")."""
    from ptoie.cli.kg import main as kg_main

    subset = tmp_path / "subset.ttl"
    assert kg_main([str(kg.parent / "kg.parquet"), "--out", str(subset), "--no-view",
                    "--no-graphml", "--no-node-link"]) == 0
    capsys.readouterr()
    code, out, err = run(capsys, "sparql", str(subset), "SELECT (COUNT(?x) AS ?n) WHERE "
                         "{ ?x a ptoie:Extraction }", "--format", "csv")
    assert (code, out, err) == (0, f"n\n{len(ROWS)}\n", "")
    code, out, err = run(capsys, "sql", str(subset), "SELECT count(*) FROM triples")
    assert (code, out) == (2, "")
    assert err.startswith(f"ptoie sql: error: no Parquet triples at {tmp_path / 'subset.parquet'}")
    assert "ptoie-kg writes none: give the Parquet files it read" in err and "first" not in err
    code, out, _ = run(capsys, "sql", str(kg.parent / "kg.parquet"), "SELECT count(*) AS n FROM triples",
                       "--format", "csv")
    assert (code, out) == (0, f"n\n{len(ROWS)}\n")


def test_sql_reads_only_the_shards(kg):
    result = sql(kg_paths(kg).parquet, "SELECT count(*) FROM triples")
    assert list(result.rows) == [(len(ROWS),)]  # _broken.parquet and _manifest.jsonl skipped


def test_sql_unifies_files_whose_columns_differ_by_name(tmp_path):
    """A user's table in two files, one without the web-page columns: read as one, by name."""
    table = records_table(records())
    pq.write_table(table.slice(0, 2), tmp_path / "a.parquet")
    pq.write_table(table.slice(2).drop_columns(["doc_url", "doc_title"]), tmp_path / "b.parquet")
    result = sql(tmp_path, "SELECT count(*), count(doc_url) FROM triples")
    assert list(result.rows) == [(len(ROWS), 0)]


def test_table_output_shows_markup_as_text(kg, capsys):
    code, out, _ = run(capsys, "sql", str(kg), "SELECT arg2 FROM triples WHERE doc_id = 'web/1'")
    assert code == 0 and "<script>alert('oi')</script>" in out
    code, out, _ = run(capsys, "sql", str(kg), "SELECT '[bold]x[/bold]' AS markup")
    assert "[bold]x[/bold]" in out  # rich markup in data is printed, not interpreted


# -- bad input: one line on stderr, exit 2 ---------------------------------------------------
def _no_shards(root: Path) -> Path:
    (root / "empty.parquet").mkdir()
    (root / "empty.parquet" / "_manifest.jsonl").write_text("", encoding="utf-8")
    return root / "empty.ttl"


def _not_a_store(root: Path) -> Path:
    (root / "x.oxigraph").mkdir()
    (root / "x.oxigraph" / "notes.txt").write_text("hello", encoding="utf-8")
    return root / "x.ttl"


BAD = [
    ("sparql", lambda kg, tmp: tmp / "nada.ttl", "SELECT * WHERE { ?s ?p ?o }", "no Oxigraph store at"),
    ("sparql", lambda kg, tmp: _not_a_store(tmp), "SELECT * WHERE { ?s ?p ?o }",
     "is not an Oxigraph store"),
    ("sparql", lambda kg, tmp: kg, "SELEC * WHERE { ?s ?p ?o }",
     "SPARQL syntax error at line 1, column 10 near 'HERE { ?s ?p ?o }': expected CONSTRUCT"),
    ("sparql", lambda kg, tmp: kg, "SELECT * WHERE {\n  ?s ?p ?o", "SPARQL syntax error at line 2"),
    ("sparql", lambda kg, tmp: kg, "SELECT * WHERE { ?s foaf:name ?o }", "undeclared prefix 'foaf:'"),
    ("sparql", lambda kg, tmp: kg, "SELECT ?x WHERE { ?s ?p ?o } GROUP BY ?s",
     "The SELECT contains a variable that is unbound"),
    ("sparql", lambda kg, tmp: kg, "INSERT DATA { ent:a rel:b ent:c }", "not updates"),
    ("sparql", lambda kg, tmp: tmp, "ASK { ?s ?p ?o }", "no knowledge graph in"),
    ("sparql", lambda kg, tmp: kg, "@/no/such/query.rq", "query file not found"),
    ("sparql", lambda kg, tmp: kg, "   ", "the query is empty"),
    ("sql", lambda kg, tmp: tmp / "nada.ttl", "SELECT 1", "no Parquet triples at"),
    ("sql", lambda kg, tmp: _no_shards(tmp), "SELECT 1", "the graph is empty"),
    ("sql", lambda kg, tmp: kg, "SELEC rel FROM triples", 'Parser Error: syntax error at or near "SELEC"'),
    ("sql", lambda kg, tmp: kg, "SELECT nope FROM triples", 'Referenced column "nope" not found'),
]


@pytest.mark.parametrize("command, where, query, message", BAD,
                         ids=[f"{b[0]}-{b[3][:24]}" for b in BAD])
def test_bad_input_is_one_line_and_exit_2(kg, tmp_path, capsys, command, where, query, message):
    code, out, err = run(capsys, command, str(where(kg, tmp_path)), query)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith(f"ptoie {command}: error: ") and message in err, err
    assert len(err) < 400, err


@pytest.mark.parametrize("command, query", [("sql", "SELECT 1"), ("view", None)])
def test_a_folder_that_cannot_be_listed_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch,
                                                               command, query):
    def denied(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "iterdir", denied)
    code, out, err = run(capsys, command, str(tmp_path), *([query] if query else []))
    assert (code, out) == (2, "")
    assert err == f"ptoie {command}: error: {tmp_path}: cannot list the folder (Permission denied)\n"
