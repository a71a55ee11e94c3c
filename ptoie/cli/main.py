"""``ptoie``: ``extract`` (triples of sentences), and ``sparql``, ``sql`` and ``view`` over a
knowledge graph written by ``ptoie-batch`` or ``ptoie-kg`` (the logic is in
:mod:`ptoie.extract`, :mod:`ptoie.graph.query` and :mod:`ptoie.graph.view`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ptoie.cli.common import add_subcommand, fail, new_parser
from ptoie.cli.options import add_extractor_arguments, extractor_configs
from ptoie.exit_codes import EXIT_OK, EXIT_STOPPED, EXIT_USAGE
from ptoie.extract.extractor import Extractor, ModelLoadError, SentenceResult
from ptoie.graph.query import (OUTPUT_FORMATS, OutputFormat, QueryError, QueryResult, kg_paths,
                               sparql, sql, write_result)
from ptoie.graph.sources import confidence
from ptoie.graph.view import DEFAULT_MAX_NODES, write_graph_view
from ptoie.schema import triple_field_names


def add_format_argument(parser: argparse.ArgumentParser) -> None:
    """``--format``: how rows are printed, the same choices in every command."""
    parser.add_argument("--format", choices=OUTPUT_FORMATS, default="table",
                        help="table: aligned columns; jsonl: one JSON object per line; csv: a "
                             "header row, then one row per line; json: a list of objects "
                             "(default: %(default)s)")


class InputError(ValueError):
    """An input file that cannot be read; the message is one line naming it."""


def read_text(source: str | Path, what: str) -> str:
    """The UTF-8 text of the file ``source``, or of standard input when ``source`` is ``-``.
    Raises :class:`InputError` naming the file (and the line of a byte that is not UTF-8);
    ``what`` names the file in the message ("sentence file")."""
    name = str(source)
    try:
        data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except FileNotFoundError:
        raise InputError(f"{what} not found: {name}") from None
    except OSError as exc:
        raise InputError(f"{name}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        where = "standard input" if name == "-" else name
        raise InputError(f"{where}:{line}: not UTF-8 text ({exc.reason})") from None


def _read_sentences(source: Path) -> list[str]:
    """The non-blank lines of the sentence file ``source`` (``-``: standard input)."""
    text = read_text(source, "sentence file")
    return [line.strip() for line in text.splitlines() if line.strip()]


def _print_table(results: list[SentenceResult]) -> None:
    console = Console()
    for result in results:
        table = Table(title=result.sentence, title_justify="left", show_lines=False)
        for column in ("arg1", "rel", "arg2", "confidence"):
            table.add_column(column)
        for t in result.triples:
            conf = f"{t.confidence:.3f}" if t.confidence is not None else "-"
            table.add_row(t.arg1, t.rel, t.arg2, conf)
        if not result.triples:
            table.add_row("(no triples)", "", "", "")
        console.print(table)


def _print_records(results: list[SentenceResult], model_id: str, fmt: OutputFormat) -> None:
    """The triples as rows of schemas/triple.schema.json (doc_id ``stdin``), in ``fmt``."""
    columns = triple_field_names()
    records = (t.to_record(doc_id="stdin", sentence_id=sid, sentence=result.sentence,
                           extraction_index=i, model_id=model_id)
               for sid, result in enumerate(results) for i, t in enumerate(result.triples))
    rows = ([record[c] for c in columns] for record in records)
    write_result(QueryResult(columns, rows), fmt, sys.stdout)


def _extract(args: argparse.Namespace) -> int:
    sentences = list(args.sentence)
    try:
        if args.file:
            sentences += _read_sentences(args.file)
    except InputError as exc:
        return fail("ptoie extract", str(exc))
    if not sentences:
        where = "standard input" if str(args.file) == "-" else args.file
        return fail("ptoie extract", f"no sentence in {where}" if args.file
                    else "give a sentence or --file")
    try:
        extractor = Extractor(**extractor_configs(args))
    except (ModelLoadError, ValueError) as exc:
        return fail("ptoie extract", str(exc))
    with extractor:
        results = extractor.extract_batch(sentences)
    if args.format == "table":
        _print_table(results)
    else:
        _print_records(results, extractor.model_id, args.format)
    return EXIT_OK


def _query_text(value: str) -> str:
    """QUERY as given, ``@FILE`` read from a UTF-8 file, ``-`` read from standard input."""
    if value == "-":
        return read_text("-", "query")
    if value.startswith("@"):
        return read_text(value[1:], "query file")
    return value


def _query(args: argparse.Namespace) -> int:
    prog = f"ptoie {args.command}"
    try:
        query = _query_text(args.query)
        if not query.strip():
            raise QueryError("the query is empty")
        paths = kg_paths(args.kg)
        result = sparql(paths.store, query) if args.command == "sparql" else sql(paths.parquet, query)
        write_result(result, args.format, sys.stdout)
        sys.stdout.flush()
    except (QueryError, InputError) as exc:
        return fail(prog, str(exc))
    except BrokenPipeError:  # the reader stopped (`| head`): not an error of the query
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_OK


def _view(args: argparse.Namespace) -> int:
    try:
        paths = kg_paths(args.kg)
    except QueryError as exc:
        return fail("ptoie view", str(exc))
    html = args.out or paths.html
    try:
        view = write_graph_view(paths.parquet, html, max_nodes=args.max_nodes,
                                min_confidence=args.min_confidence,
                                resolve_mentions=args.resolve_mentions)
    except ValueError as exc:  # QueryError included
        return fail("ptoie view", str(exc))
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(html) else ""
        return fail("ptoie view", f"cannot write {html}: {exc.strerror or exc}{where}", EXIT_STOPPED)
    print(f"{view.path}: {view.nodes:,} of {view.entities:,} entities, {view.edges:,} links "
          f"({view.triples:,} triples in the graph)")
    return EXIT_OK


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


_KG_HELP = ("the knowledge graph: the --out path of ptoie-batch or ptoie-kg (out/kg.ttl), its "
            "NAME.oxigraph/ or NAME.parquet/ folder, or the folder holding one graph")
_QUERY_HELP = "the query, @FILE to read it from a UTF-8 file, - to read it from standard input"

DESCRIPTION = """\
Extract (subject, relation, object) triples from Portuguese sentences with a small language
model, and query or draw the knowledge graph that ptoie-batch or ptoie-kg writes."""

EXTRACT = """\
Extract triples from sentences: given on the command line, or one per line in a UTF-8 file
(--file FILE, or --file - for standard input). The default model is the shipped one
(models/default.json); the model and decoding flags are the same in ptoie-batch and ptoie-eval.

--format table prints a table per sentence; jsonl, csv and json print one row per triple with
the columns of schemas/triple.schema.json (doc_id "stdin", sentence_id the sentence's position)."""

SPARQL = """\
Run a SPARQL 1.1 query (SELECT, ASK, CONSTRUCT, DESCRIBE) on the graph's Oxigraph store
NAME.oxigraph/, opened read-only. The prefixes of schemas/rdf_vocabulary.json (ptoie:, ent:,
rel:, doc:, prov:, rdfs:, xsd: ...) are declared."""

SQL = """\
Run a DuckDB SQL query on the graph's Parquet triples NAME.parquet/ (written by ptoie-batch),
or on Parquet files in the triple schema, as the view "triples" (the columns of
schemas/triple.schema.json)."""

VIEW = """\
Draw the most connected entities of the graph's Parquet triples as a self-contained HTML page
that works offline."""

_EXTRACT_EXAMPLES = (
    'ptoie extract "Machado de Assis nasceu no Rio de Janeiro."',
    "ptoie extract --file examples/sentences.txt --format jsonl",
    'echo "O Tejo passa por Lisboa." | ptoie extract --file - --format csv',
)
_SPARQL_EXAMPLES = (
    "ptoie sparql out/kg.ttl 'SELECT (COUNT(*) AS ?n) WHERE { ?x a ptoie:Extraction }'",
    "echo 'ASK { ?s ?p ?o }' | ptoie sparql out/kg.ttl - --format json",
)
_SQL_EXAMPLES = (
    "ptoie sql out/kg.ttl 'SELECT rel, count(*) AS n FROM triples GROUP BY rel ORDER BY n DESC LIMIT 10'",
    "ptoie sql out/kg.parquet 'SELECT arg1, rel, arg2 FROM triples WHERE confidence > 0.8' --format csv",
)
_VIEW_EXAMPLES = ("ptoie view out/kg.ttl --max-nodes 60 --out out/kg-60.html",)
_USAGE = (EXIT_OK, EXIT_USAGE)


def _add_extract(sub: argparse._SubParsersAction) -> None:
    ex = add_subcommand(sub, "extract", summary="extract triples from sentences",
                        description=EXTRACT, examples=_EXTRACT_EXAMPLES, codes=_USAGE)
    ex.add_argument("sentence", nargs="*", help="sentence(s) to extract from")
    ex.add_argument("--file", type=Path, metavar="FILE",
                    help="UTF-8 file with one sentence per line; - reads standard input")
    add_format_argument(ex)
    add_extractor_arguments(ex)
    ex.set_defaults(func=_extract)


def _add_queries(sub: argparse._SubParsersAction) -> None:
    sp = add_subcommand(sub, "sparql", summary="SPARQL query over a knowledge graph's Oxigraph store",
                        description=SPARQL, examples=_SPARQL_EXAMPLES, codes=_USAGE)
    qp = add_subcommand(sub, "sql", summary="SQL (DuckDB) query over a knowledge graph's Parquet triples",
                        description=SQL, examples=_SQL_EXAMPLES, codes=_USAGE)
    for command in (sp, qp):
        command.add_argument("kg", metavar="KG", help=_KG_HELP)
        command.add_argument("query", metavar="QUERY", help=_QUERY_HELP)
        add_format_argument(command)
        command.set_defaults(func=_query)


def _add_view(sub: argparse._SubParsersAction) -> None:
    vw = add_subcommand(sub, "view", summary="interactive HTML picture of a knowledge graph",
                        description=VIEW, examples=_VIEW_EXAMPLES, codes=(*_USAGE, EXIT_STOPPED))
    vw.add_argument("kg", metavar="KG", help=_KG_HELP)
    vw.add_argument("--out", type=Path, metavar="FILE",
                    help="the HTML file (default: NAME.html beside the graph)")
    vw.add_argument("--max-nodes", type=_positive, default=DEFAULT_MAX_NODES, metavar="N",
                    help="entities drawn, the largest connected parts first (default: %(default)s)")
    vw.add_argument("--min-confidence", type=confidence, metavar="C",
                    help="draw only triples with confidence >= C (0..1) (default: all)")
    vw.add_argument("--no-resolve-mentions", dest="resolve_mentions", action="store_false",
                    help="draw every subject as written ('Ele', 'O escritor'), not as the entity "
                         "of its document it refers to")
    vw.set_defaults(func=_view)


def build_parser() -> argparse.ArgumentParser:
    examples = (_EXTRACT_EXAMPLES[0], _SQL_EXAMPLES[0], _VIEW_EXAMPLES[0])
    parser = new_parser("ptoie", DESCRIPTION, examples=examples, codes=(*_USAGE, EXIT_STOPPED))
    sub = parser.add_subparsers(title="commands", dest="command", required=True, metavar="COMMAND")
    _add_extract(sub)
    _add_queries(sub)
    _add_view(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
