#!/usr/bin/env bash
# The demo job, the same as `make demo`: the sample corpus (examples/corpus, 9 documents) through
# the batch job on the embedded default model.
#
#   jobs/demo.sh [ptoie-batch flags...]       e.g. jobs/demo.sh --min-confidence 0.5
#
# Writes out/kg.parquet/ (Parquet triples), out/kg.ttl (RDF), out/kg.oxigraph/ (SPARQL store),
# out/kg.graphml, out/kg.json, out/kg.html (the picture) and out/kg.errors.jsonl, under the
# repository root (it runs there, like make). Rerunning it resumes (finished documents are
# skipped). Needs .venv (make setup).
set -euo pipefail
cd "$(dirname "$0")/.."

.venv/bin/ptoie-batch examples/corpus --out out/kg.ttl "$@"
