"""The graph outputs' flags, shared by ``ptoie-batch`` and ``ptoie-kg`` (kept out of
:mod:`ptoie.cli.common`: importing the graph stage costs the other commands half a second)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ptoie.graph.build import DEFAULT_MAX_GRAPH_TRIPLES
from ptoie.graph.sources import confidence


def add_graph_output_arguments(group: argparse._ActionsContainer) -> None:
    """The graph outputs' flags of ``ptoie-batch`` and ``ptoie-kg``: where each output goes (next
    to ``--out`` by default), their bound, the confidence filter and mention resolution."""
    for flag, metavar, what, suffix in (
            ("--graphml", "FILE", "GraphML file", ".graphml"),
            ("--node-link", "FILE", "node-link JSON file", ".json"),
            ("--store", "DIR", "Oxigraph store folder, for ptoie sparql", ".oxigraph/"),
            ("--view", "FILE", "interactive picture of the graph", ".html")):
        group.add_argument(flag, type=Path, metavar=metavar,
                           help=f"{what} (default: <out stem>{suffix})")
    group.add_argument("--max-graph-triples", type=int, default=DEFAULT_MAX_GRAPH_TRIPLES,
                       metavar="N", help="GraphML and node-link JSON only up to this many triples "
                                         "(default: %(default)s; they are held in memory)")
    group.add_argument("--min-confidence", type=confidence, metavar="C",
                       help="RDF, store, GraphML/JSON and picture hold only triples with "
                            "confidence >= C (0..1); the Parquet triples keep all (default: all)")
    group.add_argument("--no-resolve-mentions", dest="resolve_mentions", action="store_false",
                       help="keep every subject as written: do not link 'Ele', 'O escritor', "
                            "'Saramago' to the entity of their document they refer to "
                            "(docs/graph.md)")
