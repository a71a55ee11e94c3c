"""How connected is a knowledge graph? Figures of one or more GraphML files written by the graph
stage (``ptoie-batch`` or ``ptoie-kg``).

    python bench/graph_merge.py out/kg.graphml
    python bench/graph_merge.py surface.graphml canonical.graphml --min-confidence 0.5

Per file: entity nodes (nodes of ``kind`` ``literal`` are leaves of one statement and are not
counted; a GraphML without ``kind`` attributes counts every node), connected components of the
entity nodes, the largest component's size, and the entities named by triples of two or more
documents. ``--min-confidence`` counts only edges at or above it (and their nodes).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import networkx as nx


def figures(path: Path, min_confidence: float | None = None) -> dict[str, int]:
    graph = nx.read_graphml(path, force_multigraph=True)
    entities = nx.Graph()
    documents: dict[str, set[str]] = {}
    for u, v, data in graph.edges(data=True):
        if min_confidence is not None and data.get("confidence", -1.0) < min_confidence:
            continue
        ends = [n for n in (u, v) if graph.nodes[n].get("kind", "entity") == "entity"]
        entities.add_nodes_from(ends)
        if len(ends) == 2:
            entities.add_edge(*ends)
        for node in ends:
            documents.setdefault(node, set()).add(data["doc_id"])
    components = sorted((len(c) for c in nx.connected_components(entities)), reverse=True)
    return {"entity nodes": entities.number_of_nodes(), "components": len(components),
            "largest component": components[0] if components else 0,
            "entities in 2+ documents": sum(len(d) > 1 for d in documents.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("graphml", nargs="+", type=Path)
    parser.add_argument("--min-confidence", type=float)
    args = parser.parse_args()
    for path in args.graphml:
        line = ", ".join(f"{k} {v}" for k, v in figures(path, args.min_confidence).items())
        print(f"{path}: {line}")


if __name__ == "__main__":
    main()
