"""``ptoie`` command line: ``ptoie extract "frase"`` / ``ptoie extract --file frases.txt``;
``ptoie sparql KG QUERY``, ``ptoie sql KG QUERY`` and ``ptoie view KG`` over a knowledge graph
written by ``ptoie-batch`` (the logic is in :mod:`ptoie.graph.query` and :mod:`ptoie.graph.view`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ptoie.cli.options import add_extractor_arguments, extractor_configs
from ptoie.extract.extractor import Extractor, ModelLoadError, SentenceResult

def _read_sentences(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SystemExit(f"ptoie: error: sentence file not found: {path}") from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise SystemExit(f"ptoie: error: {path}:{line}: not UTF-8 text ({exc.reason})") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def _print_table(results: list[SentenceResult]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for result in results:
        table = Table(title=result.sentence, title_justify="left", show_lines=False)
        for column in ("arg1", "rel", "arg2", "confidence"):
            table.add_column(column)
        for t in result.triples:
            conf = f"{t.confidence:.3f}" if t.confidence is not None else "-"
            table.add_row(t.arg1, t.rel, t.arg2, conf)
        if not result.triples:
            table.add_row("(nenhuma tripla)", "", "", "")
        console.print(table)


def _print_jsonl(results: list[SentenceResult], model_id: str) -> None:
    for sid, result in enumerate(results):
        for i, t in enumerate(result.triples):
            record = t.to_record(doc_id="stdin", sentence_id=sid, sentence=result.sentence,
                                 extraction_index=i, model_id=model_id)
            print(json.dumps(record, ensure_ascii=False))


def _extract(args: argparse.Namespace) -> int:
    sentences = list(args.sentence)
    if args.file:
        sentences += _read_sentences(args.file)
    if not sentences:
        print(f"ptoie: error: no sentence in {args.file}" if args.file
              else "ptoie: error: give a sentence or --file", file=sys.stderr)
        return 2
    try:
        extractor = Extractor(**extractor_configs(args))
    except (ModelLoadError, ValueError) as exc:
        print(f"ptoie: error: {exc}", file=sys.stderr)
        return 2
    with extractor:
        results = extractor.extract_batch(sentences)
    if args.format == "jsonl":
        _print_jsonl(results, extractor.model_id)
    else:
        _print_table(results)
    return 0


def _query_text(value: str) -> str:
    """QUERY as given, ``@FILE`` read from a UTF-8 file, ``-`` read from standard input."""
    from ptoie.graph.query import QueryError

    if value == "-":
        return sys.stdin.read()
    if not value.startswith("@"):
        return value
    path = Path(value[1:])
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise QueryError(f"query file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise QueryError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise QueryError(f"{path}: {exc.strerror}") from None


def _query(args: argparse.Namespace) -> int:
    from ptoie.graph.query import QueryError, kg_paths, sparql, sql, write_result

    try:
        query = _query_text(args.query)
        if not query.strip():
            raise QueryError("the query is empty")
        paths = kg_paths(args.kg)
        result = sparql(paths.store, query) if args.command == "sparql" else sql(paths.parquet, query)
        write_result(result, args.format, sys.stdout)
        sys.stdout.flush()
    except QueryError as exc:
        print(f"ptoie {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader stopped (`| head`): not an error of the query
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _view(args: argparse.Namespace) -> int:
    from ptoie.graph.query import kg_paths
    from ptoie.graph.view import write_graph_view

    try:
        paths = kg_paths(args.kg)
        view = write_graph_view(paths.parquet, args.out or paths.html, max_nodes=args.max_nodes,
                                min_confidence=args.min_confidence)
    except ValueError as exc:  # QueryError included
        print(f"ptoie view: error: {exc}", file=sys.stderr)
        return 2
    print(f"{view.path}: {view.nodes:,} of {view.entities:,} entities, {view.edges:,} links "
          f"({view.triples:,} triples in the graph)")
    return 0


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


_KG_HELP = ("the knowledge graph: the job's --out path (out/kg.ttl), its NAME.oxigraph/ or "
            "NAME.parquet/ folder, or the folder holding one graph")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ptoie", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("extract", help="extract triples from sentences")
    ex.add_argument("sentence", nargs="*", help="sentence(s) to extract from")
    ex.add_argument("--file", type=Path, help="UTF-8 file with one sentence per line")
    ex.add_argument("--format", choices=["table", "jsonl"], default="table")
    add_extractor_arguments(ex)
    ex.set_defaults(func=_extract)

    from ptoie.graph.query import OUTPUT_FORMATS
    from ptoie.graph.build import confidence
    from ptoie.graph.view import DEFAULT_MAX_NODES

    sp = sub.add_parser(
        "sparql", help="SPARQL query over a knowledge graph's Oxigraph store",
        description="SPARQL 1.1 over NAME.oxigraph/ (read-only). The prefixes of "
                    "schemas/rdf_vocabulary.json (ptoie:, ent:, rel:, doc:, prov:, rdfs:, xsd: ...) "
                    "are declared. Example: ptoie sparql out/kg.ttl "
                    "'SELECT (COUNT(*) AS ?n) WHERE { ?x a ptoie:Extraction }'")
    qp = sub.add_parser(
        "sql", help="SQL (DuckDB) over a knowledge graph's Parquet triples",
        description="DuckDB SQL over NAME.parquet/, as the view `triples` (columns of "
                    "schemas/triple.schema.json). Example: ptoie sql out/kg.ttl "
                    "'SELECT rel, count(*) AS n FROM triples GROUP BY rel ORDER BY n DESC LIMIT 10'")
    for command in (sp, qp):
        command.add_argument("kg", metavar="KG", help=_KG_HELP)
        command.add_argument("query", metavar="QUERY",
                             help="the query, @FILE to read it from a file, - from standard input")
        command.add_argument("--format", choices=OUTPUT_FORMATS, default="table",
                             help="table: aligned columns; csv; json: a list of objects "
                                  "(default: %(default)s)")
        command.set_defaults(func=_query)

    vw = sub.add_parser("view", help="interactive HTML picture of a knowledge graph",
                        description="Draw the most connected entities of the graph's Parquet "
                                    "triples as a self-contained HTML page (works offline).")
    vw.add_argument("kg", metavar="KG", help=_KG_HELP)
    vw.add_argument("--out", type=Path, help="the HTML file (default: NAME.html beside the graph)")
    vw.add_argument("--max-nodes", type=_positive, default=DEFAULT_MAX_NODES,
                    help="entities drawn, the largest connected parts first (default: %(default)s)")
    vw.add_argument("--min-confidence", type=confidence, metavar="C",
                    help="draw only triples with confidence >= C (0..1) (default: all)")
    vw.set_defaults(func=_view)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
