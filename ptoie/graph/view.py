"""The picture stage: an interactive HTML page of the most connected part of a knowledge graph.

:func:`write_graph_view` reads the Parquet triples with DuckDB, so memory stays bounded whatever
the graph's size (a million rows included): only aggregates and the few rows drawn reach Python.

* **Nodes** are entities keyed like their RDF IRIs (:mod:`ptoie.graph.canonical`: ``O Brasil`` and
  ``do Brasil`` are one node). DuckDB counts the triples of each distinct surface form, the key is
  computed once per distinct form (Python functions registered in DuckDB), and the counts are
  summed per key. Numbers, amounts and dates are literals, not nodes: they are listed in the
  panel of their entity, so they never become hubs. Among the ``20 × max_nodes`` entities of
  highest degree (triples in which they are subject or object), the connected parts are found
  and the largest parts are drawn first, each by degree, up to ``max_nodes``; a node is labelled
  by its most frequent surface form and its area grows with its degree.
* **Edges** join two drawn entities, one per (subject, object, relation key), labelled by the
  relation's most frequent surface form, wider with more triples. At most ``max_edges`` are
  drawn: every node's strongest edge first, then every node's second strongest, and so on (so
  no drawn entity loses all its edges to the hubs), by number of triples within each round.
* **Clicking a node** fills a side panel with its triples (the ``triples_per_node`` most
  confident), each with its sentence and document (title and link for web pages); a search box
  finds an entity by label, and ``kg.html#KEY`` (``#lisboa``) opens with that entity selected.

The page is the Jinja2 template ``ptoie/graph/templates/kg.html.j2``, self-contained and working
offline: vis-network's JavaScript and CSS, as shipped inside pyvis, are inlined (pyvis's own
template would load Bootstrap from a CDN). pyvis builds the node and edge records; the template
autoescapes the title and summary, the data is embedded as JSON with ``<``, ``>``, ``&`` and ``'``
escaped (Jinja's ``tojson``) and the panel is built with ``textContent``, so text from the corpus
(a sentence with ``<script>``, say) is shown, never run. vis-network shows node and edge tooltips
as plain text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pyvis
from jinja2 import Environment, PackageLoader, Template
from pyvis.network import Network

from ptoie.files import atomic_path
from ptoie.graph.canonical_sql import install_sql_functions
from ptoie.graph.mention_pass import resolve_sources, substitute_subjects
from ptoie.graph.mentions import Key, Mention
from ptoie.graph.query import PathLike, QueryError, duckdb_triples, parquet_files, source_name

DEFAULT_MAX_NODES = 40
"""Entities drawn by default: their labels stay legible in a 1200 × 800 window."""
_SENTENCE_CHARS = 600

_OPTIONS: dict[str, Any] = {
    "nodes": {
        "shape": "dot",
        "scaling": {"min": 10, "max": 40, "label": {"enabled": True, "min": 20, "max": 30,
                                                                "drawThreshold": 4}},
        "font": {"face": "Helvetica, Arial, sans-serif", "strokeWidth": 4, "strokeColor": "#ffffff"},
        "borderWidth": 1.5,
    },
    "edges": {
        "arrows": {"to": {"enabled": True, "scaleFactor": 0.45}},
        "color": {"color": "#a9b4c2", "highlight": "#d9480f", "hover": "#6c7a89"},
        "font": {"size": 20, "color": "#7c2d12", "strokeWidth": 4, "strokeColor": "#ffffff",
                 "align": "horizontal"},
        "scaling": {"min": 1, "max": 6, "label": {"enabled": False}},
        "smooth": {"type": "dynamic"},
    },
    "physics": {
        "solver": "forceAtlas2Based",
        "forceAtlas2Based": {"gravitationalConstant": -160, "centralGravity": 0.03,
                             "springLength": 140, "springConstant": 0.06, "avoidOverlap": 1},
        "stabilization": {"iterations": 400, "updateInterval": 50},
    },
    "interaction": {"hover": True, "tooltipDelay": 120, "navigationButtons": False},
    "layout": {"randomSeed": 1},  # the same graph is laid out the same way on every load
}


_NODE_COLOR = {"background": "#8ab6f9", "border": "#2a6bd1",
               "highlight": {"background": "#ffb36b", "border": "#d9480f"},
               "hover": {"background": "#b5d0fb", "border": "#2a6bd1"}}
"""Passed to every node: pyvis's ``add_node`` would otherwise give each its own default colour."""


@dataclass(frozen=True, slots=True)
class GraphView:
    """What :func:`write_graph_view` drew."""

    path: Path
    nodes: int
    """Entities drawn."""
    edges: int
    """Edges drawn (one per subject, object and relation)."""
    entities: int
    """Entities in the whole graph."""
    triples: int
    """Triples (Parquet rows) in the whole graph."""


def write_graph_view(parquet: PathLike | Sequence[PathLike], html_path: PathLike, *,
                     max_nodes: int = DEFAULT_MAX_NODES, max_edges: int = 300,
                     triples_per_node: int = 25, title: str | None = None,
                     min_confidence: float | None = None, resolve_mentions: bool = True,
                     mentions: Mapping[Key, Mention] | None = None) -> GraphView:
    """Write the interactive picture of the largest connected parts of the triples in
    ``parquet`` (the job's ``NAME.parquet/`` folder, or Parquet files) to ``html_path``
    (atomically: a complete page or none); with ``min_confidence``, only the triples whose
    confidence is known and at least that; ``mentions`` (else, if ``resolve_mentions``, those of
    :func:`~ptoie.graph.mention_pass.resolve_sources`) linked. The module doc says what is drawn.

    Raises ``ValueError`` (a :class:`~ptoie.graph.query.QueryError`, one line) when there are no
    triples (no Parquet shard, or shards without rows) or the files are not tables of triples."""
    for name, value in (("max_nodes", max_nodes), ("max_edges", max_edges),
                        ("triples_per_node", triples_per_node)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1 (got {value})")
    html_path = Path(html_path)
    con = duckdb_triples(parquet, min_confidence=min_confidence)
    try:
        substitute_subjects(con, mentions if mentions is not None else resolve_sources(
            parquet_files(parquet), min_confidence) if resolve_mentions else {})
        install_sql_functions(con)
        nodes, edges, details, totals = _select(con, max_nodes, max_edges, triples_per_node)
    except duckdb.Error as exc:
        raise QueryError(f"{source_name(parquet)}: cannot read the triples: "
                         f"{' '.join(str(exc).split())}") from None
    finally:
        con.close()
    triples, entities, edges_total = totals
    if not nodes:
        kept = "" if min_confidence is None else f" at or above --min-confidence {min_confidence}"
        raise QueryError(f"{source_name(parquet)}: the graph is empty (no triples{kept}), "
                         f"nothing to draw")

    node_records, edge_records = _network_records(nodes, edges)
    parts = len({node[3] for node in nodes})
    kept = "" if min_confidence is None else f" (confidence ≥ {min_confidence})"
    summary = (f"{len(nodes):,} of {entities:,} entities in the {parts:,} largest connected "
               f"part{'s' if parts != 1 else ''}, {len(edges):,} of {edges_total:,} links among "
               f"them; {triples:,} triples in all{kept}. Numbers and dates are in the panel.")
    vis_js, vis_css = _vis_network()
    page = _page_template().render(
        title=title or "ptoie knowledge graph", summary=summary, nodes=node_records,
        edges=edge_records, options=_OPTIONS, details=details, vis_js=vis_js, vis_css=vis_css)
    with atomic_path(html_path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return GraphView(path=html_path, nodes=len(nodes), edges=len(edges), entities=entities,
                     triples=triples)


def _network_records(nodes: list[tuple[str, str, int, int]],
                     edges: list[tuple[str, str, str, int]]) -> tuple[list[dict], list[dict]]:
    """The vis-network records of the drawn nodes and edges (pyvis builds them; the page is
    ours, see the module doc)."""
    net = Network(directed=True)
    for key, label, degree, _part in nodes:
        net.add_node(key, label=label, value=math.sqrt(degree), color=_NODE_COLOR,  # area ~ degree
                     title=f"{label}\n{degree} triple{'s' if degree != 1 else ''}")
    for src, dst, label, n in edges:
        net.add_edge(src, dst, label=label, value=math.sqrt(n),
                     title=f"{label} ({n} triple{'s' if n != 1 else ''})")
    node_records, edge_records, *_ = net.get_network_data()
    return node_records, edge_records


_POOL = 20
"""Entities of highest degree, per drawn node, among which the connected parts are found."""


def _components(keys: list[str], pairs: list[tuple[str, str]]) -> dict[str, str]:
    """The connected component of each key (union-find over ``pairs``): its representative."""
    parent = {key: key for key in keys}

    def root(key: str) -> str:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for a, b in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {key: root(key) for key in keys}


def _select(con: duckdb.DuckDBPyConnection, max_nodes: int, max_edges: int, per_node: int):
    """The drawn nodes, edges and node details, and the totals, from the ``triples`` view."""
    optional = _optional_columns(con)
    triples, entities = _surface_forms(con)
    nodes = _drawn_nodes(con, max_nodes)
    edges, edges_total = _drawn_edges(con, max_edges)
    details = _node_details(con, nodes, per_node, optional)
    return nodes, edges, details, (triples, entities, edges_total)


def _optional_columns(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The select expression of each provenance column that a foreign table may lack (NULL)."""
    columns = {row[0] for row in con.execute("DESCRIBE triples").fetchall()}
    return {c: (f"t.{c}" if c in columns else f"NULL AS {c}")
            for c in ("confidence", "doc_title", "doc_url")}


def _surface_forms(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """The table ``surface``: each surface form of an entity as subject or as object, its key,
    label and triples; returns the triples and the entities of the whole graph."""
    # a surface form as subject and as object may differ (a literal object has no key)
    con.execute("""
        CREATE TEMP TABLE surface AS
        SELECT s AS surface, second,
               CASE WHEN second THEN ptoie_object_key(s) ELSE ptoie_subject_key(s) END AS key,
               CASE WHEN second THEN ptoie_object_label(s) ELSE ptoie_subject_label(s) END AS label,
               n
        FROM (SELECT arg1 AS s, false AS second, count(*) AS n FROM triples GROUP BY arg1
              UNION ALL
              SELECT arg2 AS s, true AS second, count(*) AS n FROM triples GROUP BY arg2)""")
    con.execute("DELETE FROM surface WHERE key IS NULL")
    [(triples,)] = con.execute("SELECT count(*) FROM triples").fetchall()
    [(entities,)] = con.execute("SELECT count(DISTINCT key) FROM surface").fetchall()
    return triples, entities


def _drawn_nodes(con: duckdb.DuckDBPyConnection, max_nodes: int
                 ) -> list[tuple[str, str, int, int]]:
    """``(key, label, degree, part)`` of the drawn entities: the largest connected parts among
    the entities of highest degree first; also the tables ``top`` and ``top_surface``."""
    con.execute("""
        CREATE TEMP TABLE pool AS
        SELECT key, sum(n)::BIGINT AS degree, first(label ORDER BY n DESC, label) AS label
        FROM (SELECT key, label, sum(n) AS n FROM surface GROUP BY key, label)
        GROUP BY key ORDER BY degree DESC, key LIMIT ?""", [max_nodes * _POOL])
    con.execute("CREATE TEMP TABLE pool_surface AS "
                "SELECT surface, second, key FROM surface JOIN pool USING (key)")
    pool = con.execute("SELECT key, label, degree FROM pool").fetchall()
    pairs = con.execute("""
        SELECT DISTINCT a.key, b.key
        FROM triples t JOIN pool_surface a ON t.arg1 = a.surface AND NOT a.second
                       JOIN pool_surface b ON t.arg2 = b.surface AND b.second""").fetchall()
    component = _components([key for key, _, _ in pool], pairs)
    size, weight = {}, {}
    for key, _, degree in pool:
        size[component[key]] = size.get(component[key], 0) + 1
        weight[component[key]] = weight.get(component[key], 0) + degree
    # the largest parts first (then the better connected), each part by degree
    ranked = sorted(pool, key=lambda row: (-size[component[row[0]]], -weight[component[row[0]]],
                                           component[row[0]], -row[2], row[0]))[:max_nodes]
    parts = {}
    nodes = [(key, label, degree, parts.setdefault(component[key], len(parts)))
             for key, label, degree in ranked]
    con.execute("CREATE TEMP TABLE top (key VARCHAR, label VARCHAR, degree BIGINT)")
    if nodes:
        con.executemany("INSERT INTO top VALUES (?, ?, ?)", [row[:3] for row in nodes])
    con.execute("CREATE TEMP TABLE top_surface AS "
                "SELECT surface, second, key FROM surface JOIN top USING (key)")
    return nodes


def _drawn_edges(con: duckdb.DuckDBPyConnection, max_edges: int
                 ) -> tuple[list[tuple[str, str, str, int]], int]:
    """``(source, target, label, triples)`` of the drawn edges, one per relation key between two
    drawn entities (every node's strongest first), and how many there are in all."""
    edge_rows = con.execute("""
        WITH raw AS (
            SELECT a.key AS src, b.key AS dst, t.rel, t.arg2, count(*) AS n
            FROM triples t JOIN top_surface a ON t.arg1 = a.surface AND NOT a.second
                           JOIN top_surface b ON t.arg2 = b.surface AND b.second
            GROUP BY ALL),
        phrased AS (
            SELECT src, dst, n,
                   ptoie_relation_key(rel, ptoie_object_preposition(arg2)) AS rel_key,
                   ptoie_relation_label(rel, ptoie_object_preposition(arg2)) AS rel_label
            FROM raw),
        merged AS (
            SELECT src, dst, first(rel_label ORDER BY n DESC, rel_label) AS label,
                   sum(n)::BIGINT AS n
            FROM (SELECT src, dst, rel_key, rel_label, sum(n) AS n FROM phrased GROUP BY ALL)
            GROUP BY src, dst, rel_key)
        SELECT src, dst, label, n, count(*) OVER () AS total FROM merged
        ORDER BY least(row_number() OVER (PARTITION BY src ORDER BY n DESC, dst, label),
                       row_number() OVER (PARTITION BY dst ORDER BY n DESC, src, label)),
                 n DESC, src, dst, label
        LIMIT ?""", [max_edges]).fetchall()
    return [row[:4] for row in edge_rows], edge_rows[0][4] if edge_rows else 0


def _node_details(con: duckdb.DuckDBPyConnection, nodes: list[tuple[str, str, int, int]],
                  per_node: int, optional: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The panel of each drawn entity: its label, degree, triples, and its ``per_node`` most
    confident triples with their sentences and documents."""
    picked = f"""t.doc_id, t.sentence_id, t.extraction_index, t.arg1, t.rel, t.arg2, t.sentence,
                 {optional['confidence']}, {optional['doc_title']}, {optional['doc_url']}"""
    # min_by(..., n) keeps the n best rows per node as it scans (bounded memory, no sort of all
    # the hits); best = most confident, then by document, sentence and index (deterministic).
    rows = con.execute(f"""
        WITH hits AS (
            SELECT k.key, {picked} FROM triples t
                JOIN top_surface k ON t.arg1 = k.surface AND NOT k.second
            UNION ALL
            SELECT k.key, {picked} FROM triples t
                JOIN top_surface k ON t.arg2 = k.surface AND k.second
                LEFT JOIN top_surface a ON t.arg1 = a.surface AND NOT a.second
            WHERE a.key IS DISTINCT FROM k.key)  -- a loop is listed once
        SELECT key, min_by(
            struct_pack(arg1 := arg1, rel := rel, arg2 := arg2, sentence := sentence,
                        doc_id := doc_id, doc_title := doc_title, doc_url := doc_url,
                        confidence := confidence),
            struct_pack(c := -coalesce(confidence, -1.0), d := doc_id, s := sentence_id,
                        e := extraction_index), ?) AS best, count(*) AS n
        FROM hits GROUP BY key""", [per_node]).fetchall()
    details: dict[str, dict[str, Any]] = {
        key: {"label": label, "degree": degree, "count": 0, "triples": []}
        for key, label, degree, _ in nodes}
    for key, best, count in rows:
        details[key]["count"] = count  # its triples (degree counts a loop twice)
        details[key]["triples"] = [_panel_row(t) for t in best]
    return details


def _panel_row(t: dict[str, Any]) -> list[Any]:
    """A triple as the panel lists it: the sentence cut at ``_SENTENCE_CHARS``, the confidence
    rounded."""
    sentence = t["sentence"]
    if len(sentence) > _SENTENCE_CHARS:
        sentence = sentence[:_SENTENCE_CHARS] + "…"
    confidence = None if t["confidence"] is None else round(float(t["confidence"]), 3)
    return [t["arg1"], t["rel"], t["arg2"], sentence, t["doc_id"], t["doc_title"], t["doc_url"],
            confidence]


@cache
def _page_template() -> Template:
    """``templates/kg.html.j2`` of this package; every value autoescaped unless marked ``safe``,
    JSON (``tojson``) written as UTF-8 in the data's own key order."""
    env = Environment(loader=PackageLoader("ptoie.graph", "templates"), autoescape=True)
    env.policies["json.dumps_kwargs"] = {"ensure_ascii": False, "sort_keys": False}
    return env.get_template("kg.html.j2")


def _vis_network() -> tuple[str, str]:
    """vis-network's JavaScript and CSS as shipped inside pyvis (what ``cdn_resources="in_line"``
    inlines), so the page needs no network."""
    lib = Path(pyvis.__file__).parent / "templates" / "lib"
    versions = sorted(lib.glob("vis-*/vis-network.min.js"),
                      key=lambda p: [int(x) for x in p.parent.name[4:].split(".") if x.isdigit()])
    if not versions:
        raise RuntimeError(f"pyvis {getattr(pyvis, '__version__', '?')} at {lib.parent.parent} "
                           f"ships no vis-network.min.js; reinstall pyvis (>=0.3.2)")
    js = versions[-1]
    css = js.with_name("vis-network.css")
    script = js.read_text(encoding="utf-8")
    if "</script" in script.lower():  # would end the inline <script> element early
        raise RuntimeError(f"{js} cannot be inlined (contains '</script')")
    return script, css.read_text(encoding="utf-8") if css.exists() else ""

