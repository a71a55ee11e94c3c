"""``ptoie-kg``: build the graph outputs from Parquet triples (the batch job's, or any table in the
triple schema, e.g. one filtered with DuckDB).

    ptoie-kg out/kg.parquet --out subset.ttl                 # subset.ttl, .oxigraph/, .graphml, .json, .html
    ptoie-kg filtered.parquet --out f.nt --no-store --no-view

The same code as the batch job's output stage (ptoie.graph.build): streamed RDF, an incremental Oxigraph
store, NetworkX outputs up to --max-graph-triples. A rerun on unchanged input rewrites nothing.

exit status: 0 done; 2 bad input (a path that is missing, a folder without Parquet files, a file
that is not a table of triples) or bad flags.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from ptoie.graph.build import DEFAULT_MAX_GRAPH_TRIPLES, GraphOutputs, build_graph
from ptoie.graph.sources import GraphInputError, confidence, parquet_sources

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ptoie-kg", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parquet", nargs="+", type=Path, metavar="PARQUET",
                        help="Parquet files or dataset folders in the triple schema")
    parser.add_argument("--out", type=Path, required=True, help="RDF file: .ttl or .nt")
    parser.add_argument("--graphml", type=Path, help="default: <out stem>.graphml")
    parser.add_argument("--node-link", type=Path, help="default: <out stem>.json")
    parser.add_argument("--store", type=Path, help="Oxigraph store (default: <out stem>.oxigraph/)")
    parser.add_argument("--view", type=Path, help="picture of the graph (default: <out stem>.html)")
    for name in ("graphml", "node-link", "store", "view"):
        parser.add_argument(f"--no-{name}", action="store_true", help=f"do not write the {name} output")
    parser.add_argument("--max-graph-triples", type=int, default=DEFAULT_MAX_GRAPH_TRIPLES,
                        help=f"GraphML / node-link only up to this many triples (default: "
                             f"{DEFAULT_MAX_GRAPH_TRIPLES})")
    parser.add_argument("--min-confidence", type=confidence, metavar="C",
                        help="keep only triples with confidence >= C (0..1) in every output; the "
                             "Parquet input is not changed (default: all)")
    parser.add_argument("--no-resolve-mentions", dest="resolve_mentions", action="store_false",
                        help="keep every subject as written: do not link 'Ele', 'O escritor', "
                             "'Saramago' to the entity of their document they refer to "
                             "(docs/graph.md)")
    parser.add_argument("--cache", type=Path,
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
        print(f"ptoie-kg: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    kept = (f" (of {report.rows}: confidence >= {args.min_confidence})"
            if args.min_confidence is not None else "")
    print(f"ptoie-kg: {report.triples} triples{kept}")
    for name, path in outputs.named().items():
        if name in report.skipped:
            print(f"  {name:<10} not written: {report.skipped[name]}")
        else:
            state = "unchanged" if name in report.unchanged else "written"
            print(f"  {name:<10} {path} ({report.counts.get(name, report.triples)} triples, {state})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
