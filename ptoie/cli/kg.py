"""``ptoie-kg``: the graph outputs from Parquet triples, a thin layer over
:func:`ptoie.graph.build.build_graph` (the batch job's output stage)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from ptoie.cli.common import fail, new_parser
from ptoie.cli.graph_options import add_graph_output_arguments
from ptoie.exit_codes import EXIT_OK, EXIT_STOPPED, EXIT_USAGE
from ptoie.graph.build import GraphOutputs, build_graph
from ptoie.graph.sources import GraphInputError, parquet_sources

PROG = "ptoie-kg"
DESCRIPTION = """\
Build the graph outputs from Parquet triples: the batch job's NAME.parquet/, or any table in the
triple schema (schemas/triple.schema.json), e.g. one filtered with ptoie sql. Next to the RDF file
--out NAME.ttl it writes NAME.oxigraph/ (for ptoie sparql), NAME.graphml, NAME.json and NAME.html
(a picture of the graph); it writes no Parquet triples of its own, so ptoie sql and ptoie view
take the Parquet files it read.

The code is the batch job's output stage: streamed RDF, an incremental Oxigraph store, GraphML and
node-link JSON up to --max-graph-triples. A rerun on unchanged input rewrites nothing."""

EXAMPLES = (
    "ptoie-kg out/kg.parquet --out out/subset.ttl --min-confidence 0.5",
    "ptoie-kg out/kg.parquet --out out/subset.nt --no-store --no-view",
)


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(PROG, DESCRIPTION, examples=EXAMPLES,
                        codes=(EXIT_OK, EXIT_USAGE, EXIT_STOPPED))
    parser.add_argument("parquet", nargs="+", type=Path, metavar="PARQUET",
                        help="Parquet files or dataset folders in the triple schema")
    parser.add_argument("--out", type=Path, required=True, metavar="FILE",
                        help="RDF file: .ttl (Turtle) or .nt (N-Triples)")
    add_graph_output_arguments(parser)
    for name in ("graphml", "node-link", "store", "view"):
        parser.add_argument(f"--no-{name}", action="store_true", help=f"do not write the {name} output")
    parser.add_argument("--cache", type=Path, metavar="DIR",
                        help="folder for the RDF fragments and output stamps, reused by reruns "
                             "(default: <out stem>.kgcache/)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = {name: getattr(args, name) for name in ("graphml", "node_link", "store", "view")}
    outputs = GraphOutputs.beside(args.out, max_graph_triples=args.max_graph_triples,
                                  min_confidence=args.min_confidence,
                                  resolve_mentions=args.resolve_mentions, **overrides)
    outputs = replace(outputs, **{name: None for name in overrides if getattr(args, "no_" + name)})
    cache = args.cache or args.out.with_name(args.out.stem + ".kgcache")
    try:
        report = build_graph(parquet_sources(args.parquet), outputs, cache=cache)
    except (GraphInputError, ValueError) as exc:
        return fail(PROG, str(exc))
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        return fail(PROG, f"stopped writing the outputs: {exc.strerror or exc}{where}; outputs "
                          f"finished so far are kept, fix the error and rerun the same command",
                    EXIT_STOPPED)
    kept = (f" (of {report.rows}: confidence >= {args.min_confidence})"
            if args.min_confidence is not None else "")
    print(f"{PROG}: {report.triples} triples{kept}")
    for name, path in outputs.named().items():
        if name in report.skipped:
            print(f"  {name:<10} not written: {report.skipped[name]}")
        else:
            state = "unchanged" if name in report.unchanged else "written"
            print(f"  {name:<10} {path} ({report.counts.get(name, report.triples)} triples, {state})")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
