"""The query stage: SPARQL over a knowledge graph's Oxigraph store, SQL over its Parquet triples.

``ptoie-batch corpus/ --out DIR/NAME.ttl`` writes, beside the RDF file, ``DIR/NAME.oxigraph/`` (an
embedded Oxigraph store: the statements of the RDF file in its default graph) and
``DIR/NAME.parquet/`` (the triples, one row per extraction, ``schemas/triple.schema.json``).

* :func:`kg_paths` finds both from whatever the user names: the ``--out`` path, either folder,
  the ``.html`` picture, or the folder holding one knowledge graph.
* :func:`sparql` runs a SPARQL 1.1 query with pyoxigraph on a read-only open of the store; the
  prefixes of ``schemas/rdf_vocabulary.json`` (``ptoie:``, ``ent:``, ``rel:``, ``rdfs:`` ...) are
  declared for the query, read from the vocabulary file at run time.
* :func:`sql` runs a DuckDB query in which the view ``triples`` is the Parquet dataset.
* :func:`write_result` prints either result as an aligned ``table`` (rich), ``jsonl`` (one
  object per line), ``csv`` or ``json`` (a list of objects), streaming rows but for the table.

Every error a user can cause is a :class:`QueryError` with a one-line message saying what to fix.
"""

from __future__ import annotations

import csv
import datetime as _dt
import decimal
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import duckdb
from pyoxigraph import (BlankNode, Literal as RdfLiteral, NamedNode, QueryBoolean, QuerySolutions,
                        Store)
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ptoie.graph.sources import (GraphInputError, confidence_condition, duckdb_connection,
                                 parquet_sources, triples_view)
from ptoie.schema import rdf_vocabulary

OutputFormat = Literal["table", "jsonl", "csv", "json"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = ("table", "jsonl", "csv", "json")
PathLike = str | os.PathLike[str]

_KG_SUFFIXES = (".ttl", ".nt", ".oxigraph", ".parquet", ".html", ".graphml", ".json")
_XSD = "http://www.w3.org/2001/XMLSchema#"
_XSD_INTEGERS = {_XSD + t for t in ("integer", "int", "long", "short", "byte", "nonNegativeInteger",
                                    "positiveInteger", "nonPositiveInteger", "negativeInteger",
                                    "unsignedInt", "unsignedLong", "unsignedShort", "unsignedByte")}
_XSD_FLOATS = {_XSD + t for t in ("double", "float", "decimal")}


class QueryError(ValueError):
    """A query that cannot run: missing or invalid knowledge graph, syntax or execution error.
    The message is one line that says what to fix."""


# -- where the knowledge graph is ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class KgPaths:
    """The files of one knowledge graph written by ``ptoie-batch --out DIR/NAME.ttl``."""

    store: Path
    """``DIR/NAME.oxigraph/``: the Oxigraph store (SPARQL)."""
    parquet: Path
    """``DIR/NAME.parquet/``: the Parquet dataset of the triples (SQL)."""
    html: Path
    """``DIR/NAME.html``: the interactive picture of the graph."""


def _is_store(path: Path) -> bool:
    return (path / "CURRENT").is_file()  # RocksDB's pointer to its manifest


def kg_paths(kg: PathLike) -> KgPaths:
    """The store, Parquet folder and picture of the knowledge graph ``kg``.

    ``kg`` may be the job's ``--out`` path (``DIR/NAME.ttl`` or ``.nt``, existing or not), the
    ``NAME.oxigraph/`` or ``NAME.parquet/`` folder, ``NAME.html``, the bare ``DIR/NAME``, or the
    folder ``DIR`` when it holds one knowledge graph. Nothing else is checked for existence here
    (:func:`sparql` and :func:`sql` do); a folder holding no graph or several raises
    :class:`QueryError` (naming them).
    """
    path = Path(kg)
    if _is_store(path) and path.suffix.lower() != ".oxigraph":  # a store with another name
        base = path.with_suffix("")
        return KgPaths(store=path, parquet=base.with_name(base.name + ".parquet"),
                       html=base.with_name(base.name + ".html"))
    if path.suffix.lower() in _KG_SUFFIXES:
        base = path.with_suffix("")
    elif path.is_dir():
        try:
            names = sorted({p.stem for p in path.iterdir()
                            if p.is_dir() and p.suffix.lower() in (".oxigraph", ".parquet")})
        except OSError as exc:
            raise QueryError(f"{path}: cannot list the folder ({exc.strerror or exc})") from None
        if len(names) > 1:
            raise QueryError(f"{path} holds several knowledge graphs ({', '.join(names)}): "
                             f"name one, e.g. {path / names[0]}.ttl")
        if not names:
            raise QueryError(f"no knowledge graph in {path} (no NAME.oxigraph/ or NAME.parquet/ "
                             f"folder): give the --out path of ptoie-batch or ptoie-kg, e.g. "
                             f"out/kg.ttl")
        base = path / names[0]
    else:
        base = path
    sibling = lambda suffix: base.with_name(base.name + suffix)  # noqa: E731
    return KgPaths(store=sibling(".oxigraph"), parquet=sibling(".parquet"), html=sibling(".html"))


def parquet_files(source: PathLike | Sequence[PathLike]) -> list[Path]:
    """The Parquet files of ``source`` (a file, a folder, or a list of either), as
    :func:`ptoie.graph.sources.parquet_sources` lists them. Raises :class:`QueryError` for a
    missing path and for no Parquet file at all (an empty graph)."""
    sources = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    try:
        return parquet_sources([Path(s) for s in sources])
    except GraphInputError as exc:
        hint = ("; ptoie-batch writes the Parquet triples beside its --out file (NAME.parquet/); "
                "ptoie-kg writes none: give the Parquet files it read"
                if str(exc).startswith("no Parquet triples at") else "")
        raise QueryError(f"{exc}{hint}") from None


# -- results -------------------------------------------------------------------------------------
@dataclass(slots=True)
class QueryResult:
    """Column names and rows of a query. ``rows`` is an iterable that may be consumed once
    (results stream from the store or DuckDB); cells are pyoxigraph terms (SPARQL) or Python
    values (SQL), ``None`` when unbound or NULL."""

    columns: list[str]
    rows: Iterable[Sequence[Any]]
    prefixes: dict[str, str] | None = None
    """Namespaces for compact IRIs (``ent:lisboa``) in the ``table`` format."""


# -- SPARQL --------------------------------------------------------------------------------------
def sparql_prefixes() -> dict[str, str]:
    """The prefixes declared for every query: ``prefixes`` of ``schemas/rdf_vocabulary.json``."""
    return dict(rdf_vocabulary()["prefixes"])


def open_store(store_dir: PathLike) -> Store:
    """The Oxigraph store at ``store_dir``, opened read-only (``pyoxigraph.Store.read_only``).

    A read-only open sees the store as it was when opened, also while another process (a running
    job) holds it open for writing. Raises :class:`QueryError` when the folder is missing or not
    an Oxigraph store.
    """
    path = Path(store_dir)
    if not path.is_dir():
        raise QueryError(f"no Oxigraph store at {path}: ptoie-batch and ptoie-kg write it beside "
                         f"their --out file (NAME.oxigraph/, not with --no-store); give that "
                         f"--out path")
    if not _is_store(path):
        raise QueryError(f"{path} is not an Oxigraph store (no RocksDB CURRENT file); give the "
                         f"NAME.oxigraph/ folder written by ptoie-batch or ptoie-kg")
    try:
        return Store.read_only(str(path))
    except OSError as exc:
        raise QueryError(f"{path}: cannot open the Oxigraph store: {_one_line(str(exc))}") from None


def sparql(store_dir: PathLike, query: str, *, prefixes: dict[str, str] | None = None
           ) -> QueryResult:
    """Run the SPARQL 1.1 ``query`` on the Oxigraph store at ``store_dir`` (read-only).

    The vocabulary's prefixes (:func:`sparql_prefixes`, or ``prefixes``) are declared; a
    ``PREFIX`` line of the query overrides one. ``SELECT`` gives its variables as columns, ``ASK``
    one column ``boolean``, ``CONSTRUCT``/``DESCRIBE`` the columns ``subject``, ``predicate``,
    ``object``. Queries see the store's default graph: the knowledge graph.
    Raises :class:`QueryError` (one line) for a missing store or a syntax error.
    """
    prefixes = sparql_prefixes() if prefixes is None else prefixes
    store = open_store(store_dir)
    try:
        results = store.query(query, prefixes=prefixes)
    except SyntaxError as exc:
        raise QueryError(_sparql_syntax_message(str(exc), query, prefixes)) from None
    except OSError as exc:
        raise QueryError(f"{store_dir}: {_one_line(str(exc))}") from None
    if isinstance(results, QueryBoolean):
        return QueryResult(["boolean"], [(bool(results),)], prefixes)
    if isinstance(results, QuerySolutions):
        columns = [v.value for v in results.variables]
        return QueryResult(columns, (tuple(solution) for solution in results), prefixes)
    return QueryResult(["subject", "predicate", "object"],
                       ((t.subject, t.predicate, t.object) for t in results), prefixes)


_POSITION = re.compile(r"error at (\d+):(\d+): ?(.*)", re.S)


def _sparql_syntax_message(message: str, query: str, prefixes: dict[str, str]) -> str:
    """pyoxigraph's parse error as one line: where, the query text there, and what was expected
    (pyoxigraph lists the expected tokens and character classes, which can run to a dozen lines:
    the classes are dropped, the tokens cut at ten, and a semantic complaint hidden among them,
    such as an unbound variable or an undeclared prefix, comes first)."""
    if _UPDATE.search(_SKIP.sub(" ", query)):
        return ("ptoie sparql runs queries (SELECT, ASK, CONSTRUCT, DESCRIBE), not updates: the "
                "store is opened read-only")
    match = _POSITION.match(message)
    if not match:
        return f"SPARQL syntax error: {_one_line(message)[:200]}"
    line, column, detail = int(match[1]), int(match[2]), _one_line(match[3])
    lines = query.splitlines()
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    near = text[max(column - 1, 0):].strip()[:40]
    where = f"SPARQL syntax error at line {line}, column {column}" + (
        f" near {near!r}" if near else " (end of line)")
    if not detail.startswith("expected one of "):
        return f"{where}: {detail[:200]}"
    items = [i.strip() for i in _ITEM.findall(detail[len("expected one of "):]) if i.strip()]
    if "Prefix not found" in items:
        name = _undeclared_prefix(query, prefixes)
        declared = ", ".join(f"{p}:" for p in prefixes)
        return (f"SPARQL syntax error at line {line}: undeclared prefix "
                f"{(name + ':') if name is not None else '?'!r} (declared: {declared}; "
                f"add a PREFIX line)")
    complaints = [i for i in items if " " in i and not i.startswith(("\"", "["))]
    tokens = [i for i in items if i not in complaints and not i.startswith("[")]
    if complaints:
        return f"{where}: {'; '.join(complaints)}"
    return f"{where}: expected one of {', '.join(tokens[:10])}" + (" ..." if len(tokens) > 10 else "")


_UPDATE = re.compile(r"(?im)^\s*(INSERT|DELETE|LOAD|CLEAR|DROP|CREATE|ADD|MOVE|COPY|WITH)\b")
_ITEM = re.compile(r'"(?:[^"\\]|\\.)*"|\[[^\]]*\]|[^,]+')
_SKIP = re.compile(r"""<[^<>"{}|^`\\\s]*>|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|#[^\n]*""")
_PNAME = re.compile(r"(?<![\w?$:.\-])([^\W\d][\w.\-]*)?:")


def _undeclared_prefix(query: str, prefixes: dict[str, str]) -> str | None:
    """The first prefix the query uses but neither ``prefixes`` nor its PREFIX lines declare."""
    text = _SKIP.sub(" ", query)  # IRIs, strings and comments may hold colons
    declared = set(prefixes) | set(re.findall(r"(?i)\bPREFIX\s+([^\s:]*):", text))
    for match in _PNAME.finditer(text):
        if (match[1] or "") not in declared:
            return match[1] or ""
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())


# -- SQL -----------------------------------------------------------------------------------------
_REQUIRED_COLUMNS = ("doc_id", "sentence_id", "sentence", "arg1", "rel", "arg2")


def duckdb_triples(source: PathLike | Sequence[PathLike], *, min_confidence: float | None = None):
    """A new in-memory DuckDB connection with the view ``triples`` over the Parquet files of
    ``source`` (:func:`parquet_files`); with ``min_confidence``, only the rows whose confidence
    is known and at least that (files of different schemas are unified by name:
    :func:`ptoie.graph.sources.triples_view`). Raises :class:`QueryError` when the files are
    missing or not tables of triples."""
    files = parquet_files(source)
    con = duckdb_connection()
    try:
        triples_view(con, files, where=confidence_condition(min_confidence))
        columns = {row[0] for row in con.execute("DESCRIBE triples").fetchall()}
    except duckdb.Error as exc:
        con.close()
        raise QueryError(f"{source_name(source)}: cannot read the Parquet triples: "
                         f"{_duckdb_message(exc)}") from None
    missing = [c for c in _REQUIRED_COLUMNS if c not in columns]
    if missing:
        con.close()
        raise QueryError(f"{source_name(source)} is not a table of triples (no column "
                         f"{', '.join(missing)}; see schemas/triple.schema.json)")
    return con


def sql(parquet: PathLike | Sequence[PathLike], query: str) -> QueryResult:
    """Run the DuckDB SQL ``query`` in which ``triples`` is the Parquet dataset ``parquet`` (the
    job's ``NAME.parquet/`` folder, or Parquet files; columns of schemas/triple.schema.json).

    Rows stream from DuckDB. A query that returns nothing (``CREATE ...``) gives no columns.
    Raises :class:`QueryError` (DuckDB's message, one line) for a missing or empty dataset and
    for an error of the query.
    """
    con = duckdb_triples(parquet)
    try:
        cursor = con.execute(query)
    except duckdb.Error as exc:
        con.close()
        raise QueryError(_duckdb_message(exc)) from None
    if cursor.description is None:
        con.close()
        return QueryResult([], [])
    columns = [d[0] for d in cursor.description]

    def rows() -> Iterator[tuple]:
        try:
            while batch := cursor.fetchmany(4096):
                yield from batch
        except duckdb.Error as exc:
            raise QueryError(_duckdb_message(exc)) from None
        finally:
            con.close()

    return QueryResult(columns, rows())


def _duckdb_message(exc: Exception) -> str:
    """DuckDB's message up to its ``LINE n:`` excerpt (whose caret needs several lines), one line."""
    head = re.split(r"\n\s*\n\s*LINE \d+:", str(exc))[0]
    return _one_line(head)


def source_name(source: PathLike | Sequence[PathLike]) -> str:
    """``source`` (a path or a list of Parquet files) for a message: the path, or the first file
    and how many more."""
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    items = [str(s) for s in source]
    return items[0] if len(items) == 1 else f"{items[0]} (+{len(items) - 1} files)"


# -- output --------------------------------------------------------------------------------------
def _term(value: Any, fmt: OutputFormat, prefixes: dict[str, str] | None) -> Any:
    """A cell as printed: RDF terms as their IRI (compact in tables) or literal value (typed
    numbers and booleans in json); Python values as they are (json) or as text."""
    if value is None:
        return None if fmt == "json" else ""
    if isinstance(value, NamedNode):
        iri = value.value
        if fmt == "table" and prefixes:
            best = max((ns for ns in prefixes.values() if iri.startswith(ns)), key=len, default=None)
            if best is not None:
                name = next(p for p, ns in prefixes.items() if ns == best)
                return f"{name}:{iri[len(best):]}"
        return iri
    if isinstance(value, BlankNode):
        return f"_:{value.value}"
    if isinstance(value, RdfLiteral):
        if fmt == "json":
            datatype = value.datatype.value
            try:
                if datatype in _XSD_INTEGERS:
                    return int(value.value)
                if datatype in _XSD_FLOATS:
                    return float(value.value)
            except ValueError:
                return value.value
            if datatype == _XSD + "boolean":
                return value.value in ("true", "1")
        return value.value
    if fmt == "json":
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)  # numbers, dates; a quoted triple (RDF 1.2) as N-Triples


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (_dt.date, _dt.datetime, _dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return str(value)


def write_result(result: QueryResult, fmt: OutputFormat, out: IO[str]) -> int:
    """Write ``result`` to ``out`` as ``table`` (aligned columns, rich), ``jsonl`` (one object
    per line), ``csv`` (header row, full IRIs) or ``json`` (a list of objects); numbers and
    booleans are typed in jsonl and json. Returns the number of rows written."""
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"format {fmt!r}: choose from {', '.join(OUTPUT_FORMATS)}")
    if not result.columns:
        return 0
    cell_format = "json" if fmt == "jsonl" else fmt
    cells = lambda row: [_term(v, cell_format, result.prefixes) for v in row]  # noqa: E731
    n = 0
    if fmt == "jsonl":
        for row in result.rows:
            out.write(json.dumps(dict(zip(result.columns, cells(row))), ensure_ascii=False,
                                 default=_json_default) + "\n")
            n += 1
        return n
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(result.columns)
        for row in result.rows:
            writer.writerow(cells(row))
            n += 1
        return n
    if fmt == "json":
        out.write("[")
        for row in result.rows:
            out.write(",\n " if n else "\n ")
            out.write(json.dumps(dict(zip(result.columns, cells(row))), ensure_ascii=False,
                                 default=_json_default))
            n += 1
        out.write("\n]\n" if n else "]\n")
        return n
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in result.columns:
        table.add_column(column, overflow="fold")
    for row in result.rows:
        table.add_row(*(Text(str(v)) for v in cells(row)))  # Text: no rich markup in data
        n += 1
    console = Console(file=out, highlight=False, soft_wrap=False)
    console.print(table)
    console.print(Text(f"{n} row{'s' if n != 1 else ''}", style="dim"))
    return n
